"""Paired bootstrap for ``physforge asset eval``: is the VLM's lead over a baseline a win or a tie?

For one split, the VLM and a baseline are scored on the same objects, so the question is about
the per-object difference ``d_i = vlm_i - baseline_i`` of a metric. Its mean is the difference of
the table's means; its 95 % interval comes from resampling the objects with replacement (the
same resample for both methods, which is what makes it paired) and taking the 2.5 and 97.5
percentiles of the resampled means (the percentile bootstrap). One resample of the split's
objects is drawn and shared by every baseline and metric, so the intervals of one run are
consistent with each other.

Which objects count, per metric:

- an object where the metric is undefined for both methods (no moving joint: no joint-type
  accuracy) is left out, as ``summarise`` leaves it out of the table's mean;
- a generation that failed to parse or decode keeps the values the eval's failure rows give it
  (0 for IoU, F-score, accuracies and the gate) and, where that row has no value (scale, Chamfer,
  axis, pivot and range errors), scores the worst value any method reached on the split for that
  metric, so a failure never drops out of the comparison in its own favour (``penalised``);
- an object where one method's metric is undefined for another reason (a predicted structure
  without the true object's hinge has no axis error) is left out (``unmatched``).

Where a resample holds none of a metric's objects, that resample is skipped for that metric
(``nan`` ignored by the percentile). A metric counted on one object has its mean but no interval
and no verdict: every resample is that object, and a zero-width interval is no evidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

REFERENCE = "vlm"
BASELINES = ("nearest_neighbour", "category_mean_predicted", "category_mean_oracle")
HIGHER_IS_BETTER = ("category_accuracy", "voxel_iou", "fscore", "joint_type_accuracy", "material_accuracy",
                    "gate_pass")
LOWER_IS_BETTER = ("chamfer_m", "axis_error_deg", "pivot_distance_m", "range_error_deg", "range_error_m",
                   "scale_error_m")
PAIRED_METRICS = ("category_accuracy", "voxel_iou", "fscore", "chamfer_m", "scale_error_m", "gate_pass",
                  "joint_type_accuracy", "axis_error_deg", "pivot_distance_m", "material_accuracy")
SHORT = {"category_accuracy": "cat", "voxel_iou": "IoU", "fscore": "F", "chamfer_m": "CD m",
         "scale_error_m": "scale m", "gate_pass": "gate", "joint_type_accuracy": "joint",
         "axis_error_deg": "axis°", "pivot_distance_m": "pivot m", "material_accuracy": "mat",
         "range_error_deg": "range°", "range_error_m": "range m"}
# the metrics in the CLI's one-line verdict per baseline
VERDICT_METRICS = ("category_accuracy", "voxel_iou", "fscore", "scale_error_m", "gate_pass")
DEFAULT_RESAMPLES = 10_000
DIGITS = 4


def _failed(row: dict[str, Any]) -> bool:
    # parse failures have parsed=False; decode failures keep parsed=True but carry the error
    return not row.get("parsed", True) or "error" in row


def worst_value(rows: list[dict[str, Any]], metric: str) -> float | None:
    """The value a failed generation without one scores: the worst ``metric`` any of ``rows``
    reached (0 for a higher-is-better metric), None where no row has it."""
    defined = [r[metric] for r in rows if r.get(metric) is not None]
    return (max(defined) if metric in LOWER_IS_BETTER else 0.0) if defined else None


def difference_array(a: list[dict[str, Any]], b: list[dict[str, Any]], metric: str, *,
                     worst: float | None = None) -> tuple[np.ndarray, dict]:
    """Per-object ``a - b`` of ``metric`` over objects paired by position ((n,) float64, nan where the
    object does not count; see the module docstring), and the counts of penalised and unmatched objects.
    worst: what a failure scores (None: ``worst_value`` of ``a`` and ``b``; ``paired_methods`` passes
    the worst of every method on the split, so a failure costs the same against each baseline)."""
    if len(a) != len(b):
        raise ValueError(f"paired rows: {len(a)} rows for the first method and {len(b)} for the second; "
                         "pass the same objects in the same order (pair them by object_id)")
    if worst is None:
        worst = worst_value([*a, *b], metric)
    diff = np.full(len(a), np.nan)
    penalised = unmatched = 0
    for i, (x, y) in enumerate(zip(a, b)):
        values, filled = [], 0
        for row in (x, y):
            value = row.get(metric)
            if value is None and _failed(row) and worst is not None:
                value = worst
                filled += 1
            values.append(value)
        if values[0] is None and values[1] is None:
            continue
        if values[0] is None or values[1] is None:
            unmatched += 1
            continue
        # counted only where the penalty entered the mean, not for an object that then drops out
        penalised += filled
        diff[i] = float(values[0]) - float(values[1])
    return diff, {"penalised": penalised, "unmatched": unmatched}


def bootstrap_indices(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) int64 object indices drawn with replacement: one paired resample per row."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}")
    if resamples < 1000:
        raise ValueError(f"resamples: {resamples} is too few for a 95 % percentile interval; use >= 1000")
    return rng.integers(0, n, size=(resamples, n))


def mean_interval(diff: np.ndarray, indices: np.ndarray) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile of the resampled means) of ``diff`` ((n,), nan: not counted)
    under the resamples ``indices`` ((resamples, n))."""
    counted = ~np.isnan(diff)
    if not counted.any():
        return float("nan"), float("nan"), float("nan")
    values = np.where(counted, diff, 0.0)
    picked = counted[indices].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = values[indices].sum(1) / picked
    low, high = np.nanpercentile(means, [2.5, 97.5])
    return float(values.sum() / counted.sum()), float(low), float(high)


def paired_methods(rows: dict[str, list[dict[str, Any]]], rng: np.random.Generator, *,
                   reference: str = REFERENCE, resamples: int = DEFAULT_RESAMPLES,
                   metrics: tuple[str, ...] = PAIRED_METRICS) -> dict[str, dict[str, dict[str, Any]]]:
    """``reference`` minus every other method in ``rows`` (method -> per-object rows of one split,
    each with ``object_id``), per metric: ``{"n", "mean", "ci95", "penalised", "unmatched", "verdict"}``.
    Objects are those every method scored; one resample of them (drawn from ``rng``) serves all."""
    if reference not in rows:
        raise ValueError(f"reference: no rows for method {reference!r}; methods present: {sorted(rows)}")
    keyed = {m: {r["object_id"]: r for r in rs} for m, rs in rows.items()}
    ids = sorted(set.intersection(*(set(k) for k in keyed.values())))
    if not ids:
        raise ValueError("rows: the methods share no object_id, so there is nothing to pair")
    indices = bootstrap_indices(len(ids), resamples, rng)
    a = [keyed[reference][i] for i in ids]
    every = [by_id[i] for by_id in keyed.values() for i in ids]
    worst = {metric: worst_value(every, metric) for metric in metrics}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for method, by_id in keyed.items():
        if method == reference:
            continue
        b = [by_id[i] for i in ids]
        out[method] = {}
        for metric in metrics:
            diff, counts = difference_array(a, b, metric, worst=worst[metric])
            mean, low, high = mean_interval(diff, indices)
            n = int((~np.isnan(diff)).sum())
            out[method][metric] = {"n": n, "mean": None if n == 0 else round(mean, DIGITS),
                                   "ci95": [round(low, DIGITS), round(high, DIGITS)] if n >= 2 else None,
                                   **counts, "verdict": verdict(metric, low, high) if n >= 2 else None}
    return out


def verdict(metric: str, low: float, high: float) -> str:
    """"win" or "loss" for the reference when the interval excludes 0, else "tie"."""
    if metric not in HIGHER_IS_BETTER and metric not in LOWER_IS_BETTER:
        raise ValueError(f"metric {metric!r} has no known direction; add it to HIGHER_IS_BETTER or LOWER_IS_BETTER "
                         "in physforge.assets.image_eval_paired")
    if low <= 0.0 <= high:
        return "tie"
    ahead = low > 0.0
    return "win" if ahead == (metric not in LOWER_IS_BETTER) else "loss"


def paired_result(result: dict[str, Any], rng: np.random.Generator, *, resamples: int = DEFAULT_RESAMPLES,
                  baselines: tuple[str, ...] = BASELINES, extra: dict[str, dict[str, Any]] | None = None,
                  ) -> dict[str, Any]:
    """The ``paired`` section of an eval result: per split, the VLM minus each baseline present
    (and minus the VLM of each ``extra`` result, named by its key, paired on the objects both
    scored, on the splits it has), per metric. ``rng`` draws the resamples; pass ``np.random.default_rng(seed)``."""
    splits = list(dict.fromkeys(r["split"] for r in result["objects"]))
    out: dict[str, Any] = {"resamples": resamples, "interval": "95 % percentile bootstrap over objects",
                           "difference": f"{REFERENCE} - method, per object", "splits": {}}
    for split in splits:
        rows: dict[str, list] = {}
        for r in result["objects"]:
            if r["split"] == split and (r["method"] == REFERENCE or r["method"] in baselines):
                rows.setdefault(r["method"], []).append(r)
        for name, other in (extra or {}).items():
            theirs = [r for r in other["objects"] if r["split"] == split and r["method"] == REFERENCE]
            if theirs:  # a split the other run did not score is left out of its pairing, not an error
                rows[name] = theirs
        if REFERENCE in rows and len(rows) > 1:
            out["splits"][split] = paired_methods(rows, rng, resamples=resamples)
    return out


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def format_cell(cell: dict[str, Any] | None) -> str:
    if cell is None or cell["mean"] is None:
        return "—"
    if cell["ci95"] is None:
        return f"{_signed(cell['mean'])} (n={cell['n']}, no interval)"
    low, high = cell["ci95"]
    return f"{_signed(cell['mean'])} [{_signed(low)}, {_signed(high)}]"


def format_paired(paired: dict[str, Any], metrics: tuple[str, ...] = PAIRED_METRICS) -> str:
    """A plain-text "VLM − baseline [95 % CI]" table per split: a row per metric, a column per baseline."""
    lines = []
    for split, by_method in paired.get("splits", {}).items():
        lines.append(f"{split}: VLM − baseline, mean per-object difference [95 % CI], "
                     f"{paired['resamples']} paired resamples")
        lines.append("  " + f"{'metric':<8}" + "".join(f"{m:>28}" for m in by_method))
        for metric in metrics:
            lines.append("  " + f"{SHORT.get(metric, metric):<8}"
                         + "".join(f"{format_cell(cells.get(metric)):>28}" for cells in by_method.values()))
    return "\n".join(lines)


def verdict_lines(paired: dict[str, Any], metrics: tuple[str, ...] = VERDICT_METRICS) -> list[str]:
    """One line per split and baseline, e.g.
    ``test_objects vs nearest_neighbour (36): F +0.003 [-0.063, +0.076] tie; ...``."""
    lines = []
    for split, by_method in paired.get("splits", {}).items():
        for method, cells in by_method.items():
            parts = [" ".join(x for x in (SHORT.get(m, m), format_cell(cells[m]), cells[m]["verdict"]) if x)
                     for m in metrics if m in cells and cells[m]["mean"] is not None]
            n = max((cells[m]["n"] for m in metrics if m in cells), default=0)
            lines.append(f"{split} VLM vs {method} ({n} objects): " + "; ".join(parts))
    return lines
