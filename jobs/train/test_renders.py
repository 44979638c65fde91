"""The thumbnail and held-out comparisons come from the trainer's renderer: drawn from the scene's own Gaussians they
match the ground truth, and the scores they carry are those of the render beside the truth."""

import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from .backend import select_backend
from .colmap import read_model
from .metrics import psnr
from .renders import LABEL_HEIGHT, THUMBNAIL_SIDE, thumbnail_view, write_comparisons, write_thumbnail
from .sh import rgb_to_sh
from .synthetic import blob_scene, write_sfm_output
from .trainer import load_views


def scene_params(scene: dict) -> dict:
    """The synthetic scene as trained parameters (log scales, logit opacities, degree-0 SH colours)."""
    o = scene["opacities"].clamp(1e-4, 1 - 1e-4)
    return {
        "means": scene["means"], "quats": scene["quats"], "scales": torch.log(scene["scales"]),
        "opacities": torch.log(o / (1 - o)), "sh0": rgb_to_sh(scene["rgb"])[:, None], "shN": torch.zeros(len(o), 0, 3),
    }  # fmt: skip


def pixels(path: Path) -> torch.Tensor:
    with PILImage.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 255.0)


class RendersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="renders-test-"))
        cls.scene = blob_scene(300)
        write_sfm_output(cls.tmp, cls.scene, n_views=16, width=64, height=48, points=50)
        root = cls.tmp / "sfm" / "undistorted"
        cls.views = load_views(read_model(root / "sparse"), root / "images", 0, 8, device=torch.device("cpu"))
        cls.backend = select_backend(prefer_cpu=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_the_thumbnail_is_the_middle_training_camera_rendered_at_thumbnail_size(self):
        entry = write_thumbnail(self.tmp / "thumbnail.png", self.backend, scene_params(self.scene), self.views, 0)
        view = thumbnail_view(self.views)
        self.assertFalse(view.test)
        self.assertEqual(entry, {"file": "thumbnail.png", "camera": view.name, "width": 512, "height": 384})
        with PILImage.open(self.tmp / "thumbnail.png") as image:
            self.assertEqual(image.size, (THUMBNAIL_SIDE, 384))
        # The 64 × 48 ground truth enlarged: the render at 8× the resolution shows the same picture.
        truth = PILImage.fromarray((view.image.numpy() * 255).astype(np.uint8)).resize((512, 384), PILImage.BICUBIC)
        as_tensor = torch.from_numpy(np.asarray(truth, np.float32) / 255.0)
        self.assertGreater(psnr(pixels(self.tmp / "thumbnail.png"), as_tensor), 20)

    def test_each_held_out_view_gets_truth_beside_render_with_its_scores(self):
        folder = self.tmp / "heldout"
        good = write_comparisons(folder, self.backend, scene_params(self.scene), self.views, 0)
        held_out = sorted(v.name for v in self.views if v.test)
        self.assertEqual([e["camera"] for e in good], held_out)
        self.assertEqual(sorted(p.name for p in folder.iterdir()), [f"{Path(n).stem}.png" for n in held_out])
        for entry, view in zip(good, sorted((v for v in self.views if v.test), key=lambda v: v.name)):
            self.assertEqual(entry["file"], f"heldout/{Path(view.name).stem}.png")
            image = pixels(self.tmp / entry["file"])
            self.assertEqual(tuple(image.shape), (48 + LABEL_HEIGHT, 128, 3))
            # Left: the ground truth as it is (8-bit); right: the render of the scene's own Gaussians, near-identical
            # (below the two labels across the top rows).
            self.assertLess(float((image[17:48, :64] - view.image[17:]).abs().max()), 1 / 255 + 1e-6)
            self.assertGreater(psnr(image[17:48, 64:], view.image[17:]), 40)
            self.assertGreater(entry["psnr"], 40)
            self.assertGreater(entry["ssim"], 0.95)

        # Darker Gaussians: the same views score lower, as the picture beside the truth shows.
        dim = {**scene_params(self.scene), "sh0": rgb_to_sh(self.scene["rgb"] * 0.5)[:, None]}
        worse = write_comparisons(self.tmp / "dim", self.backend, dim, self.views, 0)
        for a, b in zip(good, worse):
            self.assertLess(b["psnr"], a["psnr"] - 10)
            rendered = pixels(self.tmp / "dim" / Path(b["file"]).name)[17:48, 64:]
            truth = self.views[[v.name for v in self.views].index(b["camera"])].image[17:]
            # The picture's rows under the labels are a third of the view: their PSNR is near, not at, the view's.
            self.assertAlmostEqual(psnr(rendered, truth), b["psnr"], delta=1.0)


if __name__ == "__main__":
    unittest.main()
