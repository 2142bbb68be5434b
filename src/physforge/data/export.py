"""Exporters from the canonical Parquet dataset: TRL conversational (``messages`` + ``images``),
LLaVA JSON (+ PNG files) and WebDataset tar shards. Each works shard by shard (bounded memory)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any, Iterator

from physforge.data.errors import DataConfigError

FORMATS = ("trl", "llava", "webdataset")
_INSTRUCTIONS = {
    "bool": "Answer yes or no.",
    "count": "Answer with a whole number.",
    "number": "Answer with a number in SI units.",
    "name": "Answer with one word.",
    "choice": "Answer with the letter of the correct option.",
    "multi": "Answer with the letters of all correct options, separated by commas, or 'none'.",
}


def prompt_text(question: dict[str, Any], fps: float) -> str:
    """The user turn's text: timing, the question, its options and how to answer."""
    lines = [f"The frames are {1.0 / fps:.2f} s apart.", question["question"]]
    for option in question["options"]:
        lines.append(f"{option['label']}. {option['text']}")
    lines.append(_INSTRUCTIONS[question["answer_type"]])
    return "\n".join(lines)


def iter_examples(folder: Path, split: str) -> Iterator[tuple[str, list[tuple[dict, list[bytes], float]]]]:
    """(shard name, [(question row, PNG bytes of the frames it shows, fps)]) per shard file."""
    import pyarrow.parquet as pq

    for path in sorted((folder / "questions" / split).glob("*.parquet")):
        scenes = pq.read_table(folder / "scenes" / split / path.name,
                               columns=["scene_id", "frames", "alt_frames", "fps"]).to_pylist()
        by_id = {s["scene_id"]: s for s in scenes}
        examples = []
        for q in pq.read_table(path).to_pylist():
            scene = by_id[q["scene_id"]]
            frames, alt = scene["frames"], scene["alt_frames"]
            images = [(frames[i] if i < len(frames) else alt[i - len(frames)])["bytes"] for i in q["frame_indices"]]
            examples.append((q, images, scene["fps"]))
        yield path.stem, examples


def export_dataset(folder: str | Path, fmt: str, out_dir: str | Path | None = None) -> Path:
    """Write ``fmt`` (trl, llava or webdataset) for every split; returns the export folder."""
    folder = Path(folder)
    if fmt not in FORMATS:
        raise DataConfigError("format", f"unknown export format {fmt!r}; expected one of {FORMATS}")
    info_path = folder / "meta" / "info.json"
    if not info_path.is_file():
        raise DataConfigError(str(folder), "not a finished dataset (meta/info.json is missing); run generate first")
    splits = list(json.loads(info_path.read_text())["splits"])
    out = Path(out_dir) if out_dir is not None else folder / "export" / fmt
    out.mkdir(parents=True, exist_ok=True)
    for split in splits:
        {"trl": _trl, "llava": _llava, "webdataset": _webdataset}[fmt](folder, split, out)
    return out


def _trl(folder: Path, split: str, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from physforge.data.schema import IMAGE, with_hf_features

    content = pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))
    message = pa.struct([("role", pa.string()), ("content", content)])
    schema = pa.schema([("question_id", pa.string()), ("messages", pa.list_(message)), ("images", pa.list_(IMAGE)),
                        ("answer", pa.string()), ("answer_type", pa.string()), ("tolerance_abs", pa.float64()),
                        ("tolerance_rel", pa.float64()),
                        ("options", pa.list_(pa.struct([("label", pa.string()), ("correct", pa.bool_())]))),
                        ("question_type", pa.string()), ("family", pa.string())])
    schema = with_hf_features(schema)
    meta = json.loads(schema.metadata[b"huggingface"])
    meta["info"]["features"]["images"] = {"feature": {"_type": "Image"}, "_type": "List"}
    schema = schema.with_metadata({"huggingface": json.dumps(meta)})
    for shard, examples in iter_examples(folder, split):
        rows = []
        for q, images, fps in examples:
            user = [{"type": "image", "text": None} for _ in images] + [{"type": "text", "text": prompt_text(q, fps)}]
            rows.append({"question_id": q["question_id"],
                         "messages": [{"role": "user", "content": user},
                                      {"role": "assistant", "content": [{"type": "text", "text": q["answer"]}]}],
                         "images": [{"bytes": b, "path": None} for b in images], "answer": q["answer"],
                         "answer_type": q["answer_type"], "tolerance_abs": q["tolerance_abs"],
                         "tolerance_rel": q["tolerance_rel"],
                         "options": [{"label": o["label"], "correct": o["correct"]} for o in q["options"]],
                         "question_type": q["question_type"], "family": q["family"]})
        target = out / split / f"{shard}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), temporary)
        os.replace(temporary, target)


def _llava(folder: Path, split: str, out: Path) -> None:
    records = []
    for shard, examples in iter_examples(folder, split):
        for q, images, fps in examples:
            paths = []
            for k, data in enumerate(images):
                path = out / "images" / q["question_id"] / f"{k:02d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                paths.append(path.relative_to(out).as_posix())
            records.append({"id": q["question_id"], "image": paths,
                            "conversations": [{"from": "human", "value": "<image>\n" * len(paths) + prompt_text(q, fps)},
                                              {"from": "gpt", "value": q["answer"]}]})
    target = out / f"{split}.json"
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(json.dumps(records, indent=1))
    os.replace(temporary, target)


def _webdataset(folder: Path, split: str, out: Path) -> None:
    for shard, examples in iter_examples(folder, split):
        target = out / f"{split}-{shard}.tar"
        temporary = target.with_name(f".{target.name}.tmp")
        with tarfile.open(temporary, "w") as tar:
            for q, images, fps in examples:
                key = q["question_id"]
                meta = {k: q[k] for k in ("question_id", "scene_id", "question_type", "template", "answer",
                                          "answer_type", "tolerance_abs", "tolerance_rel", "family", "split")}
                meta["prompt"] = prompt_text(q, fps)
                meta["options"] = [{"label": o["label"], "text": o["text"], "correct": o["correct"]}
                                   for o in q["options"]]
                members = [(f"{key}.json", json.dumps(meta).encode())]
                members += [(f"{key}.{k:02d}.png", data) for k, data in enumerate(images)]
                for name, data in members:
                    entry = tarfile.TarInfo(name)
                    entry.size, entry.mtime, entry.mode = len(data), 0, 0o644
                    tar.addfile(entry, io.BytesIO(data))
        os.replace(temporary, target)
