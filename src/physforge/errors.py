"""physforge's error types.

Every error raised on bad user input is a ``PhysforgeError``; each also derives from the
builtin that a caller would expect (``ValueError`` for bad values, ``RuntimeError`` for a
simulation that went wrong), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from typing import Any


class PhysforgeError(Exception):
    """Base class of every error physforge raises on purpose."""


class WorldValidationError(PhysforgeError, ValueError):
    """A world description holds a bad value.

    ``path`` names the field (``bodies[2].geoms[0].material.density``), ``value`` is what
    was found there.
    """

    def __init__(self, path: str, message: str, value: Any = None):
        self.path = path
        self.value = value
        self.reason = message
        shown = "" if value is None else f" (got {_short_repr(value)})"
        super().__init__(f"{path}: {message}{shown}")

    def prefixed(self, prefix: str) -> "WorldValidationError":
        """The same error with ``prefix`` put in front of its field path."""
        joined = f"{prefix}.{self.path}" if not self.path.startswith("[") else f"{prefix}{self.path}"
        return WorldValidationError(joined, self.reason, self.value)


class InputFileError(PhysforgeError, ValueError):
    """A file given to physforge cannot be used: missing, malformed, unsafe or too large."""

    def __init__(self, path: Any, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")


class SimulationUnstable(PhysforgeError, RuntimeError):
    """A simulation blew up (NaN, energy created from nothing, deep penetration).

    ``time`` is the simulated time in s at which it was detected, ``reason`` says which check
    failed and by how much.
    """

    def __init__(self, reason: str, time: float):
        self.reason = reason
        self.time = time
        super().__init__(
            f"simulation unstable at t={time:.4f} s: {reason}. Try a smaller timestep, "
            "softer contacts, or fix overlapping bodies in the initial state."
        )


class MissingDependencyError(PhysforgeError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"{package} is needed for this feature: pip install 'physforge[{extra}]'"
        )


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ImageInputError(InputFileError):
    """An image cannot be used: unreadable, truncated, empty, of another type than its
    extension says, too small, or too large (a decompression bomb)."""
