"""The CPU rasterizer's kernels against float64 references written plainly in torch (autograd gives their
gradients): compositing against a dense every-Gaussian × every-pixel renderer, projection against the matrix form of
EWA splatting, SH colours against sh.eval_sh, SSIM against metrics' conv2d form."""

import dataclasses
import unittest

import numpy as np
import torch

from .metrics import ssim, target_moments

from .raster_cpu import (
    ALPHA_MAX, ALPHA_MIN, T_MIN, RasterizeTiles, ShColors, _schedule, project, quat_to_rotmat, rasterization,
    tile_rects,
)  # fmt: skip
from .sh import eval_sh
from .trainer import View

META = torch.device("meta")


def dense_reference(means2d, conics, colors, opacities, bg, depths, radii, width, height, tile_size, early_stop=True):
    """Every Gaussian × every pixel, in torch (autograd gives its gradients), with the tiled renderer's rules:
    a Gaussian reaches only the tiles its 3-sigma box covers, alpha clamped and thresholded, front to back."""
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    order = torch.argsort(depths)
    order = order[radii[order] > 0]
    m, q, c, o = means2d[order], conics[order], colors[order], opacities[order]
    rects = torch.from_numpy(tile_rects(m.detach().numpy(), radii[order].numpy(), tile_size, tiles_x, tiles_y))
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    px, py = xs.reshape(-1, 1) + 0.5, ys.reshape(-1, 1) + 0.5
    tx, ty = xs.reshape(-1, 1) // tile_size, ys.reshape(-1, 1) // tile_size
    inside = (tx >= rects[:, 0]) & (tx < rects[:, 1]) & (ty >= rects[:, 2]) & (ty < rects[:, 3])
    dx, dy = m[:, 0] - px, m[:, 1] - py
    sigma = 0.5 * (q[:, 0] * dx * dx + q[:, 2] * dy * dy) + q[:, 1] * dx * dy
    alpha = torch.clamp(o * torch.exp(-sigma), max=ALPHA_MAX)
    alpha = torch.where(inside & (sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
    # Early stop: from the first Gaussian that would take a pixel's transmittance to T_MIN on, it takes no more.
    reach = (torch.cumprod(1 - alpha.detach(), 1) <= T_MIN) & early_stop
    alpha = torch.where(torch.cummax(reach.int(), 1).values.bool(), torch.zeros_like(alpha), alpha)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha], 1), 1)
    weights = alpha * trans[:, :-1]
    img = weights @ c + trans[:, -1:] * bg
    return img.reshape(height, width, -1), (1 - trans[:, -1]).reshape(height, width, 1)


def scene(n=40, dtype=torch.float64, seed=0, opacity=(0.2, 0.7)):
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g, dtype=dtype) * torch.tensor([2.0, 1.6, 1.0], dtype=dtype) - torch.tensor(
        [1.0, 0.8, -2.5], dtype=dtype
    )
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.15 + 0.03
    opacities = torch.rand(n, generator=g, dtype=dtype) * (opacity[1] - opacity[0]) + opacity[0]
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    viewmat = torch.eye(4, dtype=dtype)
    K = torch.tensor([[40.0, 0, 24.0], [0, 40.0, 20.0], [0, 0, 1]], dtype=dtype)
    return means, quats, scales, opacities, colors, viewmat, K


def ewa_reference(means, quats, scales, viewmat, K, eps2d=0.3):
    """means2d, conics, depths by the matrix form Σ2d = J W R S Sᵀ Rᵀ Wᵀ Jᵀ + eps2d·I (no clamping)."""
    p = means @ viewmat[:3, :3].T + viewmat[:3, 3]
    x, y, z = p.unbind(-1)
    zero = torch.zeros_like(z)
    fx, fy = K[0, 0], K[1, 1]
    J = torch.stack([fx / z, zero, -fx * x / z**2, zero, fy / z, -fy * y / z**2], -1).reshape(-1, 2, 3)
    M = quat_to_rotmat(quats) * scales[:, None, :]
    cov = J @ viewmat[:3, :3] @ M @ M.transpose(1, 2) @ viewmat[:3, :3].T @ J.transpose(1, 2)
    inv = torch.linalg.inv(cov + eps2d * torch.eye(2, dtype=means.dtype))
    means2d = torch.stack([fx * x / z + K[0, 2], fy * y / z + K[1, 2]], -1)
    return means2d, torch.stack([inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 1]], -1), z


class RasterizerTest(unittest.TestCase):
    W, H, TS = 48, 40, 16

    def inputs(self, **kw):
        means, quats, scales, opacities, colors, viewmat, K = scene(**kw)
        means2d, conics, depths, radii = project(means, quats, scales, viewmat, K, self.W, self.H)
        leaf = [t.detach().clone().requires_grad_(True) for t in (means2d, conics, colors, opacities)]
        bg = torch.tensor([0.2, 0.1, 0.3], dtype=torch.float64)
        return leaf, bg, depths.detach(), radii

    def test_forward_matches_dense_reference(self):
        (m, q, c, o), bg, d, r = self.inputs()
        self.assertGreater(int((r > 0).sum()), 30, "most test Gaussians must be on screen")
        img, alpha = RasterizeTiles.apply(m, q, c, o, bg, d, r, self.W, self.H, self.TS)
        ref_img, ref_alpha = dense_reference(m, q, c, o, bg, d, r, self.W, self.H, self.TS)
        self.assertGreater(float(alpha.max()), 0.8, "the scene must have nearly opaque pixels")
        torch.testing.assert_close(img, ref_img, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(alpha, ref_alpha, rtol=1e-9, atol=1e-12)

    def test_gradients_match_dense_reference(self):
        (m, q, c, o), bg, d, r = self.inputs()
        g = torch.Generator().manual_seed(1)
        w_img = torch.randn(self.H, self.W, 3, generator=g, dtype=torch.float64)
        w_alpha = torch.randn(self.H, self.W, 1, generator=g, dtype=torch.float64)

        def grads(fn):
            img, alpha = fn(m, q, c, o, bg, d, r, self.W, self.H, self.TS)
            return torch.autograd.grad((img * w_img).sum() + (alpha * w_alpha).sum(), (m, q, c, o))

        ours = grads(RasterizeTiles.apply)
        ref = grads(dense_reference)
        for name, a, b in zip(("means2d", "conics", "colors", "opacities"), ours, ref):
            self.assertGreater(float(b.abs().max()), 0.0, name)
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10, msg=f"gradient of {name}")

    def test_opaque_pixels_stop_early_as_the_reference(self):
        # 120 nearly opaque Gaussians in 45×37 px (partial tiles at both edges): most pixels stop at T_MIN.
        self.W, self.H = 45, 37
        (m, q, c, o), bg, d, r = self.inputs(n=120, opacity=(0.9, 1.0))
        img, alpha = RasterizeTiles.apply(m, q, c, o, bg, d, r, self.W, self.H, self.TS)
        ref_img, ref_alpha = dense_reference(m, q, c, o, bg, d, r, self.W, self.H, self.TS)
        torch.testing.assert_close(img, ref_img, rtol=1e-9, atol=1e-12)
        unstopped = dense_reference(m, q, c, o, bg, d, r, self.W, self.H, self.TS, early_stop=False)[0]
        self.assertGreater(float((img - unstopped).abs().max()), 1e-6, "pixels must reach the early stop")
        w_img = torch.randn(self.H, self.W, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        ours = torch.autograd.grad((img * w_img).sum(), (m, q, c, o))
        ref = torch.autograd.grad((ref_img * w_img).sum(), (m, q, c, o))
        for name, a, b in zip(("means2d", "conics", "colors", "opacities"), ours, ref):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9, msg=f"gradient of {name}")

    def test_tiles_are_shared_out_once_each_and_evenly(self):
        offsets = np.cumsum(np.r_[0, np.random.default_rng(0).integers(0, 500, 192)])
        starts, tiles = _schedule(offsets, 2)
        self.assertEqual(sorted(tiles.tolist()), list(range(192)))
        load = [int(np.diff(offsets)[tiles[starts[w] : starts[w + 1]]].sum()) for w in range(2)]
        self.assertLess(abs(load[0] - load[1]), 500, load)

    def test_projection_gradients_match_the_matrix_form(self):
        means, quats, scales, _, _, viewmat, K = scene()
        viewmat[:3, :3] = quat_to_rotmat(torch.tensor([0.9, 0.1, -0.2, 0.3], dtype=torch.float64))
        viewmat[2, 3] = 0.5
        leaf = [t.clone().requires_grad_(True) for t in (means, quats, scales)]
        means2d, conics, depths, radii = project(*leaf, viewmat, K, self.W, self.H)
        ref = ewa_reference(*leaf, viewmat, K)
        p = means @ viewmat[:3, :3].T + viewmat[:3, 3]
        # Weights only on drawn Gaussians well inside the view (no clamp): the others get no gradient by design.
        keep = ((radii > 0) & (p[:, 0] / p[:, 2]).abs().lt(0.5) & (p[:, 1] / p[:, 2]).abs().lt(0.4)).double()
        self.assertGreater(int(keep.sum()), 10)
        g = torch.Generator().manual_seed(3)
        ws = [torch.randn(o.shape, generator=g, dtype=torch.float64) * keep.reshape(-1, *[1] * (o.dim() - 1))
              for o in ref]  # fmt: skip

        def grads(outs):
            return torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs, ws)), leaf)

        for name, a, b in zip(("means", "quats", "scales"), grads((means2d, conics, depths)), grads(ref)):
            self.assertGreater(float(b.abs().max()), 0.0, name)
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10, msg=f"gradient of {name}")

    def test_sh_colours_and_gradients_match_eval_sh(self):
        g = torch.Generator().manual_seed(4)
        for degree in range(4):
            coeffs = (torch.randn(50, 16, 3, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)
            means = torch.randn(50, 3, generator=g, dtype=torch.float64).requires_grad_(True)
            campos = torch.tensor([0.3, -0.2, -4.0], dtype=torch.float64)
            ours = ShColors.apply(coeffs, means, campos, degree)
            ref = torch.clamp_min(eval_sh(degree, coeffs, means - campos) + 0.5, 0.0)
            self.assertTrue(bool((ref == 0).any()) or degree == 0, "some colours must be clamped at 0")
            torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
            w = torch.randn(50, 3, generator=g, dtype=torch.float64)
            ours_grads = torch.autograd.grad((ours * w).sum(), (coeffs, means))
            ref_grads = torch.autograd.grad((ref * w).sum(), (coeffs, means), allow_unused=True)  # degree 0: no means
            for name, a, b in zip(("coeffs", "means"), ours_grads, ref_grads):
                b = torch.zeros_like(a) if b is None else b
                torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=f"degree {degree}: gradient of {name}")

    def test_ssim_kernel_matches_the_conv2d_form(self):
        g = torch.Generator().manual_seed(5)
        target = torch.rand(30, 41, 3, generator=g, dtype=torch.float64)
        pred = (target + 0.3 * torch.rand(30, 41, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
        ours = ssim(pred, target)  # the numba kernel: a CPU target without a gradient
        ref = ssim(pred, target.clone().requires_grad_(True))  # metrics' conv2d form
        self.assertLess(float(ref), 0.95)
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
        (a,) = torch.autograd.grad(ours, pred)
        (b,) = torch.autograd.grad(ref, pred)
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-14)

    def test_ssim_from_cached_target_moments_equals_the_fresh_one(self):
        g = torch.Generator().manual_seed(6)
        target = torch.rand(30, 41, 3, generator=g, dtype=torch.float64)
        pred = (target + 0.3 * torch.rand(30, 41, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
        for moments in (None, target_moments(target)):
            got = ssim(pred, target, moments)
            ref = ssim(pred, target.clone().requires_grad_(True))  # conv2d form, every moment from the images
            torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(
                torch.autograd.grad(got, pred)[0], torch.autograd.grad(ref, pred)[0], rtol=1e-9, atol=1e-14
            )
        # The conv2d form (the GPU path) takes the same moments.
        conv = ssim(pred.detach().to(META), target.to(META), target_moments(target).to(META))
        self.assertEqual(conv.device, META)

    def test_a_view_keeps_its_target_moments_until_its_image_changes(self):
        g = torch.Generator().manual_seed(7)
        image = torch.rand(24, 32, 3, generator=g)
        view = View("a.png", image, torch.eye(3), torch.eye(4), test=False)
        first = view.ssim_moments()
        torch.testing.assert_close(first, target_moments(image.clone()), rtol=0, atol=0)
        self.assertIs(view.ssim_moments(), first)  # computed once, not every step
        view.image = torch.rand(24, 32, 3, generator=g)
        second = view.ssim_moments()
        torch.testing.assert_close(second, target_moments(view.image.clone()), rtol=0, atol=0)
        self.assertGreater(float((second - first).abs().max()), 0.01)
        other = dataclasses.replace(view, image=torch.rand(24, 32, 3, generator=g))  # as renders.py makes views
        torch.testing.assert_close(other.ssim_moments(), target_moments(other.image.clone()), rtol=0, atol=0)

    def test_projection_matches_the_matrix_form_of_ewa_splatting(self):
        means, quats, scales, _, _, viewmat, K = scene()
        viewmat[:3, :3] = quat_to_rotmat(torch.tensor([0.9, 0.1, -0.2, 0.3], dtype=torch.float64))
        viewmat[2, 3] = 0.5
        means2d, conics, depths, radii = project(means, quats, scales, viewmat, K, self.W, self.H)
        ref_means2d, ref_conics, z = ewa_reference(means, quats, scales, viewmat, K)
        p = means @ viewmat[:3, :3].T + viewmat[:3, 3]
        # Gaussians well inside the view: no clamping.
        inside = (radii > 0) & (p[:, 0] / z).abs().lt(0.5) & (p[:, 1] / z).abs().lt(0.4)
        self.assertGreater(int(inside.sum()), 10)
        torch.testing.assert_close(conics[inside], ref_conics[inside])
        torch.testing.assert_close(means2d[inside], ref_means2d[inside])
        torch.testing.assert_close(depths, z)

    def test_projection_gradients_flow_to_3d_parameters(self):
        means, quats, scales, opacities, colors, viewmat, K = scene(dtype=torch.float32)
        params = [t.requires_grad_(True) for t in (means, quats, scales, opacities, colors)]
        img, alpha, meta = rasterization(*params, viewmat[None], K[None], self.W, self.H)
        self.assertEqual(tuple(img.shape), (1, self.H, self.W, 3))
        self.assertEqual(tuple(meta["means2d"].shape), (1, 40, 2))
        meta["means2d"].retain_grad()
        img.sum().backward()
        for p in params:
            self.assertTrue(torch.isfinite(p.grad).all())
            self.assertGreater(float(p.grad.abs().sum()), 0.0)
        self.assertGreater(float(meta["means2d"].grad.abs().sum()), 0.0)

    def test_expected_depth_is_the_depth_of_an_opaque_plane(self):
        # A wall of overlapping flat Gaussians at z = 3: expected depth is 3 wherever something is drawn.
        xs, ys = torch.meshgrid(torch.linspace(-1, 1, 15), torch.linspace(-1, 1, 15), indexing="ij")
        means = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.full((225,), 3.0)], -1)
        n = len(means)
        img, alpha, _ = rasterization(
            means, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.tensor([[0.15, 0.15, 0.01]]).repeat(n, 1),
            torch.full((n,), 0.9), torch.rand(n, 3), torch.eye(4)[None],
            torch.tensor([[[30.0, 0, 24], [0, 30.0, 20], [0, 0, 1]]]), self.W, self.H, render_mode="RGB+ED",
        )  # fmt: skip
        covered = alpha[0, ..., 0] > 0.5
        self.assertGreater(int(covered.sum()), 500)
        torch.testing.assert_close(img[0, ..., 3][covered], torch.full((int(covered.sum()),), 3.0))


if __name__ == "__main__":
    unittest.main()
