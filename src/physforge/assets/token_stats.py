"""Tokens per part for raw OBJ text, the PhysX-Anything baseline and our encodings, counted
with a byte-level BPE tokenizer trained locally on a geometry corpus from the library."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from physforge.assets import tokens as T
from physforge.assets.source import SourceAsset

#: Library seed the tokenizer's training corpus is drawn from; evaluation uses other seeds.
TRAINING_SEED = 1_000_003


@dataclass(frozen=True)
class TokenizerConfig:
    """vocab_size: BPE vocabulary. objects_per_category: library objects in the training corpus.
    resolutions: grids whose encodings are in the corpus. split_digits: single-digit number
    pre-splitting (as in Qwen2/LLaMA) instead of GPT-2-style digit groups."""

    vocab_size: int = 4096
    objects_per_category: int = 2
    resolutions: tuple[int, ...] = (32, 64)
    split_digits: bool = False

    def __post_init__(self):
        if not 256 < self.vocab_size <= 65536:
            raise ValueError(f"vocab_size must lie in (256, 65536], got {self.vocab_size}")
        if self.objects_per_category < 1:
            raise ValueError("objects_per_category must be >= 1")
        for n in self.resolutions:
            if n not in T.RESOLUTIONS:
                raise ValueError(f"resolutions must be among {T.RESOLUTIONS}, got {n}")

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def part_texts(source: SourceAsset, resolution: int) -> dict[int, dict[str, str]]:
    """Per part label: raw OBJ text and every encoding of its voxels (object-normalised grid)."""
    points = np.concatenate([v for v, _ in source.meshes.values()])
    grid = T.Grid.around(points, resolution)
    out = {}
    for label, (vertices, faces) in sorted(source.meshes.items()):
        occupancy = T.voxelize(vertices, faces, grid)
        texts = {"raw_obj": T.obj_text(vertices, faces)}
        for encoding in T.ENCODINGS:
            texts[encoding] = T.encode(occupancy, encoding)
        out[label] = texts
    return out


def training_corpus(config: TokenizerConfig) -> list[str]:
    from physforge.assets.library import CATEGORIES, generate, object_rng

    texts = []
    for c, category in enumerate(sorted(CATEGORIES)):
        for i in range(config.objects_per_category):
            source = generate(category, object_rng(TRAINING_SEED, c * 1000 + i), seed=TRAINING_SEED)
            for n in config.resolutions:
                for part in part_texts(source, n).values():
                    texts.extend(t for k, t in part.items() if (k != "raw_obj" or n == config.resolutions[0]) and t)
    return texts


def geometry_tokenizer(config: TokenizerConfig = TokenizerConfig(), cache_dir: Path | None = None):
    """The BPE tokenizer for ``config``: loaded from ``cache_dir`` or trained (seconds) and saved there."""
    path = None if cache_dir is None else Path(cache_dir) / f"geometry-bpe-{config.key()}.json"
    if path is not None and path.is_file():
        return T.load_tokenizer(path)
    tokenizer = T.train_bpe(training_corpus(config), config.vocab_size, split_digits=config.split_digits)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        tokenizer.save(str(temporary))
        temporary.replace(path)
    return tokenizer


def token_report(source: SourceAsset, tokenizer, resolution: int = 32) -> dict:
    """Tokens per part (and totals, ratios) for raw OBJ text and each voxel encoding."""
    parts = []
    for label, texts in part_texts(source, resolution).items():
        counts = {k: T.count_tokens(tokenizer, t) if t else 0 for k, t in texts.items()}
        parts.append({"label": label, "name": source.annotation.part(label).name, "tokens": counts,
                      "characters": {k: len(t) for k, t in texts.items()}})
    totals = {k: sum(p["tokens"][k] for p in parts) for k in ("raw_obj", *T.ENCODINGS)}
    mean = {k: v / len(parts) for k, v in totals.items()}
    best = "ours"
    return {"asset": source.annotation.name, "resolution": resolution, "parts": parts, "tokens_per_part": mean,
            "ratio_raw_over_ours": totals["raw_obj"] / max(totals[best], 1),
            "ratio_baseline_over_ours": totals["baseline"] / max(totals[best], 1),
            "ratio_raw_over_baseline": totals["raw_obj"] / max(totals["baseline"], 1)}
