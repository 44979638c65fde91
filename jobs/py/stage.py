"""The stage contract (jobs/README.md) for Python stages: environment, progress lines, manifest last, failure.

A stage is `run(main)`: `main(ctx)` does the work; any exception becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
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

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Written last: its presence is what tells the workflow this stage finished."""
        body = {"stage": self.stage, "request_id": self.request_id, "seconds": round(time.time() - self.started, 2)}
        body.update(manifest)
        self.storage.write_bytes(join(self.out, "manifest.json"), json.dumps(body, indent=2).encode())


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
