"""Sharded, resumable, deterministic dataset generation on a local process pool or Ray.

Layout of a dataset folder::

    config.json                           the DataConfig and the number of scenes
    scenes/{split}/shard-NNNNN.parquet    one row per scene (images, states, events, latents)
    candidates/{split}/shard-NNNNN.parquet a shard's questions before dataset-wide balancing
    questions/{split}/shard-NNNNN.parquet one row per question (balanced; written by finalize)
    shards/shard-NNNNN.json               written last for a shard: it is complete (with its stats)
    meta/info.json                        format version, features, counts, content hash
    README.md                             the dataset card

Shard k holds scenes [k * shard_size, (k + 1) * shard_size). Every file is written under a
temporary name and renamed into place, so a killed run leaves no half-written file under a
final name; running the same command again skips finished shards and redoes the others,
which gives the same bytes (every scene draws from ``SeedSequence([seed, index])``).

Yes/no answers are balanced over the whole dataset, not per shard: a template whose physics
rarely gives its minority answer (a door that seldom stays shut) has one or two minority
answers per shard, and exact balance inside every 16-scene shard would trim it to almost
nothing. ``finalize`` rebuilds ``questions/`` from ``candidates/`` every time it runs, so a
finalisation killed half-way is redone to the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from physforge.data.config import SPLITS, DataConfig
from physforge.data.errors import DataConfigError
from physforge.outputs import write_json

log = logging.getLogger(__name__)

SHARD_NAME = "shard-{:05d}"
CANDIDATES = "candidates"


def _atomic_parquet(table, path: Path) -> None:
    import time

    import pyarrow.parquet as pq

    from physforge.data.programs import TIMINGS

    start = time.process_time()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, temporary, compression="zstd")
    os.replace(temporary, path)
    TIMINGS["write"] += time.process_time() - start


class _SceneWriters:
    """A shard's scene rows, one Parquet file per split, each row written as soon as its scene is
    done (a row group per scene): a worker holds one scene's frames at a time, whatever the
    shard size. Files grow under temporary names; ``commit`` renames them into place."""

    def __init__(self, out: Path, name: str):
        self.out, self.name = out, name
        self._open: dict[str, tuple[Any, Path, Path]] = {}  # split -> (writer, temporary, final path)

    def write(self, split: str, row: dict) -> None:
        import time

        import pyarrow as pa
        import pyarrow.parquet as pq

        from physforge.data.programs import TIMINGS
        from physforge.data.schema import SCENES_HF

        start = time.process_time()
        if split not in self._open:
            path = self.out / "scenes" / split / f"{self.name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            self._open[split] = (pq.ParquetWriter(temporary, SCENES_HF, compression="zstd"), temporary, path)
        self._open[split][0].write_table(pa.Table.from_pylist([row], schema=SCENES_HF))
        TIMINGS["write"] += time.process_time() - start

    @property
    def splits(self) -> list[str]:
        return sorted(self._open)

    def commit(self) -> None:
        for writer, temporary, path in self._open.values():
            writer.close()
            os.replace(temporary, path)
        self._open.clear()

    def abort(self) -> None:
        for writer, temporary, _ in self._open.values():
            writer.close()
            temporary.unlink(missing_ok=True)
        self._open.clear()


def generate_shard(config_data: dict, out_dir: str, shard: int, num_scenes: int) -> dict[str, Any]:
    """Generate and write shard ``shard`` (scenes ``shard * shard_size`` .. below ``num_scenes``);
    returns its stats. Runs in a worker process (pool or Ray); one renderer per process."""
    import pyarrow as pa

    from physforge.data.questions import Balancer
    from physforge.data.scene import generate_scene
    from physforge.data.schema import QUESTIONS_HF
    from physforge.sim.render import RenderConfig, SceneRenderer

    config = DataConfig.from_dict(config_data)
    out = Path(out_dir)
    renderer = SceneRenderer(config=RenderConfig(config.width, config.height))
    balancer = Balancer()
    start = shard * config.shard_size
    stop = min(num_scenes, start + config.shard_size)
    name = SHARD_NAME.format(shard)
    scenes = _SceneWriters(out, name)
    generated: list[dict] = []  # question rows (no images) in generation order
    stats: Counter = Counter()
    answers: dict[str, Counter] = {}
    try:
        for index in range(start, stop):
            result = generate_scene(config, index, renderer, balancer)
            stats.update(result.stats)
            if result.scene is None:
                stats[f"rejected.{result.family}"] += 1
                log.warning("scene %d (%s) rejected, not written: %s", index, result.family, result.rejected)
                continue
            scenes.write(result.split, result.scene)
            generated.extend(result.questions)
            stats[f"scenes.{result.split}.{result.family}"] += 1
    except BaseException:
        scenes.abort()
        raise
    finally:
        renderer.close()
    questions: dict[str, list[dict]] = {}
    for q in generated:
        questions.setdefault(q["split"], []).append(q)
        answers.setdefault(q["template"], Counter())[q["answer"]] += 1
    splits = scenes.splits
    scenes.commit()
    for split in splits:
        _atomic_parquet(pa.Table.from_pylist(questions.get(split, []), schema=QUESTIONS_HF),
                        out / CANDIDATES / split / f"{name}.parquet")
    summary = {"shard": shard, "scenes": [start, stop], "splits": splits,
               "stats": dict(sorted(stats.items())),
               "candidate_answers": {t: dict(sorted(c.items())) for t, c in sorted(answers.items())}}
    (out / "shards").mkdir(parents=True, exist_ok=True)
    write_json(out / "shards" / f"{name}.json", summary)
    _return_freed_heap()
    return summary


def _return_freed_heap() -> None:
    """Give the heap that a shard freed back to the OS. glibc keeps freed blocks in its arenas,
    and a shard's mix of image buffers, Arrow batches and MuJoCo models fragments them: a
    worker's RSS crept ~5 MiB per 1,000 scenes (at 64², 60 shards: 363 -> 453 MiB) although no
    object outlived its shard; with a trim after each shard it stays flat (322-328 MiB)."""
    import ctypes
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to trim
        return
    libc.malloc_trim(0)


def _check_or_write_config(out: Path, config: DataConfig, num_scenes: int) -> None:
    payload = {"config": config.to_dict(), "num_scenes": num_scenes}
    path = out / "config.json"
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError:
            existing = None
        if existing != json.loads(json.dumps(payload)):
            raise DataConfigError(str(path), "this folder holds a run with a different config or number of scenes; "
                                  "resume with the same command, or choose another --out folder")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, payload)


def _clean_temporaries(out: Path) -> None:
    for path in out.rglob(".*.tmp*"):
        if path.is_file():
            path.unlink()


def pending_shards(out: Path, config: DataConfig, num_scenes: int) -> list[int]:
    total = math.ceil(num_scenes / config.shard_size)
    return [k for k in range(total) if not (out / "shards" / f"{SHARD_NAME.format(k)}.json").exists()]


def generate_dataset(config: DataConfig, out_dir: str | Path, num_scenes: int, *, workers: int = 1,
                     ray_address: str | None = None, use_ray: bool = False, progress: bool = False,
                     on_shard: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Generate (or finish) the dataset in ``out_dir``; returns ``meta/info.json``'s content.

    workers: local processes (ignored with Ray). ray_address / use_ray: run shards as Ray tasks
    (an already initialised Ray is used as is; else ``ray.init(address=ray_address)``).
    """
    if isinstance(num_scenes, bool) or not isinstance(num_scenes, int) or num_scenes < 1:
        raise DataConfigError("num_scenes", f"expected a positive integer, got {num_scenes!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DataConfigError("workers", f"expected a positive integer, got {workers!r}")
    out = Path(out_dir)
    _check_or_write_config(out, config, num_scenes)
    _clean_temporaries(out)
    todo = pending_shards(out, config, num_scenes)
    data = config.to_dict()
    sizes = {k: min(num_scenes, (k + 1) * config.shard_size) - k * config.shard_size for k in todo}
    done_before = num_scenes - sum(sizes.values())
    with _progress(progress, num_scenes, done_before) as advance:
        def finished(summary: dict) -> None:
            advance(summary["scenes"][1] - summary["scenes"][0])
            if on_shard is not None:
                on_shard(summary)

        if todo and (ray_address is not None or use_ray):
            _run_ray(data, out, todo, num_scenes, ray_address, finished)
        elif todo and workers > 1:
            _run_pool(data, out, todo, num_scenes, workers, finished)
        else:
            for shard in todo:
                finished(generate_shard(data, str(out), shard, num_scenes))
    return finalize(out)


class _progress:
    """A rich progress bar with ETA over scenes (a no-op when ``enabled`` is False)."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self.enabled, self.total, self.completed = enabled, total, completed

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._bar = Progress(TextColumn("scenes"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TextColumn("ETA"), TimeRemainingColumn())
        self._bar.start()
        task = self._bar.add_task("scenes", total=self.total, completed=self.completed)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.stop()
        return False


def _run_pool(data, out: Path, todo: list[int], num_scenes: int, workers: int, finished) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # no GL or MuJoCo state inherited from the parent
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running = {pool.submit(generate_shard, data, str(out), shard, num_scenes) for shard in todo}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                finished(future.result())


def _run_ray(data, out: Path, todo: list[int], num_scenes: int, address: str | None, finished) -> None:
    try:
        import ray
    except ImportError:
        from physforge.errors import MissingDependencyError

        raise MissingDependencyError("ray", "dist") from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    remote = ray.remote(generate_shard)
    running = [remote.remote(data, str(out.resolve()), shard, num_scenes) for shard in todo]
    while running:
        done, running = ray.wait(running, num_returns=1)
        for ref in done:
            finished(ray.get(ref))


# -- finalisation ------------------------------------------------------------------------------------
def data_files(out: Path) -> list[Path]:
    return sorted(p for kind in ("scenes", "questions") for p in (out / kind).glob("*/*.parquet"))


def content_hash(out: Path) -> str:
    """sha256 over every data file's relative path and bytes, in name order."""
    digest = hashlib.sha256()
    for path in data_files(out):
        digest.update(path.relative_to(out).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


_BALANCE_COLUMNS = ["split", "family", "template", "question_type", "answer_type", "answer"]


def balance_questions(out: Path) -> dict[str, Any]:
    """Write ``questions/`` from ``candidates/`` with every yes/no template exactly balanced per
    split over the whole dataset (the latest surplus rows, in shard order, go), one file per
    shard and split. Holds six short answer columns per question (not their images or programs)
    to decide, and one shard file at a time to write. Returns the kept questions' stats and
    answer counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from physforge.data.questions import balance_rows

    files = sorted((out / CANDIDATES).glob("*/shard-*.parquet"))
    rows: list[dict] = []
    for number, path in enumerate(files):
        for index, row in enumerate(pq.read_table(path, columns=_BALANCE_COLUMNS).to_pylist()):
            rows.append(row | {"_file": number, "_index": index})
    kept, trimmed = balance_rows(rows)
    keep: dict[int, list[int]] = {number: [] for number in range(len(files))}
    stats: Counter = Counter()
    answers: dict[str, Counter] = {}
    for q in kept:
        keep[q["_file"]].append(q["_index"])
        stats[f"questions.{q['split']}.{q['family']}.{q['question_type']}"] += 1
        answers.setdefault(q["template"], Counter())[q["answer"]] += 1
    for q in trimmed:
        stats["balance_trimmed"] += 1
        stats[f"balance_trimmed.{q['template']}"] += 1
        stats[f"questions.{q['question_type']}"] -= 1
    for number, path in enumerate(files):
        table = pq.read_table(path).take(pa.array(keep[number], type=pa.int64()))
        _atomic_parquet(table, out / "questions" / path.relative_to(out / CANDIDATES))
    return {"stats": stats, "answers": answers}


def collect_stats(out: Path) -> dict[str, Any]:
    """The shards' stats summed, with the questions' counts and answers after dataset-wide
    balancing (``balance_questions`` runs first)."""
    stats: Counter = Counter()
    shards = sorted((out / "shards").glob("shard-*.json"))
    for path in shards:
        summary = json.loads(path.read_text())
        if "candidate_answers" not in summary:
            raise DataConfigError(str(path), "this shard was written by an older physforge that balanced answers per "
                                  "shard and kept no candidates/; generate the dataset again into a new --out folder")
        stats.update(summary["stats"])
    balanced = balance_questions(out)
    stats.update(balanced["stats"])  # Counter.update adds, so trims subtract from per-type counts
    stats = Counter({k: v for k, v in stats.items() if v})
    return {"shards": len(shards), "stats": dict(sorted(stats.items())),
            "answers": {t: dict(sorted(c.items())) for t, c in sorted(balanced["answers"].items())}}


def finalize(out: Path) -> dict[str, Any]:
    """Write meta/info.json and README.md from the shard summaries (all shards must be done)."""
    from physforge.data.card import write_card
    from physforge.data.scene import versions
    from physforge.data.schema import FORMAT_VERSION, feature_docs

    run = json.loads((out / "config.json").read_text())
    config = DataConfig.from_dict(run["config"])
    missing = pending_shards(out, config, run["num_scenes"])
    if missing:
        raise DataConfigError(str(out), f"{len(missing)} shards are not finished (first: {missing[0]}); run the same "
                              "generate command again to finish them")
    collected = collect_stats(out)
    stats = collected["stats"]
    splits = {}
    for split in SPLITS:
        scenes = sum(v for k, v in stats.items() if k.startswith(f"scenes.{split}."))
        questions = sum(v for k, v in stats.items() if k.startswith(f"questions.{split}."))
        if scenes:
            splits[split] = {"scenes": scenes, "questions": questions,
                             "scenes_files": f"scenes/{split}/*.parquet",
                             "questions_files": f"questions/{split}/*.parquet"}
    info = {
        "format_version": FORMAT_VERSION,
        "num_scenes_requested": run["num_scenes"],
        "num_scenes": sum(s["scenes"] for s in splits.values()),
        "num_questions": sum(s["questions"] for s in splits.values()),
        "rejected_unstable": stats.get("rejected_unstable", 0),
        "near_threshold_dropped": stats.get("near_threshold_dropped", 0),
        "splits": splits,
        "shards": collected["shards"],
        "stats": stats,
        "answers": collected["answers"],
        "versions": versions(),
        "features": feature_docs(),
        "content_hash": content_hash(out),
    }
    (out / "meta").mkdir(exist_ok=True)
    write_json(out / "meta" / "info.json", info)
    write_card(out, info, config)
    return info
