"""The training loop: views in, trained Gaussians and held-out metrics out, resumable from checkpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np
import torch
from PIL import Image as PILImage

from .backend import Backend
from .colmap import Model
from .depth import DepthFrame, aligned_inverse_depth, decode
from .heldout import is_held_out
from .gaussians import Densifier, Params, init_params, make_optimizers, means_lr, reset_opacities
from .mcmc import make_mcmc, regularization
from .metrics import psnr, ssim, target_moments
from .phases import PHASES
from .presets import Settings


@dataclass
class View:
    """One camera, its tensors on the training device (loaded there once, not copied every step)."""

    name: str
    image: torch.Tensor  # [H,W,3] in [0,1]
    K: torch.Tensor  # [3,3] at this resolution
    viewmat: torch.Tensor  # [4,4] world → camera (OpenCV axes, as COLMAP)
    test: bool
    inv_depth: Optional[torch.Tensor] = None  # [H,W] aligned inverse depth from the depth stage (0: no value)
    # (image, its SSIM target moments): kept with the image they came from, so a replaced image gets its own.
    _moments: Optional[tuple[torch.Tensor, torch.Tensor]] = field(default=None, init=False, repr=False, compare=False)

    def ssim_moments(self) -> torch.Tensor:
        """The image's blurred mean and square for SSIM, on its device: computed at the view's first step, not
        every step (they depend on the target alone)."""
        if self._moments is None or self._moments[0] is not self.image:
            self._moments = (self.image, target_moments(self.image))
        return self._moments[1]

    @property
    def width(self) -> int:
        return self.image.shape[1]

    @property
    def height(self) -> int:
        return self.image.shape[0]


class CheckpointStore(Protocol):
    def load(self) -> Optional[dict]:
        ...

    def save(self, state: dict) -> None:
        ...


class NoCheckpoints:
    """For runs that are never resumed (benchmarks, the GPU check)."""

    def load(self) -> Optional[dict]:
        return None

    def save(self, state: dict) -> None:
        pass


def load_views(
    model: Model, images_dir: Path, max_side: int, test_every: int, depth: Optional[dict[str, DepthFrame]] = None,
    *, device: torch.device,
) -> list[View]:  # fmt: skip
    views = []
    for i, im in enumerate(model.images):
        cam = model.cameras[im.camera_id]
        path = images_dir / im.name
        if not path.exists():
            raise FileNotFoundError(f"image {im.name} of the model is missing from {images_dir}")
        pil = PILImage.open(path).convert("RGB")
        scale = min(1.0, max_side / max(pil.size)) if max_side else 1.0
        w, h = max(1, round(pil.width * scale)), max(1, round(pil.height * scale))
        if (w, h) != pil.size:
            pil = pil.resize((w, h), PILImage.BOX)
        K = cam.K().copy()
        K[0] *= w / cam.width
        K[1] *= h / cam.height
        img = torch.from_numpy(np.asarray(pil, np.float32) / 255.0).to(device)
        test = len(model.images) > 1 and is_held_out(im.name, i, test_every)
        inv_depth = None
        frame = (depth or {}).get(Path(im.name).stem)
        if frame is not None:
            aligned = aligned_inverse_depth(decode(frame, w, h), model.xyz, K, im.viewmat())
            inv_depth = None if aligned is None else torch.from_numpy(aligned.astype(np.float32)).to(device)
        viewmat = torch.tensor(im.viewmat(), dtype=torch.float32, device=device)
        K = torch.tensor(K, dtype=torch.float32, device=device)
        views.append(View(im.name, img, K, viewmat, test, inv_depth))
    return views


def scene_scale(views: list[View]) -> float:
    """1.1 × the largest camera distance from the cameras' centroid (as 3DGS)."""
    centers = torch.stack([-v.viewmat[:3, :3].T @ v.viewmat[:3, 3] for v in views])
    return 1.1 * float((centers - centers.mean(0)).norm(dim=-1).max().clamp_min(1e-3))


def render(backend: Backend, params: Params, view: View, sh_degree: int, mode: str = "RGB"):
    colors = torch.cat([params["sh0"], params["shN"]], 1)
    return backend.rasterization(
        params["means"], params["quats"], torch.exp(params["scales"]), torch.sigmoid(params["opacities"]), colors,
        view.viewmat[None], view.K[None], view.width, view.height, sh_degree=sh_degree,
        render_mode=mode, packed=False, absgrad=False,
    )  # fmt: skip


def evaluate(backend: Backend, params: Params, views: list[View], sh_degree: int) -> dict:
    if not views:
        return {"views": 0, "psnr": None, "ssim": None}
    scores = []
    with torch.no_grad():
        for v in views:
            img = render(backend, params, v, sh_degree)[0][0].clamp(0, 1)
            scores.append((psnr(img, v.image), float(ssim(img, v.image))))
    p, s = np.mean(scores, 0)
    return {"views": len(views), "psnr": round(float(p), 3), "ssim": round(float(s), 4)}


def rng_states(device: torch.device) -> dict:
    """Every torch generator the run draws from: on CUDA the split noise and MCMC's sampling come from the device's
    generator, not the CPU's, so a resumed run repeats the uninterrupted one only with both restored."""
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["cpu"])
    if device.type == "cuda" and "cuda" in states:  # a checkpoint from a CPU run has none: the seed stands
        torch.cuda.set_rng_state(states["cuda"], device)


@dataclass
class Result:
    params: Params
    sh_degree: int
    steps_per_second: float
    resumed_from: int
    losses: list[float]  # mean loss per tenth of the run (what a reader checks for convergence)


def train(
    settings: Settings, backend: Backend, views: list[View], xyz: np.ndarray, rgb: np.ndarray,
    checkpoints: CheckpointStore, on_progress: Callable[[int, dict], None],
) -> Result:  # fmt: skip
    train_views = [v for v in views if not v.test] or views
    scale = scene_scale(views)
    torch.manual_seed(settings.seed)
    dev = backend.device
    params = init_params(xyz, rgb, settings.sh_degree, dev, settings.init_opacity, settings.init_scale)
    optimizers = make_optimizers(params, scale)
    densifier = Densifier(len(xyz), dev)
    mcmc = make_mcmc(settings, backend, params, optimizers) if settings.strategy == "mcmc" else None
    rng = np.random.default_rng(settings.seed)
    step, losses, window = 0, [], []
    order: list[int] = []
    state = checkpoints.load()
    if state is not None:
        step, losses, window, order = state["step"], state["losses"], state["window"], state["order"]
        for name, tensor in state["params"].items():
            params[name] = torch.nn.Parameter(tensor.to(dev))
        optimizers = make_optimizers(params, scale)
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        densifier.load_state_dict({k: v.to(dev) for k, v in state["densifier"].items()})
        rng.bit_generator.state = state["rng"]
        restore_rng_states(state["torch_rng"], dev)
    resumed_from = step
    started, steps_done = time.time(), 0
    chunk = max(1, settings.iterations // 10)
    PHASES.lap("setup")
    while step < settings.iterations:
        if not order:
            order = [int(i) for i in rng.permutation(len(train_views))]
        view = train_views[order.pop()]
        sh_degree = min(step // settings.sh_every, settings.sh_degree)
        for group in optimizers["means"].param_groups:
            group["lr"] = means_lr(step, settings.iterations, scale)
        use_depth = settings.depth_weight > 0 and view.inv_depth is not None
        img, alpha, meta = render(backend, params, view, sh_degree, "RGB+ED" if use_depth else "RGB")
        meta["means2d"].retain_grad()
        PHASES.lap("render")
        pred, gt = img[0][..., :3], view.image
        loss = (1 - settings.ssim_lambda) * (pred - gt).abs().mean() + settings.ssim_lambda * (
            1 - ssim(pred, gt, view.ssim_moments())
        )
        if use_depth:
            target = view.inv_depth
            mask = (alpha[0, ..., 0] > 0.5) & (target > 0)
            if bool(mask.any()):
                # Inverse depth × scene scale: the same weight means the same thing whatever the model's units.
                inv = 1.0 / img[0][..., 3].clamp_min(1e-6)
                loss = loss + settings.depth_weight * scale * (inv - target)[mask].abs().mean()
        if mcmc is not None:
            loss = loss + regularization(params, settings)
        PHASES.lap("loss")
        loss.backward()
        PHASES.lap("backward")
        step += 1
        window.append(float(loss.detach()))
        if mcmc is not None:  # relocates, adds and perturbs Gaussians before the optimizer step, as gsplat's trainer
            mcmc.strategy.step_post_backward(params, optimizers, mcmc.state, step, meta,
                                             lr=optimizers["means"].param_groups[0]["lr"])  # fmt: skip
        elif step < settings.densify_until:
            densifier.accumulate(meta)
        PHASES.lap("densification")
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        PHASES.lap("optimizer")
        stats = {}
        with torch.no_grad():
            if (
                mcmc is None
                and settings.densify_from < step < settings.densify_until
                and step % settings.densify_every == 0
            ):
                stats = densifier.refine(params, optimizers, settings.densify_grad, scale, settings.max_gaussians,
                                         prune_large=step > settings.opacity_reset_every)  # fmt: skip
            if mcmc is None and step < settings.densify_until and step % settings.opacity_reset_every == 0:
                reset_opacities(params, optimizers)
        PHASES.lap("densification")
        if step % chunk == 0 or step == settings.iterations:
            losses.append(round(float(np.mean(window)), 5))
            window = []
        steps_done += 1
        if step % settings.checkpoint_every == 0 and step < settings.iterations:
            checkpoints.save({
                "step": step, "losses": losses, "window": window, "order": order,
                "params": {k: p.detach().cpu() for k, p in params.items()},
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "densifier": {k: v.cpu() for k, v in densifier.state_dict().items()},
                "rng": rng.bit_generator.state, "torch_rng": rng_states(dev),
            })  # fmt: skip
            stats["checkpoint"] = step
        on_progress(step, {"loss": round(float(loss.detach()), 5), "gaussians": len(params["means"]),
                           "steps_per_second": round(steps_done / (time.time() - started), 3), **stats})  # fmt: skip
        PHASES.lap("other")
    elapsed = time.time() - started
    return Result(
        params, settings.sh_degree, round(steps_done / elapsed, 3) if steps_done else 0.0, resumed_from, losses
    )
