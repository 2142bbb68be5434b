"""Recipe: train a PhysEncoder jointly on question answering and its auxiliary physics heads.

Reads top to bottom: config -> data -> model -> loop. A run folder holds ``config.json``,
``init/`` (the weights before training, for the "without physics training" baseline),
``checkpoint/`` (the trained weights), ``metrics.jsonl`` (one line per logged step) and
``summary.json``. With ``save_every``, ``resume/`` holds the latest resumable training state
(weights, AdamW moments, schedule, RNG states, batch order; safetensors + JSON, no pickle)
until the run finishes; ``train_encoder(..., resume=True)`` continues from it and ends with
the same weights and metrics, byte for byte, as a run that was never interrupted.

    from physforge.reason.config import TrainConfig
    from physforge.reason.recipe_encoder import train_encoder
    train_encoder(TrainConfig(data="runs/data", out="runs/reason", steps=300))
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from physforge.reason.config import EncoderConfig, TrainConfig
from physforge.reason.data import SLOTS, Split, load_split, tokenize
from physforge.reason.errors import ReasonConfigError

log = logging.getLogger(__name__)


def build_vocab(split: Split) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(question tokens, 'name' answer classes) seen in the training questions, sorted."""
    words: Counter = Counter()
    names = set(SLOTS)
    for q in split.questions:
        words.update(tokenize(q["question"]))
        for option in q["options"]:
            words.update(tokenize(option["text"]))
        if q["answer_type"] == "name":
            names.add(q["answer"].strip().lower())
    return ("<pad>", "<unk>") + tuple(sorted(words)), tuple(sorted(names))


def answer_weights(questions: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(template, answer) -> 1 / (share of that answer among the template's questions), scaled so
    the mean weight over the questions is 1. Numbers get weight 1 (every value is its own answer)."""
    from collections import Counter

    counts: dict[str, Counter] = {}
    for q in questions:
        if q["answer_type"] != "number":
            counts.setdefault(q["template"], Counter())[q["answer"].strip()] += 1
    raw = {(t, a): sum(c.values()) / (len(c) * n) for t, c in counts.items() for a, n in c.items()}
    total = sum(raw.get((q["template"], q["answer"].strip()), 1.0) for q in questions)
    scale = len(questions) / total if total else 1.0
    return {key: value * scale for key, value in raw.items()}


def qa_loss(outputs: dict, questions: list[dict[str, Any]], names: tuple[str, ...], max_count: int,
            weights: dict[tuple[str, str], float] | None = None):
    """Mean over questions of the loss of each one's answer type (see module docs), each question
    weighted by ``weights[(template, answer)]`` when given (default 1)."""
    import torch
    from torch.nn import functional as F

    losses, scale = [], []
    name_index = {n: i for i, n in enumerate(names)}
    for i, q in enumerate(questions):
        kind, answer = q["answer_type"], q["answer"].strip()
        before = len(losses)
        if kind == "bool":
            target = torch.tensor(1.0 if answer.lower() == "yes" else 0.0)
            losses.append(F.binary_cross_entropy_with_logits(outputs["bool"][i], target))
        elif kind == "count":
            target = torch.tensor(min(int(float(answer)), max_count))
            losses.append(F.cross_entropy(outputs["count"][i: i + 1], target.unsqueeze(0)))
        elif kind == "number":
            losses.append(F.smooth_l1_loss(outputs["number"][i], torch.tensor(float(answer)), beta=0.1))
        elif kind == "name":
            if answer.lower() in name_index:
                target = torch.tensor([name_index[answer.lower()]])
                losses.append(F.cross_entropy(outputs["name"][i: i + 1], target))
        elif kind in ("choice", "multi") and q["options"]:
            n = len(q["options"])
            scores = outputs["options"][i, :n]
            correct = torch.tensor([1.0 if o["correct"] else 0.0 for o in q["options"]])
            if kind == "choice":
                losses.append(F.cross_entropy(scores.unsqueeze(0), correct.argmax().unsqueeze(0)))
            else:
                losses.append(F.binary_cross_entropy_with_logits(scores, correct))
        if len(losses) > before:
            scale.append(1.0 if weights is None else weights.get((q["template"], answer), 1.0))
    if not losses:
        return outputs["bool"].sum() * 0.0
    return (torch.stack(losses) * torch.tensor(scale)).sum() / len(losses)


def aux_loss(model, z, split: Split, questions: list[dict[str, Any]]):
    """Auxiliary losses on questions that show their scene's own clip (not the impossible twin)."""
    import torch
    from torch.nn import functional as F

    from physforge.reason.data import PAIRS

    rows = [i for i, q in enumerate(questions)
            if split.scenes[q["scene_id"]].targets is not None
            and max(q["frame_indices"]) < len(split.scenes[q["scene_id"]].frames)]
    if not rows:
        return z.sum() * 0.0, {}
    targets = [split.scenes[questions[i]["scene_id"]].targets for i in rows]
    stack = {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in AUX_KEYS}
    predicted = model.heads(z[rows])
    present = stack["present"].float()  # (R, 8)
    pair_mask = torch.stack([present[:, a] * present[:, b] for a, b in PAIRS], 1)  # (R, 28)

    def masked(value, mask):
        return (value * mask).sum() / mask.sum().clamp(min=1.0)

    parts = {
        "state": masked(F.smooth_l1_loss(predicted["future"], stack["future"], reduction="none", beta=0.05)
                        .sum(-1), present.unsqueeze(1).expand(-1, predicted["future"].shape[1], -1)),
        "property": masked(F.mse_loss(predicted["properties"], stack["properties"], reduction="none").sum(-1), present),
        "stability": masked(F.binary_cross_entropy_with_logits(predicted["displaced"], stack["displaced"],
                                                               reduction="none"), present),
        "contact": masked(F.binary_cross_entropy_with_logits(predicted["contacts"], stack["contacts"],
                                                             reduction="none"), pair_mask),
    }
    return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}


AUX_KEYS = ("present", "future", "properties", "displaced", "contacts")


def track_targets(split: Split, question: dict[str, Any], clip_frames: int) -> dict[str, np.ndarray] | None:
    """The true image positions behind a question's clip, or None when there are none (no camera
    in the scene, or the question shows the impossible twin's frames): shown (clip_frames, 8, 2),
    of each object in each frame the encoder gets (the same frames ``clip_tensor`` picks), and
    next (N_NEXT, 8, 2), in the N_NEXT frames after the last shown one ([-1, 1], x right, y
    down); shown_visible (clip_frames, 8) and next_visible (N_NEXT, 8) bool, where they count."""
    from physforge.reason.data import N_NEXT, clip_picks

    scene = split.scenes[question["scene_id"]]
    shown = np.asarray(question["frame_indices"], np.int64)
    if scene.targets is None or "frame_uv" not in scene.targets or shown.max() >= len(scene.frames):
        return None
    uv, visible = scene.targets["frame_uv"], scene.targets["frame_visible"]
    picked, after = shown[clip_picks(len(shown), clip_frames)], slice(shown[-1] + 1, shown[-1] + 1 + N_NEXT)
    return {"shown": uv[picked], "next": uv[after], "shown_visible": visible[picked], "next_visible": visible[after]}


def track_loss(model, z, frame_features, split: Split, questions: list[dict[str, Any]]):
    """Smooth-L1 (beta 0.05, i.e. 1.6 px at 64 px) between predicted and true image positions of
    the objects in view, over the shown frames and the next ones (see ``track_targets``)."""
    import torch
    from torch.nn import functional as F

    rows, found = [], []
    for i, q in enumerate(questions):
        targets = track_targets(split, q, model.config.clip_frames)
        if targets is not None:
            rows.append(i)
            found.append(targets)
    if not rows:
        return z.sum() * 0.0, {}
    predicted = model.track(z[rows], frame_features[rows])
    parts = {}
    for key in ("shown", "next"):
        target = torch.from_numpy(np.stack([t[key] for t in found]))
        weight = torch.from_numpy(np.stack([t[key + "_visible"] for t in found])).float()  # (R, frames, 8)
        error = F.smooth_l1_loss(predicted[key], target, reduction="none", beta=0.05).sum(-1)
        parts["track_" + key] = (error * weight).sum() / weight.sum().clamp(min=1.0)
    return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}


def jitter_clips(clips, generator):
    """Brightness and contrast jitter of clips (B, T, 3, S, S) in [0, 1], one draw per clip from
    the torch ``generator`` (the recipe's, so a resumed run draws the same): contrast x0.75-1.25
    about the clip mean, brightness +-0.1. The same change on every frame keeps frame differences
    proportional and the hue of each object (its colour name) unchanged."""
    import torch

    b = clips.shape[0]
    contrast = 0.75 + 0.5 * torch.rand(b, 1, 1, 1, 1, generator=generator)
    brightness = 0.2 * torch.rand(b, 1, 1, 1, 1, generator=generator) - 0.1
    mean = clips.mean(dim=(1, 2, 3, 4), keepdim=True)
    return ((clips - mean) * contrast + mean + brightness).clamp(0.0, 1.0)


def evaluate_accuracy(model, split: Split, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """The data engine's grader on the model's answers: overall accuracy and per question type."""
    from physforge.data.grade import grade

    answers = model.answer(split, questions)
    graded = grade({q["question_id"]: a for q, a in zip(questions, answers)}, questions)
    per_type: dict[str, list[float]] = {}
    for row in graded["groups"]:
        bucket = per_type.setdefault(row["question_type"], [0.0, 0.0])
        bucket[0] += row["accuracy"] * row["questions"]
        bucket[1] += row["questions"]
    return {"accuracy": graded["overall"]["accuracy"],
            "per_type": {k: round(c / n, 4) for k, (c, n) in sorted(per_type.items())}}


def train_encoder(config: TrainConfig, *, overwrite: bool = False, resume: bool = False,
                  progress: bool = False) -> dict[str, Any]:
    """Run the recipe; returns the summary (also written to ``summary.json``).

    resume: continue the run in ``config.out`` from its last saved state (see ``save_every``);
    without one it starts from step 0 in place. The folder's config must be this config.
    """
    from physforge.threads import torch_threads

    with torch_threads(config.threads):  # float sums, and so the bytes, depend on the thread count
        return _train_encoder(config, overwrite=overwrite, resume=resume, progress=progress)


def _train_encoder(config: TrainConfig, *, overwrite: bool, resume: bool, progress: bool) -> dict[str, Any]:
    import torch

    from physforge.outputs import prepare_run_folder, write_json
    from physforge.reason.encoder import build_encoder, load_encoder, save_encoder

    # -- config -----------------------------------------------------------------------------------
    out = prepare_run_folder(config.out, overwrite=overwrite, keep=resume)
    generator = torch.Generator().manual_seed(config.seed)
    sample_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))

    # -- data -------------------------------------------------------------------------------------
    size = config.model.image_size
    train = load_split(config.data, config.train_splits, image_size=size)
    val = None
    if config.val_split:
        val = load_split(config.data, [config.val_split], image_size=size, max_questions=config.max_val_questions,
                         rng=sample_rng)
    vocab, names = build_vocab(train)
    weights = answer_weights(train.questions) if config.balance else None
    model_config = EncoderConfig.from_dict({**config.model.to_dict(), "vocab": list(vocab), "names": list(names),
                                            "track": config.model.track or config.track_weight > 0})
    run_config = {**config.to_dict(), "model": model_config.to_dict()}
    state_dir = _resume_folder(out) if resume else None
    if resume and (out / "config.json").is_file() and json.loads((out / "config.json").read_text()) != \
            json.loads(json.dumps(run_config)):
        raise ReasonConfigError("out", f"{out} holds a run with another config; resume it with the same config, "
                                "or choose another --out")
    if state_dir is None:
        (out / "metrics.jsonl").unlink(missing_ok=True)  # a fresh start in place appends nothing stale
    write_json(out / "config.json", run_config)
    log.info("training on %d questions of %d scenes", len(train.questions), len(train.scenes))

    # -- model ------------------------------------------------------------------------------------
    model = build_encoder(model_config, generator)
    if state_dir is None:
        save_encoder(model, out / "init", step=0, train_config=config.to_dict())
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 20)  # linear warm-up, then cosine decay to 0
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * s / max(1, config.steps))))
    n_params = sum(p.numel() for p in model.parameters())

    # -- loop -------------------------------------------------------------------------------------
    order = torch.randperm(len(train.questions), generator=generator)
    cursor, images_seen, train_seconds = 0, 0, 0.0
    metrics_path = out / "metrics.jsonl"
    history = []
    first = 1
    if state_dir is not None:
        first, cursor, images_seen, train_seconds, history, order = _load_state(
            state_dir, model, optimiser, schedule, generator, metrics_path)
        log.info("resuming %s at step %d of %d", out, first, config.steps)
    bar = _bar(progress, config.steps)
    model.train()
    for step in range(first, config.steps + 1):
        if cursor + config.batch_size > len(order):
            order, cursor = torch.randperm(len(train.questions), generator=generator), 0
        chunk = [train.questions[int(i)] for i in order[cursor: cursor + config.batch_size]]
        cursor += config.batch_size
        start = time.perf_counter()
        inputs = model.batch(train, chunk)
        if config.augment and not model_config.blind:
            inputs["clips"] = jitter_clips(inputs["clips"], generator)
        z, frame_features = model.encode_parts(inputs["clips"])
        outputs = model.qa(z, inputs["tokens"], inputs["option_tokens"], inputs["option_slots"],
                           inputs["question_slots"], frame_features)
        loss_qa = qa_loss(outputs, chunk, model_config.names, model_config.max_count, weights)
        loss_aux, parts = aux_loss(model, z, train, chunk) if config.aux_weight > 0 else (z.sum() * 0.0, {})
        loss = loss_qa + config.aux_weight * loss_aux
        if config.track_weight > 0 and frame_features is not None:
            loss_track, track_parts = track_loss(model, z, frame_features, train, chunk)
            loss = loss + config.track_weight * loss_track
            parts = {**parts, **track_parts}
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        train_seconds += time.perf_counter() - start
        images_seen += 0 if model_config.blind else len(chunk) * model_config.clip_frames
        if not np.isfinite(float(loss.detach())):
            raise ReasonConfigError("lr", f"the loss became {float(loss)} at step {step}; lower the learning rate")
        record: dict[str, Any] = {"step": step, "loss": round(float(loss.detach()), 5),
                                  "qa": round(float(loss_qa.detach()), 5),
                                  **{k: round(v, 5) for k, v in parts.items()}}
        if val is not None and config.eval_every and (step % config.eval_every == 0 or
                                                       (config.keep_best and step == config.steps)):
            record["val"] = evaluate_accuracy(model, val, val.questions)
            if config.keep_best and record["val"]["accuracy"] > max(
                    (r["val"]["accuracy"] for r in history if "val" in r), default=-1.0):
                save_encoder(model, out / "best", step=step, train_config=config.to_dict())
        if step % 10 == 0 or step == config.steps or "val" in record:
            with metrics_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        history.append(record)
        if config.save_every and step % config.save_every == 0 and step < config.steps:
            _save_state(out, step + 1, model, optimiser, schedule, generator, order, cursor, images_seen,
                        train_seconds, history, metrics_path)
        bar(step, record["loss"])
    bar(None, None)

    best_step = None
    if config.keep_best and (out / "best").is_dir():
        # Early stopping: the run's checkpoint is its best validated state, not its last.
        best_step = max((r for r in history if "val" in r), key=lambda r: (r["val"]["accuracy"], -r["step"]))["step"]
        model = load_encoder(out / "best")
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
        (out / "best").rename(out / "checkpoint")
    else:
        save_encoder(model, out / "checkpoint", step=config.steps, train_config=config.to_dict())
    summary: dict[str, Any] = {
        "steps": config.steps, "parameters": n_params, "train_questions": len(train.questions),
        "train_scenes": len(train.scenes), "train_seconds": round(train_seconds, 3),
        "train_images_per_second": round(images_seen / train_seconds, 2) if train_seconds and images_seen else None,
        "final_loss": history[-1]["loss"] if history else None,
        "checkpoint": str(out / "checkpoint"), "init": str(out / "init"),
    }
    if best_step is not None:
        summary["best_step"] = best_step
    if val is not None:
        summary["val"] = evaluate_accuracy(model, val, val.questions) | {"questions": len(val.questions)}
        # The same number of training questions scored the same way: the gap to val is how much
        # the model memorised its training scenes rather than learnt what generalises.
        pick = sample_rng.choice(len(train.questions), min(len(val.questions), len(train.questions)), replace=False)
        seen = [train.questions[int(i)] for i in np.sort(pick)]
        summary["train_sample"] = evaluate_accuracy(model, train, seen) | {"questions": len(seen)}
    write_json(out / "summary.json", summary)
    for stale in [out / "resume", *out.glob(".resume.*")]:
        shutil.rmtree(stale, ignore_errors=True)
    return summary


# -- resumable training state (safetensors for tensors, JSON for the rest: nothing is pickled) ------

def _save_state(out: Path, next_step: int, model, optimiser, schedule, generator, order, cursor: int,
                images_seen: int, train_seconds: float, history: list, metrics_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from physforge.outputs import staged_directory, write_json

    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    optimiser_state = optimiser.state_dict()
    plain: dict[str, dict] = {}
    for index, entry in optimiser_state["state"].items():
        plain[str(index)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().clone().contiguous()
            else:
                plain[str(index)][key] = value
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["order"] = order.clone().contiguous()
    schedule_state = {k: v for k, v in schedule.state_dict().items() if k != "lr_lambdas"}
    metrics_bytes = metrics_path.stat().st_size if metrics_path.exists() else 0
    # A kill during this write leaves the previous state in place (staged folder + rename).
    with staged_directory(out / "resume", overwrite=True) as staging:
        save_file(tensors, str(staging / "state.safetensors"))
        write_json(staging / "state.json", {
            "next_step": next_step, "cursor": cursor, "images_seen": images_seen, "train_seconds": train_seconds,
            "history": history, "metrics_bytes": metrics_bytes, "optimiser": {
                "param_groups": optimiser_state["param_groups"], "state": plain}, "schedule": schedule_state})


def _resume_folder(out: Path) -> Path | None:
    """The saved state to resume from: ``resume/``, or the previous one a kill left mid-replace."""
    candidates = [out / "resume", *sorted(out.glob(".resume.old-*"))]
    for folder in candidates:
        if (folder / "state.json").is_file() and (folder / "state.safetensors").is_file():
            return folder
    return None


def _load_state(folder: Path, model, optimiser, schedule, generator, metrics_path: Path):
    import torch
    from safetensors.torch import load_file

    state = json.loads((folder / "state.json").read_text())
    tensors = load_file(str(folder / "state.safetensors"))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    entries: dict[int, dict] = {int(i): dict(plain) for i, plain in state["optimiser"]["state"].items()}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            entries.setdefault(int(index), {})[name] = value
    optimiser.load_state_dict({"state": entries, "param_groups": state["optimiser"]["param_groups"]})
    schedule.load_state_dict({**state["schedule"], "lr_lambdas": [None] * len(schedule.lr_lambdas)})
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    # Lines logged after the state was saved are logged again by the resumed run: cut them.
    if metrics_path.exists():
        with metrics_path.open("r+b") as handle:
            handle.truncate(state["metrics_bytes"])
    return (state["next_step"], state["cursor"], state["images_seen"], state["train_seconds"], state["history"],
            tensors["order"])


def _bar(enabled: bool, total: int):
    if not enabled:
        return lambda step, loss: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("steps"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                        TimeRemainingColumn())
    progress.start()
    task = progress.add_task("train", total=total, loss="-")

    def advance(step, loss):
        if step is None:
            progress.stop()
        else:
            progress.update(task, completed=step, loss=f"{loss:.3f}")
    return advance
