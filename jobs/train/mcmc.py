"""gsplat's MCMC densification ("3D Gaussian Splatting as Markov Chain Monte Carlo", Kheradmand et al. 2024) for the
GPU path: a hard cap on the Gaussian count, dead Gaussians relocated to live ones, new ones sampled by opacity, and
position noise. gsplat's own `MCMCStrategy`, with the settings of gsplat's `simple_trainer.py mcmc` (opacity and
scale regularisation 0.01, initial opacity 0.5 and scale 0.1); its relocation is a CUDA kernel, so only the
gsplat backend has it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..runtime_py.stage import Refused
from .backend import Backend
from .presets import Settings


@dataclass
class Mcmc:
    strategy: Any  # gsplat.strategy.MCMCStrategy
    state: dict


def check_backend(settings: Settings, backend: Backend) -> None:
    """Refuses MCMC where gsplat does not render (checked before the stage downloads anything)."""
    if settings.strategy == "mcmc" and backend.name != "gsplat-cuda":
        why = f" ({backend.fallback_reason})" if backend.fallback_reason else ""
        raise Refused(
            f"strategy 'mcmc' needs gsplat on CUDA, and this machine trains on the CPU{why}: "
            "use preset 'preview', or set strategy 'default'"
        )


def make_mcmc(settings: Settings, backend: Backend, params: dict, optimizers: dict) -> Mcmc:
    check_backend(settings, backend)
    from gsplat.strategy import MCMCStrategy  # the container image pins gsplat 1.4.0

    strategy = MCMCStrategy(
        cap_max=settings.max_gaussians, refine_start_iter=settings.densify_from,
        refine_stop_iter=settings.densify_until, refine_every=settings.densify_every,
    )  # fmt: skip
    strategy.check_sanity(params, optimizers)
    return Mcmc(strategy, strategy.initialize_state())


def regularization(params: dict, settings: Settings) -> torch.Tensor:
    """What keeps MCMC's Gaussians small and prunable (gsplat's simple_trainer: opacity_reg, scale_reg)."""
    return (
        settings.opacity_reg * torch.sigmoid(params["opacities"]).mean()
        + settings.scale_reg * torch.exp(params["scales"]).mean()
    )
