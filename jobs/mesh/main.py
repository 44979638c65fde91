"""The mesh stage: `{prefix}train/` (point_cloud.ply + cameras.json) and `{prefix}sfm/undistorted/images/` (the
photos) → `{prefix}mesh/` mesh.ply, mesh.glb, heldout/*.png and manifest.json.

The region and voxel follow what the training cameras see (region.py); depth and colour are rendered from the trained
Gaussians at the training views, fused into a TSDF volume, meshed by marching cubes and simplified; the vertices then
take their colours from the photos (colour.py). The mesh is scored at the views training held out, beside the splat
(quality.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

if __package__ in (None, ""):  # run as `python3 jobs/mesh/main.py` (the job definition's command)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "jobs.mesh"

from ..runtime_py.interpreter import ensure_torch_interpreter

ensure_torch_interpreter()

import numpy as np
import torch
from PIL import Image as PILImage

from ..runtime_py.params import Param, validate
from ..runtime_py.stage import Context, Refused, StageError, run
from ..runtime_py.storage import join
from ..train.backend import select_backend
from ..train.gaussians import Params
from ..train.median_depth import median_depth
from ..train.ply import read_splat_ply
from ..train.trainer import View, render
from .colour import photo_colors, vertex_normals
from .meshio import write_glb, write_mesh_ply
from .quality import score_heldout
from .region import fusion_region, voxel_size
from .simplify import simplify
from .tsdf import Volume

SCHEMA = {
    "voxel_pixels": Param(float, 0.25, 64.0),  # voxel size in training pixels at the typical viewing depth
    "max_voxels": Param(int, 1 << 12, 1 << 30),  # the grid's budget: the voxel grows where the region needs more
    "max_views": Param(int, 1, 100_000),  # training views fused (evenly spread): a video's neighbours repeat each other
    "target_faces": Param(int, 100, 50_000_000),
    "trunc_voxels": Param(float, 1.0, 50.0),  # TSDF truncation: at least this many voxels ...
    "trunc_depth": Param(float, 0.0, 0.5),  # ... and at least this share of the pixel's depth
    "alpha_min": Param(float, 0.0, 1.0),  # pixels less opaque than this carry no depth
    # median: where the ray first gets half opaque (on the surface); expected: the alpha-blended mean (in front of it)
    "depth": Param(str, choices=("median", "expected")),
    "device": Param(str, choices=("auto", "cpu")),
}
# CPU: 4M voxels (84 MB of grid); GPU: 134M (2.7 GB), as 512³ was.
DEFAULTS = {"voxel_pixels": 1.5, "max_voxels": 1 << 22, "max_views": 32, "target_faces": 200_000, "trunc_voxels": 3.0,
            "trunc_depth": 0.02, "alpha_min": 0.5, "depth": "median"}  # fmt: skip
GPU_DEFAULTS = {**DEFAULTS, "voxel_pixels": 1.0, "max_voxels": 1 << 27, "max_views": 1000, "target_faces": 1_000_000}


def load_photo(path: Path, size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """An image as float [H,W,3] in [0,1], resized (box filter, as training) to `size` (width, height) if given."""
    pil = PILImage.open(path).convert("RGB")
    if size is not None and pil.size != size:
        pil = pil.resize(size, PILImage.BOX)
    return np.asarray(pil, np.float32) / 255.0


def heldout_views(cameras: list[dict], images: Path, device: torch.device) -> list[View]:
    """The views training held out (its cameras.json says which), with their photos at training size."""
    return [
        View(c["name"], torch.from_numpy(load_photo(images / c["name"], (c["width"], c["height"]))).to(device),
             torch.tensor(c["K"], dtype=torch.float32, device=device),
             torch.tensor(c["viewmat"], dtype=torch.float32, device=device), True)
        for c in cameras if c.get("test")
    ]  # fmt: skip


def training_photos(cameras: list[dict], images: Path):
    """(photo at full size, K scaled to it, viewmat) for each training view, one at a time."""
    for c in cameras:
        photo = load_photo(images / c["name"])
        K = np.asarray(c["K"], np.float64).copy()
        K[0] *= photo.shape[1] / c["width"]
        K[1] *= photo.shape[0] / c["height"]
        yield photo, K, np.asarray(c["viewmat"], np.float64)


def render_depths(backend, params: Params, sh_degree: int, cameras: list[dict], opts: dict, progress) -> list:
    """(depth [H,W] (0: no surface), colour [H,W,3], K, viewmat) rendered from the splat at each camera, on its
    device."""
    dev = params["means"].device
    # The median depth is drawn by the CPU rasterizer's kernels, whatever renders the colour.
    cpu = {k: v.detach().cpu().float() for k, v in params.items()}
    shape = (cpu["means"], cpu["quats"], torch.exp(cpu["scales"]), torch.sigmoid(cpu["opacities"]))
    out = []
    with torch.no_grad():
        for i, cam in enumerate(cameras):
            K = torch.tensor(cam["K"], dtype=torch.float32, device=dev)
            vm = torch.tensor(cam["viewmat"], dtype=torch.float32, device=dev)
            view = View(cam["name"], torch.zeros(cam["height"], cam["width"], 3, device=dev), K, vm, False)
            img, alpha = (x[0] for x in render(backend, params, view, sh_degree, "RGB+ED")[:2])
            depth = img[..., 3]
            if opts["depth"] == "median":
                depth = median_depth(*shape, vm.cpu(), K.cpu(), cam["width"], cam["height"]).to(dev)
            depth = torch.where(alpha[..., 0] > opts["alpha_min"], depth, torch.zeros_like(depth))
            out.append((depth, img[..., :3].clamp(0, 1), K, vm))
            progress(i)
    return out


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
    images = ctx.storage.local_folder(ctx.uri("sfm", "undistorted", "images") + "/", scratch / "images")
    missing = [c["name"] for c in cameras if not (images / c["name"]).is_file()]
    if missing:
        raise StageError(
            f"{len(missing)} photos of the trained cameras (first: {missing[0]}) are missing from the sfm stage's"
            " undistorted images: run the sfm and train stages again"
        )
    splat = read_splat_ply(ply)
    if len(splat["means"]) == 0 or not cameras:
        raise Refused("the trained splat has no Gaussians or no cameras")
    dev = backend.device
    params = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dev) for k, v in splat.items()}
    sh_degree = int(round(np.sqrt(1 + splat["shN"].shape[1]))) - 1
    training = [c for c in cameras if not c.get("test")] or cameras
    fused = [
        training[i]
        for i in np.unique(np.linspace(0, len(training) - 1, min(opts["max_views"], len(training))).astype(int))
    ]
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        ctx.timings[name] = round(now - clock, 3)
        clock = now

    rendered = render_depths(backend, params, sh_degree, fused, opts,
                             lambda i: ctx.progress(0.4 * (i + 1) / len(fused), view=i + 1))  # fmt: skip
    try:
        region = fusion_region([(d.cpu().numpy(), K.cpu().numpy(), vm.cpu().numpy()) for d, _, K, vm in rendered])
    except ValueError as e:
        raise Refused(str(e)) from None
    lap("render_depth")
    volume = Volume.covering(region.lo, region.hi, voxel_size(region, opts["voxel_pixels"], opts["max_voxels"]), dev)
    ctx.log("fusing", views=len(fused), grid=list(volume.tsdf.shape), voxel=volume.voxel,
            voxel_pixels=volume.voxel / region.footprint, depth=region.depth, backend=backend.name)  # fmt: skip
    for i, (depth, rgb, K, vm) in enumerate(rendered):
        volume.integrate(depth, rgb, K, vm, opts["trunc_voxels"] * volume.voxel, opts["trunc_depth"])
        ctx.progress(0.4 + 0.3 * (i + 1) / len(fused))
    lap("fuse")
    verts, faces, vcolors = volume.extract()
    if len(faces) == 0:
        raise Refused("no surface found: the rendered depth is empty or never crosses the volume")
    raw_faces = len(faces)
    verts, faces, vcolors = simplify(verts, faces, vcolors, opts["target_faces"], start_cell=1.5 * volume.voxel)
    lap("extract_simplify")
    ctx.progress(0.75, faces=len(faces))
    vcolors, photo_seen = photo_colors(verts, faces, vcolors, training_photos(fused, images))
    lap("photo_colours")
    ctx.progress(0.85)
    quality = score_heldout(scratch / "heldout", (verts, faces, vcolors), backend, params, sh_degree,
                            heldout_views(cameras, images, dev))  # fmt: skip
    lap("score_heldout")
    write_mesh_ply(scratch / "mesh.ply", verts, faces, vcolors)
    write_glb(scratch / "mesh.glb", verts, faces, vcolors, vertex_normals(verts, faces))
    for name in ("mesh.ply", "mesh.glb", *(e["file"] for e in quality["heldout"])):
        ctx.put(scratch / name, name)
    ctx.write_manifest({
        "backend": backend.name, "options": opts, "views": len(fused), "grid": list(volume.tsdf.shape),
        "voxel_size": volume.voxel, "voxel_pixels": round(volume.voxel / region.footprint, 3),
        "region": {"lo": region.lo.tolist(), "hi": region.hi.tolist(), "depth": region.depth},
        "vertices": len(verts), "faces": len(faces), "faces_before_simplify": raw_faces,
        "vertices_photo_coloured": round(photo_seen, 4),
        "bounds": [verts.min(0).tolist(), verts.max(0).tolist()],
        # Held-out views: the mesh drawn unlit beside the splat, each against the photo (quality.py).
        "quality": quality,
    })  # fmt: skip
    ctx.progress(1.0)


if __name__ == "__main__":
    run("mesh", main)
