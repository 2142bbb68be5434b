"""A resumable batch of library assets in one folder.

Layout::

    batch.json              the LibraryBatchConfig of the run (a rerun must match it)
    <name>/                 one asset folder per object (written all-or-nothing by write_asset)
    summary.json            written last: pass rate, per-object rows and a content hash

Object ``i`` draws from ``SeedSequence([seed, i])`` and is written under a staging name that
is renamed into place when it is complete, so a run killed at any point leaves only finished
asset folders visible; running it again skips those and builds the rest. The content hash
covers every file of every object except the gate's wall-clock timings, so an interrupted and
resumed batch can be compared with an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from physforge.configs import ConfigError, JsonConfig, check_int
from physforge.outputs import write_json

BATCH_FILE = "batch.json"
SUMMARY_FILE = "summary.json"
# Keys of report.json that hold wall-clock times: excluded from the content hash.
_TIMING_KEYS = frozenset({"seconds", "wall_s", "elapsed_s"})


class BatchConfigError(ConfigError):
    """A batch configuration is invalid, or a folder holds a batch made with another one."""


@dataclass(frozen=True)
class LibraryBatchConfig(JsonConfig):
    """category: a library category, or "all" to cycle through them. num: objects. seed: run
    seed (object i uses SeedSequence([seed, i])). collision: auto, coacd or hull (see BuildConfig)."""

    category: str = "all"
    num: int = 1
    seed: int = 0
    collision: str = "auto"

    error_type = BatchConfigError

    def __post_init__(self):
        from physforge.assets.library import CATEGORIES

        if self.category != "all" and self.category not in CATEGORIES:
            raise BatchConfigError("category", f"unknown {self.category!r}; choose all or one of "
                                   f"{', '.join(sorted(CATEGORIES))}")
        check_int("num", self.num, 1, 1_000_000, BatchConfigError)
        check_int("seed", self.seed, 0, 2**63 - 1, BatchConfigError)
        if self.collision not in ("auto", "coacd", "hull"):
            raise BatchConfigError("collision", f"expected auto, coacd or hull, got {self.collision!r}")

    def names(self) -> list[tuple[str, str]]:
        """(category, object name) of every object, in order."""
        from physforge.assets.library import CATEGORIES

        categories = sorted(CATEGORIES)
        out = []
        for i in range(self.num):
            chosen = categories[i % len(categories)] if self.category == "all" else self.category
            out.append((chosen, f"{chosen}_{self.seed}_{i:04d}"))
        return out


def build_library(config: LibraryBatchConfig, out_dir: str | Path, *, cache_dir: str | Path | None = None,
                  on_object: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Build (or finish) the batch in ``out_dir``; returns ``summary.json``'s content."""
    from physforge.assets.build import BuildConfig, build_asset
    from physforge.assets.export import REPORT_FILE, write_asset
    from physforge.assets.library import generate, object_rng

    out = Path(out_dir)
    _check_or_write_config(out, config)
    for stale in out.glob(".*.partial-*"):  # staging folders of a killed run
        shutil.rmtree(stale, ignore_errors=True)
    build = BuildConfig(collision=config.collision, cache_dir=Path(cache_dir) if cache_dir is not None else None)
    rows = []
    for i, (category, name) in enumerate(config.names()):
        folder = out / name
        if not (folder / REPORT_FILE).is_file():
            source = generate(category, object_rng(config.seed, i), seed=config.seed, name=name)
            write_asset(build_asset(source, build), folder, overwrite=True)
        report = json.loads((folder / REPORT_FILE).read_text())
        row = {"index": i, "name": name, "category": category, "passed": report["passed"],
               "failed": report["failed"], "sha256": folder_hash(folder)}
        rows.append(row)
        if on_object is not None:
            on_object(row)
    passed = sum(bool(r["passed"]) for r in rows)
    content = hashlib.sha256("".join(f"{r['name']}:{r['sha256']}\n" for r in rows).encode()).hexdigest()
    summary = {"config": config.to_dict(), "seed": config.seed, "num": config.num, "passed": passed,
               "pass_rate": passed / config.num,
               "content_hash": content, "objects": rows}
    write_json(out / SUMMARY_FILE, summary)
    return summary


def folder_hash(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file in an asset folder, report.json
    without its wall-clock timings."""
    from physforge.assets.export import REPORT_FILE

    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == REPORT_FILE:
            data = json.dumps(_without_timings(json.loads(data)), sort_keys=True).encode()
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in _TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _check_or_write_config(out: Path, config: LibraryBatchConfig) -> None:
    path = out / BATCH_FILE
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError:
            existing = None
        if existing != config.to_dict():
            raise BatchConfigError(str(path), "this folder holds a batch with another config; rerun it with the "
                                   "same options to resume, or choose another --out folder")
        return
    if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise BatchConfigError(str(out), f"not empty and holds no {BATCH_FILE}; choose another --out folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, config.to_dict())
