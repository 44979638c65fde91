"""Pictures of the trained splat drawn by the trainer's own renderer (gsplat on GPU, our rasterizer on CPU), so what a
user sees first is what the model really renders: the thumbnail through a training camera and, for every held-out
view, its ground truth beside the render with that view's PSNR and SSIM."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from .backend import Backend
from .gaussians import Params
from .metrics import psnr, ssim
from .trainer import View, render

# Longer side of `thumbnail.png` (export downsizes it to its `thumbnail_size`).
THUMBNAIL_SIDE = 512
# Longer side of each half of a comparison: enough to judge detail, small enough for hundreds of held-out views.
COMPARISON_SIDE = 512
LABEL_HEIGHT = 24


def thumbnail_view(views: list[View]) -> View:
    """The middle training view by name (frame order), as export's representative camera."""
    train_views = sorted((v for v in views if not v.test), key=lambda v: v.name) or sorted(views, key=lambda v: v.name)
    return train_views[len(train_views) // 2]


def at_size(view: View, long_side: int) -> View:
    """The same camera with its image and intrinsics scaled so the longer side is `long_side` pixels."""
    s = long_side / max(view.width, view.height)
    w, h = max(1, round(view.width * s)), max(1, round(view.height * s))
    K = view.K.clone()
    K[0] *= w / view.width
    K[1] *= h / view.height
    return dataclasses.replace(view, image=torch.zeros(h, w, 3, device=view.image.device), K=K, inv_depth=None)


def render_rgb(backend: Backend, params: Params, view: View, sh_degree: int) -> torch.Tensor:
    with torch.no_grad():
        return render(backend, params, view, sh_degree)[0][0][..., :3].clamp(0, 1).cpu()


def to_pil(image: torch.Tensor) -> PILImage.Image:
    return PILImage.fromarray((image.numpy() * 255 + 0.5).astype(np.uint8))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # Pillow ≥ 10.1: a scalable font ships with Pillow
    except TypeError:
        return ImageFont.load_default()  # older Pillow (Debian 12's 9.4): its small bitmap font


def comparison(truth: torch.Tensor, rendered: torch.Tensor, caption: str) -> PILImage.Image:
    """Ground truth (left) beside the render (right), each at most COMPARISON_SIDE, over a caption bar."""
    return side_by_side([("ground truth", truth), ("render", rendered)], caption)


def side_by_side(panels: list[tuple[str, torch.Tensor]], caption: str) -> PILImage.Image:
    """Labelled images [H,W,3] of one size left to right, each at most COMPARISON_SIDE, over a caption bar."""
    images = [to_pil(image) for _, image in panels]
    s = min(1.0, COMPARISON_SIDE / max(images[0].size))
    size = (max(1, round(images[0].width * s)), max(1, round(images[0].height * s)))
    canvas = PILImage.new("RGB", (len(images) * size[0], size[1] + LABEL_HEIGHT), (20, 20, 20))
    draw, font = ImageDraw.Draw(canvas), _font(14)
    # The labels' bar covers the top 17 rows; 12 px type from row 1 keeps Pillow's scalable font's descenders in it.
    for i, ((label, _), image) in enumerate(zip(panels, images)):
        x = i * size[0]
        canvas.paste(image.resize(size, PILImage.BOX), (x, 0))
        draw.rectangle((x, 0, x + 8 + 8 * len(label), 16), fill=(20, 20, 20))
        draw.text((x + 4, 1), label, fill=(235, 235, 235), font=_font(12))
    draw.text((6, size[1] + 5), caption, fill=(235, 235, 235), font=font)
    return canvas


def write_thumbnail(path: Path, backend: Backend, params: Params, views: list[View], sh_degree: int) -> dict:
    view = at_size(thumbnail_view(views), THUMBNAIL_SIDE)
    to_pil(render_rgb(backend, params, view, sh_degree)).save(path)
    return {"file": path.name, "camera": view.name, "width": view.width, "height": view.height}


def write_comparisons(folder: Path, backend: Backend, params: Params, views: list[View], sh_degree: int) -> list[dict]:
    """One PNG per held-out view under `folder`; answers each one's file (`{folder name}/{view}.png`), camera and
    scores."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for view in sorted((v for v in views if v.test), key=lambda v: v.name):
        rendered = render_rgb(backend, params, view, sh_degree)
        scores = {"psnr": round(psnr(rendered, view.image), 3), "ssim": round(float(ssim(rendered, view.image)), 4)}
        name = f"{Path(view.name).stem}.png"
        caption = f"{view.name}  PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.3f}"
        comparison(view.image, rendered, caption).save(folder / name)
        entries.append({"file": f"{folder.name}/{name}", "camera": view.name, **scores})
    return entries
