"""Vertex colours from the photos themselves: each vertex is projected into every training image where the mesh's own
depth says nothing is in front of it, sampled there (bilinear, at the images' full resolution) and averaged,
weighted by how squarely the camera sees the surface. A vertex no photo sees keeps the colour fusion gave it.

What the photos hold is sharper than the splat's renders (which blur between views) and than a voxel's average
(which spreads one colour over several pixels)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .raster import NEAR, project, render_mesh

VISIBLE_DEPTH = 0.01  # a vertex within this share of the depth behind the mesh's nearest surface counts as seen


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    n = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    out = np.zeros_like(verts)
    for k in range(3):
        np.add.at(out, faces[:, k], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """image [H,W,C] sampled at pixel positions uv [N,2] (pixel centres at +0.5), clamped at the border."""
    h, w = image.shape[:2]
    x, y = np.clip(uv[:, 0] - 0.5, 0, w - 1), np.clip(uv[:, 1] - 0.5, 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2 if w > 1 else 0), np.minimum(
        np.floor(y).astype(int), h - 2 if h > 1 else 0
    )
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def photo_colors(verts: np.ndarray, faces: np.ndarray, fallback: np.ndarray,
                 photos: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, float]:  # fmt: skip
    """photos: (image [H,W,3] in [0,1], K [3,3] at that image's size, viewmat [4,4]) per training view. Answers the
    colours [V,3] and the share of vertices at least one photo saw."""
    normals = vertex_normals(verts, faces)
    total = np.zeros((len(verts), 3))
    weight = np.zeros(len(verts))
    for image, K, viewmat in photos:
        h, w = image.shape[:2]
        _, zbuf = render_mesh(verts, faces, np.zeros_like(verts), K, viewmat, w, h)
        uv, z = project(verts, K, viewmat)
        px, py = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
        inside = (z > NEAR) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
        near = np.full(len(verts), np.inf)
        # The nearest surface around the vertex's pixel: the vertex itself lies on triangle edges, which a pixel
        # centre may just miss.
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                qx, qy = np.clip(px + dx, 0, w - 1), np.clip(py + dy, 0, h - 1)
                near = np.minimum(near, np.where(inside, zbuf[qy, qx], np.inf))
        visible = inside & (z <= near * (1 + VISIBLE_DEPTH))
        centre = -viewmat[:3, :3].T @ viewmat[:3, 3]
        ray = centre - verts
        cos = np.abs(np.sum(normals * ray, 1)) / np.maximum(np.linalg.norm(ray, axis=1), 1e-12)
        wgt = np.where(visible, cos, 0.0)
        idx = np.flatnonzero(wgt > 0)
        total[idx] += wgt[idx, None] * bilinear(image, uv[idx])
        weight += wgt
    seen = weight > 0
    colors = np.where(seen[:, None], total / np.maximum(weight, 1e-12)[:, None], fallback)
    return colors, float(seen.mean()) if len(verts) else 0.0
