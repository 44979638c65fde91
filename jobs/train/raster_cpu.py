"""A CPU Gaussian rasterizer with gsplat's `rasterization` call signature (the subset splatflow uses).

What gsplat does, on the CPU: projection of 3D Gaussians to 2D (EWA splatting, in torch so autograd derives its
backward), tile binning, per-tile depth-sorted front-to-back alpha compositing with early stop, and the analytic
backward of compositing. Binning and compositing are numba kernels (a dense every-Gaussian × every-pixel renderer was
measured at 14.7 s per step for 10k Gaussians at 64×64: unusable). Each tile is one parallel task; the backward writes
one gradient row per (tile, Gaussian) entry, so threads never share a write, and the rows are summed afterwards.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange

from .sh import eval_sh

ALPHA_MAX = 0.99  # as the reference 3DGS code: a single Gaussian never makes a pixel fully opaque
ALPHA_MIN = 1.0 / 255.0  # contributions below one 8-bit step are skipped
T_MIN = 1e-4  # early stop: a pixel this opaque takes no more Gaussians


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))  # fmt: skip


def project(means, quats, scales, viewmat, K, width, height, near=0.01, far=1e10, eps2d=0.3):
    """One camera. Returns means2d [N,2] (pixels), conics [N,3] (inverse 2D covariance a,b,c), depths [N],
    radii [N] (int, 0 = not drawn).

    Written per component on [N] vectors: batched 3×3 matmuls and their backward were the slowest part of a CPU step
    with Debian's generic BLAS (0.47 s for 20k Gaussians, against ~0.03 s this way)."""
    W, t = viewmat[:3, :3], viewmat[:3, 3]
    mx, my, mz = means.unbind(-1)
    x = W[0, 0] * mx + W[0, 1] * my + W[0, 2] * mz + t[0]
    y = W[1, 0] * mx + W[1, 1] * my + W[1, 2] * mz + t[1]
    z = W[2, 0] * mx + W[2, 1] * my + W[2, 2] * mz + t[2]
    valid = (z > near) & (z < far)
    zs = torch.where(valid, z, torch.ones_like(z))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    # Clamp the direction used by the Jacobian (as gsplat): far off-screen Gaussians would otherwise blow up.
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    xz = torch.clamp(x / zs, float(-(cx / fx + 0.3 * tan_x)), float((width - cx) / fx + 0.3 * tan_x))
    yz = torch.clamp(y / zs, float(-(cy / fy + 0.3 * tan_y)), float((height - cy) / fy + 0.3 * tan_y))
    # A = J · W · R(q) · S, so that the 2D covariance is A Aᵀ (J: the projection's Jacobian, rows 0 and 1).
    j00, j02, j11, j12 = fx / zs, -fx * xz / zs, fy / zs, -fy * yz / zs
    T0 = [j00 * W[0, k] + j02 * W[2, k] for k in range(3)]
    T1 = [j11 * W[1, k] + j12 * W[2, k] for k in range(3)]
    R = quat_to_rotmat(quats)
    sx, sy, sz = scales.unbind(-1)
    A0, A1 = [], []
    for j, sj in enumerate((sx, sy, sz)):
        A0.append((T0[0] * R[:, 0, j] + T0[1] * R[:, 1, j] + T0[2] * R[:, 2, j]) * sj)
        A1.append((T1[0] * R[:, 0, j] + T1[1] * R[:, 1, j] + T1[2] * R[:, 2, j]) * sj)
    a = A0[0] * A0[0] + A0[1] * A0[1] + A0[2] * A0[2] + eps2d
    b = A0[0] * A1[0] + A0[1] * A1[1] + A0[2] * A1[2]
    c = A1[0] * A1[0] + A1[1] * A1[1] + A1[2] * A1[2] + eps2d
    det = a * c - b * b
    valid = valid & (det > 0)
    det_s = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det_s, -b / det_s, a / det_s], -1)
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], -1)
    with torch.no_grad():
        mid = 0.5 * (a + c)
        lam = mid + torch.sqrt((mid * mid - det).clamp_min(0.1))
        radii = torch.ceil(3.0 * torch.sqrt(lam))
        on_screen = (
            (means2d[:, 0] + radii > 0)
            & (means2d[:, 0] - radii < width)
            & (means2d[:, 1] + radii > 0)
            & (means2d[:, 1] - radii < height)
        )
        radii = torch.where(valid & on_screen, radii, torch.zeros_like(radii)).to(torch.int32)
    return means2d, conics, z, radii


def tile_rects(means2d: np.ndarray, radii: np.ndarray, tile_size: int, tiles_x: int, tiles_y: int):
    """[N,4] tile ranges x0,x1,y0,y1 (end exclusive) each Gaussian covers; the same rule as gsplat."""
    x0 = np.clip(np.floor((means2d[:, 0] - radii) / tile_size), 0, tiles_x).astype(np.int64)
    x1 = np.clip(np.ceil((means2d[:, 0] + radii) / tile_size), 0, tiles_x).astype(np.int64)
    y0 = np.clip(np.floor((means2d[:, 1] - radii) / tile_size), 0, tiles_y).astype(np.int64)
    y1 = np.clip(np.ceil((means2d[:, 1] + radii) / tile_size), 0, tiles_y).astype(np.int64)
    return np.stack([x0, x1, y0, y1], 1)


@njit(cache=True)
def _bin(order, rects, tiles_x, n_tiles):
    """Per-tile lists of Gaussian ids; `order` is depth-ascending, so every list comes out front to back."""
    counts = np.zeros(n_tiles + 1, np.int64)
    for g in order:
        for ty in range(rects[g, 2], rects[g, 3]):
            for tx in range(rects[g, 0], rects[g, 1]):
                counts[ty * tiles_x + tx + 1] += 1
    offsets = np.cumsum(counts)
    ids = np.empty(offsets[-1], np.int64)
    fill = offsets[:-1].copy()
    for g in order:
        for ty in range(rects[g, 2], rects[g, 3]):
            for tx in range(rects[g, 0], rects[g, 1]):
                t = ty * tiles_x + tx
                ids[fill[t]] = g
                fill[t] += 1
    return offsets, ids


@njit(inline="always")
def _alpha(means2d, conics, opacities, g, fx, fy):
    dx = means2d[g, 0] - fx
    dy = means2d[g, 1] - fy
    sigma = 0.5 * (conics[g, 0] * dx * dx + conics[g, 2] * dy * dy) + conics[g, 1] * dx * dy
    if sigma < 0.0:
        return 0.0, 0.0, dx, dy
    vis = math.exp(-sigma)
    return min(ALPHA_MAX, opacities[g] * vis), vis, dx, dy


@njit(parallel=True, cache=True)
def _forward(means2d, conics, colors, opacities, bg, offsets, ids, width, height, tiles_x, ts, out, out_t, out_last):
    for t in prange(len(offsets) - 1):
        tx, ty = t % tiles_x, t // tiles_x
        start, end = offsets[t], offsets[t + 1]
        for py in range(ty * ts, min(ty * ts + ts, height)):
            for px in range(tx * ts, min(tx * ts + ts, width)):
                fx, fy = px + 0.5, py + 0.5
                T = 1.0
                last = start
                for k in range(start, end):
                    g = ids[k]
                    alpha, vis, dx, dy = _alpha(means2d, conics, opacities, g, fx, fy)
                    if alpha < ALPHA_MIN:
                        continue
                    next_t = T * (1.0 - alpha)
                    if next_t <= T_MIN:
                        break
                    w = alpha * T
                    for c in range(colors.shape[1]):
                        out[py, px, c] += w * colors[g, c]
                    T = next_t
                    last = k + 1
                out_t[py, px] = T
                out_last[py, px] = last
                for c in range(colors.shape[1]):
                    out[py, px, c] += T * bg[c]


@njit(parallel=True, cache=True)
def _backward(
    means2d, conics, colors, opacities, bg, offsets, ids, width, height, tiles_x, ts,
    out_t, out_last, v_out, v_alpha_out, e_mean, e_conic, e_color, e_opac,
):  # fmt: skip
    D = colors.shape[1]
    for t in prange(len(offsets) - 1):
        tx, ty = t % tiles_x, t // tiles_x
        start = offsets[t]
        buf = np.zeros(D, colors.dtype)
        for py in range(ty * ts, min(ty * ts + ts, height)):
            for px in range(tx * ts, min(tx * ts + ts, width)):
                fx, fy = px + 0.5, py + 0.5
                t_final = out_t[py, px]
                T = t_final
                buf[:] = 0.0
                v_bg = 0.0
                for c in range(D):
                    v_bg += bg[c] * v_out[py, px, c]
                for k in range(out_last[py, px] - 1, start - 1, -1):
                    g = ids[k]
                    alpha, vis, dx, dy = _alpha(means2d, conics, opacities, g, fx, fy)
                    if alpha < ALPHA_MIN:
                        continue
                    T = T / (1.0 - alpha)
                    w = alpha * T
                    v_alpha = 0.0
                    for c in range(D):
                        e_color[k, c] += w * v_out[py, px, c]
                        v_alpha += (colors[g, c] - buf[c]) * T * v_out[py, px, c]
                        buf[c] = alpha * colors[g, c] + (1.0 - alpha) * buf[c]
                    v_alpha += (v_alpha_out[py, px] - v_bg) * t_final / (1.0 - alpha)
                    if opacities[g] * vis >= ALPHA_MAX:
                        continue  # clamped: alpha does not depend on this Gaussian's parameters here
                    e_opac[k] += vis * v_alpha
                    v_sigma = -opacities[g] * vis * v_alpha
                    e_conic[k, 0] += 0.5 * dx * dx * v_sigma
                    e_conic[k, 1] += dx * dy * v_sigma
                    e_conic[k, 2] += 0.5 * dy * dy * v_sigma
                    e_mean[k, 0] += v_sigma * (conics[g, 0] * dx + conics[g, 1] * dy)
                    e_mean[k, 1] += v_sigma * (conics[g, 1] * dx + conics[g, 2] * dy)


@njit(cache=True)
def _gather(ids, e_mean, e_conic, e_color, e_opac, v_mean, v_conic, v_color, v_opac):
    for k in range(len(ids)):
        g = ids[k]
        v_mean[g, 0] += e_mean[k, 0]
        v_mean[g, 1] += e_mean[k, 1]
        for j in range(3):
            v_conic[g, j] += e_conic[k, j]
        for c in range(e_color.shape[1]):
            v_color[g, c] += e_color[k, c]
        v_opac[g] += e_opac[k]


class RasterizeTiles(torch.autograd.Function):
    """Composites projected Gaussians: (means2d, conics, colors [N,D], opacities, background [D]) → image [H,W,D],
    alpha [H,W,1]. `depths` and `radii` only order and bin (no gradient), as in gsplat."""

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, background, depths, radii, width, height, tile_size):
        m = means2d.detach().cpu().numpy()
        q = conics.detach().cpu().numpy()
        col = np.ascontiguousarray(colors.detach().cpu().numpy())
        op = opacities.detach().cpu().numpy()
        bg = background.detach().cpu().numpy().astype(col.dtype)
        r = radii.cpu().numpy()
        tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
        visible = np.nonzero(r > 0)[0]
        order = visible[np.argsort(depths.detach().cpu().numpy()[visible], kind="stable")]
        rects = tile_rects(m, r, tile_size, tiles_x, tiles_y)
        offsets, ids = _bin(order, rects, tiles_x, tiles_x * tiles_y)
        out = np.zeros((height, width, col.shape[1]), col.dtype)
        out_t = np.empty((height, width), col.dtype)
        out_last = np.empty((height, width), np.int64)
        _forward(m, q, col, op, bg, offsets, ids, width, height, tiles_x, tile_size, out, out_t, out_last)
        ctx.arrays = (m, q, col, op, bg, offsets, ids, out_t, out_last)
        ctx.dims = (width, height, tiles_x, tile_size)
        return torch.from_numpy(out), torch.from_numpy(1.0 - out_t)[..., None]

    @staticmethod
    def backward(ctx, v_out, v_alpha):
        m, q, col, op, bg, offsets, ids, out_t, out_last = ctx.arrays
        width, height, tiles_x, ts = ctx.dims
        dt = col.dtype
        v_out = np.ascontiguousarray(v_out.cpu().numpy().astype(dt))
        v_alpha = np.ascontiguousarray(v_alpha[..., 0].cpu().numpy().astype(dt))
        M, N, D = len(ids), len(m), col.shape[1]
        e_mean, e_conic = np.zeros((M, 2), dt), np.zeros((M, 3), dt)
        e_color, e_opac = np.zeros((M, D), dt), np.zeros(M, dt)
        _backward(
            m, q, col, op, bg, offsets, ids, width, height, tiles_x, ts,
            out_t, out_last, v_out, v_alpha, e_mean, e_conic, e_color, e_opac,
        )  # fmt: skip
        v_mean, v_conic = np.zeros((N, 2), dt), np.zeros((N, 3), dt)
        v_color, v_opac = np.zeros((N, D), dt), np.zeros(N, dt)
        _gather(ids, e_mean, e_conic, e_color, e_opac, v_mean, v_conic, v_color, v_opac)
        t = torch.from_numpy
        return t(v_mean), t(v_conic), t(v_color), t(v_opac), None, None, None, None, None, None


def rasterization(
    means, quats, scales, opacities, colors, viewmats, Ks, width, height,
    near_plane=0.01, far_plane=1e10, sh_degree=None, tile_size=16, backgrounds=None, render_mode="RGB",
    eps2d=0.3, **_ignored,
):  # fmt: skip
    """gsplat.rasterization for one or more cameras (unpacked). colors: [N,K,3] SH coefficients when sh_degree is
    given, else [N,D]. render_mode: RGB, D, ED, RGB+D, RGB+ED. Returns (render [C,H,W,*], alphas [C,H,W,1], meta)."""
    projected = [
        project(means, quats, scales, viewmats[ci], Ks[ci], width, height, near_plane, far_plane, eps2d)
        for ci in range(viewmats.shape[0])
    ]
    # Rendering reads the stacked tensor, so a caller's means2d.retain_grad() sees the gradient (densification).
    means2d = torch.stack([p[0] for p in projected])
    radii = torch.stack([p[3] for p in projected])
    depths = torch.stack([p[2] for p in projected])
    renders, alphas = [], []
    for ci, (_, conics, _, _) in enumerate(projected):
        viewmat = viewmats[ci]
        if sh_degree is not None:
            campos = -viewmat[:3, :3].T @ viewmat[:3, 3]
            feats = torch.clamp_min(eval_sh(sh_degree, colors, means - campos) + 0.5, 0.0)
        else:
            feats = colors
        bg = torch.zeros(feats.shape[1], dtype=feats.dtype)
        if backgrounds is not None:
            bg = backgrounds[ci].to(feats.dtype)
        if render_mode != "RGB":
            d = depths[ci][:, None]
            feats = d if render_mode in ("D", "ED") else torch.cat([feats, d], -1)
            bg = torch.zeros(1, dtype=feats.dtype) if render_mode in ("D", "ED") else torch.cat([bg, bg.new_zeros(1)])
        img, alpha = RasterizeTiles.apply(
            means2d[ci], conics, feats, opacities, bg, depths[ci], radii[ci], width, height, tile_size
        )
        if render_mode.endswith("ED"):
            img = torch.cat([img[..., :-1], img[..., -1:] / alpha.clamp_min(1e-10)], -1)
        renders.append(img)
        alphas.append(alpha)
    meta = {
        "means2d": means2d,
        "radii": radii,
        "depths": depths,
        "width": width,
        "height": height,
        "n_cameras": viewmats.shape[0],
    }
    return torch.stack(renders), torch.stack(alphas), meta
