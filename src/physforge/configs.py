"""What typed configs share: range checks that name the field, and a JSON round trip that
refuses unknown fields. Each package raises its own ConfigError subclass through ``error``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from physforge.errors import PhysforgeError


class ConfigError(PhysforgeError, ValueError):
    """A config holds a bad value; ``path`` names the field."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")


def check_int(name: str, value: Any, low: int, high: int, error: type[ConfigError] = ConfigError) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise error(name, f"expected an integer in [{low}, {high}], got {value!r}")


def check_float(name: str, value: Any, low: float, high: float, error: type[ConfigError] = ConfigError) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise error(name, f"expected a number in [{low}, {high}], got {value!r}")


class JsonConfig:
    """Mixin for frozen dataclass configs: ``to_dict``, ``from_dict`` (unknown fields refused,
    lists become tuples, errors prefixed with ``where``) and ``load`` from a JSON file."""

    error_type: type[ConfigError] = ConfigError

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Any, where: str = "config"):
        error = cls.error_type
        if not isinstance(data, dict):
            raise error(where, f"expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise error(f"{where}.{unknown[0]}", f"unknown field; expected one of {sorted(known)}")
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except ConfigError as err:
            if where == "config":
                raise
            raise error(f"{where}.{err.path}", str(err).split(": ", 1)[1]) from None

    @classmethod
    def load(cls, path: str | Path, **overrides: Any):
        """The config in the JSON file ``path``, with ``overrides`` (field -> value, e.g. a run's
        data and out folders from the command line) replacing or adding fields before validation."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise cls.error_type(str(path), "config file not found") from None
        except json.JSONDecodeError as err:
            raise cls.error_type(str(path), f"not valid JSON ({err.msg} at line {err.lineno})") from None
        if overrides and isinstance(data, dict):
            data = {**data, **overrides}
        return cls.from_dict(data, where=str(path))
