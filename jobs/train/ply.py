"""The standard 3DGS `.ply` (the layout of the reference implementation, which common viewers read):
binary little-endian float32 x y z nx ny nz f_dc_0..2 f_rest_* opacity scale_0..2 rot_0..3, with f_rest channel-major,
opacity as a logit, scales as logs, rotation as a w-first quaternion."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def attribute_names(num_rest: int) -> list[str]:
    """num_rest: SH coefficients beyond DC per channel (0, 3, 8 or 15)."""
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(3 * num_rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def write_splat_ply(path: Path, means, sh0, shN, opacity_logits, log_scales, quats) -> None:
    """means [N,3], sh0 [N,1,3], shN [N,K-1,3], opacity_logits [N], log_scales [N,3], quats [N,4] (numpy)."""
    n = len(means)
    rest = np.transpose(shN, (0, 2, 1)).reshape(n, -1)
    cols = [means, np.zeros((n, 3)), sh0.reshape(n, 3), rest, opacity_logits.reshape(n, 1), log_scales, quats]
    data = np.concatenate(cols, 1).astype("<f4")
    names = attribute_names(shN.shape[1])
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n"
    header += "".join(f"property float {name}\n" for name in names) + "end_header\n"
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())


def read_splat_ply(path: Path) -> dict[str, np.ndarray]:
    """The inverse of write_splat_ply: {means, sh0 [N,1,3], shN [N,K-1,3], opacities (logits), scales (log), quats}."""
    raw = Path(path).read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: not a binary little-endian ply")
    n = next(int(line.split()[2]) for line in header if line.startswith("element vertex"))
    names = [line.split()[2] for line in header if line.startswith("property float")]
    data = np.frombuffer(raw, "<f4", count=n * len(names), offset=end).reshape(n, len(names))
    col = {name: data[:, i] for i, name in enumerate(names)}
    rest = [name for name in names if name.startswith("f_rest_")]
    pick = lambda *keys: np.stack([col[k] for k in keys], 1)  # noqa: E731
    return {
        "means": pick("x", "y", "z"),
        "sh0": pick("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :],
        "shN": np.transpose(pick(*rest).reshape(n, 3, -1), (0, 2, 1)) if rest else np.zeros((n, 0, 3), "<f4"),
        "opacities": col["opacity"],
        "scales": pick("scale_0", "scale_1", "scale_2"),
        "quats": pick("rot_0", "rot_1", "rot_2", "rot_3"),
    }
