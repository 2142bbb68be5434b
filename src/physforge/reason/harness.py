"""The evaluation harness (``physforge reason eval``): score a model and three baselines on a
dataset's held-out and out-of-distribution splits with the data engine's grader.

Per model it writes the grader's result (per question type x split x family; per question and,
for multiple choice, per option; numbers within each question's tolerance) plus the roll-up per
question type x split. Baselines in every report:

- ``majority``: the most frequent training answer per template (the prior);
- ``blind``: a text-only model (question without images): a blind PhysEncoder trained on the
  training split here (or given with ``blind``), or for a transformers/endpoint model the same
  model asked without images, both when possible;
- ``untrained``: the same model without the physics training: a PhysEncoder run's ``init/``
  weights, a LoRA adapter's base model, or the folder given with ``untrained``.

Outputs in ``out``: ``config.json``, ``result.json``, ``predictions/<model>.jsonl``, plots
(``accuracy_<split>.png``), ``report.md`` and a self-contained ``report.html``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from physforge.reason.errors import ReasonConfigError

log = logging.getLogger(__name__)
IID_EVAL = ("test",)


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run.

    data: dataset folder. out: result folder. model: a PhysEncoder checkpoint folder or a local
    transformers model folder (None with endpoint_url or predictions). endpoint_url, endpoint_model:
    an OpenAI-compatible endpoint (``http://host:port/v1``) and the model name to ask for.
    api_key_env: environment variable with the endpoint's bearer token (optional). predictions:
    a JSONL predictions file to score. splits: splits to score (default: every split of the
    dataset except train and val). max_questions: per split, a random sample of at most this many
    (drawn with seed). seed: sampling seed. blind: a blind PhysEncoder checkpoint (None: train one
    here for blind_steps steps on the training split). untrained: a folder holding the model
    before physics training (None: found automatically where possible). timeout_s, retries:
    per endpoint request. max_new_tokens: answer length for generative models.
    """

    data: str
    out: str
    model: str | None = None
    endpoint_url: str | None = None
    endpoint_model: str | None = None
    api_key_env: str | None = None
    predictions: str | None = None
    splits: tuple[str, ...] = ()
    max_questions: int = 500
    seed: int = 0
    blind: str | None = None
    blind_steps: int = 200
    untrained: str | None = None
    timeout_s: float = 60.0
    retries: int = 2
    max_new_tokens: int = 8

    def __post_init__(self):
        sources = [self.model is not None, self.endpoint_url is not None, self.predictions is not None]
        if sum(sources) != 1:
            raise ReasonConfigError("model", "give exactly one of --model PATH, --endpoint-url URL (with "
                                    "--endpoint-model NAME) or --predictions FILE")
        if self.endpoint_url is not None and not self.endpoint_model:
            raise ReasonConfigError("endpoint_model", "an endpoint needs --endpoint-model NAME")
        object.__setattr__(self, "splits", tuple(self.splits))
        if isinstance(self.max_questions, bool) or not isinstance(self.max_questions, int) or self.max_questions < 1:
            raise ReasonConfigError("max_questions", f"expected a positive integer, got {self.max_questions!r}")
        if isinstance(self.blind_steps, bool) or not isinstance(self.blind_steps, int) or self.blind_steps < 0:
            raise ReasonConfigError("blind_steps", f"expected an integer >= 0, got {self.blind_steps!r}")
        if not (isinstance(self.timeout_s, (int, float)) and 0 < self.timeout_s <= 3600):
            raise ReasonConfigError("timeout_s", f"expected seconds in (0, 3600], got {self.timeout_s!r}")
        if not (isinstance(self.retries, int) and 0 <= self.retries <= 10):
            raise ReasonConfigError("retries", f"expected an integer in [0, 10], got {self.retries!r}")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["splits"] = list(self.splits)
        return out


def _model_answerer(path: str, config: EvalConfig, name: str | None = None):
    from physforge.reason.encoder import is_encoder_checkpoint
    from physforge.reason.errors import CheckpointError
    from physforge.reason.models import EncoderAnswerer, TransformersAnswerer

    folder = Path(path)
    if (folder / "checkpoint" / "checkpoint.json").is_file():
        folder = folder / "checkpoint"  # a run folder: use its trained weights
    if is_encoder_checkpoint(folder):
        return EncoderAnswerer(folder, name=name)
    if (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file():
        return TransformersAnswerer(folder, name=name, max_new_tokens=config.max_new_tokens)
    raise CheckpointError(folder, "neither a PhysEncoder checkpoint (checkpoint.json) nor a transformers model "
                          "folder (config.json / adapter_config.json)")


def _untrained_for(config: EvalConfig, model) -> Any | None:
    """The same model before physics training, when it can be found."""
    from physforge.reason.models import EncoderAnswerer, TransformersAnswerer

    if config.untrained:
        return _model_answerer(config.untrained, config, name="untrained")
    if isinstance(model, EncoderAnswerer) and (model.path.parent / "init" / "checkpoint.json").is_file():
        return EncoderAnswerer(model.path.parent / "init", name="untrained")
    if isinstance(model, TransformersAnswerer):
        if (model.path.parent / "init" / "config.json").is_file():
            return TransformersAnswerer(model.path.parent / "init", name="untrained",
                                        max_new_tokens=config.max_new_tokens)
        adapter = model.path / "adapter_config.json"
        if adapter.is_file():
            base = json.loads(adapter.read_text()).get("base_model_name_or_path")
            if base and Path(base).is_dir():
                return TransformersAnswerer(base, name="untrained", max_new_tokens=config.max_new_tokens)
    return None


def _blind_encoder(config: EvalConfig, out: Path):
    """A text-only PhysEncoder: the given one, or one trained here on the training split."""
    from physforge.reason.config import EncoderConfig, TrainConfig
    from physforge.reason.models import EncoderAnswerer
    from physforge.reason.recipe_encoder import train_encoder

    if config.blind:
        return EncoderAnswerer(_model_folder(config.blind), name="blind")
    if config.blind_steps == 0:
        return None
    run = out / "blind_run"
    train_encoder(TrainConfig(data=config.data, out=str(run), seed=config.seed, steps=config.blind_steps,
                              aux_weight=0.0, val_split="", model=EncoderConfig(blind=True)), overwrite=True)
    return EncoderAnswerer(run / "checkpoint", name="blind")


def _model_folder(path: str) -> Path:
    folder = Path(path)
    return folder / "checkpoint" if (folder / "checkpoint" / "checkpoint.json").is_file() else folder


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def roll_up(predictions: dict[str, str], questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The grader's scores per (question type, split), all families together (the grader run on
    the same questions with the family field collapsed)."""
    from physforge.data.grade import grade

    graded = grade(predictions, [dict(q, family="all") for q in questions])
    return [{k: v for k, v in row.items() if k != "family"} for row in graded["groups"]]


def score(answerer, split, questions: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Answer, write predictions JSONL, grade with ``physforge.data.grade.grade``."""
    from physforge.data.grade import grade

    start = time.perf_counter()
    answers = answerer.answer(split, questions)
    seconds = time.perf_counter() - start
    predictions = {q["question_id"]: a for q, a in zip(questions, answers) if a is not None}
    path = out / "predictions" / f"{_safe(answerer.name)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for q in questions:
            if q["question_id"] in predictions:
                handle.write(json.dumps({"question_id": q["question_id"],
                                         "prediction": predictions[q["question_id"]]}) + "\n")
    graded = grade(predictions, questions)
    return {"name": answerer.name, "kind": answerer.kind, "grade": graded,
            "by_type_split": roll_up(predictions, questions),
            "seconds": round(seconds, 3),
            "questions_per_second": round(len(questions) / seconds, 2) if seconds > 0 else None}


def evaluate(config: EvalConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Run the harness; returns the result (also ``result.json``) and writes the report."""
    from physforge.outputs import prepare_run_folder, write_json
    from physforge.reason.data import dataset_splits, load_split
    from physforge.reason.models import EndpointAnswerer, MajorityAnswerer, PredictionsAnswerer

    out = prepare_run_folder(config.out, overwrite=overwrite, config=config.to_dict())
    available = dataset_splits(config.data)
    splits = list(config.splits) or [s for s in available if s not in ("train", "val")]
    if "train" not in available:
        raise ReasonConfigError("data", f"{config.data} has no train split; the majority and blind baselines need one")
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 2]))

    # the model under test and its baselines
    if config.model is not None:
        model = _model_answerer(config.model, config)
    elif config.endpoint_url is not None:
        model = EndpointAnswerer(config.endpoint_url, config.endpoint_model, timeout_s=config.timeout_s,
                                 retries=config.retries, api_key_env=config.api_key_env)
    else:
        model = PredictionsAnswerer(config.predictions)
    from physforge.reason.models import EncoderAnswerer

    image_size = model.model.config.image_size if isinstance(model, EncoderAnswerer) else None
    train_questions = load_split(config.data, ["train"], with_targets=False).questions
    answerers = [model, MajorityAnswerer(train_questions)]
    blind = _blind_encoder(config, out)
    if blind is not None:
        answerers.append(blind)
    if isinstance(model, EndpointAnswerer):
        answerers.append(EndpointAnswerer(config.endpoint_url, config.endpoint_model, name="blind (same model, no "
                                          "images)", blind=True, timeout_s=config.timeout_s, retries=config.retries,
                                          api_key_env=config.api_key_env))
    elif model.kind == "transformers":
        from physforge.reason.models import TransformersAnswerer

        answerers.append(TransformersAnswerer(model.path, name="blind (same model, no images)", blind=True,
                                              max_new_tokens=config.max_new_tokens))
    untrained = _untrained_for(config, model) if config.model is not None else None
    if untrained is not None:
        answerers.append(untrained)

    # data
    split = load_split(config.data, splits, image_size=image_size, max_questions=config.max_questions, rng=rng,
                       with_targets=False)
    questions = split.questions
    log.info("scoring %d answerers on %d questions of %s", len(answerers), len(questions), splits)

    result = {"dataset": str(config.data), "splits": splits, "questions": len(questions),
              "questions_per_split": {s: sum(q["split"] == s for q in questions) for s in splits},
              "model": model.name, "models": [score(a, split, questions, out) for a in answerers],
              "missing_baselines": [] if untrained is not None else
              ["untrained: no init/ beside the checkpoint, no adapter base and no --untrained given"]}
    write_json(out / "result.json", result)
    from physforge.reason.report import write_report

    write_report(result, out)
    return result
