# The train and mesh stages on a GPU: gsplat's CUDA rasterizer behind the same code as the CPU path.
# Built from the repository root: docker build -f jobs/images/gsplat.Dockerfile .
# gsplat's prebuilt wheels are cp310 (Ubuntu 22.04's Python) and per torch/CUDA pair: keep the three pins together.
FROM nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*

RUN pip3 install torch==2.4.1 --index-url https://download.pytorch.org/whl/cu121
RUN pip3 install gsplat==1.4.0+pt24cu121 --index-url https://docs.gsplat.studio/whl/pt24cu121 --extra-index-url https://pypi.org/simple
RUN pip3 install numpy==1.26.4 scipy==1.13.1 scikit-image==0.24.0 pillow==10.4.0 numba==0.60.0 \
    google-cloud-storage==2.18.2

WORKDIR /app
COPY jobs/__init__.py jobs/__init__.py
COPY jobs/py jobs/py
COPY jobs/train jobs/train
COPY jobs/mesh jobs/mesh
# jobs/definitions.json runs `python3 jobs/train/main.py` or `python3 jobs/mesh/main.py` here.
