"""SSIM on the CPU with its analytic gradient: the same value as metrics.ssim's conv2d form (11×11 Gaussian window,
σ 1.5, zero padding), as separable numba filters. torch's grouped 11×11 conv2d and its backward were a fifth of a CPU
training step; this is a few milliseconds."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

C1, C2 = 0.01**2, 0.03**2


def window_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


@njit(cache=True)
def _axpy(out, w, src):
    """out += w · src, rows of the same length. A function of its own so that LLVM vectorizes it: written inline in
    the blur's loops it compiled to scalar code, ten times slower."""
    for i in range(out.shape[0]):
        out[i] += w * src[i]


@njit(parallel=True, cache=True)
def _blur(src, win, tmp, out):
    """src [M,H,W] → out: zero-padded separable filtering with the symmetric 1D window (rows, then columns).
    Zero padding makes the filter its own adjoint, so the backward reuses it."""
    M, H, W = src.shape
    r = len(win) // 2
    for row in prange(M * H):
        m, y = row // H, row % H
        t = tmp[m, y]
        t[:] = 0.0
        for k in range(len(win)):
            off = k - r
            lo, hi = max(0, -off), min(W, W - off)
            _axpy(t[lo:hi], win[k], src[m, y, lo + off : hi + off])
    for row in prange(M * H):
        m, y = row // H, row % H
        o = out[m, y]
        o[:] = 0.0
        for k in range(max(0, r - y), min(len(win), H + r - y)):
            _axpy(o, win[k], tmp[m, y + k - r])


@njit(parallel=True, cache=True)
def _moments(a, b, maps):
    """a, b [C,H,W] → maps [3C,H,W]: a, a², ab per channel (blurred next, they are the render's local moments)."""
    C, H, W = a.shape
    for row in prange(C * H):
        c, y = row // H, row % H
        for x in range(W):
            u = a[c, y, x]
            maps[c, y, x], maps[C + c, y, x], maps[2 * C + c, y, x] = u, u * u, u * b[c, y, x]


@njit(parallel=True, cache=True)
def _squares(b, maps):
    """b [C,H,W] → maps [2C,H,W]: b, b² per channel (the target's moments, blurred once per view)."""
    C, H, W = b.shape
    for row in prange(C * H):
        c, y = row // H, row % H
        for x in range(W):
            v = b[c, y, x]
            maps[c, y, x], maps[C + c, y, x] = v, v * v


@njit(parallel=True, cache=True)
def _ssim_map(mu, nu, scale, s_map, d_maps):
    """SSIM per pixel from the blurred moments of the render (mu: a, a², ab) and of the target (nu: b, b²), and
    (× scale) its derivatives with respect to the blurred a, a², ab."""
    C, H, W = s_map.shape
    for row in prange(C * H):
        c, y = row // H, row % H
        for x in range(W):
            mx, my = mu[c, y, x], nu[c, y, x]
            sxx = mu[C + c, y, x] - mx * mx
            syy = nu[C + c, y, x] - my * my
            sxy = mu[2 * C + c, y, x] - mx * my
            a1, a2 = 2.0 * mx * my + C1, 2.0 * sxy + C2
            b1, b2 = mx * mx + my * my + C1, sxx + syy + C2
            s = (a1 * a2) / (b1 * b2)
            s_map[c, y, x] = s
            d_sxx = -s / b2
            d_sxy = 2.0 * a1 / (b1 * b2)
            d_mx = 2.0 * my * a2 / (b1 * b2) - s * 2.0 * mx / b1
            # σ_xx = E[a²] − μ_a², σ_xy = E[ab] − μ_a μ_b
            d_maps[c, y, x] = scale * (d_mx - 2.0 * mx * d_sxx - my * d_sxy)
            d_maps[C + c, y, x] = scale * d_sxx
            d_maps[2 * C + c, y, x] = scale * d_sxy


@njit(parallel=True, cache=True)
def _combine(a, b, blurred, grad):
    C, H, W = a.shape
    for row in prange(C * H):
        c, y = row // H, row % H
        for x in range(W):
            grad[c, y, x] = (
                blurred[c, y, x] + 2.0 * a[c, y, x] * blurred[C + c, y, x] + b[c, y, x] * blurred[2 * C + c, y, x]
            )


def _chw(t: torch.Tensor, dtype=None) -> np.ndarray:
    x = t.detach().numpy().transpose(2, 0, 1)
    return np.ascontiguousarray(x if dtype is None else x.astype(dtype))


def target_moments(b: torch.Tensor) -> torch.Tensor:
    """b [H,W,C] → [2C,H,W]: its blurred b and b², what SSIM needs of a target image. They depend on the target
    alone, so a training view's are computed once (View.ssim_moments), not every step."""
    y = _chw(b)
    maps = np.empty((2 * y.shape[0],) + y.shape[1:], y.dtype)
    _squares(y, maps)
    nu = np.empty_like(maps)
    _blur(maps, window_1d().astype(y.dtype), np.empty_like(maps), nu)
    return torch.from_numpy(nu)


class SsimCpu(torch.autograd.Function):
    """(a [H,W,C], b [H,W,C], b's target_moments) → mean SSIM; the gradient goes to a only (b is the target)."""

    @staticmethod
    def forward(ctx, a, b, b_moments):
        x = _chw(a)
        y = _chw(b, x.dtype)
        nu = b_moments.numpy().astype(x.dtype, copy=False)
        C, H, W = x.shape
        win = window_1d().astype(x.dtype)
        maps = np.empty((3 * C, H, W), x.dtype)
        _moments(x, y, maps)
        mu = np.empty_like(maps)
        _blur(maps, win, np.empty_like(maps), mu)
        s_map, d_maps = np.empty((C, H, W), x.dtype), np.empty((3 * C, H, W), x.dtype)
        _ssim_map(mu, nu, 1.0 / (C * H * W), s_map, d_maps)
        ctx.arrays = (x, y, win, d_maps)
        return torch.tensor(float(s_map.mean(dtype=np.float64)), dtype=a.dtype)

    @staticmethod
    def backward(ctx, v):
        x, y, win, d_maps = ctx.arrays
        blurred = np.empty_like(d_maps)
        _blur(d_maps, win, np.empty_like(d_maps), blurred)
        grad = np.empty_like(x)
        _combine(x, y, blurred, grad)
        return torch.from_numpy(grad.transpose(1, 2, 0)) * v, None, None
