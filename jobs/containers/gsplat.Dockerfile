# The train and mesh stages on a GPU: gsplat's CUDA rasterizer behind the same code as the CPU path.
# Built from the repository root: docker build -f jobs/containers/gsplat.Dockerfile .
# Python and its packages are requirements.lock, hash-checked, in a virtual environment: the set local/setup
# installs into .venv, so CI tests what this image runs. Its torch is PyPI's CUDA 12.8 build, the CUDA libraries in
# nvidia-* wheels; Cloud Run's L4 driver (535.216.03, CUDA 12.2: https://cloud.google.com/run/docs/configuring/jobs/gpu,
# "Supported GPU types") runs it by CUDA's minor-version compatibility, so the image needs no CUDA of its own.
# gsplat is compiled here from a pinned commit for the L4's architecture (sm_89) rather than taken from its own
# wheel index, which publishes only some torch/CUDA pairs and may have none for a pin.
ARG UBUNTU_VERSION=22.04

# nvcc no newer than the driver's CUDA, so that its sm_89 code and PTX load there; torch's CUDA 12.8 headers build
# with it (the same major version: torch's extension builder only warns of the minor one).
FROM nvidia/cuda:12.2.2-devel-ubuntu${UBUNTU_VERSION} AS gsplat
# v1.4.0; the build stops unless the tag still names this commit.
ARG GSPLAT_TAG=v1.4.0
ARG GSPLAT_COMMIT=4d3a3b69db4de0326f983ccf7b7b255271a17b01
# L4 (Cloud Run GPUs) is sm_89; PTX for 8.9 besides, so a newer GPU can JIT it.
ARG TORCH_CUDA_ARCH_LIST="8.9+PTX"
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev git ca-certificates build-essential \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.lock /tmp/requirements.lock
RUN python3 -m venv /opt/venv \
 && pip install --no-input --require-hashes --only-binary=:all: -r /tmp/requirements.lock
RUN git clone --depth 1 --branch "${GSPLAT_TAG}" --recurse-submodules --shallow-submodules \
      https://github.com/nerfstudio-project/gsplat.git /src/gsplat \
 && test "$(git -C /src/gsplat rev-parse HEAD)" = "${GSPLAT_COMMIT}" \
 && cd /src/gsplat \
 && TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST}" BUILD_NO_CUDA=0 MAX_JOBS=4 \
      pip wheel --no-build-isolation --no-deps --wheel-dir /wheels .

FROM ubuntu:${UBUNTU_VERSION}
# What NVIDIA's CUDA images set, so that the container runtime mounts the driver.
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.lock /tmp/requirements.lock
RUN python3 -m venv /opt/venv \
 && pip install --no-input --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
 && rm /tmp/requirements.lock
# The wheel built above; its dependencies are in the lock.
COPY --from=gsplat /wheels /wheels
RUN pip install --no-deps /wheels/gsplat-*.whl && rm -rf /wheels

WORKDIR /app
COPY jobs/__init__.py jobs/__init__.py
COPY jobs/runtime_py jobs/runtime_py
COPY jobs/train jobs/train
COPY jobs/mesh jobs/mesh
# jobs/definitions.json runs `python3 jobs/train/main.py` or `python3 jobs/mesh/main.py` here: the venv's python3.
