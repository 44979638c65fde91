"""The depth where a pixel's ray first becomes more opaque than a half (the median depth of its compositing weights)
on the CPU rasterizer's projection and tile binning, for the mesh stage.

The alpha-blended expected depth averages every Gaussian along the ray, so large semi-transparent Gaussians and
floaters in front pull it off the surface (measured on room.mp4's preview: ~11% of the depth in front of the sfm
points); the first crossing is the depth of the Gaussian that makes the surface opaque, which sits on it."""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange

from .raster_cpu import ALPHA_MAX, ALPHA_MIN, _bin, _np, _schedule, _visible_boxes, project, tile_rects

CROSSING = 0.5  # transmittance at which the ray counts as having met the surface


@njit(parallel=True, cache=True)
def _first_crossing(means2d, conics, opacities, depths, offsets, ids, boxes, width, height, tiles_x, ts, starts,
                    tiles, out):  # fmt: skip
    for w in prange(len(starts) - 1):
        T = np.empty(ts * ts)
        for ti in range(starts[w], starts[w + 1]):
            t = tiles[ti]
            x0, y0 = (t % tiles_x) * ts, (t // tiles_x) * ts
            x1, y1 = min(x0 + ts, width) - 1, min(y0 + ts, height) - 1
            T[:] = 1.0
            n_pixels, n_done = (x1 - x0 + 1) * (y1 - y0 + 1), 0
            for k in range(offsets[t], offsets[t + 1]):
                g = ids[k]
                o, mx, my = opacities[g], means2d[g, 0], means2d[g, 1]
                c0, c1, c2 = conics[g, 0], conics[g, 1], conics[g, 2]
                for py in range(max(y0, boxes[g, 2]), min(y1, boxes[g, 3]) + 1):
                    dy = my - (py + 0.5)
                    for px in range(max(x0, boxes[g, 0]), min(x1, boxes[g, 1]) + 1):
                        i = (py - y0) * ts + (px - x0)
                        if T[i] < CROSSING:
                            continue
                        dx = mx - (px + 0.5)
                        sigma = 0.5 * (c0 * dx * dx + c2 * dy * dy) + c1 * dx * dy
                        if sigma < 0.0:
                            continue
                        alpha = min(ALPHA_MAX, o * math.exp(-sigma))
                        if alpha < ALPHA_MIN:
                            continue
                        T[i] *= 1.0 - alpha
                        if T[i] < CROSSING:
                            out[py, px] = depths[g]
                            n_done += 1
                if n_done == n_pixels:
                    break


def median_depth(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                 viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
                 tile_size: int = 16) -> torch.Tensor:  # fmt: skip
    """One camera (scales and opacities activated, as `rasterization` takes them; CPU tensors) → depth [H,W], 0
    where the ray never gets more opaque than CROSSING."""
    with torch.no_grad():
        means2d, conics, depths, radii = project(means, quats, scales, viewmat, K, width, height)
    m, q, op, d = _np(means2d), _np(conics), _np(opacities), _np(depths).astype(np.float64)
    r = radii.cpu().numpy()
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    visible = np.nonzero(r > 0)[0]
    order = visible[np.argsort(d[visible], kind="stable")]
    boxes = _visible_boxes(m, q, op, width, height)
    offsets, ids = _bin(order, tile_rects(m, r, tile_size, tiles_x, tiles_y), boxes, tile_size, tiles_x,
                        tiles_x * tiles_y)  # fmt: skip
    starts, tiles = _schedule(offsets, numba.get_num_threads())
    out = np.zeros((height, width))
    _first_crossing(m, q, op, d, offsets, ids, boxes, width, height, tiles_x, tile_size, starts, tiles, out)
    return torch.from_numpy(out.astype(np.float32))
