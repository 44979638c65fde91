"""Image losses and quality metrics: L1, SSIM (11×11 Gaussian window, σ 1.5, as 3DGS) and PSNR."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .ssim_cpu import SsimCpu


def _window(
    device: torch.device, dtype: torch.dtype, size: int = 11, sigma: float = 1.5, channels: int = 3
) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b: [H,W,C] in [0,1] → mean SSIM."""
    if a.device.type == "cpu" and not b.requires_grad:
        return SsimCpu.apply(a, b)  # the same value and gradient, without conv2d's cost on the CPU
    x, y = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    c = x.shape[1]
    w = _window(x.device, x.dtype, channels=c)  # on the images' device: a CPU window fails every CUDA step
    mu_x, mu_y = F.conv2d(x, w, padding=5, groups=c), F.conv2d(y, w, padding=5, groups=c)
    sxx = F.conv2d(x * x, w, padding=5, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, padding=5, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, padding=5, groups=c) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b) ** 2).mean())
    return 99.0 if mse == 0 else -10.0 * math.log10(mse)
