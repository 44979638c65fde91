"""Synthetic scenes with known Gaussians, written as the sfm stage writes its output (COLMAP binary model +
undistorted images), for tests and the benchmark."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from .raster_cpu import rasterization

CPU = torch.device("cpu")  # the scenes are drawn by the CPU rasterizer


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World → camera matrix (OpenCV axes: x right, y down, z forward)."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.array([0.0, -1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = R, -R @ eye
    return m


def ring_cameras(n: int, radius: float, height: float = 0.5) -> list[np.ndarray]:
    return [
        look_at(np.array([radius * math.cos(a), height, radius * math.sin(a)]), np.zeros(3))
        for a in np.linspace(0, 2 * math.pi, n, endpoint=False)
    ]


def blob_scene(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """n coloured Gaussians filling a unit box."""
    g = torch.Generator(device=CPU).manual_seed(seed)
    return {
        "means": torch.rand(n, 3, generator=g, device=CPU) * 2 - 1,
        "quats": torch.randn(n, 4, generator=g, device=CPU),
        "scales": torch.rand(n, 3, generator=g, device=CPU) * 0.08 + 0.04,
        "opacities": torch.rand(n, generator=g, device=CPU) * 0.5 + 0.5,
        "rgb": torch.rand(n, 3, generator=g, device=CPU),
    }


def render_views(scene: dict, viewmats: list[np.ndarray], width: int, height: int, focal: float) -> list[np.ndarray]:
    K = torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=torch.float32, device=CPU)
    images = []
    with torch.no_grad():
        for vm in viewmats:
            img, _, _ = rasterization(
                scene["means"], scene["quats"], scene["scales"], scene["opacities"], scene["rgb"],
                torch.tensor(vm, dtype=torch.float32, device=CPU)[None], K[None], width, height,
            )  # fmt: skip
            images.append((img[0].clamp(0, 1).numpy() * 255).round().astype(np.uint8))
    return images


def rotmat_to_qvec(R: np.ndarray) -> np.ndarray:
    w = math.sqrt(max(0.0, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    return np.array([w, x, y, z])


def write_colmap_binary(folder: Path, width: int, height: int, focal: float, viewmats, names, xyz, rgb) -> None:
    """The files `colmap image_undistorter` writes in sparse/: one PINHOLE camera, images, points (no tracks)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "cameras.bin", "wb") as f:
        f.write(struct.pack("<QiiQQ", 1, 1, 1, width, height))
        f.write(struct.pack("<4d", focal, focal, width / 2, height / 2))
    with open(folder / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(names)))
        for i, (vm, name) in enumerate(zip(viewmats, names)):
            f.write(struct.pack("<i7di", i + 1, *rotmat_to_qvec(vm[:3, :3]), *vm[:3, 3], 1))
            f.write(name.encode() + b"\x00" + struct.pack("<Q", 0))
    with open(folder / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(xyz)))
        for i, (p, c) in enumerate(zip(xyz, rgb)):
            f.write(struct.pack("<Q3d3BdQ", i + 1, *p, *c, 0.5, 0))


def write_sfm_output(prefix: Path, scene: dict, n_views: int, width: int, height: int, points: int, seed: int = 0):
    """`{prefix}sfm/undistorted/{sparse,images}/` for `scene` seen from a ring of cameras; sparse points are a noisy
    subset of the Gaussian centres, as a structure-from-motion run would give."""
    focal = 0.9 * width
    viewmats = ring_cameras(n_views, 4.0)
    images = render_views(scene, viewmats, width, height, focal)
    root = prefix / "sfm" / "undistorted"
    (root / "images").mkdir(parents=True, exist_ok=True)
    names = [f"frame_{i:03d}.png" for i in range(n_views)]
    for name, img in zip(names, images):
        PILImage.fromarray(img).save(root / "images" / name)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(scene["means"]), size=min(points, len(scene["means"])), replace=False)
    xyz = scene["means"][pick].numpy() + rng.normal(0, 0.02, (len(pick), 3))
    rgb = (scene["rgb"][pick].numpy() * 255).astype(np.uint8)
    write_colmap_binary(root / "sparse", width, height, focal, viewmats, names, xyz, rgb)
    return viewmats, images
