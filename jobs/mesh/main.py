"""The mesh stage: `{prefix}train/` (point_cloud.ply + cameras.json) → `{prefix}mesh/` mesh.ply, mesh.glb and
manifest.json. Depth and colour are rendered from the trained Gaussians at the training views (expected depth where the
splats are opaque), fused into a TSDF volume, meshed by marching cubes and simplified."""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python3 jobs/mesh/main.py` (the job definition's command)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "jobs.mesh"

from ..runtime_py.interpreter import ensure_torch_interpreter

ensure_torch_interpreter()

import numpy as np
import torch

from ..runtime_py.params import Param, validate
from ..runtime_py.stage import Context, Refused, StageError, run
from ..runtime_py.storage import join
from ..train.backend import select_backend
from ..train.ply import read_splat_ply
from .meshio import write_glb, write_mesh_ply
from .simplify import simplify
from .tsdf import Volume

SCHEMA = {
    "resolution": Param(int, 16, 1024),  # voxels along the scene's longest side
    "target_faces": Param(int, 100, 50_000_000),
    "trunc_voxels": Param(float, 1.0, 50.0),  # TSDF truncation distance in voxels
    "alpha_min": Param(float, 0.0, 1.0),  # pixels less opaque than this carry no depth
    "device": Param(str, choices=("auto", "cpu")),
}
DEFAULTS = {"resolution": 160, "target_faces": 200_000, "trunc_voxels": 4.0, "alpha_min": 0.5}
GPU_DEFAULTS = {**DEFAULTS, "resolution": 512, "target_faces": 1_000_000}


def scene_box(means: np.ndarray, opacity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box holding the bulk of the opaque Gaussians (stray floaters would otherwise waste the grid)."""
    solid = means[opacity > 0.5] if (opacity > 0.5).sum() >= 10 else means
    lo, hi = np.percentile(solid, 0.5, axis=0), np.percentile(solid, 99.5, axis=0)
    pad = 0.1 * (hi - lo).max()
    return lo - pad, hi + pad


def main(ctx: Context) -> None:
    backend = select_backend(prefer_cpu=ctx.params.get("device") == "cpu")
    opts = {**(DEFAULTS if backend.name == "cpu" else GPU_DEFAULTS), **validate(ctx.params, SCHEMA)}
    scratch = ctx.scratch
    train = ctx.uri("train") + "/"
    try:
        ply = ctx.storage.download(join(train, "point_cloud.ply"), scratch / "point_cloud.ply")
        cameras = json.loads(ctx.storage.read_bytes(join(train, "cameras.json")))
    except FileNotFoundError:
        raise StageError(
            f"no trained splat (point_cloud.ply, cameras.json) under {train}: run the train stage first"
        ) from None
    splat = read_splat_ply(ply)
    if len(splat["means"]) == 0 or not cameras:
        raise Refused("the trained splat has no Gaussians or no cameras")
    dev = backend.device
    t = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dev) for k, v in splat.items()}
    colors = torch.cat([t["sh0"], t["shN"]], 1)
    sh_degree = int(round(np.sqrt(colors.shape[1]))) - 1
    opacity = 1 / (1 + np.exp(-splat["opacities"]))
    volume = Volume.around(*scene_box(splat["means"], opacity), opts["resolution"], dev)
    trunc = opts["trunc_voxels"] * volume.voxel
    ctx.log("fusing", views=len(cameras), grid=list(volume.tsdf.shape), voxel=volume.voxel, backend=backend.name)
    with torch.no_grad():
        for i, cam in enumerate(cameras):
            K = torch.tensor(cam["K"], dtype=torch.float32, device=dev)
            vm = torch.tensor(cam["viewmat"], dtype=torch.float32, device=dev)
            img, alpha, _ = backend.rasterization(
                t["means"], t["quats"], torch.exp(t["scales"]), torch.sigmoid(t["opacities"]), colors,
                vm[None], K[None], cam["width"], cam["height"], sh_degree=sh_degree, render_mode="RGB+ED",
                packed=False,
            )  # fmt: skip
            img, alpha = img[0], alpha[0, ..., 0]
            depth = torch.where(alpha > opts["alpha_min"], img[..., 3], torch.zeros_like(alpha))
            volume.integrate(depth, img[..., :3].clamp(0, 1), K, vm, trunc)
            ctx.progress(0.8 * (i + 1) / len(cameras), view=i + 1)
    verts, faces, vcolors = volume.extract()
    if len(faces) == 0:
        raise Refused("no surface found: the rendered depth is empty or never crosses the volume")
    raw_faces = len(faces)
    verts, faces, vcolors = simplify(verts, faces, vcolors, opts["target_faces"], start_cell=1.5 * volume.voxel)
    ctx.progress(0.9, faces=len(faces))
    write_mesh_ply(scratch / "mesh.ply", verts, faces, vcolors)
    write_glb(scratch / "mesh.glb", verts, faces, vcolors)
    for name in ("mesh.ply", "mesh.glb"):
        ctx.put(scratch / name, name)
    ctx.write_manifest({
        "backend": backend.name, "options": opts, "views": len(cameras), "grid": list(volume.tsdf.shape),
        "voxel_size": volume.voxel, "vertices": len(verts), "faces": len(faces), "faces_before_simplify": raw_faces,
        "bounds": [verts.min(0).tolist(), verts.max(0).tolist()],
    })  # fmt: skip
    ctx.progress(1.0)


if __name__ == "__main__":
    run("mesh", main)
