"""The dataset card (README.md in the dataset folder): what is in it, counts and answer balance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from physforge.data.config import DataConfig


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_card(out: Path, info: dict[str, Any], config: DataConfig) -> Path:
    stats = info["stats"]
    families = sorted({k.split(".")[2] for k in stats if k.startswith("scenes.")})
    splits = list(info["splits"])
    scene_rows = [[f] + [stats.get(f"scenes.{s}.{f}", 0) for s in splits] for f in families]
    types = sorted({k.split(".")[3] for k in stats if k.startswith("questions.") and k.count(".") == 3})
    type_rows = [[t] + [sum(v for k, v in stats.items() if k.startswith(f"questions.{s}.") and k.endswith(f".{t}"))
                        for s in splits] for t in types]
    family_rows = [[f] + [sum(v for k, v in stats.items() if k.startswith(f"questions.{s}.{f}.")) for s in splits]
                   for f in families]
    answer_rows = []
    for template, counts in info["answers"].items():
        total = sum(counts.values())
        if len(counts) > 8:
            shown = f"{len(counts)} distinct values (numeric or open)"
        else:
            shown = ", ".join(f"{a}: {n} ({100 * n / total:.0f}%)" for a, n in counts.items())
        answer_rows.append([template, total, shown])
    drops = [[k.split(".", 1)[1], v] for k, v in stats.items() if k.startswith("near_threshold_dropped.")]
    data_files = ",\n".join(f"    \"{s}\": \"{info['splits'][s]['questions_files']}\"" for s in splits)
    text = f"""---
configs:
- config_name: questions
  data_files:
{chr(10).join(f"  - split: {s}{chr(10)}    path: {info['splits'][s]['questions_files']}" for s in splits)}
- config_name: scenes
  data_files:
{chr(10).join(f"  - split: {s}{chr(10)}    path: {info['splits'][s]['scenes_files']}" for s in splits)}
---
# physforge synthetic physics dataset

Procedurally generated physics scenes simulated with MuJoCo and rendered headless by
[physforge](https://example.invalid/physforge) (`physforge data generate`). Every scene has its
RGB clip, depth and instance segmentation ({config.width}x{config.height}, {config.num_frames} frames at
{config.fps:g} fps), per-frame states at {config.state_fps:g} Hz, the de-duplicated event log, latent
physical properties, camera intrinsics/extrinsics, its seed and the software versions. Every
question carries the functional program that computed its answer from the simulator;
counterfactual answers come from re-simulating the scene under the intervention. Format version
{info['format_version']}; features, dtypes, shapes and units are in `meta/info.json`.

```python
from datasets import load_dataset
questions = load_dataset("parquet", data_dir=".", data_files={{
{data_files},
}})
```

- scenes: {info['num_scenes']} written of {info['num_scenes_requested']} requested; {info['rejected_unstable']} rejected
  as numerically unstable (never written).
- questions: {info['num_questions']}; of those the answer balancer kept, {info['near_threshold_dropped']} dropped as
  near-threshold (the answer flipped when every moving body was nudged by {config.perturbation_speed} m/s,
  {config.perturbation_trials} trial(s)); {info['stats'].get('balance_trimmed', 0)} yes/no questions trimmed so that every
  yes/no template has as many "yes" as "no" answers in every split of the dataset.
- splits: i.i.d. train/val/test ({', '.join(f'{f:g}' for f in config.split_fractions)}), `test_ood_params` (latent
  properties outside the training ranges), `test_ood_family` (held-out families: {', '.join(config.heldout_families) or 'none'}),
  `test_ood_compositional` (more objects than in training).
- seed: {config.seed}; content hash (sha256 of the Parquet files): `{info['content_hash']}`.
- versions: {', '.join(f'{k} {v}' for k, v in info['versions'].items())}.

## Scenes per family and split

{_table(['family'] + splits, scene_rows)}

## Questions per type and split

{_table(['type'] + splits, type_rows)}

## Questions per family and split

{_table(['family'] + splits, family_rows)}

## Answer distribution per template

{_table(['template', 'questions', 'answers'], answer_rows)}

## Near-threshold drops per template

{_table(['template', 'dropped'], drops) if drops else 'none'}

## Scoring

`physforge data grade PREDICTIONS.jsonl --dataset DIR` (lines `{{"question_id", "prediction"}}`) reports
accuracy per question type x split x family; multiple choice is scored per option and per
question; numbers within max(tolerance_abs, tolerance_rel x |answer|). The same grader is
`physforge.data.grade.physics_reward` for GRPO.
"""
    path = out / "README.md"
    temporary = path.with_name(".README.md.tmp")
    temporary.write_text(text)
    temporary.replace(path)
    return path
