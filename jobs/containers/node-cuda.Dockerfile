# The GPU image of the depth stage: Node 22 (the functions' runtime), onnxruntime-node with its CUDA 12 provider, and the
# Depth-Anything-V2-Small ONNX model baked in at a pinned sha256.
#   docker build -f jobs/containers/node-cuda.Dockerfile \
#     --build-arg DEPTH_MODEL_SHA256=<sha256 of the file at DEPTH_MODEL_URL> -t splatflow-node-cuda .
#
# Model licence: Depth-Anything-V2-Small is Apache-2.0. The Base and Large checkpoints are
# CC-BY-NC-4.0 (non-commercial): do not put them in this image for a commercial deployment.
ARG NODE_IMAGE=node:22.23.5-bookworm-slim
# CUDA no newer than the driver Cloud Run's L4 GPUs have: 535.216.03, CUDA 12.2
# (https://cloud.google.com/run/docs/configuring/jobs/gpu, "Supported GPU types").
ARG CUDA_IMAGE=nvidia/cuda:12.2.2-runtime-ubuntu22.04
# onnxruntime-node 1.30's CUDA 12 provider wants cuDNN 9; NVIDIA's repository (configured in the CUDA image)
# has it built for CUDA 12, which runs on any 12.x driver from r525.
ARG CUDNN_VERSION=9.5.1.17-1

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# .npmrc skips onnxruntime-node's CUDA download everywhere else; this image asks for it.
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY lib lib
COPY functions functions
COPY jobs jobs
COPY local local
COPY viewer viewer
COPY test test
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS model
# A pinned revision of the ONNX export of Depth-Anything-V2-Small; the build refuses to go on
# unless the download matches DEPTH_MODEL_SHA256.
ARG DEPTH_MODEL_URL=https://huggingface.co/onnx-community/depth-anything-v2-small/resolve/main/onnx/model.onnx
ARG DEPTH_MODEL_SHA256
RUN test -n "${DEPTH_MODEL_SHA256}" || { echo "DEPTH_MODEL_SHA256 build argument is required" >&2; exit 1; } \
 && apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSL -o /depth-anything-v2-small.onnx "${DEPTH_MODEL_URL}" \
 && echo "${DEPTH_MODEL_SHA256}  /depth-anything-v2-small.onnx" | sha256sum -c -

FROM ${CUDA_IMAGE}
ARG DEPTH_MODEL_SHA256
ARG CUDNN_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends "libcudnn9-cuda-12=${CUDNN_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY --from=model /depth-anything-v2-small.onnx /models/depth-anything-v2-small.onnx
ENV SPLATFLOW_DEPTH_MODEL_URI=/models/depth-anything-v2-small.onnx \
    SPLATFLOW_DEPTH_MODEL_SHA256=${DEPTH_MODEL_SHA256}
# The command comes from jobs/definitions.json: node dist/jobs/run-stage.js depth
ENTRYPOINT []
