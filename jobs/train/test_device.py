"""The GPU path's device plumbing, checked where no GPU is: every tensor the trainer and mesh stage create names its
device; code run on a device other than the default ('meta': shapes without data) keeps its tensors there; gsplat is
chosen only when a test render works; a resumed run repeats the uninterrupted one."""

import ast
import io
import shutil
import tempfile
import unittest
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..mesh.tsdf import Volume
from ..runtime_py.stage import Refused
from .backend import Backend, renders, select_backend
from .colmap import read_model
from .gaussians import Densifier, init_params
from .mcmc import check_backend
from .metrics import ssim
from .presets import PRESETS
from .raster_cpu import rasterization as cpu_rasterization
from .synthetic import blob_scene, write_sfm_output
from .test_train import run_stage
from .trainer import load_views, train

ROOT = Path(__file__).resolve().parents[2]
META = torch.device("meta")
# torch functions that make a tensor from nothing (or from numpy): each must say where it lives.
CONSTRUCTORS = {
    "tensor", "as_tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "logspace", "eye", "rand",
    "randn", "randint", "randperm", "normal", "from_numpy", "Generator",
}  # fmt: skip
# The CPU rasterizer's (median depth included) and CPU SSIM's tensors are host memory by design (numba works on numpy
# views of them).
EXEMPT = {"raster_cpu.py", "ssim_cpu.py", "median_depth.py"}


def constructors_without_device(source: str) -> list[int]:
    """Lines of torch constructor calls with no device= keyword; torch.from_numpy counts as placed only when
    followed at once by .to(...)."""
    tree = ast.parse(source)
    placed = {
        id(node.func.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "to"
    }
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        f = node.func
        if not (isinstance(f.value, ast.Name) and f.value.id == "torch" and f.attr in CONSTRUCTORS):
            continue
        if any(k.arg == "device" for k in node.keywords) or (f.attr == "from_numpy" and id(node) in placed):
            continue
        lines.append(node.lineno)
    return lines


class DeviceTest(unittest.TestCase):
    def test_every_tensor_the_trainer_and_mesh_create_names_its_device(self):
        files = [p for d in ("train", "mesh") for p in sorted((ROOT / "jobs" / d).glob("*.py"))]
        files = [p for p in files if not p.name.startswith("test_") and p.name not in EXEMPT]
        self.assertGreater(len(files), 10)
        missing = {p.name: constructors_without_device(p.read_text()) for p in files}
        self.assertEqual({k: v for k, v in missing.items() if v}, {})

    def test_the_check_catches_a_constructor_without_a_device(self):
        src = (
            "import torch\na = torch.zeros(3)\nb = torch.zeros(3, device=d)\n"
            "c = torch.from_numpy(x)\nd = torch.from_numpy(x).to(dev)\n"
        )
        self.assertEqual(constructors_without_device(src), [2, 4])

    def test_ssim_runs_on_the_images_device(self):
        a, b = torch.rand(24, 32, 3, device=META), torch.rand(24, 32, 3, device=META)
        self.assertEqual(ssim(a, b).device, META)  # a CPU window here was the crash of every CUDA training step
        x = torch.rand(24, 32, 3, device=torch.device("cpu"))
        self.assertAlmostEqual(float(ssim(x, x)), 1.0, places=5)

    def test_gaussians_and_their_densifier_live_on_the_given_device(self):
        xyz = np.random.default_rng(0).normal(size=(50, 3))
        params = init_params(xyz, np.full((50, 3), 128), 3, META, init_opacity=0.5, init_scale=0.1)
        self.assertEqual({p.device for p in params.values()}, {META})
        self.assertEqual(params["shN"].shape, (50, 15, 3))
        d = Densifier(50, META)
        self.assertEqual({t.device for t in d.state_dict().values()}, {META})
        cpu = init_params(xyz, np.full((50, 3), 128), 1, torch.device("cpu"), init_scale=0.1)
        ref = init_params(xyz, np.full((50, 3), 128), 1, torch.device("cpu"))
        np.testing.assert_allclose(
            torch.exp(cpu["scales"]).detach(), 0.1 * torch.exp(ref["scales"]).detach(), rtol=1e-5
        )

    def test_views_are_loaded_onto_the_training_device_once(self):
        with tempfile.TemporaryDirectory() as tmp:
            write_sfm_output(Path(tmp), blob_scene(50), n_views=3, width=32, height=24, points=30)
            root = Path(tmp) / "sfm" / "undistorted"
            views = load_views(read_model(root / "sparse"), root / "images", 32, 0, device=META)
        self.assertEqual(len(views), 3)
        self.assertEqual({t.device for v in views for t in (v.image, v.K, v.viewmat)}, {META})
        self.assertEqual(views[0].image.shape, (24, 32, 3))

    def test_tsdf_fusion_stays_on_its_device(self):
        lo, hi = np.array([-1.0, -1.0, 1.0]), np.array([1.0, 1.0, 3.0])
        K = [[20.0, 0, 16], [0, 20.0, 12], [0, 0, 1]]
        for dev in (META, torch.device("cpu")):
            vol = Volume.covering(lo, hi, 2.0 / 16, dev)
            t = lambda a: torch.tensor(a, dtype=torch.float32, device=dev)  # noqa: E731
            depth = torch.full((24, 32), 2.0, device=dev)  # a wall at z = 2 in front of the camera
            vol.integrate(depth, torch.full((24, 32, 3), 0.5, device=dev), t(K), torch.eye(4, device=dev), 0.3, 0.0)
            self.assertEqual({vol.tsdf.device, vol.weight.device, vol.color.device}, {dev})
        # On the CPU: along the optical axis the signed distance crosses zero at the wall, colour fused where seen.
        axis = vol.tsdf[8, 8].numpy()  # x = y = 0, z from 1 to 3 in 1/8 steps
        z = 1.0 + np.arange(len(axis)) * vol.voxel
        self.assertTrue(((axis > 0) == (z < 2.0 - 1e-6))[z < 2.3].all(), axis)
        self.assertAlmostEqual(float(vol.color[8, 8, 4, 1]), 0.5, places=5)
        self.assertEqual(float(vol.weight[8, 8, -1]), 0.0, "far behind the wall: unseen")

    def test_gsplat_is_chosen_only_if_a_test_render_works(self):
        def disabled(*args, **kwargs):  # gsplat 1.4.0 with its CUDA library unloaded: _C is None
            raise AttributeError("'NoneType' object has no attribute 'fully_fused_projection_fwd'")

        # This machine's CPU stands in for the GPU device: what is checked is that the probe's verdict decides.
        stand_in = torch.device("cpu")
        b = select_backend(cuda_available=lambda: True, import_gsplat=lambda: disabled, gpu=stand_in)
        self.assertEqual((b.name, b.device.type), ("cpu", "cpu"))
        self.assertIn("fully_fused_projection_fwd", b.fallback_reason)
        b = select_backend(cuda_available=lambda: True, import_gsplat=lambda: cpu_rasterization, gpu=stand_in)
        self.assertEqual((b.name, b.fallback_reason), ("gsplat-cuda", None))

        def missing():
            raise ImportError("No module named 'gsplat'")

        b = select_backend(cuda_available=lambda: True, import_gsplat=missing)
        self.assertEqual(b.name, "cpu")
        self.assertIn("No module named 'gsplat'", b.fallback_reason)
        self.assertIsNone(select_backend(cuda_available=lambda: False).fallback_reason)
        # The probe itself: our rasterizer draws on the CPU; on a CUDA device this machine lacks, it cannot.
        self.assertIsNone(renders(cpu_rasterization, torch.device("cpu")))
        if not torch.cuda.is_available():
            self.assertIn("test render failed", renders(cpu_rasterization, torch.device("cuda")))

    def test_mcmc_is_refused_without_gsplat(self):
        cpu = Backend("cpu", torch.device("cpu"), cpu_rasterization, "a test render failed: no driver")
        with self.assertRaisesRegex(Refused, r"needs gsplat on CUDA.*no driver.*preview"):
            check_backend(PRESETS["standard"], cpu)
        check_backend(PRESETS["preview"], cpu)  # the CPU preset's own densification
        with tempfile.TemporaryDirectory() as tmp:
            run = run_stage(Path(tmp), {"preset": "standard", "device": "cpu"})
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn("strategy 'mcmc' needs gsplat on CUDA", run.stderr)


class MemoryCheckpoints:
    """Checkpoints serialised at once, as StorageCheckpoints does (live tensors keep changing after a save)."""

    def __init__(self, initial: bytes | None = None) -> None:
        self.saved: dict[int, bytes] = {}
        self.initial = initial

    def load(self):
        return None if self.initial is None else torch.load(io.BytesIO(self.initial), map_location="cpu")

    def save(self, state: dict) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        self.saved[state["step"]] = buf.getvalue()


class ResumeTest(unittest.TestCase):
    def test_a_resumed_run_repeats_the_uninterrupted_one(self):
        tmp = Path(tempfile.mkdtemp(prefix="resume-"))
        try:
            write_sfm_output(tmp, blob_scene(200), n_views=7, width=48, height=36, points=120)
            root = tmp / "sfm" / "undistorted"
            model = read_model(root / "sparse")
            cpu = select_backend(prefer_cpu=True)
            views = load_views(model, root / "images", 48, 0, device=cpu.device)
            # 7 views, checkpoint at 25: mid-permutation, with refinement (split noise) before and after it.
            settings = replace(PRESETS["preview"], iterations=50, checkpoint_every=25, densify_from=5,
                               densify_until=45, densify_every=10, sh_every=20)  # fmt: skip
            args = (settings, cpu, views, model.xyz, model.rgb)
            whole = MemoryCheckpoints()
            a = train(*args, whole, lambda step, stats: None)
            self.assertEqual(sorted(whole.saved), [25])
            b = train(*args, MemoryCheckpoints(whole.saved[25]), lambda step, stats: None)
        finally:
            shutil.rmtree(tmp)
        self.assertEqual(b.resumed_from, 25)
        self.assertEqual(a.losses, b.losses)
        for name in a.params:
            torch.testing.assert_close(a.params[name], b.params[name], rtol=0, atol=0, msg=name)


if __name__ == "__main__":
    unittest.main()
