"""Small validators shared by the world dataclasses; each raises WorldValidationError."""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from physforge.constants import MIN_AXIS_NORM, QUATERNION_NORM_TOLERANCE
from physforge.errors import WorldValidationError


def vector(path: str, value: Any, length: int) -> tuple[float, ...]:
    """``value`` as a tuple of ``length`` finite floats."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise WorldValidationError(path, f"expected a list of {length} numbers", value)
    items = list(value)
    if len(items) != length:
        raise WorldValidationError(path, f"expected {length} numbers, got {len(items)}", value)
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float, np.integer, np.floating)):
            raise WorldValidationError(path, "expected numbers", value)
        item = float(item)
        if not math.isfinite(item):
            raise WorldValidationError(path, "must be finite", value)
        out.append(item)
    return tuple(out)


def number(path: str, value: Any, *, minimum: float | None = None, strict: bool = False,
           maximum: float | None = None) -> float:
    """``value`` as a finite float within [minimum, maximum] (or (minimum, ...] if strict)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise WorldValidationError(path, "expected a number", value)
    value = float(value)
    if not math.isfinite(value):
        raise WorldValidationError(path, "must be finite", value)
    if minimum is not None:
        if strict and value <= minimum:
            raise WorldValidationError(path, f"must be > {minimum}", value)
        if not strict and value < minimum:
            raise WorldValidationError(path, f"must be >= {minimum}", value)
    if maximum is not None and value > maximum:
        raise WorldValidationError(path, f"must be <= {maximum}", value)
    return value


def positive_vector(path: str, value: Any, length: int, minimum: float) -> tuple[float, ...]:
    vec = vector(path, value, length)
    if any(v < minimum for v in vec):
        raise WorldValidationError(path, f"every entry must be >= {minimum} (zero-size or negative)", value)
    return vec


def unit_quaternion(path: str, value: Any) -> tuple[float, float, float, float]:
    """A (w, x, y, z) quaternion of unit length; not normalised silently."""
    quat = vector(path, value, 4)
    norm = math.sqrt(sum(q * q for q in quat))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise WorldValidationError(
            path, f"quaternion (w, x, y, z) must have unit length, its norm is {norm:.6g}", value
        )
    return quat  # type: ignore[return-value]


def unit_axis(path: str, value: Any) -> tuple[float, float, float]:
    """A direction, normalised; zero-length axes are refused."""
    axis = vector(path, value, 3)
    norm = math.sqrt(sum(a * a for a in axis))
    if norm < MIN_AXIS_NORM:
        raise WorldValidationError(path, "axis has zero length", value)
    return tuple(a / norm for a in axis)  # type: ignore[return-value]


def interval(path: str, value: Any) -> tuple[float, float] | None:
    """An optional (low, high) range with low < high."""
    if value is None:
        return None
    low, high = vector(path, value, 2)
    if not low < high:
        raise WorldValidationError(path, "range must have low < high", value)
    return (low, high)


def rgba(path: str, value: Any) -> tuple[float, float, float, float]:
    color = vector(path, value, 4)
    if any(c < 0.0 or c > 1.0 for c in color):
        raise WorldValidationError(path, "colour channels must lie in [0, 1]", value)
    return color  # type: ignore[return-value]


def name(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise WorldValidationError(path, "expected a non-empty string", value)
    if any(ch in value for ch in "\x00\n\r\t/\\\"'<>&"):
        raise WorldValidationError(path, "names may not contain quotes, slashes, <, >, & or control characters", value)
    return value


def one_of(path: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise WorldValidationError(path, f"must be one of {', '.join(allowed)}", value)
    return value


def located(prefix: str, build):
    """Call ``build()`` and put ``prefix`` in front of the path of any validation error."""
    try:
        return build()
    except WorldValidationError as err:
        raise err.prefixed(prefix) from None
