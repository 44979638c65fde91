"""Mesh files: binary `.ply` (positions, 8-bit colours, triangles) and glTF 2.0 binary `.glb` (one primitive with
POSITION, COLOR_0, NORMAL and indices: with normals a glTF viewer shades it smoothly, as the splatflow viewer does),
written by hand: both formats are small and fixed."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


def write_mesh_ply(path: Path, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> None:
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(verts)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    vdt = np.dtype([("p", "<f4", 3), ("c", "u1", 3)])
    v = np.empty(len(verts), vdt)
    v["p"], v["c"] = verts, np.clip(np.rint(colors * 255), 0, 255)
    fdt = np.dtype([("n", "u1"), ("i", "<i4", 3)])
    f = np.empty(len(faces), fdt)
    f["n"], f["i"] = 3, faces
    with open(path, "wb") as out:
        out.write(header.encode("ascii"))
        out.write(v.tobytes())
        out.write(f.tobytes())


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """Colours as photos store them (sRGB) → linear, as glTF's COLOR_0 is defined: a glTF viewer then shows the
    photo's colours, not a washed-out version of them."""
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def write_glb(path: Path, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, normals: np.ndarray) -> None:
    pos = verts.astype("<f4").tobytes()
    col = np.clip(np.rint(srgb_to_linear(colors) * 255), 0, 255).astype("u1")
    col = np.concatenate([col, np.full((len(col), 1), 255, "u1")], 1).tobytes()  # VEC4: 4-byte aligned rows
    idx = faces.astype("<u4").tobytes()
    nrm = normals.astype("<f4").tobytes()
    blob = pos + col + idx + nrm
    gltf = {
        "asset": {"version": "2.0", "generator": "splatflow mesh stage"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [
            {"primitives": [{"attributes": {"POSITION": 0, "COLOR_0": 1, "NORMAL": 3}, "indices": 2, "mode": 4}]}
        ],
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": len(pos), "target": 34962},
            {"buffer": 0, "byteOffset": len(pos), "byteLength": len(col), "target": 34962},
            {"buffer": 0, "byteOffset": len(pos) + len(col), "byteLength": len(idx), "target": 34963},
            {"buffer": 0, "byteOffset": len(pos) + len(col) + len(idx), "byteLength": len(nrm), "target": 34962},
        ],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": len(verts), "type": "VEC3",
             "min": verts.min(0).tolist() if len(verts) else [0, 0, 0],
             "max": verts.max(0).tolist() if len(verts) else [0, 0, 0]},
            {"bufferView": 1, "componentType": 5121, "normalized": True, "count": len(verts), "type": "VEC4"},
            {"bufferView": 2, "componentType": 5125, "count": faces.size, "type": "SCALAR"},
            {"bufferView": 3, "componentType": 5126, "count": len(verts), "type": "VEC3"},
        ],
    }  # fmt: skip
    js = _pad(json.dumps(gltf, separators=(",", ":")).encode(), b" ")
    bin_ = _pad(blob, b"\x00")
    total = 12 + 8 + len(js) + 8 + len(bin_)
    with open(path, "wb") as out:
        out.write(struct.pack("<4sII", b"glTF", 2, total))
        out.write(struct.pack("<I4s", len(js), b"JSON") + js)
        out.write(struct.pack("<I4s", len(bin_), b"BIN\x00") + bin_)
