"""Where to fuse and how finely, from what the cameras see: the sfm points inside the training cameras' views give the
region (robust percentiles, so a few stray points far away do not size the grid) and the typical viewing depth; the
voxel is a pixel footprint at that depth, coarsened only if the grid would pass its memory budget.

An unbounded scene's far background (sky, a street beyond a window) is cut on purpose: only what lies inside the box
the sfm points span is meshed; the splat keeps the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .raster import NEAR, project

REGION_PERCENTILES = (1.0, 99.0)  # of the seen sfm points, per axis
PAD = 0.05  # of the region's extent, on each side: surfaces at the region's edge keep both sides of their band


@dataclass
class Region:
    lo: np.ndarray  # [3] world
    hi: np.ndarray  # [3]
    depth: float  # median depth of the seen points over the training views
    footprint: float  # world size of one training pixel at that depth
    points: int  # sfm points inside at least one training view


def seen_points(xyz: np.ndarray, cameras: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The points inside at least one camera's image (in front of it), and every in-view point's depth."""
    seen = np.zeros(len(xyz), bool)
    depths = []
    for cam in cameras:
        uv, z = project(xyz, np.asarray(cam["K"]), np.asarray(cam["viewmat"]))
        inside = (z > NEAR) & (uv[:, 0] >= 0) & (uv[:, 0] < cam["width"]) & (uv[:, 1] >= 0) & (uv[:, 1] < cam["height"])
        seen |= inside
        depths.append(np.median(z[inside]) if inside.any() else np.nan)
    return xyz[seen], np.asarray(depths)


def fusion_region(xyz: np.ndarray, cameras: list[dict]) -> Region:
    """cameras: the training views (cameras.json entries). xyz: the sfm points [N,3]."""
    points, depths = seen_points(xyz, cameras)
    if len(points) < 10 or not np.isfinite(depths).any():
        raise ValueError(f"only {len(points)} sfm points lie inside the training views: nothing to size the mesh by")
    lo, hi = np.percentile(points, REGION_PERCENTILES, axis=0)
    pad = PAD * (hi - lo).max()
    depth = float(np.nanmedian(depths))
    focal = float(np.median([np.sqrt(c["K"][0][0] * c["K"][1][1]) for c in cameras]))
    return Region(lo - pad, hi + pad, depth, depth / focal, len(points))


def voxel_size(region: Region, pixels: float, max_voxels: int) -> float:
    """`pixels` training pixels at the typical depth, or coarser where the grid would exceed `max_voxels`."""
    extent = region.hi - region.lo
    return max(pixels * region.footprint, float(np.prod(extent) / max_voxels) ** (1 / 3))
