"""Validate a stage's SPLATFLOW_PARAMS against a small schema: unknown keys, wrong types and out-of-range values are
refused with a message naming the parameter (the ajv of the Python stages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .stage import Refused


@dataclass(frozen=True)
class Param:
    type: type
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


def validate(params: Mapping[str, Any], schema: Mapping[str, Param]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        spec = schema.get(key)
        if spec is None:
            raise Refused(f"unknown parameter {key!r} (known: {', '.join(sorted(schema))})")
        ok = isinstance(value, spec.type) and not (spec.type is not bool and isinstance(value, bool))
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise Refused(f"parameter {key!r} must be {spec.type.__name__}, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise Refused(f"parameter {key!r} must be one of {', '.join(spec.choices)}, got {value!r}")
        if spec.minimum is not None and value < spec.minimum:
            raise Refused(f"parameter {key!r} must be ≥ {spec.minimum}, got {value!r}")
        if spec.maximum is not None and value > spec.maximum:
            raise Refused(f"parameter {key!r} must be ≤ {spec.maximum}, got {value!r}")
        out[key] = value
    return out
