"""What the viewer shows: a dataset (read lazily, row group by row group), an asset folder, or a
run folder with a report. ``open_folder`` detects which one a folder is."""

from __future__ import annotations

import json
import threading
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from physforge.errors import PhysforgeError

#: Question columns the index keeps in memory (everything else is read per page).
INDEX_COLUMNS = ("question_id", "scene_id", "split", "family", "question_type")
QUESTION_COLUMNS = ("question_id", "scene_id", "split", "family", "question_type", "template", "question", "answer",
                    "answer_type", "options", "frame_indices", "cites")
SCENE_COLUMNS = ("scene_id", "split", "family", "variant", "seed", "fps", "clip_duration", "duration", "width",
                 "height", "objects", "latent", "events")
#: Row groups kept decoded at once, per kind (a row group of frames is at most one shard's clips).
CACHE_ROW_GROUPS = 8
MAX_PAGE = 200


class ViewerError(PhysforgeError, ValueError):
    """A folder the viewer cannot show, or a bad request argument."""


class _RowGroups:
    """An LRU cache of decoded (file, row group, columns) tables that logs every read it makes."""

    def __init__(self, capacity: int = CACHE_ROW_GROUPS):
        self.capacity = capacity
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        #: (file name, row group, columns) of every read from disk, in order (tests check laziness)
        self.reads: list[tuple[str, int, tuple[str, ...]]] = []

    def get(self, path: Path, group: int, columns: tuple[str, ...]):
        import pyarrow.parquet as pq

        key = (str(path), group, columns)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            table = pq.ParquetFile(path).read_row_group(group, columns=list(columns))
            self.reads.append((path.relative_to(path.parents[2]).as_posix(), group, columns))
            self._cache[key] = table
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
            return table


class DatasetSource:
    """A dataset from ``physforge data generate``. At open, only the five short index columns of the
    questions and the scene ids are read; question pages, scene metadata and frames are read per
    row group on request, so a dataset larger than memory opens in seconds."""

    kind = "dataset"

    def __init__(self, folder: Path):
        import pyarrow as pa

        self.folder = folder
        self.info = json.loads((folder / "meta" / "info.json").read_text())
        self.groups = _RowGroups()
        self.question_files = sorted((folder / "questions").glob("*/*.parquet"))
        self.scene_files = sorted((folder / "scenes").glob("*/*.parquet"))
        pieces = []
        for f, path in enumerate(self.question_files):
            table, groups, rows = self._index_columns(path, INDEX_COLUMNS)
            pieces.append(table.append_column("_file", pa.array(np.full(table.num_rows, f, np.int32)))
                          .append_column("_group", pa.array(groups)).append_column("_row", pa.array(rows)))
        self.index = pa.concat_tables(pieces) if pieces else None
        self.scenes: dict[str, tuple[int, int, int]] = {}
        for f, path in enumerate(self.scene_files):
            table, groups, rows = self._index_columns(path, ("scene_id",))
            for scene_id, g, r in zip(table.column(0).to_pylist(), groups.tolist(), rows.tolist()):
                self.scenes[scene_id] = (f, g, r)

    def _index_columns(self, path: Path, columns: tuple[str, ...]):
        """``columns`` of every row group of ``path`` in one read (files written a row group per
        scene have thousands), with each row's (row group, row within it) from the footer."""
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(path)
        sizes = [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)]
        table = handle.read(columns=list(columns))
        self.groups.reads.append((path.relative_to(path.parents[2]).as_posix(), -1, columns))
        groups = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
        rows = np.concatenate([np.arange(n, dtype=np.int32) for n in sizes]) if sizes else np.zeros(0, np.int32)
        return table, groups, rows

    def summary(self) -> dict[str, Any]:
        facets = {}
        if self.index is not None:
            for column, name in (("family", "family"), ("question_type", "type"), ("split", "split")):
                counts = Counter(self.index.column(column).to_pylist())
                facets[name] = dict(sorted(counts.items()))
        return {"kind": self.kind, "name": self.folder.name, "num_scenes": self.info.get("num_scenes"),
                "num_questions": self.info.get("num_questions"), "content_hash": self.info.get("content_hash"),
                "facets": facets, "has_report": (self.folder / "report.html").is_file()}

    def questions(self, *, family: str = "", question_type: str = "", split: str = "", offset: int = 0,
                  limit: int = 20) -> dict[str, Any]:
        """One page of questions matching the filters (empty string: any), in dataset order."""
        import pyarrow.compute as pc

        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ViewerError(f"offset must be >= 0 and limit in [1, {MAX_PAGE}], got offset={offset}, limit={limit}")
        if self.index is None:
            return {"total": 0, "offset": offset, "questions": []}
        table = self.index
        for column, value in (("family", family), ("question_type", question_type), ("split", split)):
            if value:
                table = table.filter(pc.equal(table.column(column), value))
        page = table.slice(offset, limit)
        rows = []
        for f, g, r in zip(page.column("_file").to_pylist(), page.column("_group").to_pylist(),
                           page.column("_row").to_pylist()):
            full = self.groups.get(self.question_files[f], g, QUESTION_COLUMNS)
            rows.append(full.slice(r, 1).to_pylist()[0])
        return {"total": table.num_rows, "offset": offset, "questions": rows}

    def _scene_location(self, scene_id: str) -> tuple[Path, int, int]:
        if scene_id not in self.scenes:
            raise ViewerError(f"no scene {scene_id!r} in {self.folder}")
        f, g, r = self.scenes[scene_id]
        return self.scene_files[f], g, r

    def scene(self, scene_id: str) -> dict[str, Any]:
        """A scene's metadata: objects, latent properties, events, timing (no images)."""
        path, g, r = self._scene_location(scene_id)
        row = self.groups.get(path, g, SCENE_COLUMNS).slice(r, 1).to_pylist()[0]
        row["num_frames"] = len(self.groups.get(path, g, ("frames",)).column(0)[r])
        # plausibility questions compare the clip with its impossible twin (alt_frames)
        row["num_alt_frames"] = len(self.groups.get(path, g, ("alt_frames",)).column(0)[r])
        return row

    def frame(self, scene_id: str, index: int, column: str = "frames") -> bytes:
        """PNG bytes of frame ``index`` of ``column`` (frames, depth, segmentation, alt_frames)."""
        if column not in ("frames", "depth", "segmentation", "alt_frames"):
            raise ViewerError(f"column must be frames, depth, segmentation or alt_frames, got {column!r}")
        path, g, r = self._scene_location(scene_id)
        images = self.groups.get(path, g, (column,)).column(0)[r].as_py()
        if not 0 <= index < len(images):
            raise ViewerError(f"scene {scene_id} has {len(images)} {column}; index {index} is out of range")
        return images[index]["bytes"]

    def clip(self, scene_id: str) -> bytes:
        """The scene's clip as a looping GIF."""
        from physforge.report.builders import decode_frames
        from physforge.report.html import gif_bytes

        path, g, r = self._scene_location(scene_id)
        images = self.groups.get(path, g, ("frames",)).column(0)[r].as_py()
        fps = float(self.groups.get(path, g, SCENE_COLUMNS).column("fps")[r].as_py() or 4.0)
        return gif_bytes(decode_frames(images), max(fps, 1.0))


class AssetSource:
    """An asset folder from ``physforge asset build``: the gate's report card, the annotation, and
    a turntable and joint-sweep GIF rendered once when the viewer opens it."""

    kind = "asset"

    def __init__(self, folder: Path, *, size: int = 192):
        from physforge.report.builders import gate_rows
        from physforge.report.html import gif_bytes
        from physforge.sim.preview import joint_sweep, turntable
        from physforge.world import load_world

        self.folder = folder
        self.gate = json.loads((folder / "report.json").read_text()) if (folder / "report.json").is_file() else None
        self.annotation = json.loads((folder / "annotation.json").read_text())
        self.gate_rows = gate_rows(self.gate) if self.gate else []
        world = load_world(folder / "world.json")
        self.media = {"turntable.gif": gif_bytes(turntable(world, size=size), 12)}
        sweep, self.joints = joint_sweep(world, size=size)
        if len(sweep):
            self.media["sweep.gif"] = gif_bytes(sweep, 12)

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.folder.name, "gate": self.gate and {
            "passed": self.gate["passed"], "failed": self.gate["failed"], "checks": self.gate_rows,
            "parts": self.gate.get("parts", [])}, "annotation": self.annotation, "joints": self.joints,
            "media": sorted(self.media), "has_report": (self.folder / "report.html").is_file()}


class RunSource:
    """Any other output folder with a ``report.html`` (reason eval, dynamics dpo, robot eval, demo)."""

    kind = "run"

    def __init__(self, folder: Path):
        self.folder = folder

    def summary(self) -> dict[str, Any]:
        files = sorted(p.relative_to(self.folder).as_posix() for p in self.folder.iterdir()
                       if not p.name.startswith("."))
        # step reports one or two levels down (the demo's reason/eval, dynamics/dpo), not a deep walk
        found = [*self.folder.glob("*/report.html"), *self.folder.glob("*/*/report.html")]
        reports = sorted(p.relative_to(self.folder).as_posix() for p in found)
        return {"kind": self.kind, "name": self.folder.name, "files": files, "sub_reports": reports,
                "has_report": (self.folder / "report.html").is_file()}


def open_folder(folder: str | Path):
    """The source for ``folder``: a dataset (meta/info.json), an asset (annotation.json + world.json)
    or a run (report.html)."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ViewerError(f"{folder} is not a folder; pass a dataset, asset or run folder")
    if (folder / "meta" / "info.json").is_file() and (folder / "questions").is_dir():
        return DatasetSource(folder)
    if (folder / "annotation.json").is_file() and (folder / "world.json").is_file():
        return AssetSource(folder)
    if (folder / "report.html").is_file():
        return RunSource(folder)
    raise ViewerError(f"{folder}: not a dataset (meta/info.json), an asset folder (annotation.json + world.json) "
                      "or a run folder with report.html; point the viewer at one of those")
