"""The GPU check where there is no GPU: it refuses clearly, and its CPU dry run takes the same path end to end (the
schedule compressed as the check compresses it, one JSON line with the figures it promises)."""

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch

from .gpu_check import compressed
from .presets import PRESETS
from .synthetic import blob_scene, write_sfm_output

SCRIPT = Path(__file__).resolve().parent / "gpu_check.py"


class GpuCheckTest(unittest.TestCase):
    def test_the_schedule_keeps_its_shape_in_fewer_steps(self):
        s = compressed(PRESETS["standard"], 700)  # a tenth of standard's 7 000 steps
        self.assertEqual((s.iterations, s.densify_from, s.densify_until, s.densify_every, s.sh_every),
                         (700, 50, 550, 5, 100))  # fmt: skip
        self.assertEqual((s.max_gaussians, s.strategy, s.max_side), (1_000_000, "mcmc", 1600))

    @unittest.skipIf(torch.cuda.is_available(), "this machine has CUDA")
    def test_without_cuda_it_refuses_in_one_line(self):
        run = subprocess.run([sys.executable, str(SCRIPT), "--sfm", "/nonexistent"], capture_output=True, text=True)
        self.assertEqual(run.returncode, 2)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertIn("no CUDA device", run.stderr)

    def test_a_cpu_dry_run_prints_the_figures(self):
        with tempfile.TemporaryDirectory() as tmp:
            write_sfm_output(Path(tmp), blob_scene(200), n_views=9, width=48, height=36, points=120)
            args = ["--sfm", f"{tmp}/sfm/undistorted", "--steps", "60", "--max-side", "48", "--mesh-resolution", "32",
                    "--cpu-dry-run"]  # fmt: skip
            run = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr)
        out = json.loads(run.stdout.strip().splitlines()[-1])
        self.assertEqual((out["backend"], out["steps"], out["resolution"]), ("cpu", 60, [48, 36]))
        self.assertEqual(out["views"], {"train": 8, "test": 1})  # frame 4 of 9 held out
        self.assertGreater(out["steps_per_second_last_fifth"], 0)
        self.assertGreater(out["gaussians"], 120, "the compressed schedule densified")
        self.assertGreater(out["test"]["psnr"], 12.0)
        self.assertIsNone(out["peak_gpu_memory_gib"])
        self.assertEqual((out["mesh"]["resolution"], out["mesh"]["views"]), (32, 9))
        self.assertGreater(out["mesh"]["faces"], 0, "the trained blobs have a surface")


if __name__ == "__main__":
    unittest.main()
