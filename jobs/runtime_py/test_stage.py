"""The Python stage runtime's failure contract: error.json on a refusal and on a crash, a stale one removed, and a
retry of a refused Cloud Run execution answered without running again. Each case is a real stage process."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A stage program: TEST_BEHAVIOUR says what its work does; a finished run writes its manifest.
PROGRAM = """
import os
from jobs.runtime_py.stage import Refused, run

def main(ctx):
    behaviour = os.environ["TEST_BEHAVIOUR"]
    if behaviour == "refuse-unwritable":  # storage that refuses every write from here on, as a full bucket would

        def refuse_write(uri, data):
            raise OSError("quota exceeded")

        ctx.storage.write_bytes = refuse_write
        behaviour = "refuse"
    if behaviour == "refuse":
        raise Refused("only 0 of 10 frames registered\\n  (at least 60% needed)")
    if behaviour == "crash":
        raise RuntimeError("disk on fire\\n  at somewhere deep")
    if behaviour == "disk-full":  # /dev/full answers every write as a full disk does: ENOSPC
        with open("/dev/full", "wb") as full:
            full.write(b"frame" * 10000)
    ctx.write_manifest({})

run("mesh", main)
"""


class StageFailureTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="py-stage-test-"))
        self.prefix = self.tmp / "req"
        self.record = self.prefix / "mesh" / "error.json"
        self.manifest = self.prefix / "mesh" / "manifest.json"

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def stage(self, behaviour: str, **task: str) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ.get("PATH", ""), "SPLATFLOW_STAGE": "mesh", "SPLATFLOW_REQUEST_ID": "req-1",
            "SPLATFLOW_INPUT_URI": "/dev/null", "SPLATFLOW_REQUEST_PREFIX": f"{self.prefix}/",
            "TEST_BEHAVIOUR": behaviour, **task,
        }  # fmt: skip
        return subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, text=True, capture_output=True)

    def error_json(self) -> dict:
        return json.loads(self.record.read_text())

    def test_a_refusal_records_exit_2_refused_and_the_cause_on_one_line_without_the_stage_name(self):
        run = self.stage("refuse", CLOUD_RUN_EXECUTION="ex-1", CLOUD_RUN_TASK_ATTEMPT="0")
        self.assertEqual(run.returncode, 2)
        cause = "only 0 of 10 frames registered (at least 60% needed)"
        self.assertEqual(run.stderr.strip().splitlines(), [f"mesh: {cause}"])
        record = self.error_json()
        self.assertRegex(record.pop("at"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(record, {
            "schema_version": 1, "stage": "mesh", "request_id": "req-1", "exit_code": 2, "refused": True,
            "message": cause, "execution": "ex-1", "attempt": 0,
        })  # fmt: skip

    def test_a_crash_records_exit_1_not_refused_and_outside_cloud_run_no_execution(self):
        run = self.stage("crash")
        self.assertEqual(run.returncode, 1)
        record = self.error_json()
        self.assertEqual(
            [record["exit_code"], record["refused"], record["message"], record["execution"], record["attempt"]],
            [1, False, "RuntimeError: disk on fire", None, 0],
        )

    def test_a_full_disk_is_refused_with_a_cause_a_user_can_act_on_and_no_path_and_not_run_again(self):
        run = self.stage("disk-full", CLOUD_RUN_EXECUTION="ex-1", CLOUD_RUN_TASK_ATTEMPT="0")
        self.assertEqual(run.returncode, 2, run.stderr)
        record = self.error_json()
        self.assertEqual([record["exit_code"], record["refused"]], [2, True])
        self.assertRegex(record["message"], r"^no space left on the stage's disk: .*lower preset")
        self.assertNotIn("/dev/full", run.stderr)
        # Cloud Run's retry of that task would fill the same disk: it answers the cause without running.
        retry = self.stage("ok", CLOUD_RUN_EXECUTION="ex-1", CLOUD_RUN_TASK_ATTEMPT="1")
        self.assertEqual(retry.returncode, 2)
        self.assertFalse(self.manifest.exists())

    def test_a_later_success_removes_the_record_of_an_earlier_failure(self):
        self.assertEqual(self.stage("crash").returncode, 1)
        self.assertTrue(self.record.exists())
        self.assertEqual(self.stage("ok").returncode, 0)
        self.assertFalse(self.record.exists())
        self.assertTrue(self.manifest.exists())

    def test_a_retry_of_the_same_execution_answers_the_refusal_without_running_another_execution_runs(self):
        self.assertEqual(self.stage("refuse", CLOUD_RUN_EXECUTION="ex-1", CLOUD_RUN_TASK_ATTEMPT="0").returncode, 2)
        refused = self.error_json()
        # Its work would succeed now: exit 2 can only be the earlier answer.
        retry = self.stage("ok", CLOUD_RUN_EXECUTION="ex-1", CLOUD_RUN_TASK_ATTEMPT="1")
        self.assertEqual(retry.returncode, 2)
        self.assertEqual(retry.stderr.strip().splitlines(), [f"mesh: {refused['message']}"])
        self.assertFalse(self.manifest.exists())
        self.assertEqual(self.error_json(), refused, "the record of the attempt that did the work stays")

        another = self.stage("ok", CLOUD_RUN_EXECUTION="ex-2", CLOUD_RUN_TASK_ATTEMPT="1")
        self.assertEqual(another.returncode, 0, another.stderr)
        self.assertFalse(self.record.exists())

    def test_a_first_attempt_never_answers_an_earlier_refusal(self):
        self.assertEqual(self.stage("refuse", CLOUD_RUN_EXECUTION="ex-1", CLOUD_RUN_TASK_ATTEMPT="0").returncode, 2)
        self.assertEqual(self.stage("ok", CLOUD_RUN_EXECUTION="ex-1", CLOUD_RUN_TASK_ATTEMPT="0").returncode, 0)

    def test_a_record_that_cannot_be_written_is_logged_and_the_stage_keeps_its_cause_and_code(self):
        run = self.stage("refuse-unwritable")
        self.assertEqual(run.returncode, 2)
        self.assertEqual(
            run.stderr.strip().splitlines(), ["mesh: only 0 of 10 frames registered (at least 60% needed)"]
        )
        logged = [json.loads(line) for line in run.stdout.splitlines()]
        self.assertIn(
            ("cannot write the error record", "quota exceeded"), [(e["message"], e.get("cause")) for e in logged]
        )
        self.assertFalse(self.record.exists())


if __name__ == "__main__":
    unittest.main()
