"""Stages are started as `python3 jobs/<stage>/main.py` (jobs/definitions.json). In the image that python3 is the
virtual environment requirements.lock is installed in; on a machine, that is the repository's .venv (local/setup
installs it; the local jobs launcher runs it), while a `python3` on PATH run by hand may be another install without
torch. Such a run re-executes itself under SPLATFLOW_PYTHON, else .venv's interpreter, once."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

VENV_PYTHON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"


def ensure_torch_interpreter() -> None:
    # Called before torch loads libgomp, which reads this once: OpenMP threads (the CPU rasterizer's numba kernels)
    # then sleep between parallel regions instead of spinning, so on a busy machine they do not take the core from
    # the thread running torch. Measured on a shared 2-core machine: the optimizer step 700 ms → 9 ms.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # The numba kernels on OpenMP (torch's libgomp, one pool for both), as that was measured with: PyPI's numba takes
    # TBB first wherever a libtbb happens to be installed, which the wait policy above does not govern.
    os.environ.setdefault("NUMBA_THREADING_LAYER_PRIORITY", "omp tbb workqueue")
    if importlib.util.find_spec("torch") is not None or os.environ.get("SPLATFLOW_REEXEC"):
        return
    target = os.environ.get("SPLATFLOW_PYTHON") or str(VENV_PYTHON)
    if os.path.exists(target) and os.path.realpath(target) != os.path.realpath(sys.executable):
        os.environ["SPLATFLOW_REEXEC"] = "1"
        os.execv(target, [target, *sys.argv])
    stage = os.environ.get("SPLATFLOW_STAGE", "stage")
    print(f"{stage}: torch is not installed for {sys.executable} (local/setup installs it in .venv)",
          file=sys.stderr)  # fmt: skip
    sys.exit(1)
