"""Which rasterizer renders: gsplat on CUDA when it really renders there (the container), else our CPU one. Both have
gsplat's `rasterization` signature, so training, evaluation and mesh rendering are one code path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass(frozen=True)
class Backend:
    name: str
    device: torch.device
    rasterization: Callable
    # Why a CUDA machine trains on the CPU (gsplat missing or unable to render), for the stage's log; None otherwise.
    fallback_reason: Optional[str] = None


def renders(rasterization: Callable, device: torch.device) -> Optional[str]:
    """None if `rasterization` draws one Gaussian in front of a camera on `device` into finite pixels, else why not.

    gsplat 1.4.0 loads its CUDA library at the first render, not at import (gsplat/cuda/_wrapper.py calls into
    `_backend._C` lazily), and when the library cannot load and no nvcc is there to JIT-build it, `_backend` only
    prints "gsplat will be disabled" and leaves `_C = None`: importing succeeds and the first render fails."""
    f = lambda *rows: torch.tensor(rows, dtype=torch.float32, device=device)  # noqa: E731
    try:
        img, alpha, _ = rasterization(
            f([0.0, 0.0, 2.0]), f([1.0, 0.0, 0.0, 0.0]), f([0.2, 0.2, 0.2]), f(0.9), f([0.8, 0.4, 0.2]),
            torch.eye(4, device=device)[None], f([16.0, 0, 8], [0, 16.0, 8], [0, 0, 1])[None], 16, 16,
        )  # fmt: skip
        if img.shape != (1, 16, 16, 3) or not bool(torch.isfinite(img).all()) or float(alpha.max()) <= 0.5:
            return f"a test render gave {tuple(img.shape)} pixels, max alpha {float(alpha.max()):.3f}"
    except Exception as e:  # any failure to render means this backend cannot train
        return f"a test render failed: {type(e).__name__}: {e}"
    return None


def _import_gsplat() -> Callable:
    from gsplat import rasterization  # the container image pins gsplat

    return rasterization


def select_backend(
    prefer_cpu: bool = False,
    cuda_available: Callable[[], bool] = torch.cuda.is_available,
    import_gsplat: Callable[[], Callable] = _import_gsplat,
    gpu: torch.device = torch.device("cuda"),
) -> Backend:
    reason = None
    if not prefer_cpu and cuda_available():
        try:
            rasterization = import_gsplat()
        except ImportError as e:
            reason = f"gsplat cannot be imported: {e}"
        else:
            reason = renders(rasterization, gpu)
            if reason is None:
                return Backend("gsplat-cuda", gpu, rasterization)
    from .raster_cpu import rasterization

    # The numba kernels use every core; torch's own threads only add synchronisation on these small tensors
    # (measured: projection + backward of 5k Gaussians 0.03 s on 1 thread, 0.18 s on 2 on a busy 2-core machine).
    torch.set_num_threads(1)
    return Backend("cpu", torch.device("cpu"), rasterization, reason)
