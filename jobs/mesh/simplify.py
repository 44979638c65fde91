"""Mesh simplification by vertex clustering: vertices in one grid cell merge into their mean; faces that collapse
are dropped. Coarser cells until the face budget is met. Crude beside quadric decimation, but robust and fast."""

from __future__ import annotations

import numpy as np


def cluster(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, cell: float):
    keys = np.floor((verts - verts.min(0)) / cell).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    n = len(counts)
    new_verts = np.zeros((n, 3))
    new_colors = np.zeros((n, 3))
    np.add.at(new_verts, inverse, verts)
    np.add.at(new_colors, inverse, colors)
    new_verts /= counts[:, None]
    new_colors /= counts[:, None]
    f = inverse[faces]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    _, first = np.unique(np.sort(f, 1), axis=0, return_index=True)
    f = f[np.sort(first)]
    used = np.unique(f)
    remap = np.full(n, -1)
    remap[used] = np.arange(len(used))
    return new_verts[used], remap[f], new_colors[used]


def simplify(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, target_faces: int, start_cell: float):
    cell = start_cell
    while len(faces) > target_faces:
        verts, faces, colors = cluster(verts, faces, colors, cell)
        cell *= 1.5
    return verts, faces, colors
