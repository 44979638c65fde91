"""Training speed at the preview preset on a synthetic scene: `python3 jobs/train/bench.py [--gaussians N]
[--steps S] [--side PX] [--against CHECKOUT [--against-python PY]] [--rounds R]`.

Alone, it prints where a step's time goes (ms per step by phase, from a run with densification at the preview
preset's interval and the count held at N by the cap) and one JSON line with steps/s and CPU seconds per step (the
figures docs/training.md quotes). With `--against` another checkout's bench (e.g. a worktree of an older commit) runs
interleaved with this one, R rounds each, and the ratio of the medians is printed: on a shared machine only a ratio
measured in one run means anything. The other checkout runs under --against-python (e.g. /usr/bin/python3 for a
checkout from before requirements.lock), else under this interpreter."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "jobs.train"

from ..runtime_py.interpreter import ensure_torch_interpreter

ensure_torch_interpreter()

from .backend import select_backend
from .colmap import read_model
from .phases import PHASES
from .presets import PRESETS
from .synthetic import blob_scene, write_sfm_output
from .trainer import NoCheckpoints, load_views, train

# Timed inside the training loop's laps: the render lap holds projection, SH colours, binning and compositing; the
# backward lap holds the compositing's backward (its rest: projection, SH, SSIM and L1 backwards, autograd itself).
NESTED = {"render": ("projection", "sh", "binning", "forward"), "backward": ("raster backward",)}


def measure(gaussians: int, steps: int, side: int, cpu: bool, densify: bool) -> dict:
    backend = select_backend(prefer_cpu=cpu)
    width, height = side, side * 3 // 4
    scene = blob_scene(gaussians)
    scene["scales"] = scene["scales"] * 0.5  # denser, smaller Gaussians: closer to a trained scene
    # The scene's files are needed only until the views are loaded (into memory).
    with tempfile.TemporaryDirectory(prefix="splatflow-bench-") as tmp:
        write_sfm_output(Path(tmp), scene, n_views=8, width=width, height=height, points=gaussians)
        root = Path(tmp) / "sfm" / "undistorted"
        model = read_model(root / "sparse")
        views = load_views(model, root / "images", side, test_every=0, device=backend.device)
    preview = PRESETS["preview"]
    # Without densification (as main's bench) the Gaussian count stays what was asked for; with it, at the preset's
    # interval from the first step and capped at that count, so the count stays too.
    settings = replace(preview, iterations=3, densify_until=0, checkpoint_every=10**9, max_gaussians=gaussians)
    train(settings, backend, views, model.xyz, model.rgb, NoCheckpoints(), lambda step, stats: None)  # warm-up + JIT
    if densify:
        settings = replace(settings, densify_from=0, densify_until=steps + 1)
    settings = replace(settings, iterations=steps)
    PHASES.reset(enabled=True)
    started, cpu_started = time.time(), time.process_time()
    result = train(settings, backend, views, model.xyz, model.rgb, NoCheckpoints(), lambda step, stats: None)
    elapsed, cpu = time.time() - started, time.process_time() - cpu_started
    phases = PHASES.split(steps, NESTED)
    PHASES.reset(enabled=False)
    return {
        "backend": backend.name, "gaussians": len(result.params["means"]), "resolution": [width, height],
        "steps": steps, "densify": densify, "steps_per_second": round(steps / elapsed, 3),
        "seconds_per_step": round(elapsed / steps, 3),
        # CPU seconds (all threads) per step: less dependent on what else the machine is doing than wall time.
        "cpu_seconds_per_step": round(cpu / steps, 3), "phases_ms": phases,
    }  # fmt: skip


def run_bench(checkout: Path, args, densify: bool = False, python: str = sys.executable) -> dict:
    """One bench run in a fresh process (its own JIT warm-up), of this checkout or another one."""
    cmd = [python, str(checkout / "jobs" / "train" / "bench.py"), "--gaussians", str(args.gaussians),
           "--steps", str(args.steps), "--side", str(args.side), *(["--cpu"] if args.cpu else []),
           *(["--densify"] if densify else [])]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": ""})
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_split(result: dict) -> None:
    phases = result["phases_ms"]
    total = sum(phases.values())
    print(f"ms per step by phase ({result['gaussians']} Gaussians, {result['resolution'][0]}×{result['resolution'][1]}"
          f" px, densification {'on' if result['densify'] else 'off'}):")  # fmt: skip
    for name, ms in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<16} {ms:8.1f}  {100 * ms / total:5.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gaussians", type=int, default=30_000)  # the count issue 15's speed target is stated at
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--side", type=int, default=PRESETS["preview"].max_side)
    ap.add_argument("--cpu", action="store_true", help="our CPU rasterizer even where CUDA is available")
    ap.add_argument("--densify", action="store_true", help="densify at the preset's interval (count capped at N)")
    ap.add_argument("--against", type=Path, help="another checkout whose bench runs interleaved with this one")
    ap.add_argument("--against-python", default=sys.executable, help="the interpreter of the --against checkout")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.against is None:
        result = measure(args.gaussians, args.steps, args.side, args.cpu, args.densify)
        print_split(result)
        print(json.dumps(result))
        return
    here = Path(__file__).resolve().parents[2]
    print_split(run_bench(here, args, densify=True))
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for i in range(args.rounds):
        for name, checkout, python in (("old", args.against, args.against_python), ("new", here, sys.executable)):
            r = run_bench(checkout, args, python=python)
            runs[name].append(r)
            print(f"round {i + 1} {name}: {r['steps_per_second']} steps/s, {r['cpu_seconds_per_step']} CPU s/step")
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("steps_per_second", "cpu_seconds_per_step")}
           for k, v in runs.items()}  # fmt: skip
    print(json.dumps({
        "against": str(args.against), "against_python": args.against_python, "gaussians": args.gaussians,
        "steps": args.steps, "rounds": args.rounds,
        "old": med["old"], "new": med["new"],
        "speedup_wall": round(med["new"]["steps_per_second"] / med["old"]["steps_per_second"], 2),
        "speedup_cpu": round(med["old"]["cpu_seconds_per_step"] / med["new"]["cpu_seconds_per_step"], 2),
        "load_average": round(os.getloadavg()[0], 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
