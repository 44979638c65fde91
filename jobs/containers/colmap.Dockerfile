# The sfm stage: COLMAP 4.2.1 as pycolmap-cuda12 (SIFT extraction and matching on the GPU, the global mapper that
# was GLOMAP and the incremental one), installed from jobs/sfm/requirements-cuda.txt with its hashes; Node 22 (the
# functions' runtime) to run dist/jobs/run-stage.js; and a vocabulary tree for sequential matching's loop detection,
# pinned by sha256. Build from the repository root:
#   docker build -f jobs/containers/colmap.Dockerfile -t colmap .
# Not built in CI (no Docker, no GPU there). Locally the same jobs/sfm/engine.py runs pycolmap's CPU build of the
# same COLMAP 4.2.1 (requirements.lock, in local/setup's .venv): one code path and one COLMAP version; only
# where SIFT runs differs. No COLMAP or GLOMAP is compiled here: GLOMAP's mapper is part of COLMAP since 4.0.
#
# CUDA: the wheel loads the CUDA 12 runtime the lock pins (nvidia-cuda-runtime-cu12); only the driver comes from
# the host. Cloud Run's L4 driver is 535.216.03, CUDA 12.2 (https://cloud.google.com/run/docs/configuring/jobs/gpu,
# "Supported GPU types"), which runs the runtime of any CUDA 12.x release under CUDA's minor version compatibility
# (https://docs.nvidia.com/deploy/cuda-compatibility/); no CUDA base image is needed.
ARG NODE_IMAGE=node:22.23.5-bookworm-slim

FROM ${NODE_IMAGE} AS app
WORKDIR /app
COPY package.json package-lock.json ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS vocab
# COLMAP 3.12 and later read FAISS-format trees only. This is the tree COLMAP 4.2.1 itself names as its default
# (SequentialMatching.vocab_tree_path: URL and sha256 as pycolmap's build embeds them): 256K words, for 1 000-10 000
# images. The build refuses to go on unless the download matches the sha256.
ARG VOCAB_TREE_URL=https://github.com/colmap/colmap/releases/download/3.11.1/vocab_tree_faiss_flickr100K_words256K.bin
ARG VOCAB_TREE_SHA256=96ca8ec8ea60b1f73465aaf2c401fd3b3ca75cdba2d3c50d6a2f6f760f275ddc
RUN test -n "${VOCAB_TREE_SHA256}" || { echo "VOCAB_TREE_SHA256 build argument is required" >&2; exit 1; } \
 && apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSL -o /vocab_tree.bin "${VOCAB_TREE_URL}" \
 && echo "${VOCAB_TREE_SHA256}  /vocab_tree.bin" | sha256sum -c -

FROM ${NODE_IMAGE}
# Debian bookworm's Python 3.11, as local/setup uses: the lock's wheels are built for it.
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY --from=app /app /app
WORKDIR /app
# The sfm stage runs engine.py under the repository's .venv/bin/python (jobs/sfm/run-sfm.ts), as locally.
RUN python3 -m venv --clear .venv \
    && .venv/bin/pip install --no-cache-dir --disable-pip-version-check --require-hashes \
         -r jobs/sfm/requirements-cuda.txt \
    && .venv/bin/python -c "import pycolmap; assert pycolmap.has_cuda, pycolmap.COLMAP_build"
COPY --from=vocab /vocab_tree.bin /opt/sfm/vocab_tree.bin
# jobs/sfm/stage.ts detects loops with this tree unless a request names its own.
ENV SPLATFLOW_VOCAB_TREE_PATH=/opt/sfm/vocab_tree.bin
CMD ["node", "dist/jobs/run-stage.js", "sfm"]
