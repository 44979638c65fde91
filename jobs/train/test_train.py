"""The train stage end to end on a synthetic scene written as the sfm stage writes it: it learns (loss falls,
held-out PSNR above a measured floor), writes a standard 3DGS ply, resumes after being killed, fails clearly."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

from .colmap import read_model
from .ply import attribute_names, read_splat_ply
from .synthetic import blob_scene, write_sfm_output

ROOT = Path(__file__).resolve().parents[2]


def run_stage(prefix: Path, params: dict, stage: str = "train", scratch: Path | None = None, **popen):
    env = {
        **os.environ, "SPLATFLOW_STAGE": stage, "SPLATFLOW_REQUEST_ID": "req-1", "SPLATFLOW_INPUT_URI": "/dev/null",
        "SPLATFLOW_REQUEST_PREFIX": f"{prefix}/", "SPLATFLOW_PARAMS": json.dumps(params),
        **({"SPLATFLOW_SCRATCH": str(scratch)} if scratch else {}),
    }  # fmt: skip
    args = [sys.executable, str(ROOT / "jobs" / stage / "main.py")]
    if popen:
        return subprocess.Popen(args, env=env, text=True, **popen)
    return subprocess.run(args, env=env, text=True, capture_output=True, timeout=300)


class TrainStageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="train-test-"))
        cls.sfm = cls.tmp / "scene"
        write_sfm_output(cls.sfm, blob_scene(300), n_views=16, width=64, height=48, points=150)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def fresh_prefix(self, name: str) -> Path:
        prefix = self.tmp / name
        shutil.copytree(self.sfm / "sfm", prefix / "sfm")
        return prefix

    def test_learns_the_scene_and_writes_a_standard_ply(self):
        prefix = self.fresh_prefix("learn")
        params = {"iterations": 150, "densify_from": 30, "densify_until": 120, "max_side": 64}
        scratch = self.tmp / "learn-scratch"
        scratch.mkdir()
        run = run_stage(prefix, params, scratch=scratch)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(list(scratch.iterdir()), [], "the stage removes its scratch folder")
        envelope = json.loads((prefix / "train" / "manifest.json").read_text())
        # The contract's manifest (jobs/runtime/manifest.ts), which the workflow and the export report read.
        self.assertEqual(envelope["schema_version"], 1)
        self.assertEqual(envelope["parameters"], params)
        ply_bytes = (prefix / "train" / "point_cloud.ply").read_bytes()
        self.assertIn(
            {"path": "point_cloud.ply", "size": len(ply_bytes), "sha256": hashlib.sha256(ply_bytes).hexdigest()},
            envelope["outputs"],
        )
        self.assertIn("torch", envelope["tools"])
        manifest = envelope["metrics"]
        # Frames 4 and 12 held out (every 8th by number, half a period in), both between training views.
        self.assertEqual(manifest["views"], {"train": 14, "test": 2, "extrapolated": 0})
        losses = manifest["loss_by_tenth"]
        self.assertLess(losses[-1], 0.75 * losses[0], f"loss did not fall: {losses}")
        # Measured 19.7 dB after 150-200 steps on this scene.
        self.assertGreater(manifest["quality"]["test"]["psnr"], 17.5)
        self.assertGreater(manifest["gaussians"], 150, "densification added Gaussians")

        raw = (prefix / "train" / "point_cloud.ply").read_bytes()
        header = raw[: raw.index(b"end_header\n")].decode().splitlines()
        self.assertEqual(header[1], "format binary_little_endian 1.0")
        self.assertEqual(header[2], f"element vertex {manifest['gaussians']}")
        names = [line.split()[2] for line in header if line.startswith("property float")]
        self.assertEqual(names, attribute_names(3))  # SH degree 1: 3 coefficients beyond DC per channel
        self.assertEqual(names[:3], ["x", "y", "z"])
        splat = read_splat_ply(prefix / "train" / "point_cloud.ply")
        self.assertTrue(all(np.isfinite(v).all() for v in splat.values()))
        self.assertLess(float(np.abs(splat["means"]).max()), 3.0, "Gaussians stay around the unit-box scene")

        umask = os.umask(0)
        os.umask(umask)
        for name in ("point_cloud.ply", "cameras.json", "manifest.json"):  # ordinary files other readers can open
            self.assertEqual((prefix / "train" / name).stat().st_mode & 0o777, 0o666 & ~umask, name)

        cameras = json.loads((prefix / "train" / "cameras.json").read_text())
        self.assertEqual(len(cameras), 16)
        self.assertEqual((cameras[0]["width"], cameras[0]["height"]), (64, 48))

        # Pictures from the trainer's renderer (test_renders.py): the thumbnail, one comparison per held-out view.
        renders = manifest["renders"]
        self.assertEqual(renders["thumbnail"]["file"], "thumbnail.png")
        self.assertEqual(len(renders["heldout"]), 2)
        for entry in [renders["thumbnail"], *renders["heldout"]]:
            self.assertTrue((prefix / "train" / entry["file"]).is_file(), entry)
        mean_psnr = sum(e["psnr"] for e in renders["heldout"]) / 2
        self.assertAlmostEqual(mean_psnr, manifest["quality"]["test"]["psnr"], delta=0.01)

    def test_resumes_from_its_checkpoint_after_being_killed(self):
        prefix = self.fresh_prefix("resume")
        params = {"iterations": 90, "checkpoint_every": 30, "densify_from": 20, "densify_until": 80}
        # SIGKILL leaves the scratch folder behind; it lives under the test's folder.
        scratch = self.tmp / "resume-scratch"
        scratch.mkdir()
        proc = run_stage(prefix, params, scratch=scratch, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in proc.stdout:
            if '"checkpoint": 30' in line:
                proc.kill()  # as a preempted job: no chance to clean up
                break
        proc.wait()
        proc.stdout.close()
        self.assertFalse((prefix / "train" / "manifest.json").exists(), "a killed run must not look finished")
        self.assertTrue((prefix / "train" / "checkpoints" / "latest.pt").exists())
        run = run_stage(prefix, params)
        self.assertEqual(run.returncode, 0, run.stderr)
        manifest = json.loads((prefix / "train" / "manifest.json").read_text())["metrics"]
        self.assertIn(manifest["resumed_from_step"], (30, 60))
        self.assertEqual(len(manifest["loss_by_tenth"]), 10, "losses before the restart are kept")
        self.assertFalse((prefix / "train" / "checkpoints").exists(), "a finished run drops its checkpoint")

    def test_stopped_with_sigterm_it_leaves_a_checkpoint_but_no_scratch(self):
        prefix, scratch = self.fresh_prefix("stopped"), self.tmp / "stopped-scratch"
        scratch.mkdir()
        params = {"iterations": 200, "checkpoint_every": 20, "densify_from": 20, "densify_until": 80}
        proc = run_stage(prefix, params, scratch=scratch, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in proc.stdout:
            if '"checkpoint": 20' in line:
                proc.terminate()  # as Cloud Run stopping a task, or Ctrl-C of the local stack
                break
        self.assertEqual(proc.wait(timeout=60), 128 + 15)
        proc.stdout.close()
        self.assertTrue((prefix / "train" / "checkpoints" / "latest.pt").exists())
        self.assertFalse((prefix / "train" / "manifest.json").exists())
        self.assertEqual(list(scratch.iterdir()), [])

    def test_missing_sfm_output_fails_with_one_line(self):
        run = run_stage(self.tmp / "empty", {"iterations": 5})
        self.assertEqual(run.returncode, 1)
        lines = run.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, run.stderr)
        self.assertIn("sfm", lines[0])

    def test_a_model_without_points_is_refused_so_the_task_is_not_retried(self):
        prefix = self.tmp / "no-points"
        write_sfm_output(prefix, blob_scene(300), n_views=4, width=32, height=24, points=0)
        run = run_stage(prefix, {"iterations": 5})
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn("no 3D points", run.stderr)
        self.assertTrue(json.loads((prefix / "train" / "error.json").read_text())["refused"])

    def test_started_by_a_python_without_torch_it_runs_under_splatflow_python(self):
        # `python -S` cannot see .venv's site-packages: as a pyenv python3 first on PATH would be.
        wrapper = self.tmp / "python-wrapper"
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        wrapper.chmod(0o755)
        env = {**os.environ, "SPLATFLOW_STAGE": "train", "SPLATFLOW_REQUEST_ID": "r",
               "SPLATFLOW_INPUT_URI": "/dev/null", "SPLATFLOW_REQUEST_PREFIX": f"{self.tmp}/nothing/"}  # fmt: skip
        args = [sys.executable, "-S", str(ROOT / "jobs" / "train" / "main.py")]
        run = subprocess.run(args, env={**env, "SPLATFLOW_PYTHON": str(wrapper)}, text=True, capture_output=True)
        self.assertEqual(run.returncode, 1)
        self.assertIn("cannot read the sfm stage's model", run.stderr)  # it got as far as reading its input
        run = subprocess.run(args, env={**env, "SPLATFLOW_PYTHON": sys.executable}, text=True, capture_output=True)
        self.assertEqual(run.returncode, 1)
        self.assertEqual(
            run.stderr.strip().splitlines(),
            [f"train: torch is not installed for {sys.executable} (local/setup installs it in .venv)"],
        )

    def test_bad_parameters_are_refused_naming_the_parameter(self):
        for params, word in (({"iterations": "many"}, "iterations"), ({"preset": "ultra"}, "preset"), ({"x": 1}, "x")):
            run = run_stage(self.sfm, params)
            self.assertEqual(run.returncode, 2)  # refused: a retry cannot help
            self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
            self.assertIn(repr(word) if word != "x" else "'x'", run.stderr)

    def test_text_and_binary_models_read_the_same(self):
        binary = read_model(self.sfm / "sfm" / "undistorted" / "sparse")
        text = self.tmp / "text"
        text.mkdir()
        cam = binary.cameras[1]
        (text / "cameras.txt").write_text(
            f"# comment\n1 PINHOLE {cam.width} {cam.height} {' '.join(map(str, cam.params))}\n"
        )
        lines = ["# Image list"]
        for im in binary.images:
            pose = [repr(float(v)) for v in (*im.qvec, *im.tvec)]  # numpy 2 reprs a float64 as np.float64(…)
            lines += [f"{im.id} {' '.join(pose)} 1 {im.name}", ""]
        (text / "images.txt").write_text("\n".join(lines) + "\n")
        (text / "points3D.txt").write_text(
            "".join(
                f"{i} {float(x)!r} {float(y)!r} {float(z)!r} {r} {g} {b} 0.5\n"
                for i, ((x, y, z), (r, g, b)) in enumerate(zip(binary.xyz, binary.rgb))
            )
        )
        model = read_model(text)
        self.assertEqual([im.name for im in model.images], [im.name for im in binary.images])
        np.testing.assert_allclose(model.images[3].viewmat(), binary.images[3].viewmat())
        np.testing.assert_allclose(model.xyz, binary.xyz)
        np.testing.assert_allclose(model.cameras[1].K(), cam.K())


if __name__ == "__main__":
    unittest.main()
