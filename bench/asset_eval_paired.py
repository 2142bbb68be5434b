"""Paired bootstrap of a ``physforge asset eval`` result, recomputed from its per-object rows
(``physforge.assets.image_eval_paired``; the eval itself writes the same into result.json's
``paired`` section). Prints JSON.

    python bench/asset_eval_paired.py runs/asset_eval/result.json [--other runs/x/result.json]

With --other, the first file's VLM is also paired with the other file's VLM (objects both scored),
reported as method "other_vlm". Use it for results written before the eval had a ``paired`` section.
"""

import argparse
import json

import numpy as np

from physforge.assets.image_eval_paired import BASELINES, DEFAULT_RESAMPLES, paired_result, verdict_lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("result")
    parser.add_argument("--other", help="a second result.json whose VLM to pair with this one's")
    parser.add_argument("--split", default=None, help="only this split (default: every split in the result)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open(args.result) as f:
        result = json.load(f)
    extra = None
    if args.other:
        with open(args.other) as f:
            extra = {"other_vlm": json.load(f)}
    if args.split:
        result = {**result, "objects": [r for r in result["objects"] if r["split"] == args.split]}
        if not result["objects"]:
            raise SystemExit(f"--split: no rows for split {args.split!r} in {args.result}")
    paired = paired_result(result, np.random.default_rng(args.seed), resamples=args.resamples,
                           baselines=BASELINES, extra=extra)
    print(json.dumps({"result": args.result, "other": args.other, "paired": paired,
                      "verdicts": verdict_lines(paired)}, indent=1))


if __name__ == "__main__":
    main()
