"""Checks that a dataset folder is complete and self-consistent (``physforge data validate``)."""

from __future__ import annotations

import json
from pathlib import Path

from physforge.data.config import SPLITS
from physforge.data.errors import DatasetValidationError
from physforge.data.questions import ANSWER_TYPES, LETTERS, QUESTION_TYPES


def validate_dataset(folder: str | Path, *, check_images: bool = True) -> dict:
    """Return ``meta/info.json`` if the dataset is valid; raise DatasetValidationError listing
    every problem otherwise. Reads one Parquet file at a time (bounded memory)."""
    import pyarrow.parquet as pq

    from physforge.data.generate import content_hash
    from physforge.data.schema import FORMAT_VERSION, QUESTIONS, SCENES

    folder = Path(folder)
    problems: list[str] = []
    info_path = folder / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetValidationError(folder, ["meta/info.json is missing (the run did not finish)"])
    info = json.loads(info_path.read_text())
    if info.get("format_version") != FORMAT_VERSION:
        problems.append(f"meta/info.json: format_version {info.get('format_version')!r}, expected {FORMAT_VERSION!r}")
    for name in ("README.md", "config.json"):
        if not (folder / name).is_file():
            problems.append(f"{name} is missing")
    if info.get("content_hash") != content_hash(folder):
        problems.append("content hash differs from meta/info.json: data files were changed or are missing")
    scene_info: dict[str, tuple[str, int, int]] = {}  # scene_id -> (split, frames, alt frames)
    scene_count = question_count = 0
    for split in info.get("splits", {}):
        if split not in SPLITS:
            problems.append(f"unknown split {split!r} in meta/info.json")
        for path in sorted((folder / "scenes" / split).glob("*.parquet")):
            table = pq.read_table(path)
            if not table.schema.remove_metadata().equals(SCENES):
                problems.append(f"{path.relative_to(folder)}: columns differ from the scenes schema")
                continue
            columns = ["scene_id", "split", "frames", "depth", "segmentation", "alt_frames", "states", "events"]
            for row in table.select(columns).to_pylist():
                scene_count += 1
                sid = row["scene_id"]
                if sid in scene_info:
                    problems.append(f"{path.relative_to(folder)}: scene {sid} appears twice")
                if row["split"] != split:
                    problems.append(f"{path.relative_to(folder)}: scene {sid} has split {row['split']!r}")
                n = len(row["frames"])
                if not (n == len(row["depth"]) == len(row["segmentation"])) or n == 0:
                    problems.append(f"scene {sid}: frames/depth/segmentation counts differ ({n}, {len(row['depth'])}, "
                                    f"{len(row['segmentation'])})")
                if row["alt_frames"] and len(row["alt_frames"]) != n:
                    problems.append(f"scene {sid}: alt_frames has {len(row['alt_frames'])} frames, expected {n}")
                if check_images and n and not row["frames"][0]["bytes"].startswith(b"\x89PNG"):
                    problems.append(f"scene {sid}: frames are not PNG images")
                states = row["states"]
                if len(states["position"]) != len(states["time"]):
                    problems.append(f"scene {sid}: states.position has {len(states['position'])} frames, "
                                    f"states.time {len(states['time'])}")
                times = [e["time"] for e in row["events"]]
                if times != sorted(times):
                    problems.append(f"scene {sid}: events are not in time order")
                scene_info[sid] = (split, n, len(row["alt_frames"]))
        for path in sorted((folder / "questions" / split).glob("*.parquet")):
            table = pq.read_table(path)
            if not table.schema.remove_metadata().equals(QUESTIONS):
                problems.append(f"{path.relative_to(folder)}: columns differ from the questions schema")
                continue
            for q in table.to_pylist():
                question_count += 1
                where = f"question {q['question_id']}"
                scene = scene_info.get(q["scene_id"])
                if scene is None:
                    problems.append(f"{where}: scene {q['scene_id']} is not in split {split}")
                    continue
                if q["question_type"] not in QUESTION_TYPES:
                    problems.append(f"{where}: unknown question_type {q['question_type']!r}")
                if q["answer_type"] not in ANSWER_TYPES:
                    problems.append(f"{where}: unknown answer_type {q['answer_type']!r}")
                try:
                    json.loads(q["program"])
                except (TypeError, json.JSONDecodeError):
                    problems.append(f"{where}: program is not JSON")
                if q["answer_type"] in ("choice", "multi"):
                    labels = [o["label"] for o in q["options"]]
                    if labels != list(LETTERS[:len(labels)]) or not labels:
                        problems.append(f"{where}: option labels {labels} are not A, B, ...")
                    correct = ",".join(o["label"] for o in q["options"] if o["correct"]) or "none"
                    if correct != q["answer"]:
                        problems.append(f"{where}: answer {q['answer']!r} disagrees with the option labels ({correct})")
                n, alt = scene[1], scene[2]
                bad = [i for i in q["frame_indices"] if not (0 <= i < n or (alt and n <= i < n + alt))]
                if bad:
                    problems.append(f"{where}: frame_indices {bad[:3]} point outside the scene's frames")
    if scene_count != info.get("num_scenes"):
        problems.append(f"{scene_count} scenes on disk, meta/info.json says {info.get('num_scenes')}")
    if question_count != info.get("num_questions"):
        problems.append(f"{question_count} questions on disk, meta/info.json says {info.get('num_questions')}")
    if problems:
        raise DatasetValidationError(folder, problems)
    return info
