"""Truncated signed distance fusion of depth maps into a voxel grid, and the surface's extraction by marching cubes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.measure import marching_cubes


@dataclass
class Volume:
    origin: np.ndarray  # world position of voxel (0,0,0)'s centre
    voxel: float
    tsdf: np.ndarray  # [X,Y,Z] in [-1,1], + in front of the surface
    weight: np.ndarray
    color: np.ndarray  # [X,Y,Z,3] in [0,1]

    @classmethod
    def around(cls, lo: np.ndarray, hi: np.ndarray, resolution: int) -> "Volume":
        """A grid over the box lo..hi with `resolution` voxels along its longest side."""
        voxel = float((hi - lo).max()) / resolution
        dims = np.maximum(1, np.ceil((hi - lo) / voxel).astype(int) + 1)
        return cls(lo.astype(np.float64), voxel, np.ones(dims, np.float32), np.zeros(dims, np.float32),
                   np.zeros((*dims, 3), np.float32))  # fmt: skip

    def centers(self) -> np.ndarray:
        idx = np.stack(np.meshgrid(*[np.arange(d) for d in self.tsdf.shape], indexing="ij"), -1).reshape(-1, 3)
        return self.origin + idx * self.voxel

    def integrate(self, depth: np.ndarray, rgb: np.ndarray, K: np.ndarray, viewmat: np.ndarray, trunc: float,
                  points: np.ndarray | None = None) -> None:  # fmt: skip
        """depth [H,W] (0 = no surface), rgb [H,W,3], K [3,3], viewmat world→camera [4,4]."""
        pts = self.centers() if points is None else points
        cam = pts @ viewmat[:3, :3].T + viewmat[:3, 3]
        z = cam[:, 2]
        h, w = depth.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.floor(K[0, 0] * cam[:, 0] / z + K[0, 2]).astype(np.int64)
            v = np.floor(K[1, 1] * cam[:, 1] / z + K[1, 2]).astype(np.int64)
        ok = (z > 1e-6) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        d = np.zeros_like(z)
        d[ok] = depth[v[ok], u[ok]]
        sdf = d - z
        ok &= (d > 0) & (sdf > -trunc)  # voxels far behind the surface are unseen, not empty
        flat_t, flat_w, flat_c = self.tsdf.reshape(-1), self.weight.reshape(-1), self.color.reshape(-1, 3)
        t = np.minimum(1.0, sdf[ok] / trunc)
        wt = flat_w[ok]
        flat_t[ok] = (flat_t[ok] * wt + t) / (wt + 1)
        flat_c[ok] = (flat_c[ok] * wt[:, None] + rgb[v[ok], u[ok]]) / (wt[:, None] + 1)
        flat_w[ok] = wt + 1

    def extract(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vertices [V,3] (world), faces [F,3], vertex colours [V,3]: the zero level set, only where every voxel of
        the cell was observed (an unobserved voxel next to an observed one is not a surface)."""
        if not (self.tsdf.min() < 0 < self.tsdf.max()):
            return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3))
        verts, faces, _, _ = marching_cubes(self.tsdf, level=0.0, allow_degenerate=False)
        cell = np.clip(np.floor(verts).astype(int), 0, np.array(self.tsdf.shape) - 2)
        seen = np.ones(len(verts), bool)
        for off in np.ndindex(2, 2, 2):
            c = cell + off
            seen &= self.weight[c[:, 0], c[:, 1], c[:, 2]] > 0
        faces = faces[seen[faces].all(1)]
        used = np.unique(faces)
        remap = np.zeros(len(verts), np.int64)
        remap[used] = np.arange(len(used))
        verts, faces = verts[used], remap[faces]
        near = np.clip(np.rint(verts).astype(int), 0, np.array(self.tsdf.shape) - 1)
        colors = self.color[near[:, 0], near[:, 1], near[:, 2]]
        return self.origin + verts * self.voxel, faces, colors
