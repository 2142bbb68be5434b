"""Grading predictions against a dataset's answers, and the same grader as an RL reward.

Scoring per answer type: ``bool``/``count``/``name`` exact (case and surrounding punctuation
ignored; yes/no also from true/false); ``number`` within max(tolerance_abs, tolerance_rel x
|answer|); ``choice`` the one correct letter; ``multi`` per option (each option's letter is
rightly in or out of the predicted set) and per question (the whole set right).

    from physforge.data.grade import physics_reward
    trainer = GRPOTrainer(..., reward_funcs=[physics_reward])   # dataset columns come as kwargs
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from physforge.data.errors import PredictionsError

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_BOOL = {"yes": "yes", "true": "yes", "y": "yes", "no": "no", "false": "no", "n": "no"}


def extract_answer(text: Any) -> str:
    """The answer part of a model output: inside <answer>...</answer> if present, else all of it."""
    if isinstance(text, list):  # conversational completion: [{"role": ..., "content": ...}]
        text = " ".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in text)
    text = "" if text is None else str(text)
    match = _ANSWER_TAG.search(text)
    return (match.group(1) if match else text).strip()


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip(".!?\"'").lower())


def _letters(text: str) -> set[str]:
    text = text.strip().upper()
    if text in ("NONE", ""):
        return set()
    return {part.strip().strip(".)(") for part in re.split(r"[,\s]+", text) if part.strip().strip(".)(")}


def answers_match(predicted: str, answer: str, answer_type: str, tolerance: tuple[float, float] = (0.0, 0.0)) -> bool:
    """True if ``predicted`` counts as ``answer`` for this answer type (see module docs)."""
    predicted = extract_answer(predicted)
    if answer_type == "number":
        found = _NUMBER.search(predicted)
        if not found:
            return False
        value, truth = float(found.group()), float(answer)
        if not math.isfinite(value):
            return False
        return abs(value - truth) <= max(tolerance[0], tolerance[1] * abs(truth)) + 1e-12
    if answer_type == "bool":
        return _BOOL.get(_normal(predicted).split(" ")[0] if predicted else "", None) == answer
    if answer_type == "count":
        found = _NUMBER.search(predicted)
        return bool(found) and float(found.group()) == float(answer)
    if answer_type in ("choice", "multi"):
        return _letters(predicted) == _letters(answer)
    return _normal(predicted) == _normal(answer)


def grade_one(predicted: str, question: dict) -> dict[str, Any]:
    """Score one prediction: ``correct`` (per question) and, for multiple choice, ``option_correct``."""
    tolerance = (question.get("tolerance_abs") or 0.0, question.get("tolerance_rel") or 0.0)
    correct = answers_match(predicted, question["answer"], question["answer_type"], tolerance)
    out: dict[str, Any] = {"correct": bool(correct)}
    if question["answer_type"] in ("choice", "multi") and question.get("options"):
        chosen = _letters(extract_answer(predicted))
        out["option_correct"] = [(o["label"] in chosen) == bool(o["correct"]) for o in question["options"]]
    return out


def physics_reward(completions: list[Any], answer: list[str], answer_type: list[str],
                   tolerance_abs: list[float] | None = None, tolerance_rel: list[float] | None = None,
                   options: list[list[dict]] | None = None, **_: Any) -> list[float]:
    """A GRPO reward function (TRL calling convention: dataset columns arrive as keyword lists).

    1.0 for a right answer; for multi-answer multiple choice the fraction of options judged
    right; 0.0 otherwise.
    """
    rewards = []
    for i, completion in enumerate(completions):
        question = {"answer": answer[i], "answer_type": answer_type[i],
                    "tolerance_abs": tolerance_abs[i] if tolerance_abs else 0.0,
                    "tolerance_rel": tolerance_rel[i] if tolerance_rel else 0.0,
                    "options": options[i] if options else None}
        result = grade_one(completion, question)
        if result["correct"]:
            rewards.append(1.0)
        elif question["answer_type"] == "multi" and result.get("option_correct"):
            rewards.append(sum(result["option_correct"]) / len(result["option_correct"]))
        else:
            rewards.append(0.0)
    return rewards


def read_predictions(path: str | Path) -> dict[str, str]:
    """``{question_id: prediction}`` from JSONL lines ``{"question_id": ..., "prediction": ...}``."""
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: predictions file not found")
    out: dict[str, str] = {}
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise PredictionsError(f"{path}:{number}: not JSON ({err.msg})") from None
            if not isinstance(row, dict) or "question_id" not in row or "prediction" not in row:
                raise PredictionsError(f"{path}:{number}: each line needs 'question_id' and 'prediction'")
            if row["question_id"] in out:
                raise PredictionsError(f"{path}:{number}: question_id {row['question_id']!r} appears twice")
            out[str(row["question_id"])] = str(row["prediction"])
    return out


def grade(predictions: dict[str, str], questions: Iterable[dict]) -> dict[str, Any]:
    """Accuracy per question type x split x family (per question, and per option for multiple
    choice), overall, and the number of questions with no prediction (counted wrong)."""
    groups: dict[tuple[str, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    total = defaultdict(float)
    missing = 0
    for question in questions:
        key = (question["question_type"], question["split"], question["family"])
        predicted = predictions.get(question["question_id"])
        if predicted is None:
            missing += 1
            result = {"correct": False}
            if question.get("options"):
                result["option_correct"] = [False] * len(question["options"])
        else:
            result = grade_one(predicted, question)
        for bucket in (groups[key], total):
            bucket["questions"] += 1
            bucket["correct"] += result["correct"]
            if "option_correct" in result:
                bucket["options"] += len(result["option_correct"])
                bucket["options_correct"] += sum(result["option_correct"])
    rows = []
    for (qtype, split, family), bucket in sorted(groups.items()):
        rows.append(_summary(bucket) | {"question_type": qtype, "split": split, "family": family})
    return {"overall": _summary(total), "groups": rows, "missing_predictions": missing}


def _summary(bucket: dict[str, float]) -> dict[str, Any]:
    out = {"questions": int(bucket["questions"]),
           "accuracy": round(bucket["correct"] / bucket["questions"], 6) if bucket["questions"] else None}
    if bucket.get("options"):
        out["option_accuracy"] = round(bucket["options_correct"] / bucket["options"], 6)
    return out
