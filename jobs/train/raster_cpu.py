"""A CPU Gaussian rasterizer with gsplat's `rasterization` call signature (the subset splatflow uses).

What gsplat does, on the CPU, as numba kernels with analytic backwards: projection of 3D Gaussians to 2D (EWA
splatting), tile binning, per-tile depth-sorted front-to-back alpha compositing with early stop. The torch graph of a
render is three autograd nodes (projection, SH colours, compositing), not hundreds of small tensor operations.

Compositing walks each tile Gaussian by Gaussian (not pixel by pixel) and, for each one, only the pixels of the tile
where its alpha can reach one 8-bit step (the box of the ellipse `opacity · exp(-σ) = 1/255`); every other pixel
would skip it anyway, so the image is the same as testing every pixel, at a fraction of the work. Tiles are shared
out to the threads by cost (largest first, each to the least loaded thread). The backward writes one gradient row per
(tile, Gaussian) entry, so threads never share a write, and the rows are summed afterwards.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange

from .phases import PHASES
from .sh import C0, C1, C2, C3

ALPHA_MAX = 0.999  # as gsplat: a single Gaussian never makes a pixel fully opaque
ALPHA_MIN = 1.0 / 255.0  # contributions below one 8-bit step are skipped
T_MIN = 1e-4  # early stop: a pixel this opaque takes no more Gaussians
RADIUS_CLAMP = 0.01  # as gsplat: floor of the eigenvalue gap when sizing a Gaussian's 3-sigma radius
CHUNK = 256  # Gaussians per parallel task in the per-Gaussian kernels


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


# ---------------------------------------------------------------------------------------------------- projection


@njit(cache=True)
def _ewa(means, quats, scales, g, W, t, fx, fy, lim, eps2d):
    """The forward of one Gaussian's projection, with the intermediates its backward needs.
    A = J · W · R(q) · S, so that the 2D covariance is A Aᵀ + eps2d·I (J: the projection's Jacobian, rows 0 and 1)."""
    mx, my, mz = means[g, 0], means[g, 1], means[g, 2]
    x = W[0, 0] * mx + W[0, 1] * my + W[0, 2] * mz + t[0]
    y = W[1, 0] * mx + W[1, 1] * my + W[1, 2] * mz + t[1]
    z = W[2, 0] * mx + W[2, 1] * my + W[2, 2] * mz + t[2]
    qn = math.sqrt(quats[g, 0] ** 2 + quats[g, 1] ** 2 + quats[g, 2] ** 2 + quats[g, 3] ** 2)
    qw, qx, qy, qz = quats[g, 0] / qn, quats[g, 1] / qn, quats[g, 2] / qn, quats[g, 3] / qn
    R = (
        1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy),
        2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx),
        2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy),
    )  # fmt: skip
    # Clamp the direction used by the Jacobian (as gsplat): far off-screen Gaussians would otherwise blow up.
    xz = min(max(x / z, -lim[0]), lim[1])
    yz = min(max(y / z, -lim[2]), lim[3])
    j00, j02, j11, j12 = fx / z, -fx * xz / z, fy / z, -fy * yz / z
    T0 = (j00 * W[0, 0] + j02 * W[2, 0], j00 * W[0, 1] + j02 * W[2, 1], j00 * W[0, 2] + j02 * W[2, 2])
    T1 = (j11 * W[1, 0] + j12 * W[2, 0], j11 * W[1, 1] + j12 * W[2, 1], j11 * W[1, 2] + j12 * W[2, 2])
    U0 = (T0[0] * R[0] + T0[1] * R[3] + T0[2] * R[6], T0[0] * R[1] + T0[1] * R[4] + T0[2] * R[7],
          T0[0] * R[2] + T0[1] * R[5] + T0[2] * R[8])  # fmt: skip
    U1 = (T1[0] * R[0] + T1[1] * R[3] + T1[2] * R[6], T1[0] * R[1] + T1[1] * R[4] + T1[2] * R[7],
          T1[0] * R[2] + T1[1] * R[5] + T1[2] * R[8])  # fmt: skip
    A0 = (U0[0] * scales[g, 0], U0[1] * scales[g, 1], U0[2] * scales[g, 2])
    A1 = (U1[0] * scales[g, 0], U1[1] * scales[g, 1], U1[2] * scales[g, 2])
    a = A0[0] * A0[0] + A0[1] * A0[1] + A0[2] * A0[2] + eps2d
    b = A0[0] * A1[0] + A0[1] * A1[1] + A0[2] * A1[2]
    c = A1[0] * A1[0] + A1[1] * A1[1] + A1[2] * A1[2] + eps2d
    return x, y, z, xz, yz, qn, (qw, qx, qy, qz), R, T0, T1, U0, U1, A0, A1, a, b, c


@njit(parallel=True, cache=True)
def _project_fwd(means, quats, scales, W, t, cam, lim, near, far, eps2d, width, height, m2d, conics, depths, radii):
    fx, fy, cx, cy = cam[0], cam[1], cam[2], cam[3]
    for g in prange(len(means)):
        z = W[2, 0] * means[g, 0] + W[2, 1] * means[g, 1] + W[2, 2] * means[g, 2] + t[2]
        depths[g] = z
        m2d[g, 0], m2d[g, 1] = 0.0, 0.0
        conics[g, 0], conics[g, 1], conics[g, 2] = 0.0, 0.0, 0.0
        radii[g] = 0
        if not (z > near and z < far):
            continue
        x, y, z, _, _, _, _, _, _, _, _, _, _, _, a, b, c = _ewa(means, quats, scales, g, W, t, fx, fy, lim, eps2d)
        det = a * c - b * b
        if not det > 0:
            continue
        u, v = fx * x / z + cx, fy * y / z + cy
        m2d[g, 0], m2d[g, 1] = u, v
        conics[g, 0], conics[g, 1], conics[g, 2] = c / det, -b / det, a / det
        mid = 0.5 * (a + c)
        r = math.ceil(3.0 * math.sqrt(mid + math.sqrt(max(mid * mid - det, RADIUS_CLAMP))))
        if u + r > 0 and u - r < width and v + r > 0 and v - r < height:
            radii[g] = r


@njit(cache=True)
def _project_vjp(means, quats, scales, W, t, fx, fy, lim, eps2d, g, v_m2d, v_conics, v_depths, v_means, v_quats,
                 v_scales, v_R, v_T0, v_T1):  # fmt: skip
    x, y, z, xz, yz, qn, q, R, T0, T1, U0, U1, A0, A1, a, b, c = _ewa(means, quats, scales, g, W, t, fx, fy, lim, eps2d)
    det = a * c - b * b
    id2 = 1.0 / (det * det)
    g0, g1, g2 = v_conics[g, 0], v_conics[g, 1], v_conics[g, 2]
    # conic = (c, -b, a) / det
    v_a = -g0 * c * c * id2 + g1 * b * c * id2 + g2 * (1.0 / det - a * c * id2)
    v_b = 2.0 * g0 * b * c * id2 - g1 * (1.0 / det + 2.0 * b * b * id2) + 2.0 * g2 * a * b * id2
    v_c = g0 * (1.0 / det - a * c * id2) + g1 * a * b * id2 - g2 * a * a * id2
    v_T0[:] = 0.0
    v_T1[:] = 0.0
    for j in range(3):
        v_A0 = 2.0 * v_a * A0[j] + v_b * A1[j]
        v_A1 = v_b * A0[j] + 2.0 * v_c * A1[j]
        v_scales[g, j] = v_A0 * U0[j] + v_A1 * U1[j]
        v_U0, v_U1 = v_A0 * scales[g, j], v_A1 * scales[g, j]
        for i in range(3):
            v_R[i * 3 + j] = T0[i] * v_U0 + T1[i] * v_U1
            v_T0[i] += v_U0 * R[i * 3 + j]
            v_T1[i] += v_U1 * R[i * 3 + j]
    v_j00 = v_T0[0] * W[0, 0] + v_T0[1] * W[0, 1] + v_T0[2] * W[0, 2]
    v_j02 = v_T0[0] * W[2, 0] + v_T0[1] * W[2, 1] + v_T0[2] * W[2, 2]
    v_j11 = v_T1[0] * W[1, 0] + v_T1[1] * W[1, 1] + v_T1[2] * W[1, 2]
    v_j12 = v_T1[0] * W[2, 0] + v_T1[1] * W[2, 1] + v_T1[2] * W[2, 2]
    iz, iz2 = 1.0 / z, 1.0 / (z * z)
    v_z = v_depths[g] - fx * iz2 * v_j00 + fx * xz * iz2 * v_j02 - fy * iz2 * v_j11 + fy * yz * iz2 * v_j12
    v_x, v_y = 0.0, 0.0
    if -lim[0] <= x * iz <= lim[1]:  # the clamp passes the gradient inside its range only
        v_xz = -fx * iz * v_j02
        v_x += v_xz * iz
        v_z -= v_xz * x * iz2
    if -lim[2] <= y * iz <= lim[3]:
        v_yz = -fy * iz * v_j12
        v_y += v_yz * iz
        v_z -= v_yz * y * iz2
    v_x += fx * iz * v_m2d[g, 0]
    v_y += fy * iz * v_m2d[g, 1]
    v_z -= (fx * x * v_m2d[g, 0] + fy * y * v_m2d[g, 1]) * iz2
    for k in range(3):
        v_means[g, k] = W[0, k] * v_x + W[1, k] * v_y + W[2, k] * v_z
    qw, qx, qy, qz = q
    v = v_R
    vw = 2.0 * (qx * (v[7] - v[5]) + qy * (v[2] - v[6]) + qz * (v[3] - v[1]))
    vx = 2.0 * (-2.0 * qx * (v[4] + v[8]) + qy * (v[3] + v[1]) + qz * (v[6] + v[2]) + qw * (v[7] - v[5]))
    vy = 2.0 * (qx * (v[3] + v[1]) - 2.0 * qy * (v[0] + v[8]) + qz * (v[7] + v[5]) + qw * (v[2] - v[6]))
    vz = 2.0 * (qx * (v[6] + v[2]) + qy * (v[7] + v[5]) - 2.0 * qz * (v[0] + v[4]) + qw * (v[3] - v[1]))
    dot = qw * vw + qx * vx + qy * vy + qz * vz  # through the normalisation q / |q|
    v_quats[g, 0] = (vw - qw * dot) / qn
    v_quats[g, 1] = (vx - qx * dot) / qn
    v_quats[g, 2] = (vy - qy * dot) / qn
    v_quats[g, 3] = (vz - qz * dot) / qn


@njit(parallel=True, cache=True)
def _project_bwd(
    means, quats, scales, W, t, cam, lim, eps2d, radii, v_m2d, v_conics, v_depths, v_means, v_quats, v_scales
):
    fx, fy = cam[0], cam[1]
    for chunk in prange((len(means) + CHUNK - 1) // CHUNK):
        v_R = np.empty(9, means.dtype)  # scratch per chunk of Gaussians, not per Gaussian
        v_T0 = np.empty(3, means.dtype)
        v_T1 = np.empty(3, means.dtype)
        for g in range(chunk * CHUNK, min(len(means), chunk * CHUNK + CHUNK)):
            if radii[g] != 0:  # not drawn: the compositing gave it no gradient
                _project_vjp(means, quats, scales, W, t, fx, fy, lim, eps2d, g, v_m2d, v_conics, v_depths,
                             v_means, v_quats, v_scales, v_R, v_T0, v_T1)  # fmt: skip


def _camera(viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, dtype):
    W = np.ascontiguousarray(viewmat[:3, :3].detach().cpu().numpy().astype(dtype))
    t = np.ascontiguousarray(viewmat[:3, 3].detach().cpu().numpy().astype(dtype))
    fx, fy, cx, cy = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim = np.array([cx / fx + 0.3 * tan_x, (width - cx) / fx + 0.3 * tan_x,
                    cy / fy + 0.3 * tan_y, (height - cy) / fy + 0.3 * tan_y], dtype)  # fmt: skip
    return W, t, np.array([fx, fy, cx, cy], dtype), lim


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


class Project(torch.autograd.Function):
    """(means [N,3], quats [N,4], scales [N,3]) → means2d [N,2] (pixels), conics [N,3] (inverse 2D covariance
    a,b,c), depths [N], radii [N] (int, 0 = not drawn). No gradient to the camera, as gsplat by default."""

    @staticmethod
    def forward(ctx, means, quats, scales, viewmat, K, width, height, near, far, eps2d):
        m, q, s = _np(means), _np(quats), _np(scales)
        W, t, cam, lim = _camera(viewmat, K, width, height, m.dtype)
        n = len(m)
        m2d, conics, depths = np.empty((n, 2), m.dtype), np.empty((n, 3), m.dtype), np.empty(n, m.dtype)
        radii = np.empty(n, np.int32)
        _project_fwd(m, q, s, W, t, cam, lim, near, far, eps2d, width, height, m2d, conics, depths, radii)
        ctx.arrays = (m, q, s, W, t, cam, lim, radii)
        ctx.eps2d = eps2d
        radii_t = torch.from_numpy(radii)
        ctx.mark_non_differentiable(radii_t)
        return torch.from_numpy(m2d), torch.from_numpy(conics), torch.from_numpy(depths), radii_t

    @staticmethod
    def backward(ctx, v_m2d, v_conics, v_depths, _v_radii):
        m, q, s, W, t, cam, lim, radii = ctx.arrays
        dt = m.dtype
        n = len(m)
        v_means, v_quats, v_scales = np.zeros_like(m), np.zeros_like(q), np.zeros_like(s)
        _project_bwd(
            m, q, s, W, t, cam, lim, ctx.eps2d, radii, _grad(v_m2d, (n, 2), dt), _grad(v_conics, (n, 3), dt),
            _grad(v_depths, (n,), dt), v_means, v_quats, v_scales,
        )  # fmt: skip
        t_ = torch.from_numpy
        return t_(v_means), t_(v_quats), t_(v_scales), None, None, None, None, None, None, None


def _grad(v: torch.Tensor | None, shape, dtype) -> np.ndarray:
    """An incoming gradient as a contiguous array (autograd passes None for an output nothing used)."""
    if v is None:
        return np.zeros(shape, dtype)
    return np.ascontiguousarray(v.detach().cpu().numpy().astype(dtype, copy=False))


def project(means, quats, scales, viewmat, K, width, height, near=0.01, far=1e10, eps2d=0.3):
    """One camera: means2d [N,2], conics [N,3], depths [N], radii [N] (see `Project`)."""
    return Project.apply(means, quats, scales, viewmat, K, width, height, near, far, eps2d)


# ---------------------------------------------------------------------------------------------------- SH colours


@njit(cache=True)
def _sh_basis(degree, x, y, z, basis, grad):
    """Real SH basis values at the unit direction (x, y, z) and their derivatives along x, y, z."""
    basis[0] = C0
    grad[:, 0] = 0.0
    if degree < 1:
        return
    basis[1], basis[2], basis[3] = -C1 * y, C1 * z, -C1 * x
    grad[0, 1], grad[1, 1], grad[2, 1] = 0.0, -C1, 0.0
    grad[0, 2], grad[1, 2], grad[2, 2] = 0.0, 0.0, C1
    grad[0, 3], grad[1, 3], grad[2, 3] = -C1, 0.0, 0.0
    if degree < 2:
        return
    xx, yy, zz = x * x, y * y, z * z
    basis[4], basis[5] = C2[0] * x * y, C2[1] * y * z
    basis[6], basis[7], basis[8] = C2[2] * (2.0 * zz - xx - yy), C2[3] * x * z, C2[4] * (xx - yy)
    grad[0, 4], grad[1, 4], grad[2, 4] = C2[0] * y, C2[0] * x, 0.0
    grad[0, 5], grad[1, 5], grad[2, 5] = 0.0, C2[1] * z, C2[1] * y
    grad[0, 6], grad[1, 6], grad[2, 6] = -2.0 * C2[2] * x, -2.0 * C2[2] * y, 4.0 * C2[2] * z
    grad[0, 7], grad[1, 7], grad[2, 7] = C2[3] * z, 0.0, C2[3] * x
    grad[0, 8], grad[1, 8], grad[2, 8] = 2.0 * C2[4] * x, -2.0 * C2[4] * y, 0.0
    if degree < 3:
        return
    basis[9] = C3[0] * y * (3.0 * xx - yy)
    basis[10] = C3[1] * x * y * z
    basis[11] = C3[2] * y * (4.0 * zz - xx - yy)
    basis[12] = C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy)
    basis[13] = C3[4] * x * (4.0 * zz - xx - yy)
    basis[14] = C3[5] * z * (xx - yy)
    basis[15] = C3[6] * x * (xx - 3.0 * yy)
    grad[0, 9], grad[1, 9], grad[2, 9] = 6.0 * C3[0] * x * y, C3[0] * (3.0 * xx - 3.0 * yy), 0.0
    grad[0, 10], grad[1, 10], grad[2, 10] = C3[1] * y * z, C3[1] * x * z, C3[1] * x * y
    grad[0, 11], grad[1, 11], grad[2, 11] = (
        -2.0 * C3[2] * x * y,
        C3[2] * (4.0 * zz - xx - 3.0 * yy),
        8.0 * C3[2] * y * z,
    )
    grad[0, 12], grad[1, 12], grad[2, 12] = (
        -6.0 * C3[3] * x * z,
        -6.0 * C3[3] * y * z,
        C3[3] * (6.0 * zz - 3.0 * xx - 3.0 * yy),
    )
    grad[0, 13], grad[1, 13], grad[2, 13] = (
        C3[4] * (4.0 * zz - 3.0 * xx - yy),
        -2.0 * C3[4] * x * y,
        8.0 * C3[4] * x * z,
    )
    grad[0, 14], grad[1, 14], grad[2, 14] = 2.0 * C3[5] * x * z, -2.0 * C3[5] * y * z, C3[5] * (xx - yy)
    grad[0, 15], grad[1, 15], grad[2, 15] = C3[6] * (3.0 * xx - 3.0 * yy), -6.0 * C3[6] * x * y, 0.0


@njit(parallel=True, cache=True)
def _sh_fwd(degree, coeffs, means, campos, raw):
    """raw [N,3]: SH colour + 0.5, before the clamp at 0."""
    n_basis = (degree + 1) ** 2
    for chunk in prange((len(means) + CHUNK - 1) // CHUNK):
        basis = np.empty(16, coeffs.dtype)
        grad = np.empty((3, 16), coeffs.dtype)
        for g in range(chunk * CHUNK, min(len(means), chunk * CHUNK + CHUNK)):
            dx, dy, dz = means[g, 0] - campos[0], means[g, 1] - campos[1], means[g, 2] - campos[2]
            norm = max(math.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
            _sh_basis(degree, dx / norm, dy / norm, dz / norm, basis, grad)
            for ch in range(3):
                v = 0.5
                for k in range(n_basis):
                    v += basis[k] * coeffs[g, k, ch]
                raw[g, ch] = v


@njit(parallel=True, cache=True)
def _sh_bwd(degree, coeffs, means, campos, raw, v_colors, v_coeffs, v_means):
    n_basis = (degree + 1) ** 2
    for chunk in prange((len(means) + CHUNK - 1) // CHUNK):
        basis = np.empty(16, coeffs.dtype)
        grad = np.empty((3, 16), coeffs.dtype)
        for g in range(chunk * CHUNK, min(len(means), chunk * CHUNK + CHUNK)):
            dx, dy, dz = means[g, 0] - campos[0], means[g, 1] - campos[1], means[g, 2] - campos[2]
            norm = max(math.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
            x, y, z = dx / norm, dy / norm, dz / norm
            _sh_basis(degree, x, y, z, basis, grad)
            vd0, vd1, vd2 = 0.0, 0.0, 0.0
            for ch in range(3):
                vc = v_colors[g, ch] if raw[g, ch] >= 0.0 else 0.0  # the clamp at 0 (as torch's clamp_min)
                for k in range(n_basis):
                    v_coeffs[g, k, ch] = basis[k] * vc
                    vd0 += grad[0, k] * coeffs[g, k, ch] * vc
                    vd1 += grad[1, k] * coeffs[g, k, ch] * vc
                    vd2 += grad[2, k] * coeffs[g, k, ch] * vc
            dot = x * vd0 + y * vd1 + z * vd2  # through the normalisation of the direction
            v_means[g, 0] = (vd0 - x * dot) / norm
            v_means[g, 1] = (vd1 - y * dot) / norm
            v_means[g, 2] = (vd2 - z * dot) / norm


class ShColors(torch.autograd.Function):
    """colour = max(SH(coeffs, direction from the camera) + 0.5, 0), as gsplat; coeffs [N,K,3] (K ≥ (degree+1)²)."""

    @staticmethod
    def forward(ctx, coeffs, means, campos, degree):
        c, m = _np(coeffs), _np(means)
        cp = _np(campos).astype(c.dtype)
        raw = np.empty((len(m), 3), c.dtype)
        _sh_fwd(degree, c, m, cp, raw)
        ctx.arrays, ctx.degree = (c, m, cp, raw), degree
        return torch.from_numpy(np.maximum(raw, 0.0))

    @staticmethod
    def backward(ctx, v_colors):
        c, m, cp, raw = ctx.arrays
        v_coeffs, v_means = np.zeros_like(c), np.zeros_like(m)
        _sh_bwd(ctx.degree, c, m, cp, raw, _grad(v_colors, raw.shape, c.dtype), v_coeffs, v_means)
        return torch.from_numpy(v_coeffs), torch.from_numpy(v_means), None, None


# ---------------------------------------------------------------------------------------------------- compositing


def tile_rects(means2d: np.ndarray, radii: np.ndarray, tile_size: int, tiles_x: int, tiles_y: int):
    """[N,4] tile ranges x0,x1,y0,y1 (end exclusive) each Gaussian covers; the same rule as gsplat."""
    x0 = np.clip(np.floor((means2d[:, 0] - radii) / tile_size), 0, tiles_x).astype(np.int64)
    x1 = np.clip(np.ceil((means2d[:, 0] + radii) / tile_size), 0, tiles_x).astype(np.int64)
    y0 = np.clip(np.floor((means2d[:, 1] - radii) / tile_size), 0, tiles_y).astype(np.int64)
    y1 = np.clip(np.ceil((means2d[:, 1] + radii) / tile_size), 0, tiles_y).astype(np.int64)
    return np.stack([x0, x1, y0, y1], 1)


@njit(parallel=True, cache=True)
def _visible_boxes(means2d, conics, opacities, width, height):
    """[N,4] pixel box px0,px1,py0,py1 (inclusive; empty when px0 > px1) outside which a Gaussian's alpha is below
    ALPHA_MIN: the ellipse σ ≤ ln(255·opacity), widened by a hair so rounding never cuts a pixel off."""
    boxes = np.empty((len(means2d), 4), np.int64)
    for g in prange(len(means2d)):
        boxes[g, 0], boxes[g, 1], boxes[g, 2], boxes[g, 3] = 0, -1, 0, -1
        o = opacities[g]
        if not o * 255.0 > 1.0:
            continue
        tau = math.log(255.0 * o)
        a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
        det = a * c - b * b
        if not det > 0.0:
            continue
        ex = math.sqrt(2.0 * tau * c / det) * 1.001 + 0.01
        ey = math.sqrt(2.0 * tau * a / det) * 1.001 + 0.01
        mx, my = means2d[g, 0], means2d[g, 1]  # pixel p is reached when |mean - (p + 0.5)| ≤ extent
        boxes[g, 0] = max(0, math.ceil(mx - ex - 0.5))
        boxes[g, 1] = min(width - 1, math.floor(mx + ex - 0.5))
        boxes[g, 2] = max(0, math.ceil(my - ey - 0.5))
        boxes[g, 3] = min(height - 1, math.floor(my + ey - 0.5))
    return boxes


@njit(cache=True)
def _bin(order, rects, boxes, ts, tiles_x, n_tiles):
    """Per-tile lists of Gaussian ids; `order` is depth-ascending, so every list comes out front to back. A
    Gaussian goes to the tiles of its 3-sigma rectangle (gsplat's rule) that its visible box reaches."""
    counts = np.zeros(n_tiles + 1, np.int64)
    cut = np.empty((len(order), 4), np.int64)
    for i in range(len(order)):
        g = order[i]
        cut[i, 0] = max(rects[g, 0], boxes[g, 0] // ts)
        cut[i, 1] = min(rects[g, 1], boxes[g, 1] // ts + 1)
        cut[i, 2] = max(rects[g, 2], boxes[g, 2] // ts)
        cut[i, 3] = min(rects[g, 3], boxes[g, 3] // ts + 1)
        if boxes[g, 0] > boxes[g, 1] or boxes[g, 2] > boxes[g, 3]:
            cut[i, 1] = cut[i, 0]
        for ty in range(cut[i, 2], cut[i, 3]):
            for tx in range(cut[i, 0], cut[i, 1]):
                counts[ty * tiles_x + tx + 1] += 1
    offsets = np.cumsum(counts)
    ids = np.empty(offsets[-1], np.int64)
    fill = offsets[:-1].copy()
    for i in range(len(order)):
        for ty in range(cut[i, 2], cut[i, 3]):
            for tx in range(cut[i, 0], cut[i, 1]):
                t = ty * tiles_x + tx
                ids[fill[t]] = order[i]
                fill[t] += 1
    return offsets, ids


@njit(cache=True)
def _schedule(offsets, n_workers):
    """Tiles shared out to workers by cost (entries in the tile + a fixed cost for its pixels): largest first, each
    to the least loaded worker. Returns per-worker tile lists as (starts [n_workers+1], tiles)."""
    n = len(offsets) - 1
    cost = np.empty(n, np.int64)
    for t in range(n):
        cost[t] = offsets[t + 1] - offsets[t] + 8
    by_cost = np.argsort(-cost)
    load = np.zeros(n_workers, np.int64)
    owner = np.empty(n, np.int64)
    for t in by_cost:
        w = np.argmin(load)
        owner[t] = w
        load[w] += cost[t]
    starts = np.zeros(n_workers + 1, np.int64)
    for t in range(n):
        starts[owner[t] + 1] += 1
    starts = np.cumsum(starts)
    tiles = np.empty(n, np.int64)
    fill = starts[:-1].copy()
    for t in by_cost:
        tiles[fill[owner[t]]] = t
        fill[owner[t]] += 1
    return starts, tiles


@njit(inline="always")
def _pixel_centres(x0, x1, y0, y1, xs, ys):
    """Pixel centres of a tile in the kernels' dtype (so float32 inputs are composited in float32 throughout)."""
    for j in range(x1 - x0 + 1):
        xs[j] = x0 + j + 0.5
    for j in range(y1 - y0 + 1):
        ys[j] = y0 + j + 0.5


@njit(parallel=True, cache=True)
def _forward(
    means2d, conics, colors, opacities, bg, offsets, ids, boxes, width, height, tiles_x, ts, starts, tiles,
    out, out_t, out_last,
):  # fmt: skip
    D = colors.shape[1]
    dt = colors.dtype
    k_ = np.array([0.5, 1.0, ALPHA_MAX, ALPHA_MIN, T_MIN], dt)  # constants in the kernel's dtype
    half, one, a_max, a_min, t_min = k_[0], k_[1], k_[2], k_[3], k_[4]
    for w in prange(len(starts) - 1):
        T = np.empty(ts * ts, dt)
        last = np.empty(ts * ts, np.int64)
        done = np.empty(ts * ts, np.bool_)
        acc = np.empty((ts * ts, D), dt)
        col = np.empty(D, dt)
        xs, ys = np.empty(ts, dt), np.empty(ts, dt)
        for ti in range(starts[w], starts[w + 1]):
            t = tiles[ti]
            x0, y0 = (t % tiles_x) * ts, (t // tiles_x) * ts
            x1, y1 = min(x0 + ts, width) - 1, min(y0 + ts, height) - 1
            _pixel_centres(x0, x1, y0, y1, xs, ys)
            start, end = offsets[t], offsets[t + 1]
            T[:] = one
            last[:] = start
            done[:] = False
            acc[:] = 0.0
            n_pixels, n_done = (x1 - x0 + 1) * (y1 - y0 + 1), 0
            for k in range(start, end):
                g = ids[k]
                # Loaded once per Gaussian: the compiler cannot hoist them past the stores below.
                o, mx, my = opacities[g], means2d[g, 0], means2d[g, 1]
                c0, c1, c2 = conics[g, 0], conics[g, 1], conics[g, 2]
                for c in range(D):
                    col[c] = colors[g, c]
                bx0, bx1 = max(x0, boxes[g, 0]), min(x1, boxes[g, 1])
                for py in range(max(y0, boxes[g, 2]), min(y1, boxes[g, 3]) + 1):
                    dy = my - ys[py - y0]
                    row = (py - y0) * ts - x0
                    for px in range(bx0, bx1 + 1):
                        i = row + px
                        if done[i]:
                            continue
                        dx = mx - xs[px - x0]
                        sigma = half * (c0 * dx * dx + c2 * dy * dy) + c1 * dx * dy
                        if sigma < 0.0:
                            continue
                        alpha = min(a_max, o * math.exp(-sigma))
                        if alpha < a_min:
                            continue
                        next_t = T[i] * (one - alpha)
                        if next_t <= t_min:
                            done[i] = True
                            n_done += 1
                            continue
                        wgt = alpha * T[i]
                        for c in range(D):
                            acc[i, c] += wgt * col[c]
                        T[i] = next_t
                        last[i] = k + 1
                if n_done == n_pixels:
                    break
            for py in range(y0, y1 + 1):
                for px in range(x0, x1 + 1):
                    i = (py - y0) * ts + (px - x0)
                    out_t[py, px] = T[i]
                    out_last[py, px] = last[i]
                    for c in range(D):
                        out[py, px, c] = acc[i, c] + T[i] * bg[c]


@njit(parallel=True, cache=True)
def _backward(
    means2d, conics, colors, opacities, bg, offsets, ids, boxes, width, height, tiles_x, ts, starts, tiles,
    out_t, out_last, v_out, v_alpha_out, e_mean, e_conic, e_color, e_opac,
):  # fmt: skip
    D = colors.shape[1]
    dt = colors.dtype
    k_ = np.array([0.5, 1.0, ALPHA_MAX, ALPHA_MIN], dt)
    half, one, a_max, a_min = k_[0], k_[1], k_[2], k_[3]
    for w in prange(len(starts) - 1):
        T = np.empty(ts * ts, dt)
        last = np.empty(ts * ts, np.int64)
        buf = np.empty((ts * ts, D), dt)
        v_px = np.empty((ts * ts, D), dt)  # the image gradient, copied per tile
        v_rest = np.empty(ts * ts, dt)  # what the final transmittance's gradient adds to every alpha
        e_col = np.empty(D, dt)
        col = np.empty(D, dt)
        xs, ys = np.empty(ts, dt), np.empty(ts, dt)
        for ti in range(starts[w], starts[w + 1]):
            t = tiles[ti]
            x0, y0 = (t % tiles_x) * ts, (t // tiles_x) * ts
            x1, y1 = min(x0 + ts, width) - 1, min(y0 + ts, height) - 1
            _pixel_centres(x0, x1, y0, y1, xs, ys)
            start, k_end = offsets[t], offsets[t]
            for py in range(y0, y1 + 1):
                for px in range(x0, x1 + 1):
                    i = (py - y0) * ts + (px - x0)
                    T[i] = out_t[py, px]
                    last[i] = out_last[py, px]
                    k_end = max(k_end, last[i])
                    buf[i, :] = 0.0
                    v_bg = 0.0
                    for c in range(D):
                        v_px[i, c] = v_out[py, px, c]
                        v_bg += bg[c] * v_out[py, px, c]
                    v_rest[i] = (v_alpha_out[py, px] - v_bg) * out_t[py, px]
            for k in range(k_end - 1, start - 1, -1):
                g = ids[k]
                o, mx, my = opacities[g], means2d[g, 0], means2d[g, 1]
                c0, c1, c2 = conics[g, 0], conics[g, 1], conics[g, 2]
                for c in range(D):
                    col[c] = colors[g, c]
                    e_col[c] = 0.0
                e_m0 = e_m1 = e_c0 = e_c1 = e_c2 = e_o = 0.0  # sums over pixels in float64
                bx0, bx1 = max(x0, boxes[g, 0]), min(x1, boxes[g, 1])
                for py in range(max(y0, boxes[g, 2]), min(y1, boxes[g, 3]) + 1):
                    dy = my - ys[py - y0]
                    row = (py - y0) * ts - x0
                    for px in range(bx0, bx1 + 1):
                        i = row + px
                        if k >= last[i]:
                            continue
                        dx = mx - xs[px - x0]
                        sigma = half * (c0 * dx * dx + c2 * dy * dy) + c1 * dx * dy
                        if sigma < 0.0:
                            continue
                        vis = math.exp(-sigma)
                        alpha = min(a_max, o * vis)
                        if alpha < a_min:
                            continue
                        ra = one / (one - alpha)
                        T[i] *= ra
                        wgt = alpha * T[i]
                        v_alpha = v_rest[i] * ra
                        for c in range(D):
                            vo = v_px[i, c]
                            e_col[c] += wgt * vo
                            v_alpha += (col[c] - buf[i, c]) * T[i] * vo
                            buf[i, c] = alpha * col[c] + (one - alpha) * buf[i, c]
                        if o * vis >= a_max:
                            continue  # clamped: alpha does not depend on this Gaussian's parameters here
                        e_o += vis * v_alpha
                        v_sigma = -o * vis * v_alpha
                        e_c0 += half * dx * dx * v_sigma
                        e_c1 += dx * dy * v_sigma
                        e_c2 += half * dy * dy * v_sigma
                        e_m0 += v_sigma * (c0 * dx + c1 * dy)
                        e_m1 += v_sigma * (c1 * dx + c2 * dy)
                e_mean[k, 0], e_mean[k, 1] = e_m0, e_m1
                e_conic[k, 0], e_conic[k, 1], e_conic[k, 2] = e_c0, e_c1, e_c2
                e_opac[k] = e_o
                for c in range(D):
                    e_color[k, c] = e_col[c]


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
        with PHASES("binning"):
            m, q, col, op = _np(means2d), _np(conics), _np(colors), _np(opacities)
            bg = _np(background).astype(col.dtype)
            r = radii.cpu().numpy()
            tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
            visible = np.nonzero(r > 0)[0]
            order = visible[np.argsort(_np(depths)[visible], kind="stable")]
            rects = tile_rects(m, r, tile_size, tiles_x, tiles_y)
            boxes = _visible_boxes(m, q, op, width, height)
            offsets, ids = _bin(order, rects, boxes, tile_size, tiles_x, tiles_x * tiles_y)
            starts, tiles = _schedule(offsets, numba.get_num_threads())
        with PHASES("forward"):
            out = np.empty((height, width, col.shape[1]), col.dtype)
            out_t = np.empty((height, width), col.dtype)
            out_last = np.empty((height, width), np.int64)
            _forward(
                m, q, col, op, bg, offsets, ids, boxes, width, height, tiles_x, tile_size, starts, tiles,
                out, out_t, out_last,
            )  # fmt: skip
        ctx.arrays = (m, q, col, op, bg, offsets, ids, boxes, starts, tiles, out_t, out_last)
        ctx.dims = (width, height, tiles_x, tile_size)
        return torch.from_numpy(out), torch.from_numpy(1.0 - out_t)[..., None]

    @staticmethod
    def backward(ctx, v_out, v_alpha):
        with PHASES("raster backward"):
            m, q, col, op, bg, offsets, ids, boxes, starts, tiles, out_t, out_last = ctx.arrays
            width, height, tiles_x, ts = ctx.dims
            dt = col.dtype
            v_out = _grad(v_out, (height, width, col.shape[1]), dt)
            v_alpha = _grad(v_alpha, (height, width, 1), dt)[..., 0].copy()
            M, N, D = len(ids), len(m), col.shape[1]
            e_mean, e_conic = np.zeros((M, 2), dt), np.zeros((M, 3), dt)
            e_color, e_opac = np.zeros((M, D), dt), np.zeros(M, dt)
            _backward(
                m, q, col, op, bg, offsets, ids, boxes, width, height, tiles_x, ts, starts, tiles,
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
    with PHASES("projection"):
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
            with PHASES("sh"):
                campos = -viewmat[:3, :3].T @ viewmat[:3, 3]
                feats = ShColors.apply(colors, means, campos.detach(), sh_degree)
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
