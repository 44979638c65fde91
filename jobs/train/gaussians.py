"""The Gaussians being trained, their optimizers, and adaptive density control (the 3DGS recipe as gsplat's default
strategy does it: clone small and split large Gaussians whose screen-space gradient is high, prune transparent or
huge ones, reset opacities now and then)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from .raster_cpu import quat_to_rotmat
from .sh import num_coeffs, rgb_to_sh

Params = dict[str, torch.nn.Parameter]
Optimizers = dict[str, torch.optim.Adam]


def init_params(xyz: np.ndarray, rgb: np.ndarray, sh_degree: int, device: torch.device, init_opacity: float = 0.1,
                init_scale: float = 1.0) -> Params:  # fmt: skip
    """One Gaussian per sparse point: isotropic, sized by `init_scale` × the mean distance to its 3 nearest
    neighbours."""
    n = len(xyz)
    k = min(4, n)
    dist, _ = cKDTree(xyz).query(xyz, k=k)
    mean_dist = np.sqrt((dist[:, 1:] ** 2).mean(1)) if k > 1 else np.full(n, 0.01)
    scales = np.log(np.clip(init_scale * mean_dist, 1e-7, None))[:, None].repeat(3, 1)
    sh = torch.zeros(n, num_coeffs(sh_degree), 3, device=device)
    sh[:, 0] = rgb_to_sh(torch.from_numpy(rgb.astype(np.float32) / 255.0).to(device))
    tensors = {
        "means": torch.from_numpy(xyz.astype(np.float32)).to(device),
        "scales": torch.from_numpy(scales.astype(np.float32)).to(device),
        "quats": torch.tensor([[1.0, 0, 0, 0]], device=device).repeat(n, 1),
        "opacities": torch.full((n,), math.log(init_opacity / (1 - init_opacity)), device=device),
        "sh0": sh[:, :1].contiguous(),
        "shN": sh[:, 1:].contiguous(),
    }
    return {k: torch.nn.Parameter(v) for k, v in tensors.items()}


def make_optimizers(params: Params, scene_scale: float) -> Optimizers:
    """Learning rates of the 3DGS paper (means scaled by the scene's size)."""
    lrs = {"means": 1.6e-4 * scene_scale, "scales": 5e-3, "quats": 1e-3, "opacities": 5e-2, "sh0": 2.5e-3}
    lrs["shN"] = lrs["sh0"] / 20
    return {k: torch.optim.Adam([params[k]], lr=lr, eps=1e-15) for k, lr in lrs.items()}


def means_lr(step: int, iterations: int, scene_scale: float) -> float:
    """Exponential decay from 1.6e-4 to 1.6e-6 (× scene scale) over the run."""
    return 1.6e-4 * scene_scale * 0.01 ** min(1.0, step / max(1, iterations))


def _update(params: Params, optimizers: Optimizers, new_param: Callable, new_state: Callable) -> None:
    """Replace every parameter tensor and carry its Adam moments along (rows added, removed or reset)."""
    for name, opt in optimizers.items():
        old = params[name]
        state = opt.state.pop(old, {})
        p = torch.nn.Parameter(new_param(name, old.detach()))
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key] = new_state(name, state[key])
        opt.param_groups[0]["params"] = [p]
        if state:
            opt.state[p] = state
        params[name] = p


class Densifier:
    def __init__(self, n: int, device: torch.device) -> None:
        self.grad2d = torch.zeros(n, device=device)
        self.count = torch.zeros(n, device=device)

    def state_dict(self) -> dict:
        return {"grad2d": self.grad2d, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.grad2d, self.count = state["grad2d"], state["count"]

    def accumulate(self, meta: dict) -> None:
        """After backward: the screen-space gradient norm (in NDC units, as gsplat) of the Gaussians drawn."""
        grads = meta["means2d"].grad.detach().clone()  # [C,N,2]
        grads[..., 0] *= meta["width"] / 2.0 * meta["n_cameras"]
        grads[..., 1] *= meta["height"] / 2.0 * meta["n_cameras"]
        radii = meta["radii"].reshape(grads.shape[0], grads.shape[1], -1)
        visible = (radii > 0).all(-1)
        norms = grads.norm(dim=-1)
        self.grad2d += (norms * visible).sum(0)
        self.count += visible.sum(0)

    def refine(self, params: Params, optimizers: Optimizers, grad_threshold: float, scene_scale: float,
               max_gaussians: int, prune_large: bool) -> dict[str, int]:  # fmt: skip
        n = len(params["means"])
        avg = self.grad2d / self.count.clamp_min(1)
        high = avg > grad_threshold
        room = max(0, max_gaussians - n)
        if int(high.sum()) > room:  # at the cap: densify only the strongest
            keep = torch.zeros_like(high)
            if room:
                keep[torch.topk(torch.where(high, avg, torch.zeros_like(avg)), room).indices] = True
            high = high & keep
        big = torch.exp(params["scales"]).max(-1).values > 0.01 * scene_scale
        cloned = self._clone(params, optimizers, high & ~big)
        split = self._split(
            params, optimizers, torch.cat([high & big, torch.zeros(cloned, dtype=torch.bool, device=high.device)])
        )
        opacity = torch.sigmoid(params["opacities"])
        prune = opacity < 0.005
        if prune_large:
            prune |= torch.exp(params["scales"]).max(-1).values > 0.1 * scene_scale
        self._keep(params, optimizers, ~prune)
        self.__init__(len(params["means"]), params["means"].device)
        return {"cloned": cloned, "split": split, "pruned": int(prune.sum())}

    @staticmethod
    def _clone(params: Params, optimizers: Optimizers, mask: torch.Tensor) -> int:
        _update(params, optimizers, lambda _, p: torch.cat([p, p[mask]]),
                lambda _, s: torch.cat([s, torch.zeros_like(s[mask])]))  # fmt: skip
        return int(mask.sum())

    @staticmethod
    def _split(params: Params, optimizers: Optimizers, mask: torch.Tensor) -> int:
        """Each selected Gaussian becomes two, sampled from it and 1.6× smaller."""
        scales = torch.exp(params["scales"][mask].detach())
        rot = quat_to_rotmat(params["quats"][mask].detach())
        offsets = torch.einsum("nij,snj->sni", rot, torch.randn(2, len(scales), 3, device=scales.device) * scales)
        keep = ~mask

        def param(name, p):
            if name == "means":
                new = (p[mask][None] + offsets).reshape(-1, 3)
            elif name == "scales":
                new = torch.log(scales / 1.6).repeat(2, 1)
            else:
                new = p[mask].repeat(2, *[1] * (p.dim() - 1))
            return torch.cat([p[keep], new])

        _update(
            params,
            optimizers,
            param,
            lambda _, s: torch.cat([s[keep], torch.zeros_like(s[mask]).repeat(2, *[1] * (s.dim() - 1))]),
        )
        return int(mask.sum())

    @staticmethod
    def _keep(params: Params, optimizers: Optimizers, mask: torch.Tensor) -> None:
        _update(params, optimizers, lambda _, p: p[mask], lambda _, s: s[mask])


def reset_opacities(params: Params, optimizers: Optimizers, value: float = 0.01) -> None:
    ceiling = math.log(value / (1 - value))
    only = {"opacities": optimizers["opacities"]}
    _update(params, only, lambda _, p: p.clamp_max(ceiling), lambda _, s: torch.zeros_like(s))
