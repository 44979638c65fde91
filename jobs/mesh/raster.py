"""A z-buffered rasteriser of the vertex-coloured mesh: what a viewer shows of it, unlit, from one camera. The mesh
stage scores it against the photos (quality.py) and checks which vertices a camera sees (colour.py). numba on the
CPU, triangle by triangle: a preview mesh (≤ a few 100k faces) renders in well under a second at training size."""

from __future__ import annotations

import numpy as np
from numba import njit

NEAR = 1e-3  # triangles with a corner nearer than this (or behind the camera) are not drawn


def project(verts: np.ndarray, K: np.ndarray, viewmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points [N,3] → pixel positions [N,2] (pixel centres at +0.5, as the splat renderers) and depths [N]."""
    cam = verts @ viewmat[:3, :3].T + viewmat[:3, 3]
    z = cam[:, 2]
    zs = np.where(z > NEAR, z, 1.0)
    uv = np.stack([K[0, 0] * cam[:, 0] / zs + K[0, 2], K[1, 1] * cam[:, 1] / zs + K[1, 2]], 1)
    return uv, z


@njit(cache=True)
def _raster(uv, z, faces, colors, width, height, depth, rgb):
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        if z[a] <= NEAR or z[b] <= NEAR or z[c] <= NEAR:
            continue
        ax, ay, bx, by, cx, cy = uv[a, 0], uv[a, 1], uv[b, 0], uv[b, 1], uv[c, 0], uv[c, 1]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-12:
            continue
        x0, x1 = max(0, int(np.floor(min(ax, bx, cx) - 0.5))), min(width - 1, int(np.ceil(max(ax, bx, cx) - 0.5)))
        y0, y1 = max(0, int(np.floor(min(ay, by, cy) - 0.5))), min(height - 1, int(np.ceil(max(ay, by, cy) - 0.5)))
        ia, ib, ic = 1.0 / z[a], 1.0 / z[b], 1.0 / z[c]
        for py in range(y0, y1 + 1):
            y = py + 0.5
            for px in range(x0, x1 + 1):
                x = px + 0.5
                wa = ((bx - x) * (cy - y) - (by - y) * (cx - x)) / area
                wb = ((cx - x) * (ay - y) - (cy - y) * (ax - x)) / area
                wc = 1.0 - wa - wb
                if wa < 0.0 or wb < 0.0 or wc < 0.0:
                    continue
                inv = wa * ia + wb * ib + wc * ic  # perspective-correct: 1/z is linear in screen space
                d = 1.0 / inv
                if d >= depth[py, px]:
                    continue
                depth[py, px] = d
                for k in range(3):
                    rgb[py, px, k] = (wa * ia * colors[a, k] + wb * ib * colors[b, k] + wc * ic * colors[c, k]) * d


def render_mesh(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, K: np.ndarray, viewmat: np.ndarray,
                width: int, height: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The mesh from one camera (K [3,3] at width×height, viewmat world→camera [4,4], OpenCV axes): colour [H,W,3]
    (black where no triangle) and depth [H,W] (inf where no triangle)."""
    uv, z = project(np.asarray(verts, np.float64), np.asarray(K, np.float64), np.asarray(viewmat, np.float64))
    depth = np.full((height, width), np.inf)
    rgb = np.zeros((height, width, 3))
    _raster(uv, z, np.ascontiguousarray(faces, np.int64), np.asarray(colors, np.float64), width, height, depth, rgb)
    return rgb, depth
