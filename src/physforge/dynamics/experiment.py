"""The SFT -> +DPO (generator) -> +DPO (encoder) comparison over several seeds, as one recipe.

For each seed: stage 1 (``train_sft``), stage 2 from it (``train_dpo``, train="generator"), stage 3
from stage 2 (train="encoder", PhysMaster's order), then ``evaluate`` of the three checkpoints with
the same sampling seed, next to the trivial baselines (``EvalConfig.baselines``: nothing moves,
ballistic flight) in the same table. Writes ``seed{s}/...`` run folders, ``config.json``,
``results.json`` (per seed and mean / standard deviation over seeds of every metric) and
``results.md`` (that table).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from physforge.dynamics.config import DPOConfig, EvalConfig, TrainConfig

MODELS = ("sft", "dpo_generator", "dpo_encoder")


def run_experiment(train: TrainConfig, dpo: DPOConfig, evaluation: EvalConfig, seeds: list[int],
                   out_dir: str | Path, progress: bool = False) -> dict[str, Any]:
    from physforge.dynamics.recipe import evaluate, train_dpo, train_sft
    from physforge.outputs import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {"train": train.to_dict(), "dpo": dpo.to_dict(), "eval": evaluation.to_dict(),
                                     "seeds": list(seeds)})
    per_seed = {}
    for seed in seeds:
        folder = out / f"seed{seed}"
        sft = train_sft(replace(train, seed=seed), folder / "sft", progress)
        generator = train_dpo(replace(dpo, checkpoint=str(sft), train="generator", seed=seed),
                              folder / "dpo_generator", progress)
        encoder = train_dpo(replace(dpo, checkpoint=str(generator), train="encoder", seed=seed),
                            folder / "dpo_encoder", progress)
        per_seed[seed] = evaluate({"sft": sft, "dpo_generator": generator, "dpo_encoder": encoder},
                                  replace(evaluation, seed=seed), folder / "eval")
        summary = summarise(per_seed)
        write_json(out / "results.json", summary)
        _write_text(out / "results.md", table(summary) + "\n")
    return summarise(per_seed)


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")  # atomic, as outputs.write_json
    temporary.write_text(text)
    temporary.replace(path)


def summarise(per_seed: dict[int, dict]) -> dict[str, Any]:
    """Mean and standard deviation (ddof=1 when there are 2+ seeds) over seeds, per model, split, metric."""
    summary: dict[str, Any] = {"seeds": sorted(per_seed), "per_seed": {str(k): v for k, v in per_seed.items()},
                               "mean": {}, "std": {}}
    first = next(iter(per_seed.values()))
    summary["scenes"] = first["scenes"]
    for model, splits in first["models"].items():
        for split, metrics in splits.items():
            for metric in metrics:
                values = [r["models"][model][split][metric] for r in per_seed.values()]
                values = np.array([np.nan if v is None else v for v in values], dtype=float)
                summary["mean"].setdefault(model, {}).setdefault(split, {})[metric] = (
                    None if np.all(np.isnan(values)) else float(np.nanmean(values)))
                summary["std"].setdefault(model, {}).setdefault(split, {})[metric] = (
                    float(np.nanstd(values, ddof=1)) if np.sum(~np.isnan(values)) > 1 else 0.0)
    return summary


def table(summary: dict[str, Any]) -> str:
    """A Markdown table: mean +- std over seeds of each metric, per split and model."""
    metrics = ("l2", "chamfer", "iou", "gravity_residual", "penetration", "energy_created", "violation_rate")
    lines = ["| split | model | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
    for split in summary["scenes"]:
        for model in summary["mean"]:
            cells = []
            for m in metrics:
                mean = summary["mean"][model][split][m]
                cells.append("n/a" if mean is None else f"{mean:.4f} ± {summary['std'][model][split][m]:.4f}")
            lines.append(f"| {split} ({summary['scenes'][split]}) | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
