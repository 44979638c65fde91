"""The stage contract (jobs/README.md) for Python stages: environment, progress lines, manifest last, failure.

A stage is `run(main)`: `main(ctx)` does the work; any exception becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

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


class StageError(Exception):
    """A failure whose message is the cause a user reads; no traceback is printed for it."""


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
        raise StageError(f"missing environment: {', '.join(missing)}")
    if env["SPLATFLOW_STAGE"] != expected_stage:
        raise StageError(f"SPLATFLOW_STAGE is {env['SPLATFLOW_STAGE']!r}, this program is the {expected_stage} stage")
    prefix = env["SPLATFLOW_REQUEST_PREFIX"]
    if not prefix.endswith("/"):
        raise StageError("SPLATFLOW_REQUEST_PREFIX must end with '/'")
    try:
        params = json.loads(env.get("SPLATFLOW_PARAMS") or "{}")
    except json.JSONDecodeError as e:
        raise StageError(f"SPLATFLOW_PARAMS is not JSON: {e.msg}") from None
    if not isinstance(params, dict):
        raise StageError("SPLATFLOW_PARAMS must be a JSON object")
    return Context(
        stage=expected_stage,
        request_id=env["SPLATFLOW_REQUEST_ID"],
        input_uri=env["SPLATFLOW_INPUT_URI"],
        prefix=prefix,
        params=params,
    )


def run(stage: str, main: Callable[[Context], None]) -> None:
    # A stopped job (timeout, maintenance, Ctrl-C of the local stack) still removes its scratch folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    ctx = None
    try:
        ctx = read_context(os.environ, stage)
        main(ctx)
    except StageError as e:
        print(f"{stage}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as e:  # any other failure is still one line a user can read
        cause = str(e).splitlines()[0] if str(e) else ""
        print(f"{stage}: {type(e).__name__}: {cause}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        if ctx is not None:
            shutil.rmtree(ctx.scratch, ignore_errors=True)
