"""Paired bootstrap of ``physforge asset eval`` results: for each pair of methods, the mean
per-object difference of a metric and its 95 % interval (objects resampled with replacement,
the same resample for both methods). Prints JSON.

    python bench/asset_eval_paired.py runs/asset_eval/result.json [--other runs/x/result.json]

With --other, the first file's VLM is also paired with the other file's VLM (same objects).
"""

import argparse
import json

import numpy as np

METRICS = ("category_accuracy", "voxel_iou", "fscore", "scale_error_m", "gate_pass")
BASELINES = ("nearest_neighbour", "category_mean_predicted")


def by_object(result: dict, method: str, split: str) -> dict[str, dict]:
    return {o["object_id"]: o for o in result["objects"] if o["method"] == method and o["split"] == split}


def paired(a: dict[str, dict], b: dict[str, dict], metric: str, rng: np.random.Generator, resamples: int) -> dict:
    ids = sorted(set(a) & set(b))
    # an unparsed generation scores None; count it as the worst value, as the eval's failure rows do
    worst = 0.0 if metric != "scale_error_m" else float(np.nanmax([o[metric] or 0.0 for o in a.values()]))
    diff = np.array([(a[i][metric] if a[i][metric] is not None else worst)
                     - (b[i][metric] if b[i][metric] is not None else worst) for i in ids], dtype=float)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"n": len(ids), "mean": round(float(diff.mean()), 4), "ci95": [round(float(low), 4), round(float(high), 4)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("result")
    parser.add_argument("--other", help="a second result.json whose VLM to pair with this one's")
    parser.add_argument("--split", default="test_objects")
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = json.loads(open(args.result).read())
    vlm = by_object(result, "vlm", args.split)
    pairs = {f"vlm - {b}": by_object(result, b, args.split) for b in BASELINES}
    if args.other:
        pairs["vlm - other vlm"] = by_object(json.loads(open(args.other).read()), "vlm", args.split)
    out = {}
    for name, other in pairs.items():
        rng = np.random.default_rng(args.seed)
        out[name] = {m: paired(vlm, other, m, rng, args.resamples) for m in METRICS}
    print(json.dumps({"result": args.result, "other": args.other, "split": args.split, "paired": out}, indent=1))


if __name__ == "__main__":
    main()
