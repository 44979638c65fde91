"""Real spherical harmonics as 3DGS and gsplat use them (degree ≤ 3, coefficient order of the reference code)."""

from __future__ import annotations

import torch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_coeffs(degree: int) -> int:
    return (degree + 1) ** 2


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - 0.5) / C0


def eval_sh(degree: int, coeffs: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """coeffs [N, K, 3] (K ≥ (degree+1)²), dirs [N, 3] (any length) → colour [N, 3] before the +0.5 offset.
    In torch: the definition the CPU rasterizer's SH kernel (raster_cpu.ShColors) is tested against."""
    d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z = d[:, 0:1], d[:, 1:2], d[:, 2:3]
    out = C0 * coeffs[:, 0]
    if degree < 1:
        return out
    out = out - C1 * y * coeffs[:, 1] + C1 * z * coeffs[:, 2] - C1 * x * coeffs[:, 3]
    if degree < 2:
        return out
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    out = (
        out
        + C2[0] * xy * coeffs[:, 4]
        + C2[1] * yz * coeffs[:, 5]
        + C2[2] * (2.0 * zz - xx - yy) * coeffs[:, 6]
        + C2[3] * xz * coeffs[:, 7]
        + C2[4] * (xx - yy) * coeffs[:, 8]
    )
    if degree < 3:
        return out
    return (
        out
        + C3[0] * y * (3 * xx - yy) * coeffs[:, 9]
        + C3[1] * xy * z * coeffs[:, 10]
        + C3[2] * y * (4 * zz - xx - yy) * coeffs[:, 11]
        + C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * coeffs[:, 12]
        + C3[4] * x * (4 * zz - xx - yy) * coeffs[:, 13]
        + C3[5] * z * (xx - yy) * coeffs[:, 14]
        + C3[6] * x * (xx - 3 * yy) * coeffs[:, 15]
    )
