"""Writing output folders so that a crash never leaves one that looks finished."""

from __future__ import annotations

import json
import math
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from physforge.errors import PhysforgeError


class OutputExistsError(PhysforgeError, FileExistsError):
    """The output folder exists and overwriting was not asked for."""


@contextmanager
def staged_directory(out_dir: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``out_dir``; on success it is renamed to ``out_dir``.

    On any exception the staging folder is deleted and ``out_dir`` is left as it was.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"{out_dir} already exists; choose another folder or pass --overwrite")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.exists():
        trash = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        out_dir.rename(trash)
        staging.rename(out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staging.rename(out_dir)


def prepare_run_folder(out: str | Path, *, overwrite: bool = False, keep: bool = False,
                       config: dict | None = None) -> Path:
    """Create a training/evaluation run folder (runs write into it as they go, so they can resume).

    An existing non-empty folder is refused unless ``overwrite`` (it is emptied) or ``keep`` (a
    resumed run continues in it). ``config`` is written as ``config.json`` when given.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not keep:
        if not overwrite:
            raise OutputExistsError(f"{out} already exists and is not empty; choose another --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if config is not None:
        write_json(out / "config.json", config)
    return out


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in nested dicts, lists and tuples) replaced by
    None, for results where they mean "not measured" (``write_json`` refuses them: JSON has none)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def write_json(path: str | Path, payload: Any) -> Path:
    """Write JSON atomically (temporary file + rename), refusing NaN."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    text = json.dumps(payload, indent=1, allow_nan=False, default=_default) + "\n"
    try:
        temporary.write_text(text)
        temporary.replace(path)
    except BaseException:
        # A full disk (ENOSPC) or a kill mid-write: the previous file stays, no partial one lingers.
        temporary.unlink(missing_ok=True)
        raise
    return path


def _default(value: Any):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
