"""Model checkpoints: a folder with ``model.safetensors`` (weights only, never pickle) and
``checkpoint.json`` (kind, format version, step, model arguments), each written atomically.

Every trained physforge model (PhysEncoder, dynamics generator, ...) saves and loads through
these three functions; torch and safetensors are imported only when they are called.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from physforge.errors import PhysforgeError
from physforge.outputs import write_json

WEIGHTS_FILE = "model.safetensors"
META_FILE = "checkpoint.json"


class CheckpointError(PhysforgeError, ValueError):
    """A checkpoint folder cannot be loaded: missing files, wrong kind, or mismatched shapes."""

    def __init__(self, path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")


def save_checkpoint(model, folder: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``meta`` (which must hold ``kind``) into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    temporary = folder / f".{WEIGHTS_FILE}.tmp-{os.getpid()}"
    # One metadata key: safetensors writes its metadata map in hash order, which differs between
    # processes when there are several keys, so the same weights would not give the same bytes.
    header = json.dumps({"kind": str(meta["kind"]), "step": str(meta.get("step", 0))}, sort_keys=True)
    try:
        save_file(tensors, str(temporary), metadata={"physforge": header})
        temporary.replace(folder / WEIGHTS_FILE)
    except BaseException:
        temporary.unlink(missing_ok=True)  # e.g. ENOSPC: the previous weights stay as they were
        raise
    write_json(folder / META_FILE, meta)
    return folder


def read_checkpoint_meta(folder: str | Path, kind: str, format_version: str, *, hint: str,
                         error: type[CheckpointError] = CheckpointError) -> dict[str, Any]:
    """``checkpoint.json`` of ``folder``, checked to be of ``kind`` and ``format_version``.

    hint: what to pass instead, for the error when there is no checkpoint here.
    """
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise error(folder, f"no {META_FILE} here; {hint}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise error(meta_path, f"not valid JSON ({err.msg})") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        found = meta.get("kind") if isinstance(meta, dict) else None
        raise error(folder, f"kind is {found!r}, expected {kind!r}")
    if meta.get("format_version") != format_version:
        raise error(folder, f"format_version {meta.get('format_version')!r} is not supported "
                    f"(expected {format_version}); retrain or upgrade physforge")
    return meta


def load_weights(model, folder: str | Path, *, error: type[CheckpointError] = CheckpointError) -> None:
    """Load ``folder``'s safetensors weights into ``model`` (strict: every tensor must match)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except (FileNotFoundError, SafetensorError, OSError) as err:
        raise error(folder / WEIGHTS_FILE, f"cannot read the weights ({err})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise error(folder, f"weights do not match the model arguments: {str(err)[:300]}") from None
