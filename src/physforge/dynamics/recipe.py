"""The three training stages and the evaluation, each reading top to bottom:
config -> data -> model -> loop -> run folder (``config.json``, ``checkpoint/``, ``log.jsonl``).

1. ``train_sft``: negative log-likelihood of the simulator's motions, generator + PhysEncoder.
2. ``train_dpo(DPOConfig(train="generator"))``: sample K motions per training image, rank them
   with the verifier, keep (chosen, rejected) pairs with a clear margin, and minimise the DPO loss
   against the frozen starting checkpoint; every weight except the PhysEncoder moves.
3. ``train_dpo(DPOConfig(train="encoder"))``: the same with the PhysEncoder alone trainable.
``evaluate``: samples per image on held-out and OOD splits, scored by the verifier.

This module imports torch at the top; ``physforge.dynamics`` loads it on first use only.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physforge.dynamics.config import (BASELINES, DPOConfig, EvalConfig, GeneratorConfig, PairConfig, ScoreConfig,
                                      TrainConfig)
from physforge.dynamics.data import Example, available_splits, load_examples
from physforge.dynamics.errors import DynamicsConfigError, DynamicsDataError
from physforge.dynamics.model import (TrajectoryGenerator, batch_tensors, build_generator, load_generator,
                                      save_generator)
from physforge.dynamics.verify import Verifier
from physforge.threads import torch_threads, with_config_threads

log = logging.getLogger(__name__)

#: sampled motions per val scene in SFT's model selection
VAL_SAMPLES = 4
#: reparameterised samples per scene in SFT's energy-score term
ENERGY_SAMPLES = 4


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Rafailov et al.'s DPO loss (the sigmoid loss of TRL's DPOTrainer): mean over pairs of
    -log sigmoid(beta [(log pi(w) - log ref(w)) - (log pi(l) - log ref(l))]). Inputs (B,) log-likelihoods
    in nats. Also returns the implicit rewards beta (log pi - log ref) of chosen and rejected."""
    chosen_reward = beta * (policy_chosen - reference_chosen)
    rejected_reward = beta * (policy_rejected - reference_rejected)
    loss = -torch.nn.functional.logsigmoid(chosen_reward - rejected_reward).mean()
    return loss, {"rewards_chosen": chosen_reward.detach(), "rewards_rejected": rejected_reward.detach()}


def _run_folder(out_dir: str | Path, config) -> Path:
    from physforge.outputs import write_json

    out = Path(out_dir)
    if (out / "checkpoint" / "checkpoint.json").exists():
        raise DynamicsConfigError("out_dir", f"{out} already holds a finished run; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config.to_dict())
    return out


def _log(handle, record: dict) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()


def _data(dataset: str, split: str, model: GeneratorConfig, limit: int | None = None) -> list[Example]:
    return load_examples(dataset, split, horizon=model.horizon, dt=model.dt, max_objects=model.max_objects,
                         image_size=model.image_size, limit=limit, with_properties=model.use_properties)


# -- stage 1 ----------------------------------------------------------------------------------------
@with_config_threads
def train_sft(config: TrainConfig, out_dir: str | Path, progress: bool = False) -> Path:
    """Stage 1: supervised NLL training of generator + PhysEncoder. Returns the checkpoint folder.

    Every ``config.eval_every`` steps the val split (when there is one) is scored (``_validate``).
    With ``config.keep_best`` the weights with the lowest ``val_l2`` (the L2 of sampled motions,
    which weighs both accurate means and tight spread) are the ones saved: a few hundred scenes are
    memorised long before the schedule ends, and the NLL on val is a poor guide to it."""
    out = _run_folder(out_dir, config)
    model_config = config.generator
    train = _data(config.dataset, "train", model_config)
    val = _data(config.dataset, "val", model_config) if "val" in available_splits(config.dataset) else []
    generator = torch.Generator().manual_seed(config.seed)
    model = build_generator(model_config, generator, config.encoder_checkpoint or None)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=config.steps,
                                                   pct_start=0.05)
    data = batch_tensors(train)
    val_data = batch_tensors(val) if val else None
    best: tuple[float, int, dict] | None = None
    started = time.perf_counter()
    with open(out / "log.jsonl", "w") as handle:
        order = torch.randperm(len(train), generator=generator)
        cursor = 0
        for step in range(1, config.steps + 1):
            if cursor + config.batch_size > len(order):
                order, cursor = torch.randperm(len(train), generator=generator), 0
            index = order[cursor:cursor + config.batch_size]
            cursor += config.batch_size
            batch = {k: v[index] for k, v in data.items()}
            model.train()
            params = model.condition(batch)
            dims = batch["mask"].sum(-1).float() * model_config.horizon * 3
            loss = -(model.log_prob(params, batch["target"], batch["mask"]) / dims).mean()
            if config.mean_weight > 0:
                loss = loss + config.mean_weight * model.mean_error(params, batch["target"], batch["mask"]).mean()
            if config.energy_weight > 0:
                loss = loss + config.energy_weight * model.energy_score(
                    params, batch["target"], batch["mask"], ENERGY_SAMPLES, generator).mean()
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            schedule.step()
            if step % config.eval_every == 0 or step == config.steps:
                record = {"step": step, "nll_per_dim": float(loss.detach()), "elapsed_s": time.perf_counter() - started}
                if val_data is not None:
                    record.update(_validate(model, val_data, config.seed))
                    if config.keep_best and (best is None or record["val_l2"] < best[0]):
                        best = (record["val_l2"], step, {k: v.detach().clone() for k, v in model.state_dict().items()})
                _log(handle, record)
                if progress:
                    log.info("sft %s", record)
        step = config.steps
        if best is not None:
            model.load_state_dict(best[2])
            step = best[1]
            _log(handle, {"kept_step": step, "val_l2": best[0]})
    return save_generator(model.eval(), out / "checkpoint", step, "sft", config.to_dict())


@torch.no_grad()
def _validate(model: TrajectoryGenerator, data: dict[str, torch.Tensor], seed: int) -> dict[str, float]:
    """On a batch of val examples: NLL per dimension, ``val_mean_l2`` (m, the most likely
    component's mean motion against the simulator) and ``val_l2`` (m, the mean L2 of
    ``VAL_SAMPLES`` sampled motions, what the evaluation measures; fixed sampling seed)."""
    model.eval()
    params = model.condition(data)
    dims = data["mask"].sum(-1).float() * model.config.horizon * 3
    nll = float(-(model.log_prob(params, data["target"], data["mask"]) / dims).mean())
    present = data["mask"][:, None].float()  # (B, 1, N)

    def l2(motion):  # (B, T + 1, N, 3) -> mean over frames 1..T and present objects, then scenes
        error = (motion - data["target"])[:, 1:].norm(dim=-1) * present
        return float((error.sum((1, 2)) / (present.sum((1, 2)) * model.config.horizon)).mean())

    samples = model.sample(params, data["initial"], data["mask"], VAL_SAMPLES, torch.Generator().manual_seed(seed))
    return {"val_nll_per_dim": nll, "val_mean_l2": l2(model.most_likely(params, data["initial"])),
            "val_l2": float(np.mean([l2(samples[:, j]) for j in range(VAL_SAMPLES)]))}


# -- sampling and scoring ------------------------------------------------------------------------
@torch.no_grad()
def sample_motions(model: TrajectoryGenerator, examples: list[Example], num: int, generator: torch.Generator,
                   batch_size: int = 256) -> np.ndarray:
    """(n_examples, num, T + 1, max_objects, 3) float64 m sampled motions."""
    model.eval()
    out = []
    for start in range(0, len(examples), batch_size):
        batch = batch_tensors(examples[start:start + batch_size])
        params = model.condition(batch)
        out.append(model.sample(params, batch["initial"], batch["mask"], num, generator).double().numpy())
    return np.concatenate(out)


def baseline_motions(kind: str, examples: list[Example], model: GeneratorConfig) -> np.ndarray:
    """(n_examples, 1, T + 1, max_objects, 3) float64 m: the deterministic prediction of a trivial
    baseline (``config.BASELINES``): "static" (every object stays where it is), "ballistic" (free
    flight stopped at the ground, the generator's ballistic prior without supports or friction) or
    "physics" (the whole closed-form prior, ``physics_prior``: rolling, sliding or sticking on the
    surface an object starts on, then sliding on the ground at the known mu g, rolling balls at 0,
    ``known_deceleration``)."""
    from physforge.dynamics.model import known_deceleration, physics_prior

    prior = {"static": "none", "ballistic": "ballistic", "physics": "ballistic"}.get(kind)
    if prior is None:
        raise DynamicsConfigError("baselines", f"unknown baseline {kind!r}; choose from {list(BASELINES)}")
    batch = batch_tensors(examples)
    initial = batch["initial"].double()
    gravity = batch["gravity"].double()
    support = deceleration = None
    if kind == "physics":
        support = batch["support"].double()
        deceleration = known_deceleration(gravity, support, batch["mask"])
    displacement = physics_prior(prior, initial, batch["velocity"].double() * batch["mask"][..., None],
                                 batch["size"].double(), gravity, model.horizon, model.dt, deceleration, support)
    motion = torch.cat([initial[:, None], initial[:, None] + displacement * batch["mask"][:, None, :, None]], 1)
    return motion[:, None].numpy()


class VerifierCache:
    """One Verifier per scene, built on first use with the dataset's recorded rollout as reference."""

    def __init__(self, config: ScoreConfig, horizon: int, dt: float):
        self.config, self.horizon, self.dt = config, horizon, dt
        self._cache: dict[str, Verifier] = {}

    def __call__(self, example: Example) -> Verifier:
        verifier = self._cache.get(example.scene_id)
        if verifier is None:
            n = len(example.bodies)
            verifier = Verifier(example.world(), example.bodies, self.horizon, self.dt, self.config,
                                reference=example.target[:, :n], reference_quaternion=example.quaternion[:, :n])
            self._cache[example.scene_id] = verifier
        return verifier


def score_samples(verifiers: VerifierCache, example: Example, motions: np.ndarray,
                  iou: bool | None = None) -> list[dict]:
    """Verifier reports of motions (K, T + 1, max_objects, 3) of one example (IoU rendered when the
    cost needs it, unless ``iou`` says otherwise)."""
    verifier = verifiers(example)
    n = len(example.bodies)
    return [verifier.score(m[:, :n], iou=iou) for m in motions]


# -- preference pairs ------------------------------------------------------------------------------
def select_pairs(costs: list[float], config: PairConfig) -> list[tuple[int, int]]:
    """(chosen, rejected) sample indices: best with worst, second best with second worst ...;
    pairs closer than the margins are ties and dropped."""
    order = np.argsort(np.asarray(costs), kind="stable")
    pairs = []
    for j in range(config.pairs_per_image):
        best, worst = int(order[j]), int(order[-1 - j])
        gap = costs[worst] - costs[best]
        if gap > config.margin and gap > config.relative_margin * costs[worst]:
            pairs.append((best, worst))
    return pairs


def build_pairs(model: TrajectoryGenerator, examples: list[Example], pairs: PairConfig, verifiers: VerifierCache,
                generator: torch.Generator) -> list[dict[str, Any]]:
    """Sample ``pairs.samples_per_image`` motions per example, score them, keep clear pairs.

    Each record: scene_id, split, family, example index, chosen / rejected motions
    (T + 1, max_objects, 3) m, their verifier reports, and the number of tied candidates dropped."""
    motions = sample_motions(model, examples, pairs.samples_per_image, generator)
    records = []
    for i, example in enumerate(examples):
        reports = score_samples(verifiers, example, motions[i])
        costs = [r["cost"] for r in reports]
        for best, worst in select_pairs(costs, pairs):
            records.append({"index": i, "scene_id": example.scene_id, "split": example.split,
                            "family": example.family, "chosen": motions[i, best], "rejected": motions[i, worst],
                            "chosen_report": reports[best], "rejected_report": reports[worst]})
    return records


def write_pairs(records: list[dict[str, Any]], examples: list[Example], path: str | Path) -> Path:
    """The pairs as a Parquet dataset: condition (scene_id, image PNG, initial positions and velocities,
    gravity, object properties, sizes, mask), chosen,
    rejected (flattened (T + 1) x max_objects x 3 m, with ``shape``), and the verifier scores."""
    import imageio.v2 as imageio
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, list] = {k: [] for k in (
        "scene_id", "split", "family", "image", "initial", "velocity", "gravity", "properties", "size", "mask", "shape",
        "chosen", "rejected",
        "chosen_cost", "rejected_cost", "chosen_l2", "rejected_l2", "chosen_scores", "rejected_scores")}
    for r in records:
        e = examples[r["index"]]
        buffer = io.BytesIO()
        imageio.imwrite(buffer, e.image, format="png")
        rows["scene_id"].append(r["scene_id"])
        rows["split"].append(r["split"])
        rows["family"].append(r["family"])
        rows["image"].append({"bytes": buffer.getvalue(), "path": None})
        rows["initial"].append(e.initial.astype(float).ravel().tolist())
        rows["size"].append(e.size.astype(float).tolist())
        rows["velocity"].append(e.velocity.astype(float).ravel().tolist())
        rows["gravity"].append(e.gravity.astype(float).tolist())
        rows["properties"].append(e.properties.astype(float).ravel().tolist())
        rows["mask"].append(e.mask.tolist())
        rows["shape"].append(list(r["chosen"].shape))
        rows["chosen"].append(r["chosen"].ravel().tolist())
        rows["rejected"].append(r["rejected"].ravel().tolist())
        for side in ("chosen", "rejected"):
            report = r[f"{side}_report"]
            rows[f"{side}_cost"].append(float(report["cost"]))
            rows[f"{side}_l2"].append(float(report["l2"]))
            rows[f"{side}_scores"].append(json.dumps({k: v for k, v in report.items() if k != "iou"}))
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(rows), temporary)
    temporary.replace(path)
    return path


# -- stages 2 and 3 --------------------------------------------------------------------------------
def trainable_parameters(model: TrajectoryGenerator, train: str) -> list[torch.nn.Parameter]:
    """Stage 2 ("generator"): every weight outside the PhysEncoder; stage 3 ("encoder"): the
    PhysEncoder alone. The rest is frozen (requires_grad False)."""
    chosen = []
    for name, parameter in model.named_parameters():
        in_encoder = name.startswith("encoder.")
        parameter.requires_grad_(in_encoder == (train == "encoder"))
        if parameter.requires_grad:
            chosen.append(parameter)
    return chosen


@with_config_threads
def train_dpo(config: DPOConfig, out_dir: str | Path, progress: bool = False) -> Path:
    """Stages 2/3: on-policy DPO against the frozen starting checkpoint. Returns the checkpoint folder.

    Each round samples pairs with the current policy from ``max_images`` training images, saves them
    to ``pairs-round{r}.parquet``, then takes ``steps`` optimiser steps on them."""
    out = _run_folder(out_dir, config)
    policy = load_generator(config.checkpoint)
    reference = load_generator(config.checkpoint)
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    model_config = policy.config
    train = _data(config.dataset, "train", model_config)
    generator = torch.Generator().manual_seed(config.seed)
    parameters = trainable_parameters(policy, config.train)
    optimiser = torch.optim.Adam(parameters, lr=config.lr)
    verifiers = VerifierCache(config.score_config, model_config.horizon, model_config.dt)
    pair_config = config.pair_config
    step = 0
    started = time.perf_counter()
    with open(out / "log.jsonl", "w") as handle:
        for round_index in range(config.rounds):
            pick = torch.randperm(len(train), generator=generator)[:config.max_images].tolist()
            images = [train[i] for i in pick]
            records = build_pairs(policy, images, pair_config, verifiers, generator)
            write_pairs(records, images, out / f"pairs-round{round_index}.parquet")
            if not records:
                raise DynamicsDataError(f"round {round_index}: every candidate pair was a tie; lower pairs.margin "
                                        f"({pair_config.margin}) or raise pairs.samples_per_image")
            conditions = batch_tensors([images[r["index"]] for r in records])
            chosen = torch.from_numpy(np.stack([r["chosen"] for r in records])).float()
            rejected = torch.from_numpy(np.stack([r["rejected"] for r in records])).float()
            with torch.no_grad():
                ref_params = reference.condition(conditions)
                ref_chosen = reference.log_prob(ref_params, chosen, conditions["mask"])
                ref_rejected = reference.log_prob(ref_params, rejected, conditions["mask"])
            _log(handle, {"round": round_index, "pairs": len(records), "images": len(images),
                          "chosen_cost": float(np.mean([r["chosen_report"]["cost"] for r in records])),
                          "rejected_cost": float(np.mean([r["rejected_report"]["cost"] for r in records]))})
            for _ in range(config.steps):
                step += 1
                index = torch.randint(0, len(records), (min(config.batch_size, len(records)),), generator=generator)
                policy.train()
                params = policy.condition({k: v[index] for k, v in conditions.items()})
                lp_chosen = policy.log_prob(params, chosen[index], conditions["mask"][index])
                lp_rejected = policy.log_prob(params, rejected[index], conditions["mask"][index])
                loss, rewards = dpo_loss(lp_chosen, lp_rejected, ref_chosen[index], ref_rejected[index], config.beta)
                if config.sft_weight > 0:
                    dims = conditions["mask"][index].sum(-1).float() * model_config.horizon * 3
                    loss = loss + config.sft_weight * (-(lp_chosen / dims).mean())
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(parameters, 5.0)
                optimiser.step()
                if step % 25 == 0:
                    margin = rewards["rewards_chosen"] - rewards["rewards_rejected"]
                    record = {"step": step, "loss": float(loss.detach()), "reward_accuracy": float((margin > 0).float().mean()),
                              "reward_margin": float(margin.mean()), "elapsed_s": time.perf_counter() - started}
                    _log(handle, record)
                    if progress:
                        log.info("dpo %s", record)
    stage = "dpo_generator" if config.train == "generator" else "dpo_encoder"
    return save_generator(policy.eval(), out / "checkpoint", step, stage, config.to_dict())


# -- evaluation ----------------------------------------------------------------------------------
def evaluate(checkpoints: dict[str, str | Path], config: EvalConfig, out_dir: str | Path | None = None) -> dict:
    """Mean verifier metrics per model and split: ``config.samples`` motions per image (same
    sampling seed for every model; IoU on the first ``config.iou_samples``), per-image means, then
    mean over images. The trivial baselines of ``config.baselines`` are scored the same way (one
    deterministic motion per image) as models named ``baseline_<kind>``. Writes
    ``metrics.json`` (and ``config.json``) to ``out_dir`` when given."""
    with torch_threads(config.threads):
        return _evaluate(checkpoints, config, out_dir)


def _evaluate(checkpoints: dict[str, str | Path], config: EvalConfig, out_dir: str | Path | None) -> dict:
    from physforge.outputs import write_json

    models = {name: load_generator(path) for name, path in checkpoints.items()}
    first = next(iter(models.values())).config
    present = available_splits(config.dataset)
    splits = [s for s in config.splits if s in present]
    if not splits:
        raise DynamicsDataError(f"{config.dataset}: none of the splits {list(config.splits)} is present "
                                f"(present: {present})")
    verifiers = VerifierCache(config.score_config, first.horizon, first.dt)
    metrics = ("l2", "chamfer", "iou", "gravity_residual", "penetration", "energy_created", "cost")
    results: dict[str, Any] = {"models": {}, "scenes": {}}
    for split in splits:
        examples = _data(config.dataset, split, first, limit=config.max_scenes)
        results["scenes"][split] = len(examples)
        # baselines first: they are the bar every model row in the table is read against
        predictors = {**{f"baseline_{b}": b for b in config.baselines}, **models}
        for name, predictor in predictors.items():
            if isinstance(predictor, str):
                motions = baseline_motions(predictor, examples, first)
            else:
                motions = sample_motions(predictor, examples, config.samples, torch.Generator().manual_seed(config.seed))
            per_image = {m: [] for m in metrics}
            violations = []
            for i, example in enumerate(examples):
                n = len(example.bodies)
                verifier = verifiers(example)
                reports = [verifier.score(m[:, :n], iou=config.iou and j < config.iou_samples)
                           for j, m in enumerate(motions[i])]
                for m in metrics:
                    values = [r[m] for r in reports if not np.isnan(r[m])]
                    per_image[m].append(float(np.mean(values)) if values else float("nan"))
                violations.append(np.mean([bool(r["violations"]) for r in reports]))
            summary = {m: (float(np.nanmean(v)) if not np.all(np.isnan(v)) else None) for m, v in per_image.items()}
            summary["violation_rate"] = float(np.mean(violations))
            results["models"].setdefault(name, {})[split] = summary
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", {**config.to_dict(), "checkpoints": {k: str(v) for k, v in checkpoints.items()}})
        write_json(out / "metrics.json", results)
    return results
