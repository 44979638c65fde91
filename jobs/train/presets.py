"""Training settings: presets (`preview` for the CPU, `standard` and `high` for the GPU) and per-request overrides."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, get_type_hints

from ..runtime_py.params import Param, validate


def settable(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    choices: tuple[str, ...] | None = None,
    **default: Any,
) -> Any:
    """A setting a request may override (train's SPLATFLOW_PARAMS), within these bounds; `default=` as `field`'s."""
    return field(metadata={"param": {"minimum": minimum, "maximum": maximum, "choices": choices}}, **default)


@dataclass(frozen=True)
class Settings:
    iterations: int = settable(1, 1_000_000)
    max_side: int = settable(0, 16384)  # training images are downscaled so their long side is at most this (0: full)
    sh_degree: int = settable(0, 3)
    max_gaussians: int = settable(100, 50_000_000)
    densify_from: int = settable(0)
    densify_until: int = settable(0)
    densify_every: int = 100
    # mean screen-space gradient (NDC units) above which a Gaussian is cloned or split
    densify_grad: float = settable(0.0, default=0.0002)
    opacity_reset_every: int = 3000
    sh_every: int = 1000  # one more SH degree every this many steps
    ssim_lambda: float = settable(0.0, 1.0, default=0.2)
    checkpoint_every: int = settable(1, default=2000)
    test_every: int = 8  # every 8th view (by name) is held out for evaluation
    seed: int = settable(0, default=0)
    # L1 on inverse depth against the depth stage's aligned maps, when present (0: off)
    depth_weight: float = settable(0.0, 10.0, default=0.1)
    # default: the 3DGS recipe (clone/split/prune, opacity reset; gaussians.Densifier). mcmc: gsplat's MCMCStrategy
    # (GPU only) under the hard cap max_gaussians, refining every densify_every steps from densify_from to
    # densify_until; it grows the count 5% per refinement until the cap.
    strategy: str = settable(choices=("default", "mcmc"), default="default")
    init_opacity: float = 0.1
    init_scale: float = 1.0  # × the mean distance to the 3 nearest sparse points
    opacity_reg: float = 0.0  # MCMC's regularisers: × mean opacity and × mean scale, added to the loss
    scale_reg: float = 0.0


# gsplat's `simple_trainer.py mcmc` settings (examples/simple_trainer.py, gsplat 1.4.0).
_MCMC = {"strategy": "mcmc", "init_opacity": 0.5, "init_scale": 0.1, "opacity_reg": 0.01, "scale_reg": 0.01}


PRESETS = {
    # CPU, local runs: small images, few Gaussians, short schedule (docs/training.md has the measured time). On the
    # watch orbit, 600 steps left 3k blurred blobs (held-out 23.4 dB); with the numba rasterizer 2000 steps and a
    # 30k cap gave 25.90 dB, and 1500 steps with a 15k cap 25.76 dB in less than half the time (main @ 928b7a6:
    # 24.2–25.1 dB at 2000 steps and 30k).
    "preview": Settings(
        iterations=1500, max_side=256, sh_degree=1, max_gaussians=15_000, densify_from=100, densify_until=1100,
        sh_every=200, checkpoint_every=250,
    ),
    # GPU (gsplat), sized to a 20-minute upload-to-splat on one L4 (docs/performance.md): gsplat-7k's step count
    # with MCMC under a 1M cap, refining twice as often as gsplat's default so a few-thousand-point start reaches the
    # cap (×1.05 per refinement) well before refinement stops.
    "standard": Settings(
        iterations=7_000, max_side=1600, sh_degree=3, max_gaussians=1_000_000, densify_from=500,
        densify_until=5_500, densify_every=50, checkpoint_every=1000, **_MCMC,
    ),
    # GPU, full quality: gsplat's best published Mip-NeRF 360 row (MCMC, 3M cap, 30k steps) at the frames' full size.
    "high": Settings(
        iterations=30_000, max_side=0, sh_degree=3, max_gaussians=3_000_000, densify_from=500,
        densify_until=25_000, **_MCMC,
    ),
}  # fmt: skip


def _schema() -> dict[str, Param]:
    """What train's SPLATFLOW_PARAMS may hold: the preset, the device, and every `settable` field of Settings."""
    types = get_type_hints(Settings)
    overrides = {f.name: Param(types[f.name], **f.metadata["param"]) for f in fields(Settings) if "param" in f.metadata}
    return {
        "preset": Param(str, choices=tuple(PRESETS)),
        "device": Param(str, choices=("auto", "cpu")),  # cpu: our rasterizer even where CUDA is available
        **overrides,
    }


SCHEMA = _schema()


def settings_from_params(params: Mapping[str, Any], default_preset: str) -> tuple[str, Settings]:
    """The preset named (or `default_preset`) with the request's overrides; an unknown or bad key is refused."""
    checked = validate(params, SCHEMA)
    preset = checked.pop("preset", default_preset)
    checked.pop("device", None)  # the backend's choice (main.select_backend), not a setting
    return preset, replace(PRESETS[preset], **checked)
