"""The GPU check of the train stage: `python3 jobs/train/gpu_check.py --sfm DIR [--steps 300] [--preset standard]
[--gsplat-src DIR]` (jobs/train/gpu-check runs it with the depth check). DIR is an sfm stage output
(`sparse/` + `images/`, as `colmap image_undistorter` writes it), e.g. of the watch photos.

Trains a few hundred steps at a preset's settings with its schedule compressed to those steps (so MCMC grows to its
cap and refines, as the full run does), and prints one JSON line: the backend gsplat really rendered with, steps/s
overall and over the last fifth (at the cap), peak GPU memory, Gaussians, held-out PSNR/SSIM and what that speed
means for the preset's full run. Downloads nothing: gsplat is imported, or built from a source tree carried in
(`--gsplat-src`, pip without network or build isolation: needs nvcc, takes minutes). Refuses without CUDA (exit 2)
unless `--cpu-dry-run`, which runs the same path with the `preview` preset on the CPU rasterizer, for tests."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "jobs.train"

import torch

from .backend import select_backend
from .colmap import read_model
from .presets import PRESETS, Settings
from .trainer import NoCheckpoints, evaluate, load_views, render, train


def compressed(settings: Settings, steps: int) -> Settings:
    """The preset's schedule scaled to `steps` (as gsplat's --steps_scaler): refinement, SH and decay keep their
    place in the run, the caps and learning rates stay."""
    f = steps / settings.iterations
    s = lambda n: max(1, round(n * f))  # noqa: E731
    return replace(
        settings, iterations=steps, densify_from=s(settings.densify_from), densify_until=s(settings.densify_until),
        densify_every=s(settings.densify_every), sh_every=s(settings.sh_every),
        opacity_reset_every=s(settings.opacity_reset_every), checkpoint_every=10**9,
    )  # fmt: skip


def ensure_gsplat(source: Path | None) -> str | None:
    """gsplat's version, building it from `source` first if it is not importable (no download: --no-index)."""
    try:
        import gsplat
    except ImportError:
        if source is None:
            return None
        print(f"gpu-check: building gsplat from {source} (nvcc, several minutes)", file=sys.stderr, flush=True)
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(source)]
        subprocess.run(pip, check=True)
        import gsplat
    return gsplat.__version__


def fuse(backend, params: dict, sh_degree: int, views: list, resolution: int) -> dict:
    """The mesh stage's TSDF fusion of the trained Gaussians, over the region its renders show, at `resolution` voxels
    along the region's longest side, on the training device: its time and peak memory (the float64 CPU version
    needed ~15 GB at 512)."""
    from ..mesh.main import DEFAULTS
    from ..mesh.region import fusion_region
    from ..mesh.tsdf import Volume

    gpu = backend.device.type == "cuda"
    if gpu:
        torch.cuda.reset_peak_memory_stats(backend.device)
    started = time.time()
    rendered = []
    with torch.no_grad():
        for v in views:
            img, alpha, _ = render(backend, params, v, sh_degree, "RGB+ED")
            depth = torch.where(alpha[0, ..., 0] > 0.5, img[0, ..., 3], torch.zeros_like(alpha[0, ..., 0]))
            rendered.append((depth, img[0, ..., :3].clamp(0, 1), v.K, v.viewmat))
        region = fusion_region([(d.cpu().numpy(), K.cpu().numpy(), vm.cpu().numpy()) for d, _, K, vm in rendered])
        volume = Volume.covering(
            region.lo, region.hi, float((region.hi - region.lo).max()) / resolution, backend.device
        )
        for depth, rgb, K, vm in rendered:
            volume.integrate(depth, rgb, K, vm, DEFAULTS["trunc_voxels"] * volume.voxel, DEFAULTS["trunc_depth"])
    if gpu:
        torch.cuda.synchronize(backend.device)
    fused = time.time()
    _, faces, _ = volume.extract()
    return {
        "resolution": resolution, "grid": list(volume.tsdf.shape), "views": len(views),
        "fuse_seconds": round(fused - started, 2), "extract_seconds": round(time.time() - fused, 2),
        "faces": len(faces),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(backend.device) / 2**30, 3) if gpu else None,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sfm", type=Path, required=True, help="an sfm stage output: sparse/ and images/")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="standard")
    ap.add_argument("--max-side", type=int, help="override the preset's image long side")
    ap.add_argument("--mesh-resolution", type=int, default=512, help="TSDF voxels a side (the GPU default); 0: skip")
    ap.add_argument("--gsplat-src", type=Path, help="a gsplat source tree to build if gsplat is not installed")
    ap.add_argument("--cpu-dry-run", action="store_true", help="no GPU: the preview preset on the CPU rasterizer")
    args = ap.parse_args(argv)
    if not args.cpu_dry_run and not torch.cuda.is_available():
        print("gpu-check: no CUDA device (torch.cuda.is_available() is False): this check needs an NVIDIA GPU and "
              f"a CUDA build of torch (this one: {torch.__version__})", file=sys.stderr)  # fmt: skip
        return 2
    version = None if args.cpu_dry_run else ensure_gsplat(args.gsplat_src)
    backend = select_backend(prefer_cpu=args.cpu_dry_run)
    if not args.cpu_dry_run and backend.name != "gsplat-cuda":
        print(f"gpu-check: gsplat does not render on this GPU: {backend.fallback_reason}", file=sys.stderr)
        return 1
    # The CPU has neither gsplat's MCMC nor the speed for a GPU preset: the dry run trains preview's settings.
    settings = PRESETS["preview" if args.cpu_dry_run else args.preset]
    if args.max_side is not None:
        settings = replace(settings, max_side=args.max_side)
    settings = compressed(settings, args.steps)
    model = read_model(args.sfm / "sparse")
    started = time.time()
    views = load_views(model, args.sfm / "images", settings.max_side, settings.test_every, device=backend.device)
    load_s = time.time() - started
    if backend.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(backend.device)
    tail_from, marks = args.steps - max(1, args.steps // 5), {}

    def on_progress(step: int, stats: dict) -> None:
        if step in (tail_from, args.steps):
            if backend.device.type == "cuda":
                torch.cuda.synchronize(backend.device)
            marks[step] = time.time()

    result = train(settings, backend, views, model.xyz, model.rgb, NoCheckpoints(), on_progress)
    tail = (args.steps - tail_from) / (marks[args.steps] - marks[tail_from])
    test = evaluate(backend, result.params, [v for v in views if v.test], result.sh_degree)
    peak = torch.cuda.max_memory_allocated(backend.device) / 2**30 if backend.device.type == "cuda" else None
    full = PRESETS["preview" if args.cpu_dry_run else args.preset].iterations
    mesh = fuse(backend, result.params, result.sh_degree, views, args.mesh_resolution) if args.mesh_resolution else None
    print(json.dumps({
        "backend": backend.name, "device": torch.cuda.get_device_name(backend.device) if peak is not None else "cpu",
        "torch": torch.__version__, "gsplat": version, "preset": args.preset, "settings": asdict(settings),
        "views": {"train": sum(not v.test for v in views), "test": sum(v.test for v in views)},
        "resolution": [views[0].width, views[0].height], "input_points": len(model.xyz),
        "load_seconds": round(load_s, 2),
        "steps": args.steps, "steps_per_second": result.steps_per_second, "steps_per_second_last_fifth": round(tail, 3),
        "gaussians": len(result.params["means"]), "peak_gpu_memory_gib": None if peak is None else round(peak, 3),
        "test": test,
        # The preset's whole run at the speed reached at the end (the cap): an upper bound on this device.
        "full_run_minutes_at_last_speed": round(full / tail / 60, 1), "mesh": mesh,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
