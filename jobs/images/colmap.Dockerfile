# The sfm stage: COLMAP (CUDA SIFT extraction and matching) and GLOMAP (global mapper), built at pinned
# versions, with Node 20 to run dist/jobs/run-stage.js. Build from the repository root:
#   docker build -f jobs/images/colmap.Dockerfile -t colmap .
# Not built in CI (no Docker, no GPU there); the same stage code runs locally on Debian's CPU colmap.
ARG CUDA_VERSION=12.4.1
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

FROM node:20-bookworm-slim AS app
WORKDIR /app
COPY package.json package-lock.json ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

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
COPY --from=app /usr/local/bin/node /usr/local/bin/node
COPY --from=app /app /app
# The stage records these in its manifest (jobs/sfm/run-sfm.ts reads GLOMAP_VERSION).
ENV PATH=/opt/sfm/bin:$PATH LD_LIBRARY_PATH=/opt/sfm/lib \
    COLMAP_VERSION=${COLMAP_VERSION} GLOMAP_VERSION=${GLOMAP_VERSION} \
    QT_QPA_PLATFORM=offscreen
WORKDIR /app
CMD ["node", "dist/jobs/run-stage.js", "sfm"]
