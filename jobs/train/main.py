"""The train stage: `{prefix}sfm/undistorted/` (COLMAP sparse model + undistorted images) → `{prefix}train/`
point_cloud.ply (standard 3DGS), cameras.json (the views at training resolution, for mesh), thumbnail.png and
heldout/*.png (renders.py) and manifest.json."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

if __package__ in (None, ""):  # run as `python3 jobs/train/main.py` (the job definition's command)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "jobs.train"

from ..runtime_py.interpreter import ensure_torch_interpreter

ensure_torch_interpreter()

import torch

from ..runtime_py.stage import Context, Refused, StageError, run
from ..runtime_py.storage import Storage, join
from .backend import select_backend
from .colmap import ModelError, read_model
from .depth import read_depth_frames
from .heldout import extrapolated
from .mcmc import check_backend
from .ply import write_splat_ply
from .presets import settings_from_params
from .renders import write_comparisons, write_thumbnail
from .trainer import evaluate, load_views, train


class StorageCheckpoints:
    """The latest checkpoint as one object under the stage's output folder, replaced whole each time."""

    def __init__(self, storage: Storage, uri: str, scratch: Path) -> None:
        self.storage, self.uri, self.scratch = storage, uri, scratch

    def load(self) -> Optional[dict]:
        if not self.storage.exists(self.uri):
            return None
        # On the CPU whatever device saved it (the optimizer state is saved as it lives, on CUDA in the container):
        # the trainer moves each part to its device, so a checkpoint resumes on any machine.
        return torch.load(io.BytesIO(self.storage.read_bytes(self.uri)), map_location="cpu")

    def save(self, state: dict) -> None:
        path = self.scratch / "checkpoint.pt"
        torch.save(state, path)
        self.storage.upload(path, self.uri)

    def remove(self) -> None:
        self.storage.delete(self.uri)


def cameras_json(views) -> list[dict]:
    return [
        {"name": v.name, "width": v.width, "height": v.height, "K": v.K.tolist(), "viewmat": v.viewmat.tolist(),
         "test": v.test}
        for v in views
    ]  # fmt: skip


def main(ctx: Context) -> None:
    backend = select_backend(prefer_cpu=ctx.params.get("device") == "cpu")
    preset, settings = settings_from_params(ctx.params, "preview" if backend.name == "cpu" else "standard")
    ctx.log("training", preset=preset, backend=backend.name, settings=asdict(settings))
    if backend.fallback_reason:
        ctx.log("gsplat cannot render on this GPU: training on the CPU", "WARNING", reason=backend.fallback_reason)
    check_backend(settings, backend)
    scratch = ctx.scratch
    sfm = ctx.uri("sfm", "undistorted") + "/"
    root = ctx.storage.local_folder(sfm, scratch / "sfm")
    try:
        model = read_model(root / "sparse")
    except (ModelError, FileNotFoundError) as e:
        raise StageError(f"cannot read the sfm stage's model under {sfm}sparse/: {e}") from None
    if len(model.xyz) == 0:
        raise Refused("the sfm model has no 3D points to start from")
    depth_frames, depth_manifest = None, ctx.uri("depth", "manifest.json")
    if settings.depth_weight > 0 and ctx.storage.exists(depth_manifest):
        folder = ctx.storage.local_folder(ctx.uri("depth") + "/", scratch / "depth")
        depth_frames = read_depth_frames(json.loads(ctx.storage.read_bytes(depth_manifest)), folder)
    views = load_views(
        model, root / "images", settings.max_side, settings.test_every, depth_frames, device=backend.device
    )
    ctx.progress(0.02, views=len(views), points=len(model.xyz))

    every = max(1, settings.iterations // 100)

    def on_progress(step: int, stats: dict) -> None:
        if step % every == 0 or len(stats) > 3:
            ctx.progress(0.02 + 0.9 * step / settings.iterations, step=step, **stats)

    ctx.tools["torch"] = torch.__version__
    checkpoints = StorageCheckpoints(ctx.storage, join(ctx.out, "checkpoints/latest.pt"), scratch)
    result = train(settings, backend, views, model.xyz, model.rgb, checkpoints, on_progress)
    if result.resumed_from:
        ctx.log("resumed", step=result.resumed_from)
    held_out = [v for v in views if v.test]
    outside = extrapolated([v.name for v in held_out], [v.name for v in views if not v.test])
    test_metrics = evaluate(backend, result.params, [v for v in held_out if v.name not in outside], result.sh_degree)
    outside_metrics = evaluate(backend, result.params, [v for v in held_out if v.name in outside], result.sh_degree)
    train_metrics = evaluate(backend, result.params, [v for v in views if not v.test][:8], result.sh_degree)
    ctx.progress(0.97, test_psnr=test_metrics["psnr"])

    p = {k: v.detach().cpu().numpy() for k, v in result.params.items()}
    ply = scratch / "point_cloud.ply"
    write_splat_ply(ply, p["means"], p["sh0"], p["shN"], p["opacities"], p["scales"], p["quats"])
    ctx.put(ply, "point_cloud.ply")
    cameras = scratch / "cameras.json"
    cameras.write_text(json.dumps(cameras_json(views)))
    ctx.put(cameras, "cameras.json")
    thumbnail = write_thumbnail(scratch / "thumbnail.png", backend, result.params, views, result.sh_degree)
    ctx.put(scratch / "thumbnail.png", "thumbnail.png")
    heldout = write_comparisons(scratch / "heldout", backend, result.params, views, result.sh_degree)
    for entry in heldout:
        ctx.put(scratch / entry["file"], entry["file"])
    ctx.write_manifest({
        "preset": preset, "backend": backend.name, "settings": asdict(settings),
        "gaussians": len(p["means"]), "sh_degree": result.sh_degree, "input_points": len(model.xyz),
        "views": {"train": sum(not v.test for v in views), "test": len(held_out) - len(outside),
                  "extrapolated": len(outside)},
        "resolution": [views[0].width, views[0].height],
        "depth": {"frames": len(depth_frames or {}), "views_aligned": sum(v.inv_depth is not None for v in views),
                  "weight": settings.depth_weight if depth_frames else 0.0},
        "steps_per_second": result.steps_per_second,
        "resumed_from_step": result.resumed_from, "loss_by_tenth": result.losses,
        # LPIPS needs pretrained network weights, which these images do not carry: reported as null.
        # test: held-out views between training views in capture order; extrapolated: beyond the first or last.
        "quality": {"test": {**test_metrics, "lpips": None}, "extrapolated": outside_metrics,
                    "train_sample": train_metrics},
        # File names under this stage's folder: the thumbnail and, per held-out view, ground truth | render.
        "renders": {"thumbnail": thumbnail, "heldout": heldout},
    })  # fmt: skip
    # Only a run that has not finished resumes from it; kept after the manifest, it would be the biggest file left.
    checkpoints.remove()
    ctx.progress(1.0)


if __name__ == "__main__":
    run("train", main)
