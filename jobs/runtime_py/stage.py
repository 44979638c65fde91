"""The stage contract (jobs/README.md) for Python stages: environment, progress lines, manifest last, failure.

A stage is `run(main)`: `main(ctx)` does the work; any exception becomes one line on stderr, an `error.json` beside
the stage's outputs (the record jobs/runtime/error-record.ts defines) and exit status 2 for `Refused`, else 1.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from .storage import Storage, join


EXIT_FAILED = 1
EXIT_REFUSED = 2
# What a full disk is reported as, word for word as jobs/runtime/errors.ts says it: no path of the job's disk,
# and refused, since the same input fills the same disk again on a retry.
DISK_FULL_CAUSE = (
    "no space left on the stage's disk: this input needs more room than the job has"
    " (a shorter video, fewer or smaller photos, or a lower preset needs less)"
)
ERROR_RECORD = "error.json"


class StageError(Exception):
    """A failure whose message is the cause a user reads; no traceback is printed for it."""


class Refused(StageError):
    """The input, parameters or configuration cannot be processed: a retry cannot help (exit status 2)."""


@dataclass
class Context:
    stage: str
    request_id: str
    input_uri: str
    prefix: str
    params: dict[str, Any]
    storage: Storage = field(default_factory=Storage)
    started: float = field(default_factory=time.time)
    # The manifest's envelope (jobs/runtime/manifest.ts): what was read and written, with which tools, how long.
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=lambda: {"python": platform.python_version()})
    timings: dict[str, float] = field(default_factory=dict)
    # Private working folder under SPLATFLOW_SCRATCH (as the TypeScript runtime), removed when the stage ends.
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="splatflow-", dir=_scratch_root())))

    @property
    def out(self) -> str:
        """This stage's output folder URI."""
        return join(self.prefix, self.stage) + "/"

    def uri(self, *parts: str) -> str:
        return join(self.prefix, *parts)

    def log(self, message: str, severity: str = "INFO", **fields: Any) -> None:
        entry = {"severity": severity, "message": message, "stage": self.stage, "request_id": self.request_id}
        entry.update(fields)
        print(json.dumps(entry), flush=True)

    def progress(self, fraction: float, **fields: Any) -> None:
        self.log("progress", progress=round(min(1.0, max(0.0, fraction)), 4), **fields)

    def fetch(self, uri: str, dest: Path) -> Path:
        """Downloads an input and records it (size, sha256) in the manifest."""
        path = self.storage.download(uri, dest)
        self.inputs.append(_file_record(path, uri))
        return path

    def put(self, src: Path, name: str) -> None:
        """Uploads an output into this stage's folder and records it in the manifest."""
        self.storage.upload(src, join(self.out, name))
        self.outputs.append(_file_record(src, name))

    def write_manifest(self, metrics: Mapping[str, Any]) -> None:
        """Written last: its presence is what tells the workflow this stage finished."""
        now = time.time()
        body = {
            "schema_version": 1,
            "stage": self.stage,
            "request_id": self.request_id,
            "started_at": _iso(self.started),
            "finished_at": _iso(now),
            "duration_s": round(now - self.started, 3),
            "inputs": self.inputs,
            "outputs": self.outputs,
            "parameters": self.params,
            "tools": self.tools,
            "timings": self.timings,
            "metrics": dict(metrics),
        }
        self.storage.write_bytes(join(self.out, "manifest.json"), json.dumps(body, indent=2).encode())


def _scratch_root() -> str | None:
    return os.environ.get("SPLATFLOW_SCRATCH") or None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _file_record(path: Path, name: str) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def read_context(env: Mapping[str, str], expected_stage: str) -> Context:
    missing = [
        k
        for k in ("SPLATFLOW_STAGE", "SPLATFLOW_REQUEST_ID", "SPLATFLOW_INPUT_URI", "SPLATFLOW_REQUEST_PREFIX")
        if not env.get(k)
    ]
    if missing:
        raise Refused(f"missing environment: {', '.join(missing)}")
    if env["SPLATFLOW_STAGE"] != expected_stage:
        raise Refused(f"SPLATFLOW_STAGE is {env['SPLATFLOW_STAGE']!r}, this program is the {expected_stage} stage")
    prefix = env["SPLATFLOW_REQUEST_PREFIX"]
    if not prefix.endswith("/"):
        raise Refused("SPLATFLOW_REQUEST_PREFIX must end with '/'")
    try:
        params = json.loads(env.get("SPLATFLOW_PARAMS") or "{}")
    except json.JSONDecodeError as e:
        raise Refused(f"SPLATFLOW_PARAMS is not JSON: {e.msg}") from None
    if not isinstance(params, dict):
        raise Refused("SPLATFLOW_PARAMS must be a JSON object")
    return Context(
        stage=expected_stage,
        request_id=env["SPLATFLOW_REQUEST_ID"],
        input_uri=env["SPLATFLOW_INPUT_URI"],
        prefix=prefix,
        params=params,
    )


def _task_attempt(env: Mapping[str, str]) -> tuple[str | None, int]:
    """Cloud Run's CLOUD_RUN_EXECUTION and CLOUD_RUN_TASK_ATTEMPT (the local launcher sets them too)."""
    try:
        attempt = int(env.get("CLOUD_RUN_TASK_ATTEMPT") or 0)
    except ValueError:
        attempt = 0
    return env.get("CLOUD_RUN_EXECUTION") or None, attempt


def _earlier_error(ctx: Context) -> dict[str, Any] | None:
    """The error record an earlier run left; an unreadable one is only logged: it must not stop the stage."""
    uri = join(ctx.out, ERROR_RECORD)
    try:
        if not ctx.storage.exists(uri):
            return None
        record = json.loads(ctx.storage.read_bytes(uri))
        return record if isinstance(record, dict) else None
    except Exception as e:
        ctx.log("ignoring an unreadable error record", "WARNING", uri=uri, cause=str(e))
        return None


def _refused_earlier(record: dict[str, Any], execution: str | None, attempt: int) -> bool:
    """Cloud Run retries a failed task whatever its exit code; a refusal is deterministic, so a retry of the same
    execution answers it again instead of redoing the work. Another execution (the request retried) runs."""
    same_execution = execution is not None and record.get("execution") == execution
    return record.get("refused") is True and attempt > 0 and same_execution


def _record_failure(ctx: Context, exit_code: int, message: str, execution: str | None, attempt: int) -> None:
    """Best effort: a record that cannot be written is logged, and the stage still fails with its own cause."""
    record = {
        "schema_version": 1,
        "stage": ctx.stage,
        "request_id": ctx.request_id,
        "exit_code": exit_code,
        "refused": exit_code == EXIT_REFUSED,
        "message": message,
        "execution": execution,
        "attempt": attempt,
        "at": _iso(time.time()),
    }
    uri = join(ctx.out, ERROR_RECORD)
    try:
        ctx.storage.write_bytes(uri, (json.dumps(record, indent=2) + "\n").encode())
    except Exception as e:
        ctx.log("cannot write the error record", "ERROR", uri=uri, cause=str(e))


def run(stage: str, main: Callable[[Context], None]) -> None:
    # A stopped job (timeout, maintenance, Ctrl-C of the local stack) still removes its scratch folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    execution, attempt = _task_attempt(os.environ)
    ctx = None
    try:
        ctx = read_context(os.environ, stage)
        earlier = _earlier_error(ctx)
        if earlier is not None and _refused_earlier(earlier, execution, attempt):
            ctx.log("refused by an earlier attempt of this execution; not run again", "WARNING",
                    attempt=earlier.get("attempt"))  # fmt: skip
            print(f"{stage}: {earlier.get('message')}", file=sys.stderr, flush=True)
            sys.exit(EXIT_REFUSED)
        # A cause from an earlier attempt must never outlive it: a success or another failure replaces it.
        ctx.storage.delete(join(ctx.out, ERROR_RECORD))
        main(ctx)
    except StageError as e:
        cause = " ".join(str(e).split()) or "unknown error"  # one line, as stderr and the record promise
        _fail(ctx, stage, EXIT_REFUSED if isinstance(e, Refused) else EXIT_FAILED, cause, execution, attempt)
    except OSError as e:
        full = e.errno == errno.ENOSPC
        cause = DISK_FULL_CAUSE if full else f"{type(e).__name__}: {_first_line(e)}"
        _fail(ctx, stage, EXIT_REFUSED if full else EXIT_FAILED, cause, execution, attempt)
    except Exception as e:  # any other failure is still one line a user can read
        cause = _first_line(e)
        _fail(ctx, stage, EXIT_FAILED, f"{type(e).__name__}: {cause}", execution, attempt)
    finally:
        if ctx is not None:
            shutil.rmtree(ctx.scratch, ignore_errors=True)


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else ""


def _fail(ctx: Context | None, stage: str, exit_code: int, message: str, execution: str | None, attempt: int) -> None:
    if ctx is not None:
        _record_failure(ctx, exit_code, message, execution, attempt)
    # Last on stderr: the launcher (and a person reading the logs) takes the last line as the cause.
    print(f"{stage}: {message}", file=sys.stderr, flush=True)
    sys.exit(exit_code)
