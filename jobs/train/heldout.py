"""Which views are held out for evaluation: a property of the input, not of what sfm registered. The frames stage
numbers its frames in capture order (frame_00012.jpg), so holding out by that number keeps the same frames out
whichever others register; a view held out beyond the first or last training frame in capture order is an
extrapolation and is scored apart, since it measures how far the scene reaches, not how well it was fitted."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Optional

_NUMBER = re.compile(r"\d+")


def frame_number(name: str) -> Optional[int]:
    """The capture-order number in an image's stem, if it has one (sfm's in-between frames, frame_00011_m.jpg,
    share their predecessor's)."""
    match = _NUMBER.search(PurePath(name).stem)
    return int(match.group()) if match else None


def is_held_out(name: str, rank: int, every: int) -> bool:
    """Every `every`-th frame, starting half a period in (so never the clip's first frame, which starts its path);
    frames sfm added in between (a suffix after the number) always train; an image without a number falls back to its
    rank among the model's images."""
    if every <= 0:
        return False
    stem = PurePath(name).stem
    match = _NUMBER.search(stem)
    if match and match.end() < len(stem):
        return False
    return (int(match.group()) if match else rank) % every == every // 2


def extrapolated(held_out: list[str], training: list[str]) -> set[str]:
    """The held-out views outside the span of the training views in capture order (by number, else by name)."""

    def key(name: str) -> tuple:
        number = frame_number(name)
        return (0, number, name) if number is not None else (1, 0, name)

    if not training:
        return set(held_out)
    first, last = min(map(key, training)), max(map(key, training))
    return {name for name in held_out if not first < key(name) < last}
