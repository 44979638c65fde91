"""The mesh's quality as a user would judge it: the vertex-coloured mesh drawn (unlit, z-buffered) at each view the
train stage held out, scored against the photo with the train stage's PSNR and SSIM at the same resolution, beside the
splat's scores on the same views. `covered` is the share of pixels a triangle (or, for the splat, opacity above a
half) covers; uncovered pixels are black in both, as the splat's background, so holes cost PSNR too: 5% of a white
wall left black alone caps PSNR near 15 dB. `psnr_on_mesh` is both renders' PSNR over the pixels the mesh covers, which
tells the surface's own quality apart from its holes. One image per view: ground truth | mesh | splat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..train.backend import Backend
from ..train.gaussians import Params
from ..train.metrics import psnr, ssim
from ..train.renders import side_by_side
from ..train.trainer import View, render
from .raster import render_mesh


def _scores(image: torch.Tensor, truth: torch.Tensor, covered: float, mesh_mask: torch.Tensor) -> dict:
    on_mesh = round(psnr(image[mesh_mask], truth[mesh_mask]), 3) if bool(mesh_mask.any()) else None
    return {"psnr": round(psnr(image, truth), 3), "ssim": round(float(ssim(image, truth)), 4),
            "covered": round(covered, 4), "psnr_on_mesh": on_mesh}  # fmt: skip


def _mean(entries: list[dict], key: str) -> dict:
    def mean(k: str):
        values = [e[key][k] for e in entries if e[key][k] is not None]
        return round(float(np.mean(values)), 4) if values else None

    return {k: mean(k) for k in ("psnr", "ssim", "covered", "psnr_on_mesh")}


def score_heldout(folder: Path, mesh: tuple[np.ndarray, np.ndarray, np.ndarray], backend: Backend, params: Params,
                  sh_degree: int, views: list[View]) -> dict:  # fmt: skip
    """views: the held-out views with their photos. Writes `{folder}/{view}.png` and answers the means and, per
    view, its file (`{folder name}/{view}.png`), camera and both scores."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for view in sorted(views, key=lambda v: v.name):
        rgb, depth = render_mesh(*mesh, view.K.cpu().numpy(), view.viewmat.cpu().numpy(), view.width, view.height)
        truth = view.image
        mesh_img = torch.from_numpy(rgb.astype(np.float32)).to(truth.device).clamp(0, 1)
        with torch.no_grad():
            img, alpha, _ = render(backend, params, view, sh_degree)
        splat_img = img[0].clamp(0, 1)
        on_mesh = torch.from_numpy(np.isfinite(depth)).to(truth.device)
        m = _scores(mesh_img, truth, float(on_mesh.float().mean()), on_mesh)
        s = _scores(splat_img, truth, float((alpha[0] > 0.5).float().mean()), on_mesh)
        name = f"{Path(view.name).stem}.png"
        caption = (
            f"{view.name}  mesh {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}, {100 * m['covered']:.0f}% covered  |  "
            f"splat {s['psnr']:.2f} dB, SSIM {s['ssim']:.3f}"
        )
        panels = [("ground truth", truth), ("mesh", mesh_img), ("splat", splat_img)]
        side_by_side([(label, image.cpu()) for label, image in panels], caption).save(folder / name)
        entries.append({"file": f"{folder.name}/{name}", "camera": view.name, "mesh": m, "splat": s})
    if not entries:
        return {"views": 0, "mesh": None, "splat": None, "heldout": []}
    return {"views": len(entries), "mesh": _mean(entries, "mesh"), "splat": _mean(entries, "splat"), "heldout": entries}
