"""Read a COLMAP model (binary `cameras.bin/images.bin/points3D.bin` or the `.txt` equivalents).

The sfm stage writes what `colmap image_undistorter` writes: `{prefix}sfm/undistorted/sparse/` (the model, PINHOLE
cameras) and `{prefix}sfm/undistorted/images/` (the undistorted images, named as in the model).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# COLMAP's camera models by id: (name, parameter count). Only the pinhole ones are undistorted.
MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5), 4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5), 8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
}  # fmt: skip


class ModelError(ValueError):
    pass


@dataclass
class Camera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def K(self) -> np.ndarray:
        if self.model == "PINHOLE":
            fx, fy, cx, cy = self.params
        elif self.model == "SIMPLE_PINHOLE":
            fx, cx, cy = self.params
            fy = fx
        else:
            raise ModelError(f"camera {self.id} is {self.model}: training needs the undistorted (PINHOLE) model")
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)


@dataclass
class Image:
    id: int
    qvec: np.ndarray  # w, x, y, z: world → camera rotation
    tvec: np.ndarray
    camera_id: int
    name: str

    def viewmat(self) -> np.ndarray:
        w, x, y, z = self.qvec / np.linalg.norm(self.qvec)
        R = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = R, self.tvec
        return m


@dataclass
class Model:
    cameras: dict[int, Camera]
    images: list[Image]  # sorted by name
    xyz: np.ndarray  # [P,3]
    rgb: np.ndarray  # [P,3] uint8


def _read_binary(folder: Path) -> Model:
    def unpack(f, fmt):
        return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))

    cameras = {}
    with open(folder / "cameras.bin", "rb") as f:
        for _ in range(unpack(f, "Q")[0]):
            cid, model_id, w, h = unpack(f, "iiQQ")
            if model_id not in MODELS:
                raise ModelError(f"unknown camera model id {model_id}")
            name, n = MODELS[model_id]
            cameras[cid] = Camera(cid, name, w, h, np.array(unpack(f, "d" * n)))
    images = []
    with open(folder / "images.bin", "rb") as f:
        for _ in range(unpack(f, "Q")[0]):
            iid, *pose, cid = unpack(f, "idddddddi")
            name = b""
            while (ch := f.read(1)) not in (b"\x00", b""):
                name += ch
            f.seek(24 * unpack(f, "Q")[0], 1)  # 2D points: x, y, point3D id
            images.append(Image(iid, np.array(pose[:4]), np.array(pose[4:]), cid, name.decode()))
    xyz, rgb = [], []
    with open(folder / "points3D.bin", "rb") as f:
        for _ in range(unpack(f, "Q")[0]):
            _, x, y, z, r, g, b, _, track = unpack(f, "QdddBBBdQ")
            f.seek(8 * track, 1)
            xyz.append((x, y, z))
            rgb.append((r, g, b))
    return Model(cameras, images, np.array(xyz, np.float64).reshape(-1, 3), np.array(rgb, np.uint8).reshape(-1, 3))


def _data_lines(path: Path) -> list[str]:
    # Blank lines matter in images.txt (an image with no 2D points has an empty second line): drop comments only.
    return [line.rstrip("\n") for line in path.read_text().splitlines() if not line.startswith("#")]


def _read_text(folder: Path) -> Model:
    cameras = {}
    for line in _data_lines(folder / "cameras.txt"):
        if not line.strip():
            continue
        cid, model, w, h, *params = line.split()
        cameras[int(cid)] = Camera(int(cid), model, int(w), int(h), np.array(params, np.float64))
    lines = _data_lines(folder / "images.txt")
    images = []
    for head in lines[0::2]:
        if not head.strip():
            continue
        iid, qw, qx, qy, qz, tx, ty, tz, cid, name = head.split(maxsplit=9)
        pose = np.array([qw, qx, qy, qz, tx, ty, tz], np.float64)
        images.append(Image(int(iid), pose[:4], pose[4:], int(cid), name))
    xyz, rgb = [], []
    for line in _data_lines(folder / "points3D.txt"):
        if line.strip():
            v = line.split()
            xyz.append([float(x) for x in v[1:4]])
            rgb.append([int(c) for c in v[4:7]])
    return Model(cameras, images, np.array(xyz, np.float64).reshape(-1, 3), np.array(rgb, np.uint8).reshape(-1, 3))


def read_model(folder: Path) -> Model:
    if (folder / "cameras.bin").exists():
        model = _read_binary(folder)
    elif (folder / "cameras.txt").exists():
        model = _read_text(folder)
    else:
        raise ModelError(f"no COLMAP model (cameras.bin or cameras.txt) in {folder}")
    model.images.sort(key=lambda im: im.name)
    for im in model.images:
        if im.camera_id not in model.cameras:
            raise ModelError(f"image {im.name} refers to missing camera {im.camera_id}")
    return model
