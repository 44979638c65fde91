"""Training speed at the preview preset on a synthetic scene: `python3 jobs/train/bench.py [--gaussians N]
[--steps S] [--side PX]`. Prints one JSON line with steps/s and CPU seconds per step (the figures the README quotes)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "jobs.train"

from .backend import select_backend
from .colmap import read_model
from .presets import PRESETS
from .synthetic import blob_scene, write_sfm_output
from .trainer import NoCheckpoints, load_views, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gaussians", type=int, default=PRESETS["preview"].max_gaussians)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--side", type=int, default=PRESETS["preview"].max_side)
    ap.add_argument("--cpu", action="store_true", help="our CPU rasterizer even where CUDA is available")
    args = ap.parse_args()
    backend = select_backend(prefer_cpu=args.cpu)
    tmp = Path(tempfile.mkdtemp(prefix="splatflow-bench-"))
    width, height = args.side, args.side * 3 // 4
    scene = blob_scene(args.gaussians)
    scene["scales"] = scene["scales"] * 0.5  # denser, smaller Gaussians: closer to a trained scene
    write_sfm_output(tmp, scene, n_views=8, width=width, height=height, points=args.gaussians)
    root = tmp / "sfm" / "undistorted"
    model = read_model(root / "sparse")
    views = load_views(model, root / "images", args.side, test_every=0, device=backend.device)
    # Densification off: the Gaussian count stays what was asked for.
    settings = replace(PRESETS["preview"], iterations=3, densify_until=0, checkpoint_every=10**9)
    train(settings, backend, views, model.xyz, model.rgb, NoCheckpoints(), lambda step, stats: None)  # warm-up + JIT
    settings = replace(settings, iterations=args.steps)
    started, cpu_started = time.time(), time.process_time()
    result = train(settings, backend, views, model.xyz, model.rgb, NoCheckpoints(), lambda step, stats: None)
    elapsed, cpu = time.time() - started, time.process_time() - cpu_started
    print(json.dumps({
        "backend": backend.name, "gaussians": len(result.params["means"]), "resolution": [width, height],
        "steps": args.steps, "steps_per_second": round(args.steps / elapsed, 3), "seconds_per_step": round(elapsed / args.steps, 3),
        # CPU seconds (all threads) per step: the figure that does not depend on what else the machine is doing.
        "cpu_seconds_per_step": round(cpu / args.steps, 3),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
