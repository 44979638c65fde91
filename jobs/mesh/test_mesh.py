"""The mesh stage on a sphere of Gaussians (known surface: radius 1): the mesh lies on the sphere, takes its colours
from the photos, is scored at the held-out view beside the splat; the files parse, the manifest's counts are the
files' counts; missing input fails with one line."""

import json
import math
import shutil
import struct
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from ..train.ply import write_splat_ply
from ..train.sh import rgb_to_sh
from ..train.synthetic import look_at, render_views, ring_cameras, write_colmap_binary
from ..train.test_train import run_stage


def sphere_splat(prefix: Path, n: int = 8000, width: int = 96, height: int = 72) -> None:
    """Train-stage output for flat Gaussians tiling the unit sphere, seen from a ring and from above/below (the
    first camera held out), and the sfm output it came from: points on the sphere, the splat's renders as photos."""
    i = np.arange(n) + 0.5
    phi, theta = np.arccos(1 - 2 * i / n), math.pi * (1 + 5**0.5) * i  # Fibonacci sphere
    normals = np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], 1)
    # Rotate each Gaussian's z axis onto the normal (flat discs tangent to the sphere).
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, normals)
    s = np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.arctan2(s[:, 0], normals @ z)
    axis = np.where(s > 1e-9, axis / np.maximum(s, 1e-12), np.array([1.0, 0, 0]))
    quats = np.concatenate([np.cos(angle / 2)[:, None], axis * np.sin(angle / 2)[:, None]], 1)
    log_scales = np.log(np.tile([0.035, 0.035, 0.003], (n, 1)))
    rgb = 0.5 + 0.4 * normals
    sh0 = rgb_to_sh(torch.from_numpy(rgb)).numpy()[:, None, :]
    folder = prefix / "train"
    folder.mkdir(parents=True)
    write_splat_ply(folder / "point_cloud.ply", normals, sh0, np.zeros((n, 3, 3)), np.full(n, 3.0), log_scales, quats)
    views = ring_cameras(10, 4.0) + [
        look_at(np.array([0.3, 4.0, 0.0]), np.zeros(3)),
        look_at(np.array([0.3, -4.0, 0.0]), np.zeros(3)),
    ]
    f = 0.8 * width
    K = [[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]]
    names = [f"v{i}.png" for i in range(len(views))]
    cams = [
        {"name": name, "width": width, "height": height, "K": K, "viewmat": v.tolist(), "test": i == 0}
        for i, (name, v) in enumerate(zip(names, views))
    ]
    (folder / "cameras.json").write_text(json.dumps(cams))
    opacity = np.full(n, 1 / (1 + math.exp(-3)))
    scene = {"means": normals, "quats": quats, "scales": np.exp(log_scales), "opacities": opacity,
             "rgb": rgb}  # fmt: skip
    scene = {k: torch.from_numpy(v.astype(np.float32)) for k, v in scene.items()}
    sfm = prefix / "sfm" / "undistorted"
    (sfm / "images").mkdir(parents=True)
    for name, image in zip(names, render_views(scene, views, width, height, f)):
        PILImage.fromarray(image).save(sfm / "images" / name)
    write_colmap_binary(
        sfm / "sparse", width, height, f, views, names, normals[::20], (rgb[::20] * 255).astype(np.uint8)
    )


def read_glb(path: Path) -> tuple[dict, bytes]:
    """The glTF JSON and the binary chunk."""
    raw = path.read_bytes()
    magic, version, total = struct.unpack_from("<4sII", raw)
    assert (magic, version, total) == (b"glTF", 2, len(raw)), (magic, version, total)
    length, kind = struct.unpack_from("<I4s", raw, 12)
    assert kind == b"JSON"
    bin_length, bin_kind = struct.unpack_from("<I4s", raw, 20 + length)
    assert bin_kind == b"BIN\x00"
    return json.loads(raw[20 : 20 + length]), raw[28 + length : 28 + length + bin_length]


def glb_attribute(gltf: dict, blob: bytes, accessor: int, dtype: str, width: int) -> np.ndarray:
    acc = gltf["accessors"][accessor]
    view = gltf["bufferViews"][acc["bufferView"]]
    return np.frombuffer(blob, dtype, acc["count"] * width, view["byteOffset"]).reshape(acc["count"], width)


class MeshStageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="mesh-test-"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_mesh_of_a_sphere_of_gaussians_lies_on_the_sphere(self):
        prefix = self.tmp / "sphere"
        sphere_splat(prefix)
        run = run_stage(prefix, {"target_faces": 3000}, stage="mesh")
        self.assertEqual(run.returncode, 0, run.stderr)
        manifest = json.loads((prefix / "mesh" / "manifest.json").read_text())["metrics"]
        self.assertLessEqual(manifest["faces"], 3000)
        self.assertGreater(manifest["faces"], 1000)

        raw = (prefix / "mesh" / "mesh.ply").read_bytes()
        end = raw.index(b"end_header\n") + len(b"end_header\n")
        header = raw[:end].decode()
        self.assertIn(f"element vertex {manifest['vertices']}\n", header)
        self.assertIn(f"element face {manifest['faces']}\n", header)
        v = np.frombuffer(raw, np.dtype([("p", "<f4", 3), ("c", "u1", 3)]), manifest["vertices"], end)
        f = np.frombuffer(raw, np.dtype([("n", "u1"), ("i", "<i4", 3)]), manifest["faces"], end + v.nbytes)
        self.assertTrue((f["n"] == 3).all() and f["i"].max() < len(v))
        radius = np.linalg.norm(v["p"], axis=1)
        err = np.abs(radius - 1.0)
        # Voxel 0.063 (1.5 pixels at the cameras' distance); stated tolerance: mean < 0.05, 95% of vertices < 0.1.
        self.assertLess(float(err.mean()), 0.05, f"mean |r-1| = {err.mean():.4f}")
        self.assertLess(float(np.percentile(err, 95)), 0.1)
        # Covers the sphere: vertices in every octant.
        octants = {tuple(s) for s in (v["p"] > 0).astype(int)}
        self.assertEqual(len(octants), 8)

        # The GLB is the same mesh: the PLY's vertices, colours and triangles, with normals facing the cameras
        # (out of the sphere), so a viewer that culls back faces or shades by normal shows its outside.
        gltf, blob = read_glb(prefix / "mesh" / "mesh.glb")
        attributes = gltf["meshes"][0]["primitives"][0]["attributes"]
        self.assertLess(max(abs(x) for x in gltf["accessors"][0]["max"] + gltf["accessors"][0]["min"]), 1.1)
        np.testing.assert_array_equal(glb_attribute(gltf, blob, attributes["POSITION"], "<f4", 3), v["p"])
        linear = glb_attribute(gltf, blob, attributes["COLOR_0"], "u1", 4)[:, :3] / 255  # glTF colours are linear
        srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
        np.testing.assert_allclose(srgb * 255, v["c"], atol=12)  # 8-bit linear is coarse in the darks
        np.testing.assert_array_equal(glb_attribute(gltf, blob, 2, "<u4", 1).reshape(-1, 3), f["i"])
        normals = glb_attribute(gltf, blob, attributes["NORMAL"], "<f4", 3)
        np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-3)
        outward = np.sum(normals * v["p"], 1) / np.linalg.norm(v["p"], axis=1)
        self.assertGreater(float((outward > 0.5).mean()), 0.95)
        a, b, c = (v["p"][f["i"][:, k]].astype(np.float64) for k in range(3))
        self.assertGreater(float((np.sum(np.cross(b - a, c - a) * a, 1) > 0).mean()), 0.95)  # winding: CCW outside

        # Scored at the held-out camera beside the splat, whose renders are the photos here.
        quality = manifest["quality"]
        self.assertEqual(quality["views"], 1)
        self.assertGreater(quality["splat"]["psnr"], 40)
        # Measured: 94% of the splat's opaque pixels covered (its soft rim reaches past the surface), 37.2 dB on the
        # mesh's own pixels (photo colours at 96×72 on ~1 500 faces), 24.7 dB over the whole frame.
        self.assertGreater(quality["mesh"]["covered"], 0.9 * quality["splat"]["covered"])
        self.assertGreater(quality["mesh"]["psnr_on_mesh"], 30)
        self.assertGreater(quality["mesh"]["psnr"], 20)
        self.assertTrue((prefix / "mesh" / quality["heldout"][0]["file"]).is_file())

    def test_a_missing_photo_fails_with_one_line_naming_the_stages_to_rerun(self):
        prefix = self.tmp / "no-photo"
        sphere_splat(prefix)
        (prefix / "sfm" / "undistorted" / "images" / "v3.png").unlink()
        run = run_stage(prefix, {}, stage="mesh")
        self.assertEqual(run.returncode, 1)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertIn("v3.png", run.stderr)
        self.assertIn("sfm and train stages", run.stderr)

    def test_missing_train_output_fails_with_one_line(self):
        run = run_stage(self.tmp / "nothing", {}, stage="mesh")
        self.assertEqual(run.returncode, 1)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertIn("train stage", run.stderr)


if __name__ == "__main__":
    unittest.main()
