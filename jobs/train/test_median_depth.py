"""The first-crossing depth sits on the opaque surface where the alpha-blended expected depth is pulled in front of it
by a semi-transparent Gaussian, and is 0 where the ray never gets half opaque."""

import unittest

import torch

from .median_depth import median_depth
from .raster_cpu import rasterization


class MedianDepthTest(unittest.TestCase):
    def test_a_floater_pulls_the_expected_depth_but_not_the_median(self):
        # A wide opaque wall at z = 5 and, in front of it, a wide faint floater at z = 2 covering the left half.
        means = torch.tensor([[0.0, 0.0, 5.0], [-1.0, 0.0, 2.0]])
        quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 2)
        scales = torch.tensor([[20.0, 20.0, 0.01], [1.0, 4.0, 0.01]])
        opacities = torch.tensor([0.99, 0.3])
        K = torch.tensor([[32.0, 0, 32], [0, 32.0, 32], [0, 0, 1]])
        viewmat = torch.eye(4)
        depth = median_depth(means, quats, scales, opacities, viewmat, K, 64, 64)
        expected, alpha, _ = rasterization(
            means, quats, scales, opacities, torch.ones(2, 3), viewmat[None], K[None], 64, 64, render_mode="RGB+ED"
        )
        expected = expected[0, ..., 3]
        floater = (slice(28, 36), slice(10, 18))  # pixels behind the floater's centre
        self.assertLess(float(expected[floater].max()), 4.5)
        torch.testing.assert_close(depth[floater], torch.full((8, 8), 5.0), atol=1e-4, rtol=0)
        torch.testing.assert_close(depth[28:36, 46:54], torch.full((8, 8), 5.0), atol=1e-4, rtol=0)

    def test_a_ray_that_never_gets_half_opaque_has_no_depth(self):
        means, quats = torch.tensor([[0.0, 0.0, 5.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]])
        K = torch.tensor([[32.0, 0, 32], [0, 32.0, 32], [0, 0, 1]])
        depth = median_depth(
            means, quats, torch.tensor([[20.0, 20.0, 0.01]]), torch.tensor([0.4]), torch.eye(4), K, 64, 64
        )
        self.assertEqual(float(depth.abs().max()), 0.0)


if __name__ == "__main__":
    unittest.main()
