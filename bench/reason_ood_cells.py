"""The issue-#6 target cells of a ``physforge reason eval`` run: property and counterfactual
accuracy on the out-of-distribution splits, for the model and every baseline, the model's
margin over the best of blind and majority, and a paired bootstrap 95 % interval of that margin
(the cells hold tens of questions, so a point margin alone over-reads them). Also per template.
Prints JSON.

    python bench/reason_ood_cells.py EVAL_DIR DATASET [--target 20] [--splits test_ood_params ...]

Scores come from the predictions the harness wrote (``EVAL_DIR/predictions/*.jsonl``), graded
again here with ``physforge.data.grade.grade_one`` on the dataset's questions; each cell's
accuracy therefore equals the harness's own ``by_type_split`` number (checked, or this exits).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TYPES = ("property", "counterfactual")
BOOTSTRAP = 2000


def _safe(name: str) -> str:  # the harness's predictions file name for a model name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def main() -> None:
    from physforge.data.grade import grade_one, read_predictions

    parser = argparse.ArgumentParser()
    parser.add_argument("eval_dir")
    parser.add_argument("data")
    parser.add_argument("--target", type=float, default=20.0, help="points over both blind and majority")
    parser.add_argument("--splits", nargs="*", default=["test_ood_params", "test_ood_compositional"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(args.eval_dir)
    result = json.loads((folder / "result.json").read_text())
    names = [m["name"] for m in result["models"]]
    model = result["model"]
    baselines = [n for n in names if n in ("majority", "blind")]
    if len(baselines) != 2:
        raise SystemExit(f"{folder}: needs the majority and blind baselines, found {names}")
    predictions = {n: read_predictions(folder / "predictions" / f"{_safe(n)}.jsonl") for n in names}
    questions = []
    for split in args.splits:
        for path in sorted((Path(args.data) / "questions" / split).glob("*.parquet")):
            questions.extend(q for q in pq.read_table(path).to_pylist() if q["question_type"] in TYPES)
    scored = set().union(*[set(p) for p in predictions.values()])
    questions = [q for q in questions if q["question_id"] in scored]
    correct = {n: np.array([bool(grade_one(predictions[n][q["question_id"]], q)["correct"])
                            if q["question_id"] in predictions[n] else False for q in questions]) for n in names}
    rng = np.random.default_rng(args.seed)
    cells, templates = {}, defaultdict(dict)
    for split in args.splits:
        for qtype in TYPES:
            index = np.array([k for k, q in enumerate(questions) if q["split"] == split and q["question_type"] == qtype],
                             dtype=int)
            if not len(index):
                continue
            acc = {n: 100 * float(correct[n][index].mean()) for n in names}
            harness = {m["name"]: r["accuracy"] for m in result["models"] for r in m["by_type_split"]
                       if r["split"] == split and r["question_type"] == qtype}
            for n in names:
                if abs(harness[n] * 100 - acc[n]) > 1e-3:  # result.json rounds to 6 decimals
                    raise SystemExit(f"{split}/{qtype}/{n}: {acc[n]} here vs {harness[n] * 100} in result.json")
            # paired bootstrap over the cell's questions of min(model - blind, model - majority)
            draws = rng.integers(0, len(index), size=(BOOTSTRAP, len(index)))
            sampled = {n: correct[n][index][draws].mean(1) * 100 for n in [model] + baselines}
            margin = np.minimum(*[sampled[model] - sampled[b] for b in baselines])
            best = max(acc[b] for b in baselines)
            cells[f"{split}/{qtype}"] = {
                "n": int(len(index)), "accuracy": {n: round(a, 1) for n, a in acc.items()},
                "margin_over_best_baseline": round(acc[model] - best, 1),
                "margin_ci95": [round(float(np.percentile(margin, 2.5)), 1), round(float(np.percentile(margin, 97.5)), 1)],
                "target_met": bool(acc[model] - best >= args.target)}
            for template in sorted({questions[k]["template"] for k in index}):
                rows = [k for k in index if questions[k]["template"] == template]
                templates[f"{split}/{qtype}"][template] = {"n": len(rows), **{
                    n: round(100 * float(correct[n][rows].mean()), 1) for n in names}}
    print(json.dumps({"eval": str(folder), "model": model, "target_points": args.target, "cells": cells,
                      "cells_met": sum(c["target_met"] for c in cells.values()), "cells_total": len(cells),
                      "per_template": templates}, indent=1))


if __name__ == "__main__":
    main()
