"""Does the PhysEncoder's property head generalise or memorise? For each scene of each split it
ranks every pair of objects by the head's predicted log mass, friction and restitution and
counts how often the order matches the ground truth (pairs whose true values differ by less
than ``--min-gap`` are skipped: they are ties). 50 % is chance. A head that is right on
``train`` and near 50 % elsewhere has memorised its training scenes. For an encoder with
tracking heads (``EncoderConfig.track``) it also scores them per split: mean distance, in % of
the image width, between predicted and true image positions of the objects in view in the
clip's frames (beside a constant guess: the split's own mean position, a baseline that has
seen the answers) and in the next frames (beside "stays where it was in the last frame", with
the true last position). Prints JSON.

With ``--accuracy`` it also grades the model's answers to every question of each split (the
same grader as ``reason eval``), so models trained at other image sizes or on another rendering
of the same scenes can be compared on the same questions.

    python bench/reason_property_probe.py RUN_OR_CHECKPOINT DATASET [--splits train val ...] [--accuracy]
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
    from physforge.reason.recipe_encoder import evaluate_accuracy

    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--splits", nargs="*", default=["train", "val", "test_ood_params", "test_ood_compositional"])
    parser.add_argument("--max-scenes", type=int, default=300)
    parser.add_argument("--min-gap", type=float, default=0.05)
    parser.add_argument("--accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.model)
    model = load_encoder(folder / "checkpoint" if (folder / "checkpoint").is_dir() else folder)
    out = {"model": str(folder), "data": args.data, "min_gap": args.min_gap, "splits": {}}
    for split in args.splits:
        data = load_split(args.data, [split], image_size=model.config.image_size)
        scenes = [s for s in data.scenes.values() if s.targets is not None][: args.max_scenes]
        hits = {p: [0, 0] for p in PROPERTIES}
        track = {"shown": [], "shown_constant": [], "next": [], "next_stays": []}
        with torch.no_grad():
            for start in range(0, len(scenes), 64):
                chunk = scenes[start: start + 64]
                clips = model.clip_tensor([s.frames for s in chunk])
                z, frame_features = model.encode_parts(clips)
                predicted = model.heads(z)["properties"].numpy()
                if model.config.track and all("frame_uv" in s.targets for s in chunk):
                    _track_errors(model.track(z, frame_features), chunk, model.config.clip_frames, track)
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
        if args.accuracy:
            out["splits"][split]["answers"] = evaluate_accuracy(model, data, data.questions) | {
                "questions": len(data.questions)}
        if track["shown"]:
            shown_truth = np.concatenate(track.pop("shown_constant"))  # (n, 2) true positions in view
            constant = np.abs(shown_truth - shown_truth.mean(0)).max(-1)
            out["splits"][split]["track_error_pct_width"] = {
                key: round(50 * float(np.mean(np.concatenate(v))), 2) for key, v in track.items()} | {
                "shown_constant": round(50 * float(np.mean(constant)), 2)}
    print(json.dumps(out, indent=1))


def _track_errors(predicted, scenes, clip_frames: int, into: dict) -> None:
    """Chebyshev distances in [-1, 1] image units of the objects in view: predicted positions in
    the clip frames and the next ones, and the true positions (for the constant baseline)."""
    from physforge.reason.data import N_NEXT, clip_picks

    for i, s in enumerate(scenes):
        uv, visible = s.targets["frame_uv"], s.targets["frame_visible"]
        n = len(s.frames)
        picked = clip_picks(n, clip_frames)
        seen = visible[picked]
        into["shown"].append(np.abs(predicted["shown"][i].numpy() - uv[picked]).max(-1)[seen])
        into["shown_constant"].append(uv[picked][seen])
        after, last = uv[n: n + N_NEXT], uv[n - 1]
        ok = visible[n: n + N_NEXT] & visible[n - 1]
        into["next"].append(np.abs(predicted["next"][i].numpy() - after).max(-1)[ok])
        into["next_stays"].append(np.abs(last[None] - after).max(-1)[ok])


if __name__ == "__main__":
    main()
