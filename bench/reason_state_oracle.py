"""Information ceiling of a dataset's questions: how well can they be answered from perfect
perception of what the question shows? Prints JSON.

A "state oracle" replaces the pixels by the ground-truth states (position and velocity of every
body the question names, at the times of the frames the question shows, plus shape and size),
and is trained per template (logistic regression or a small MLP, picked by 4-fold
cross-validation on the training split) on bool, two-option and multiple-answer questions. With
``--latent`` it also gets each named body's true mass, friction and restitution: a perfect
property estimator. Compared with the per-template majority answer (the harness's ``majority``
baseline) on every evaluation split. If the oracle cannot beat the majority by a margin, no
image model can: the questions or splits are the limit, not the model.

    python bench/reason_state_oracle.py DATASET [--latent] [--predictions out.jsonl]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

TYPES = ("property", "counterfactual")
MAX_BODIES = 3
_NUMBER = re.compile(r"\d+\.\d+")


def _rows(folder: Path, kind: str, split: str, columns=None) -> list[dict]:
    out = []
    for path in sorted((folder / kind / split).glob("*.parquet")):
        out.extend(pq.read_table(path, columns=columns).to_pylist())
    return out


def _bodies(program: str, known: set[str]) -> list[str]:
    """Body names in order of first mention in a program (JSON text)."""
    found = []
    # Bare names ("body": "red_cube") and latent keys ("key": "red_cube.mass").
    for token in re.findall(r'"([a-z]+_[a-z]+)(?:\.[a-z_]+)?"', program):
        if token in known and token not in found:
            found.append(token)
    return found


class Features:
    def __init__(self, scenes: dict[str, dict], shapes: list[str], families: list[str], latent: bool):
        self.scenes, self.shapes, self.families, self.latent = scenes, shapes, families, latent

    def body(self, scene: dict, name: str, times: np.ndarray) -> np.ndarray:
        states = scene["states"]
        if name not in scene["_index"]:
            return np.zeros(self.body_width(len(times)))
        k = scene["_index"][name]
        t = np.asarray(states["time"])
        pos = np.asarray(states["position"])[:, k, :]
        vel = np.asarray(states["linear_velocity"])[:, k, :]
        track = [np.interp(times, t, pos[:, d]) for d in range(3)] + [np.interp(times, t, vel[:, d]) for d in range(3)]
        obj = scene["_objects"][name]
        shape = np.eye(len(self.shapes))[self.shapes.index(obj["shape"])] if obj["shape"] in self.shapes else \
            np.zeros(len(self.shapes))
        extra = [np.log(obj["mass"]), obj["friction"], obj["restitution"]] if self.latent else []
        return np.concatenate([np.stack(track, 1).ravel(), shape, [obj["size"]], extra])

    def body_width(self, n_times: int) -> int:
        return 6 * n_times + len(self.shapes) + 1 + (3 if self.latent else 0)

    def __call__(self, q: dict, program: str) -> np.ndarray:
        scene = self.scenes[q["scene_id"]]
        n = len(scene["frames_times"])
        # The shown frames (the impossible twin's frames are mapped onto the factual times).
        times = np.array([scene["frames_times"][i % n] for i in q["frame_indices"]])
        names = _bodies(program, set(scene["_objects"]))[:MAX_BODIES]
        parts = [self.body(scene, name, times) for name in names]
        parts += [np.zeros(self.body_width(len(times)))] * (MAX_BODIES - len(names))
        numbers = [float(x) for x in _NUMBER.findall(q["question"])][:1] or [0.0]
        family = np.eye(len(self.families))[self.families.index(q["family"])] if q["family"] in self.families else \
            np.zeros(len(self.families))
        return np.concatenate(parts + [numbers, family, [len(scene["_objects"])]])


def _examples(questions: list[dict], feats: Features):
    """(template, kind) -> list of (question index, option index or -1, x, y)."""
    out = defaultdict(list)
    for i, q in enumerate(questions):
        if q["question_type"] not in TYPES:
            continue
        if q["answer_type"] == "bool":
            out[q["template"]].append((i, -1, feats(q, q["program"]), float(q["answer"] == "yes")))
        elif q["answer_type"] in ("choice", "multi"):
            # Option-wise: is this option correct? (two-option property questions: option A's
            # program names the bodies in the order the option means.)
            for k, opt in enumerate(q["options"]):
                out[q["template"]].append((i, k, np.concatenate([feats(q, opt["program"] + q["program"]), [k]]),
                                           float(opt["correct"])))
    return out


def _fit(x: np.ndarray, y: np.ndarray, kind: str, decay: float, seed: int):
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    if kind == "linear":
        net = torch.nn.Linear(x.shape[1], 1)
    else:
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=decay)
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt).squeeze(-1), yt)
        loss.backward()
        opt.step()
    return lambda z: net(torch.tensor((z - mean) / std, dtype=torch.float32)).squeeze(-1).detach().numpy()


def _choose(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """Model family and weight decay by 4-fold cross-validated accuracy."""
    if len(set(y.tolist())) < 2:
        return None
    folds = rng.permutation(len(y)) % 4
    best, best_acc = ("linear", 1e-2), -1.0
    for kind in ("linear", "mlp"):
        for decay in (1e-2, 1e-1):
            hits = 0
            for f in range(4):
                train, test = folds != f, folds == f
                if len(set(y[train].tolist())) < 2:
                    continue
                predict = _fit(x[train], y[train], kind, decay, 0)
                hits += int(((predict(x[test]) > 0) == (y[test] > 0.5)).sum())
            if hits / len(y) > best_acc:
                best, best_acc = (kind, decay), hits / len(y)
    return _fit(x, y, *best, 0), best, best_acc


def _answers(questions, examples, models) -> dict[str, str]:
    scores: dict[int, dict[int, float]] = defaultdict(dict)
    for template, rows in examples.items():
        model = models.get(template)
        if model is None or not rows:
            continue
        logits = model(np.stack([r[2] for r in rows]))
        for (i, k, _, _), s in zip(rows, logits):
            scores[i][k] = float(s)
    out = {}
    for i, by_option in scores.items():
        q = questions[i]
        if q["answer_type"] == "bool":
            out[q["question_id"]] = "yes" if by_option[-1] > 0 else "no"
        elif q["answer_type"] == "choice":
            out[q["question_id"]] = q["options"][max(by_option, key=by_option.get)]["label"]
        else:
            chosen = [q["options"][k]["label"] for k in sorted(by_option) if by_option[k] > 0]
            out[q["question_id"]] = ",".join(chosen) if chosen else "none"
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--latent", action="store_true", help="also give the true mass, friction, restitution")
    parser.add_argument("--predictions", help="write the oracle's answers as predictions JSONL")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the models are tiny: more threads only add synchronisation
    folder = Path(args.data)
    info = json.loads((folder / "meta" / "info.json").read_text())
    splits = list(info["splits"])
    questions = {s: _rows(folder, "questions", s) for s in splits}
    scenes = {}
    for s in splits:
        for row in _rows(folder, "scenes", s, ["scene_id", "family", "fps", "frames", "objects", "states"]):
            row["frames_times"] = [k / row["fps"] for k in range(len(row["frames"]))]
            row.pop("frames")
            row["_index"] = {n: k for k, n in enumerate(row["states"]["body_names"])}
            row["_objects"] = {o["name"]: o for o in row["objects"]}
            scenes[row["scene_id"]] = row
    shapes = sorted({o["shape"] for r in scenes.values() for o in r["objects"]})
    families = sorted({r["family"] for r in scenes.values()})
    feats = Features(scenes, shapes, families, args.latent)
    rng = np.random.default_rng(args.seed)
    train = _examples(questions["train"], feats)
    models, chosen = {}, {}
    for template, rows in train.items():
        picked = _choose(np.stack([r[2] for r in rows]), np.array([r[3] for r in rows]), rng)
        if picked is not None:
            models[template], chosen[template] = picked[0], {"model": picked[1][0], "weight_decay": picked[1][1],
                                                             "cv_option_accuracy": round(picked[2], 4),
                                                             "train_rows": len(rows)}
    majority = {}
    for template, answers in _group(questions["train"]).items():
        counts = Counter(answers)
        best = max(counts.values())
        majority[template] = min(a for a, c in counts.items() if c == best)
    result = {"dataset": str(folder), "latent": args.latent, "templates": chosen, "splits": {}}
    predictions = {}
    for s in splits:
        if s in ("train", "val"):
            continue
        answers = _answers(questions[s], _examples(questions[s], feats), models)
        predictions.update(answers)
        table = defaultdict(lambda: {"n": 0, "oracle": 0, "majority": 0})
        for q in questions[s]:
            if q["question_type"] not in TYPES:
                continue
            for key in (q["question_type"], f"{q['question_type']}/{q['template']}"):
                row = table[key]
                row["n"] += 1
                row["oracle"] += int(answers.get(q["question_id"]) == q["answer"])
                row["majority"] += int(majority.get(q["template"]) == q["answer"])
        result["splits"][s] = {k: {"n": v["n"], "oracle": round(100 * v["oracle"] / v["n"], 1),
                                   "majority": round(100 * v["majority"] / v["n"], 1)} for k, v in sorted(table.items())}
    if args.predictions:
        with open(args.predictions, "w") as handle:
            for qid, answer in sorted(predictions.items()):
                handle.write(json.dumps({"question_id": qid, "prediction": answer}) + "\n")
    print(json.dumps(result, indent=1))


def _group(questions):
    out = defaultdict(list)
    for q in questions:
        out[q["template"]].append(q["answer"])
    return out


if __name__ == "__main__":
    main()
