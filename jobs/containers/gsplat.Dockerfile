# The train and mesh stages on a GPU: gsplat's CUDA rasterizer behind the same code as the CPU path.
# Built from the repository root: docker build -f jobs/containers/gsplat.Dockerfile .
# CUDA no newer than the driver Cloud Run's L4 GPUs have: 535.216.03, CUDA 12.2
# (https://cloud.google.com/run/docs/configuring/jobs/gpu, "Supported GPU types"); torch's cu121 build matches.
# gsplat is compiled here from a pinned commit for the L4's architecture (sm_89) rather than taken from its
# own wheel index, which publishes only some torch/CUDA pairs and may have none for a pin.
ARG CUDA_VERSION=12.1.1
ARG UBUNTU_VERSION=22.04
ARG TORCH_VERSION=2.4.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu121

FROM nvidia/cuda:${CUDA_VERSION}-cudnn8-devel-ubuntu${UBUNTU_VERSION} AS gsplat
ARG TORCH_VERSION
ARG TORCH_INDEX
# v1.4.0; the build stops unless the tag still names this commit.
ARG GSPLAT_TAG=v1.4.0
ARG GSPLAT_COMMIT=4d3a3b69db4de0326f983ccf7b7b255271a17b01
# L4 (Cloud Run GPUs) is sm_89; PTX for 8.9 besides, so a newer GPU can JIT it.
ARG TORCH_CUDA_ARCH_LIST="8.9+PTX"
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-dev git ca-certificates build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN pip3 install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" && pip3 install ninja==1.11.1.1 setuptools wheel
RUN git clone --depth 1 --branch "${GSPLAT_TAG}" --recurse-submodules --shallow-submodules \
      https://github.com/nerfstudio-project/gsplat.git /src/gsplat \
 && test "$(git -C /src/gsplat rev-parse HEAD)" = "${GSPLAT_COMMIT}" \
 && cd /src/gsplat \
 && TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST}" BUILD_NO_CUDA=0 MAX_JOBS=4 \
      pip3 wheel --no-build-isolation --no-deps --wheel-dir /wheels .

FROM nvidia/cuda:${CUDA_VERSION}-cudnn8-runtime-ubuntu${UBUNTU_VERSION}
ARG TORCH_VERSION
ARG TORCH_INDEX
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*

RUN pip3 install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY --from=gsplat /wheels /wheels
# gsplat's own dependencies, pinned, then the wheel built above without letting pip resolve anything else.
RUN pip3 install numpy==1.26.4 jaxtyping==0.2.34 rich==13.8.1 ninja==1.11.1.1 \
 && pip3 install --no-deps /wheels/gsplat-*.whl && rm -rf /wheels
RUN pip3 install scipy==1.13.1 scikit-image==0.24.0 pillow==10.4.0 numba==0.60.0 google-cloud-storage==2.18.2

WORKDIR /app
COPY jobs/__init__.py jobs/__init__.py
COPY jobs/runtime_py jobs/runtime_py
COPY jobs/train jobs/train
COPY jobs/mesh jobs/mesh
# jobs/definitions.json runs `python3 jobs/train/main.py` or `python3 jobs/mesh/main.py` here.
