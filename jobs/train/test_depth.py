"""Depth from the depth stage: the robust scale/shift fit, the gate against useless predictions, and training that
reads the depth stage's real output layout (16-bit PNGs + manifest)."""

import json
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from .colmap import read_model
from .depth import aligned_inverse_depth, fit_scale_shift
from .raster_cpu import rasterization
from .synthetic import blob_scene, write_sfm_output
from .test_train import run_stage


class DepthAlignmentTest(unittest.TestCase):
    def test_fit_recovers_scale_and_shift_despite_outliers(self):
        rng = np.random.default_rng(0)
        pred = rng.uniform(0, 1, 300)
        target = 2.5 * pred - 0.3 + rng.normal(0, 0.005, 300)
        target[:90] = rng.uniform(0, 3, 90)  # 30% occluded or wrong points
        s, t, keep = fit_scale_shift(pred, target)
        self.assertAlmostEqual(s, 2.5, delta=0.02)
        self.assertAlmostEqual(t, -0.3, delta=0.02)
        self.assertLess(int(keep[:90].sum()), 30)

    def test_a_prediction_unrelated_to_the_points_is_not_used(self):
        rng = np.random.default_rng(1)
        xyz = rng.uniform(-1, 1, (200, 3)) + np.array([0, 0, 4.0])
        K = np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])
        self.assertIsNone(aligned_inverse_depth(rng.uniform(0, 1, (48, 64)), xyz, K, np.eye(4)))
        self.assertIsNone(aligned_inverse_depth(np.full((48, 64), 0.5), xyz, K, np.eye(4)))


class TrainWithDepthTest(unittest.TestCase):
    def test_training_aligns_every_view_of_the_depth_stage_output(self):
        tmp = Path(tempfile.mkdtemp(prefix="depth-test-"))
        self.addCleanup(shutil.rmtree, tmp)
        # Small opaque blobs: the sparse points sit on visible surfaces, as structure from motion's do.
        scene = blob_scene(80)
        scene["scales"] = scene["scales"] * 0.5
        scene["opacities"] = torch.full((80,), 0.97)
        write_sfm_output(tmp, scene, n_views=16, width=64, height=48, points=80)
        model = read_model(tmp / "sfm" / "undistorted" / "sparse")
        K = torch.tensor(model.cameras[1].K(), dtype=torch.float32)
        (tmp / "depth").mkdir()
        frames, errors = [], []
        for im in model.images:
            with torch.no_grad():
                ed, alpha, _ = rasterization(
                    scene["means"], scene["quats"], scene["scales"], scene["opacities"], scene["rgb"],
                    torch.tensor(im.viewmat(), dtype=torch.float32)[None], K[None], 64, 48, render_mode="ED",
                )  # fmt: skip
            # As a monocular model would give it: inverse depth with its own scale and shift.
            rel = torch.where(
                alpha[0, ..., 0] > 0.5, 7.0 / ed[0, ..., 0].clamp_min(1e-3) + 2.0, torch.tensor(2.0)
            ).numpy()
            aligned = aligned_inverse_depth(rel, model.xyz, model.cameras[1].K(), im.viewmat())
            covered = (alpha[0, ..., 0] > 0.5).numpy()
            truth = 1.0 / ed[0, ..., 0].numpy()[covered]
            errors.append(float(np.median(np.abs(aligned[covered] - truth) / truth)))
            lo, hi = float(rel.min()), float(rel.max())
            stem = Path(im.name).stem
            q = np.rint((rel - lo) / (hi - lo) * 65535).astype(np.uint16)
            PILImage.fromarray(q).save(tmp / "depth" / f"{stem}.png")
            frames.append({"file": f"{stem}.jpg", "depth": f"{stem}.png", "preview": f"preview/{stem}.jpg",
                           "width": 64, "height": 48, "model_width": 518, "model_height": 392,
                           "min": lo, "max": hi})  # fmt: skip
        self.assertLess(max(errors), 0.05, f"median relative error of the aligned inverse depth per view: {errors}")
        (tmp / "depth" / "manifest.json").write_text(json.dumps({"metrics": {"frames": frames}}))
        run = run_stage(tmp, {"iterations": 30})
        self.assertEqual(run.returncode, 0, run.stderr)
        manifest = json.loads((tmp / "train" / "manifest.json").read_text())["metrics"]
        self.assertEqual(manifest["depth"], {"frames": 16, "views_aligned": 16, "weight": 0.1})
        run = run_stage(tmp, {"iterations": 30, "depth_weight": 0})
        self.assertEqual(run.returncode, 0, run.stderr)
        # The manifest exists, so a re-run is the workflow's business; this one just must not read depth.
        manifest = json.loads((tmp / "train" / "manifest.json").read_text())["metrics"]
        self.assertEqual(manifest["depth"]["weight"], 0.0)


if __name__ == "__main__":
    unittest.main()
