# The sfm stage: COLMAP (CUDA SIFT extraction and matching) and GLOMAP (global mapper), built at pinned
# versions, with Node 22 (the functions' runtime) to run dist/jobs/run-stage.js, and a vocabulary tree for sequential matching's loop
# detection baked in at a pinned sha256. Build from the repository root:
#   docker build -f jobs/containers/colmap.Dockerfile \
#     --build-arg VOCAB_TREE_SHA256=<sha256 of the file at VOCAB_TREE_URL> -t colmap .
# Not built in CI (no Docker, no GPU there); the same stage code runs locally on Debian's CPU colmap.
# CUDA no newer than the driver Cloud Run's L4 GPUs have: 535.216.03, CUDA 12.2
# (https://cloud.google.com/run/docs/configuring/jobs/gpu, "Supported GPU types").
ARG CUDA_VERSION=12.2.2
ARG NODE_IMAGE=node:22.23.5-bookworm-slim
ARG UBUNTU_VERSION=22.04

FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION} AS builder
ARG COLMAP_VERSION=3.11.1
ARG GLOMAP_VERSION=1.0.0
# L4 (Cloud Run GPUs) is sm_89; 8.0/8.6/9.0 keep the image usable on A100/A10/H100.
ARG CUDA_ARCHITECTURES="80;86;89;90"
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      git cmake ninja-build build-essential ca-certificates \
      libboost-program-options-dev libboost-graph-dev libboost-system-dev libeigen3-dev libflann-dev \
      libfreeimage-dev libmetis-dev libgoogle-glog-dev libgtest-dev libgmock-dev libsqlite3-dev libglew-dev \
      qtbase5-dev libqt5opengl5-dev libcgal-dev libceres-dev libsuitesparse-dev libcurl4-openssl-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
RUN git clone --depth 1 --branch ${COLMAP_VERSION} https://github.com/colmap/colmap.git /src/colmap \
    && cmake -S /src/colmap -B /src/colmap/build -GNinja -DCMAKE_BUILD_TYPE=Release \
         -DCUDA_ENABLED=ON -DGUI_ENABLED=OFF -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
         -DCMAKE_INSTALL_PREFIX=/opt/sfm \
    && cmake --build /src/colmap/build && cmake --install /src/colmap/build
# GLOMAP against the COLMAP just built (not its own fetched copy), so both binaries share one library.
RUN git clone --depth 1 --branch ${GLOMAP_VERSION} https://github.com/colmap/glomap.git /src/glomap \
    && cmake -S /src/glomap -B /src/glomap/build -GNinja -DCMAKE_BUILD_TYPE=Release \
         -DFETCH_COLMAP=OFF -DCMAKE_PREFIX_PATH=/opt/sfm -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
         -DCMAKE_INSTALL_PREFIX=/opt/sfm \
    && cmake --build /src/glomap/build && cmake --install /src/glomap/build

FROM ${NODE_IMAGE} AS app
WORKDIR /app
COPY package.json package-lock.json ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS vocab
# COLMAP up to 3.11 reads only the classic FLANN-format trees published at demuc.de/colmap; 3.12 switched to
# FAISS-format trees (vocab_tree_faiss_*.bin), which 3.11 cannot read: change both together. 256K words is
# COLMAP's tree for 1 000-10 000 images (32K words for fewer). The build refuses to go on unless the download
# matches VOCAB_TREE_SHA256.
ARG VOCAB_TREE_URL=https://demuc.de/colmap/vocab_tree_flickr100K_words256K.bin
ARG VOCAB_TREE_SHA256
RUN test -n "${VOCAB_TREE_SHA256}" || { echo "VOCAB_TREE_SHA256 build argument is required" >&2; exit 1; } \
 && apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSL -o /vocab_tree.bin "${VOCAB_TREE_URL}" \
 && echo "${VOCAB_TREE_SHA256}  /vocab_tree.bin" | sha256sum -c -

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION}
ARG COLMAP_VERSION=3.11.1
ARG GLOMAP_VERSION=1.0.0
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      libboost-program-options1.74.0 libboost-graph1.74.0 libc6 libceres2 libfreeimage3 libgcc-s1 \
      libgl1 libglew2.2 libgoogle-glog0v5 libqt5core5a libqt5gui5 libqt5widgets5 libsqlite3-0 libflann1.9 \
      libmetis5 libcurl4 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/sfm /opt/sfm
COPY --from=vocab /vocab_tree.bin /opt/sfm/share/vocab_tree.bin
COPY --from=app /usr/local/bin/node /usr/local/bin/node
COPY --from=app /app /app
# The stage records these in its manifest (jobs/sfm/run-sfm.ts reads GLOMAP_VERSION); jobs/sfm/stage.ts
# detects loops with SPLATFLOW_VOCAB_TREE_PATH unless a request names its own tree.
ENV PATH=/opt/sfm/bin:$PATH LD_LIBRARY_PATH=/opt/sfm/lib \
    COLMAP_VERSION=${COLMAP_VERSION} GLOMAP_VERSION=${GLOMAP_VERSION} \
    SPLATFLOW_VOCAB_TREE_PATH=/opt/sfm/share/vocab_tree.bin \
    QT_QPA_PLATFORM=offscreen
WORKDIR /app
CMD ["node", "dist/jobs/run-stage.js", "sfm"]
