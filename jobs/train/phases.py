"""Wall time of a training step by phase (projection, binning, forward, backward, loss, optimizer, densification),
for `npm run bench:train`. Off unless a caller turns it on; then a phase costs two clock reads.

The training loop calls `lap(name)` after each part of a step (the time since the previous lap is that part's); code
deeper down (the rasterizer) times its own parts with `with PHASES(name):`, nested inside a lap."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator


class Phases:
    def __init__(self) -> None:
        self.enabled = False
        self.seconds: dict[str, float] = defaultdict(float)
        self._last = time.perf_counter()

    def reset(self, enabled: bool) -> None:
        self.enabled = enabled
        self.seconds.clear()
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.enabled:
            now = time.perf_counter()
            self.seconds[name] += now - self._last
            self._last = now

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def split(self, steps: int, nested: dict[str, tuple[str, ...]], skip: tuple[str, ...] = ("setup",)) -> dict:
        """Milliseconds per step by phase. `nested` names phases timed inside a lap (the rasterizer's backward runs
        inside the loss's backward pass): they are subtracted from it, which keeps what is left as `<lap>, rest`."""
        ms = {k: 1000.0 * v / steps for k, v in self.seconds.items() if k not in skip}
        for outer, inner in nested.items():
            if outer in ms:
                ms[f"{outer}, rest"] = ms.pop(outer) - sum(ms.get(i, 0.0) for i in inner)
        return {k: round(v, 2) for k, v in ms.items()}


PHASES = Phases()
