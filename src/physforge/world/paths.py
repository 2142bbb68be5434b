"""Resolving file references inside a world or asset folder without letting them escape it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from physforge.errors import InputFileError


def resolve_inside(root: Path, reference: str, *, must_exist: bool = True) -> Path:
    """The file ``reference`` names, relative to ``root``, refusing anything outside ``root``.

    Absolute paths, drive letters, ``..`` components and symlinks that lead out of ``root``
    are refused: a downloaded URDF, MJCF or world file must not read arbitrary files.
    """
    root = Path(root).resolve()
    text = str(reference)
    if not text or "\x00" in text:
        raise InputFileError(reference, "empty or malformed file reference")
    posix, windows = PurePosixPath(text.replace("\\", "/")), PureWindowsPath(text)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise InputFileError(reference, f"absolute paths are not allowed; give a path relative to {root}")
    if ".." in posix.parts:
        raise InputFileError(reference, f"'..' is not allowed: files must stay inside {root}")
    candidate = (root / Path(*posix.parts)).resolve()
    if candidate != root and root not in candidate.parents:
        raise InputFileError(reference, f"resolves outside {root} (through a symlink?); refused")
    if must_exist and not candidate.is_file():
        raise InputFileError(reference, f"file not found in {root}")
    return candidate
