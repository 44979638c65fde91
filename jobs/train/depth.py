"""Monocular depth from the depth stage as a training signal.

The depth stage writes `{prefix}depth/manifest.json` with, per frame, a 16-bit PNG of the model's relative inverse
depth (larger = nearer, unknown scale and shift) and the [min, max] it spans: value = min + png/65535 × (max − min).
Per view, the sparse points that project into it give inverse depths in the reconstruction's scale; a robust
scale/shift fit maps the prediction onto them. Views whose prediction does not agree with the points (correlation
below 0.5: a wrong or placeholder model, a textureless view) get no depth loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image as PILImage

MIN_POINTS = 20
MIN_CORRELATION = 0.5


@dataclass
class DepthFrame:
    path: Path
    lo: float
    hi: float


def read_depth_frames(manifest: dict, folder: Path) -> dict[str, DepthFrame]:
    """Frames by file stem (the sfm stage keeps the frames' names)."""
    out = {}
    for f in manifest["metrics"]["frames"]:
        out[Path(f["file"]).stem] = DepthFrame(folder / f["depth"], float(f["min"]), float(f["max"]))
    return out


def decode(frame: DepthFrame, width: int, height: int) -> np.ndarray:
    """The relative inverse depth at the given size."""
    img = PILImage.open(frame.path)
    if img.size != (width, height):
        img = img.resize((width, height), PILImage.BILINEAR)
    q = np.asarray(img, np.float64)
    return frame.lo + q / 65535.0 * (frame.hi - frame.lo)


def fit_scale_shift(pred: np.ndarray, target: np.ndarray, tolerance: float = 0.05, trials: int = 256):
    """target ≈ s·pred + t by RANSAC over point pairs (a point behind a nearer surface, or one of a moving object,
    is an outlier; often a third of them or more), then least squares on the inliers: residual within `tolerance`
    of the target (relative). Returns s, t and the inlier mask."""
    rng = np.random.default_rng(0)
    n = len(pred)
    best = np.zeros(n, bool)
    for _ in range(trials):
        i, j = rng.choice(n, 2, replace=False)
        if pred[i] == pred[j]:
            continue
        s = (target[j] - target[i]) / (pred[j] - pred[i])
        inliers = np.abs(s * pred + target[i] - s * pred[i] - target) <= tolerance * np.abs(target)
        if inliers.sum() > best.sum():
            best = inliers
    if best.sum() < 2:
        return 0.0, 0.0, best
    A = np.stack([pred[best], np.ones(int(best.sum()))], 1)
    (s, t), *_ = np.linalg.lstsq(A, target[best], rcond=None)
    return float(s), float(t), np.abs(s * pred + t - target) <= tolerance * np.abs(target)


def aligned_inverse_depth(
    pred: np.ndarray, xyz: np.ndarray, K: np.ndarray, viewmat: np.ndarray
) -> Optional[np.ndarray]:
    """pred [H,W] relative inverse depth → inverse depth in the model's scale (0 where unusable), or None."""
    h, w = pred.shape
    cam = xyz @ viewmat[:3, :3].T + viewmat[:3, 3]
    z = cam[:, 2]
    front = z > 1e-6
    u = np.floor(K[0, 0] * cam[front, 0] / z[front] + K[0, 2]).astype(np.int64)
    v = np.floor(K[1, 1] * cam[front, 1] / z[front] + K[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    if inside.sum() < MIN_POINTS:
        return None
    p, target = pred[v[inside], u[inside]], 1.0 / z[front][inside]
    if np.std(p) == 0:
        return None
    s, t, keep = fit_scale_shift(p, target)
    # Judged on the fit's inliers: points hidden behind nearer surfaces are expected outliers.
    if (
        s <= 0
        or keep.sum() < MIN_POINTS
        or np.std(p[keep]) == 0
        or np.corrcoef(p[keep], target[keep])[0, 1] < MIN_CORRELATION
    ):
        return None
    return np.clip(s * pred + t, 0.0, None)
