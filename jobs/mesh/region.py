"""Where to fuse and how finely, from what the cameras see: the surface points of the depth maps rendered at the
training views give the region (robust percentiles, so floaters and a few stray far pixels do not size the grid) and
the typical viewing depth; the voxel is a pixel footprint at that depth, coarsened only where the grid would pass its
memory budget.

An unbounded scene's far background (trees behind an object walked round, a street beyond a window) is cut on
purpose: pixels deeper than FAR × their view's median depth do not size the region, and what lies beyond the region
is not meshed; the splat keeps it. Without the cut the background set the box on an outdoor orbit (stone_sign.mp4: a
voxel of 21 pixels, the cairn a grey blob)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGION_PERCENTILES = (0.5, 99.5)  # of the views' surface points, per axis
PAD = 0.05  # of the region's extent, on each side: surfaces at the region's edge keep both sides of their band
SAMPLES_PER_VIEW = 4096  # surface points drawn from each depth map (the percentiles need no more)
FAR = 3.0  # pixels deeper than this many times their view's median depth are background


@dataclass
class Region:
    lo: np.ndarray  # [3] world
    hi: np.ndarray  # [3]
    depth: float  # median depth of the views' surface pixels
    footprint: float  # world size of one training pixel at that depth


def surface_points(depth: np.ndarray, K: np.ndarray, viewmat: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` world points of a depth map [H,W] (0 = no surface), evenly strided over its valid pixels."""
    valid = depth[depth > 0]
    ys, xs = np.nonzero((depth > 0) & (depth <= FAR * (np.median(valid) if len(valid) else 0.0)))
    pick = np.linspace(0, len(ys) - 1, min(count, len(ys))).astype(int) if len(ys) else np.zeros(0, int)
    ys, xs = ys[pick], xs[pick]
    z = depth[ys, xs]
    cam = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0] * z, (ys + 0.5 - K[1, 2]) / K[1, 1] * z, z], 1)
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    return (cam - t) @ R  # camera → world: R^T (x - t)


def fusion_region(depths: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Region:
    """depths: (depth [H,W], K [3,3], viewmat [4,4]) per training view."""
    points = np.concatenate([surface_points(d, K, vm, SAMPLES_PER_VIEW) for d, K, vm in depths])
    if len(points) < 100:
        raise ValueError("the splat's renders show almost no opaque surface: nothing to mesh")
    lo, hi = np.percentile(points, REGION_PERCENTILES, axis=0)
    pad = PAD * (hi - lo).max()
    z = np.concatenate([d[d > 0] for d, _, _ in depths])
    depth = float(np.median(z))
    focal = float(np.median([np.sqrt(K[0, 0] * K[1, 1]) for _, K, _ in depths]))
    return Region(lo - pad, hi + pad, depth, depth / focal)


def voxel_size(region: Region, pixels: float, max_voxels: int) -> float:
    """`pixels` training pixels at the typical depth, or coarser where the grid would exceed `max_voxels`."""
    extent = region.hi - region.lo
    return max(pixels * region.footprint, float(np.prod(extent) / max_voxels) ** (1 / 3))
