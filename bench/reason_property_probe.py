"""Does the PhysEncoder's property head generalise or memorise? For each scene of each split it
ranks every pair of objects by the head's predicted log mass, friction and restitution and
counts how often the order matches the ground truth (pairs whose true values differ by less
than ``--min-gap`` are skipped: they are ties). 50 % is chance. A head that is right on
``train`` and near 50 % elsewhere has memorised its training scenes. Prints JSON.

    python bench/reason_property_probe.py RUN_OR_CHECKPOINT DATASET [--splits train val ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PROPERTIES = ("log_mass", "friction", "restitution")


def main() -> None:
    import torch

    from physforge.reason.data import load_split
    from physforge.reason.encoder import load_encoder

    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--splits", nargs="*", default=["train", "val", "test_ood_params", "test_ood_compositional"])
    parser.add_argument("--max-scenes", type=int, default=300)
    parser.add_argument("--min-gap", type=float, default=0.05)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.model)
    model = load_encoder(folder / "checkpoint" if (folder / "checkpoint").is_dir() else folder)
    out = {"model": str(folder), "data": args.data, "min_gap": args.min_gap, "splits": {}}
    for split in args.splits:
        data = load_split(args.data, [split], image_size=model.config.image_size)
        scenes = [s for s in data.scenes.values() if s.targets is not None][: args.max_scenes]
        hits = {p: [0, 0] for p in PROPERTIES}
        with torch.no_grad():
            for start in range(0, len(scenes), 64):
                chunk = scenes[start: start + 64]
                clips = model.clip_tensor([s.frames for s in chunk])
                predicted = model.heads(model.encode(clips))["properties"].numpy()
                for s, p in zip(chunk, predicted):
                    present = np.flatnonzero(s.targets["present"])
                    truth = s.targets["properties"]
                    for k, name in enumerate(PROPERTIES):
                        for a in present:
                            for b in present[present > a]:
                                gap = truth[a, k] - truth[b, k]
                                if abs(gap) < args.min_gap:
                                    continue
                                hits[name][0] += int(np.sign(p[a, k] - p[b, k]) == np.sign(gap))
                                hits[name][1] += 1
        out["splits"][split] = {"scenes": len(scenes), **{
            name: {"pairs": n, "rank_accuracy": round(100 * c / n, 1) if n else None} for name, (c, n) in hits.items()}}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
