"""Image losses and quality metrics: L1, SSIM (11×11 Gaussian window, σ 1.5, as 3DGS) and PSNR."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .ssim_cpu import SsimCpu, target_moments as cpu_target_moments


def _window(
    device: torch.device, dtype: torch.dtype, size: int = 11, sigma: float = 1.5, channels: int = 3
) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def _blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    return F.conv2d(x, _window(x.device, x.dtype, channels=c), padding=5, groups=c)  # window on the images' device


def target_moments(b: torch.Tensor) -> torch.Tensor:
    """b [H,W,C] (a target image) → [2C,H,W]: its blurred b and b², the part of SSIM that depends on the target
    alone (a training view's are computed once, not every step)."""
    if b.device.type == "cpu":
        return cpu_target_moments(b)
    y = b.permute(2, 0, 1)[None]
    return torch.cat([_blur(y), _blur(y * y)], 1)[0]


def ssim(a: torch.Tensor, b: torch.Tensor, b_moments: Optional[torch.Tensor] = None) -> torch.Tensor:
    """a, b: [H,W,C] in [0,1] → mean SSIM. b_moments: b's target_moments where already known (b then has no
    gradient)."""
    if b.requires_grad:
        b_moments = None  # the gradient to b needs its moments in the graph
    elif b_moments is None:
        b_moments = target_moments(b)
    if a.device.type == "cpu" and b_moments is not None:
        return SsimCpu.apply(a, b, b_moments)  # the same value and gradient, without conv2d's cost on the CPU
    x, y = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    c = x.shape[1]
    if b_moments is None:
        mu_y, yy = _blur(y), _blur(y * y)
    else:
        mu_y, yy = b_moments[None, :c], b_moments[None, c:]
    mu_x = _blur(x)
    sxx = _blur(x * x) - mu_x**2
    syy = yy - mu_y**2
    sxy = _blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b) ** 2).mean())
    return 99.0 if mse == 0 else -10.0 * math.log10(mse)
