"""engine.py's command line, under the interpreter the sfm stage runs it with (local/setup's .venv, which has
pycolmap): what it answers on stdout, and that a mapper with nothing to map answers no model rather than failing, so
the stage's gate (not a crash) judges it. The real reconstructions are tested from TypeScript (test/sfm/)."""

from __future__ import annotations

import json
import subprocess
import tempfile
import unittest
from pathlib import Path

ENGINE = Path(__file__).with_name("engine.py")
# run-sfm.ts's default interpreter; the stage's tests use the same one.
PYTHON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"


def engine(operation: str, spec: dict[str, object]) -> dict[str, object]:
    run = subprocess.run([str(PYTHON), str(ENGINE), operation, json.dumps(spec)], capture_output=True, text=True)
    if run.returncode != 0:
        raise AssertionError(f"engine.py {operation} exited with {run.returncode}: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


class EngineTest(unittest.TestCase):
    def test_reports_colmap_4_and_the_pycolmap_it_runs(self) -> None:
        answer = engine("version", {})
        self.assertTrue(str(answer["colmap"]).startswith("4."), answer)
        self.assertEqual(answer["colmap"], answer["pycolmap"])

    def test_either_mapper_answers_no_model_for_an_empty_database(self) -> None:
        with tempfile.TemporaryDirectory() as work:
            database = Path(work, "database.db")
            images = Path(work, "images")
            images.mkdir()
            subprocess.run(
                [str(PYTHON), "-c", "import sys, pycolmap; pycolmap.Database.open(sys.argv[1]).close()", str(database)],
                check=True,
            )
            for mapper in ("global", "incremental"):
                output = Path(work, mapper)
                output.mkdir()
                spec = {
                    "database": str(database),
                    "images": str(images),
                    "output": str(output),
                    "mapper": mapper,
                    "num_threads": 1,
                    "seed": 0,
                    "gpu": False,
                    "abs_pose_min_num_inliers": 15,
                    "abs_pose_min_inlier_ratio": 0.15,
                    "tri_min_angle": 0.5,
                    "ba_global_max_num_iterations": 20,
                    "view_graph_calibration": True,
                }
                self.assertEqual(engine("map", spec), {"models": 0}, mapper)
                self.assertEqual(sorted(p.name for p in output.iterdir()), [], mapper)


if __name__ == "__main__":
    unittest.main()
