"""Typed configs of the dynamics recipes (no torch import). Each validates itself and is saved as
``config.json`` in its run folder.

- ``GeneratorConfig``: model arguments of the trajectory generator (saved in every checkpoint).
- ``ScoreConfig``: the physics verifier's tolerances and the weights of its scalar cost.
- ``TrainConfig``: stage 1, supervised training of generator + PhysEncoder.
- ``PairConfig``: how preference pairs are built (K samples per image, margin, ties dropped).
- ``DPOConfig``: stages 2 (generator) and 3 (PhysEncoder alone).
- ``EvalConfig``: evaluation of checkpoints on held-out and OOD splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from physforge.configs import JsonConfig, check_float, check_int
from physforge.dynamics.errors import DynamicsConfigError

IID_EVAL_SPLITS = ("val", "test")
OOD_EVAL_SPLITS = ("test_ood_params", "test_ood_compositional", "test_ood_family")


def _int(name: str, value: Any, low: int, high: int) -> None:
    check_int(name, value, low, high, DynamicsConfigError)


def _float(name: str, value: Any, low: float, high: float) -> None:
    check_float(name, value, low, high, DynamicsConfigError)


class _Config(JsonConfig):
    error_type = DynamicsConfigError


@dataclass(frozen=True)
class GeneratorConfig(_Config):
    """Model arguments of the trajectory generator.

    max_objects: object slots (scenes with more free objects are skipped). horizon: predicted
    steps T after the conditioning frame. dt: s between predicted steps. image_size: px of the
    (square) conditioning frame. channels: conv widths of the visual branch (stride 2 each).
    encoder_dim, encoder_channels: the PhysEncoder (``physforge.reason``, one-frame clips) built
    inside the generator. hidden: width of the fused MLP. components: mixture components of the
    mixture density head. rank: low-rank factors per component (whole-motion variation).
    min_sigma: m, floor of each component's independent standard deviation per coordinate.
    use_velocity: condition on the known initial velocities of the objects (part of the scene's
    state; one frame does not show them, so without them launch speed is a guess).
    velocity_prior: with use_velocity, add constant-velocity motion to every component mean (the
    network learns the residual).
    """

    max_objects: int = 4
    horizon: int = 16
    dt: float = 0.1
    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 32, 32)
    encoder_dim: int = 64
    encoder_channels: tuple[int, ...] = (16, 32, 48, 64)
    hidden: int = 256
    components: int = 4
    rank: int = 6
    use_velocity: bool = True
    velocity_prior: bool = False
    min_sigma: float = 2e-4

    def __post_init__(self):
        _int("max_objects", self.max_objects, 1, 16)
        _int("horizon", self.horizon, 2, 256)
        _float("dt", self.dt, 1e-3, 1.0)
        _int("image_size", self.image_size, 16, 512)
        if self.image_size % 16:
            raise DynamicsConfigError("image_size", f"must be a multiple of 16 px, got {self.image_size}")
        for name in ("channels", "encoder_channels"):
            value = tuple(getattr(self, name))
            if not 1 <= len(value) <= 6 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in value):
                raise DynamicsConfigError(name, f"expected 1 to 6 positive integers, got {list(value)}")
            if self.image_size >> len(value) < 1:
                raise DynamicsConfigError(name, f"{len(value)} stride-2 layers shrink {self.image_size} px to nothing")
            object.__setattr__(self, name, value)
        _int("encoder_dim", self.encoder_dim, 4, 4096)
        _int("hidden", self.hidden, 8, 8192)
        _int("components", self.components, 1, 64)
        _int("rank", self.rank, 1, 64)
        for name in ("use_velocity", "velocity_prior"):
            if not isinstance(getattr(self, name), bool):
                raise DynamicsConfigError(name, f"expected true or false, got {getattr(self, name)!r}")
        _float("min_sigma", self.min_sigma, 1e-6, 1.0)


@dataclass(frozen=True)
class ScoreConfig(_Config):
    """The physics verifier (``physforge dynamics score``).

    gravity_tolerance: m/s^2, a free-flight acceleration residual above this is a violation.
    penetration_tolerance: m, interpenetration deeper than this is a violation (MuJoCo's soft
    contacts sink a few mm at rest). energy_tolerance: J/kg, specific mechanical energy above its
    starting value by more than this is "energy created". flight_margin: m, a body counts as in
    free flight at a frame when its clearance exceeds its travel over one step plus this margin.
    iou_stride: render every n-th frame for mask IoU; image_size: px of those renders.
    w_l2, w_chamfer, w_gravity, w_penetration, w_energy: weights of the scalar cost (lower is
    better) used as preference oracle and (negated) reward: cost = w_l2 L2 [m] + w_chamfer CD [m]
    + w_gravity gravity residual [m/s^2] + w_penetration penetration [m] + w_energy energy created [J/kg].
    """

    gravity_tolerance: float = 0.1
    penetration_tolerance: float = 0.01
    energy_tolerance: float = 0.05
    flight_margin: float = 0.01
    iou_stride: int = 4
    image_size: int = 64
    w_l2: float = 1.0
    w_chamfer: float = 1.0
    w_gravity: float = 0.002
    w_penetration: float = 1.0
    w_energy: float = 0.01

    def __post_init__(self):
        _float("gravity_tolerance", self.gravity_tolerance, 0.0, 100.0)
        _float("penetration_tolerance", self.penetration_tolerance, 0.0, 1.0)
        _float("energy_tolerance", self.energy_tolerance, 0.0, 100.0)
        _float("flight_margin", self.flight_margin, 0.0, 1.0)
        _int("iou_stride", self.iou_stride, 1, 1000)
        _int("image_size", self.image_size, 16, 1024)
        for name in ("w_l2", "w_chamfer", "w_gravity", "w_penetration", "w_energy"):
            _float(name, getattr(self, name), 0.0, 1e6)


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Stage 1: supervised training (negative log-likelihood) of generator and PhysEncoder.

    dataset: a ``physforge data generate`` folder. seed: weights, batch order. steps, batch_size,
    lr (1/step), weight_decay. threads: torch CPU threads (1 is fastest on a shared machine:
    more threads than free cores slows small models ~10x). encoder_checkpoint: optional
    ``physforge reason train`` checkpoint
    folder to start the PhysEncoder from (else it starts from scratch). model: GeneratorConfig fields.
    """

    dataset: str = ""
    seed: int = 0
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    encoder_checkpoint: str = ""
    threads: int = 1
    model: dict = None  # type: ignore[assignment]

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise DynamicsConfigError("dataset", "expected the path of a `physforge data generate` folder")
        _int("seed", self.seed, 0, 2**31 - 1)
        _int("steps", self.steps, 1, 10_000_000)
        _int("batch_size", self.batch_size, 1, 65536)
        _float("lr", self.lr, 1e-8, 1.0)
        _float("weight_decay", self.weight_decay, 0.0, 1.0)
        _int("threads", self.threads, 1, 1024)
        model = self.model if self.model is not None else {}
        if isinstance(model, GeneratorConfig):
            model = model.to_dict()
        GeneratorConfig.from_dict(model, where="model")
        object.__setattr__(self, "model", dict(model))

    @property
    def generator(self) -> GeneratorConfig:
        return GeneratorConfig.from_dict(self.model, where="model")


@dataclass(frozen=True)
class PairConfig(_Config):
    """Preference pairs from the model's own samples, ranked by the verifier.

    samples_per_image: K motions sampled per conditioning image. pairs_per_image: at most this
    many (chosen, rejected) pairs per image, taken best-vs-worst inwards (best with worst, second
    best with second worst ...). margin: minimum cost gap (ScoreConfig cost units, ~m) between
    chosen and rejected; closer pairs are ties and dropped. relative_margin: also require the gap
    to exceed this fraction of the rejected cost.
    """

    samples_per_image: int = 8
    pairs_per_image: int = 2
    margin: float = 0.01
    relative_margin: float = 0.1

    def __post_init__(self):
        _int("samples_per_image", self.samples_per_image, 2, 1024)
        _int("pairs_per_image", self.pairs_per_image, 1, 512)
        if self.pairs_per_image > self.samples_per_image // 2:
            raise DynamicsConfigError("pairs_per_image", f"at most samples_per_image // 2 = "
                                      f"{self.samples_per_image // 2} disjoint pairs, got {self.pairs_per_image}")
        _float("margin", self.margin, 0.0, 1e6)
        _float("relative_margin", self.relative_margin, 0.0, 1.0)


@dataclass(frozen=True)
class DPOConfig(_Config):
    """Stage 2 (``train="generator"``: every weight except the PhysEncoder) or stage 3
    (``train="encoder"``: the PhysEncoder alone, generator frozen) of DPO against a frozen
    reference (the starting checkpoint).

    checkpoint: starting (and reference) generator checkpoint folder. dataset: the data folder.
    seed: sampling and batch order. rounds: on-policy rounds (sample pairs, then train steps);
    steps: optimiser steps per round. beta: DPO temperature (log-likelihoods of whole
    trajectories are O(100) nats, so beta is small). sft_weight: weight of an added NLL term on
    the chosen sample (0 = plain DPO). lr, batch_size. pairs: PairConfig fields. score:
    ScoreConfig fields. max_images: conditioning images (training split) used per round.
    threads: torch CPU threads.
    """

    checkpoint: str = ""
    dataset: str = ""
    train: str = "generator"
    seed: int = 0
    rounds: int = 2
    steps: int = 150
    beta: float = 0.05
    sft_weight: float = 0.0
    lr: float = 3e-4
    batch_size: int = 32
    max_images: int = 400
    threads: int = 1
    pairs: dict = None  # type: ignore[assignment]
    score: dict = None  # type: ignore[assignment]

    def __post_init__(self):
        for name in ("checkpoint", "dataset"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise DynamicsConfigError(name, "expected a folder path")
        if self.train not in ("generator", "encoder"):
            raise DynamicsConfigError("train", f"expected 'generator' (stage 2) or 'encoder' (stage 3), "
                                      f"got {self.train!r}")
        _int("seed", self.seed, 0, 2**31 - 1)
        _int("rounds", self.rounds, 1, 1000)
        _int("steps", self.steps, 1, 10_000_000)
        _float("beta", self.beta, 1e-6, 1e4)
        _float("sft_weight", self.sft_weight, 0.0, 1e4)
        _float("lr", self.lr, 1e-8, 1.0)
        _int("batch_size", self.batch_size, 1, 65536)
        _int("max_images", self.max_images, 1, 10_000_000)
        _int("threads", self.threads, 1, 1024)
        for name, cls in (("pairs", PairConfig), ("score", ScoreConfig)):
            value = getattr(self, name) if getattr(self, name) is not None else {}
            if isinstance(value, cls):
                value = value.to_dict()
            cls.from_dict(value, where=name)
            object.__setattr__(self, name, dict(value))

    @property
    def pair_config(self) -> PairConfig:
        return PairConfig.from_dict(self.pairs, where="pairs")

    @property
    def score_config(self) -> ScoreConfig:
        return ScoreConfig.from_dict(self.score, where="score")


@dataclass(frozen=True)
class EvalConfig(_Config):
    """Evaluation: ``samples`` motions per image on each split in ``splits`` (those absent from the
    dataset are skipped), scored by the verifier. seed: sampling. max_scenes: per split.
    iou: also render masks for IoU (slower), on the first ``iou_samples`` samples of each image. threads: torch CPU threads. score: ScoreConfig fields."""

    dataset: str = ""
    seed: int = 0
    samples: int = 8
    splits: tuple[str, ...] = IID_EVAL_SPLITS + OOD_EVAL_SPLITS
    max_scenes: int = 200
    iou: bool = True
    iou_samples: int = 2
    threads: int = 1
    score: dict = None  # type: ignore[assignment]

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise DynamicsConfigError("dataset", "expected the path of a `physforge data generate` folder")
        _int("seed", self.seed, 0, 2**31 - 1)
        _int("samples", self.samples, 1, 10_000)
        _int("max_scenes", self.max_scenes, 1, 10_000_000)
        _int("iou_samples", self.iou_samples, 1, 10_000)
        _int("threads", self.threads, 1, 1024)
        object.__setattr__(self, "splits", tuple(self.splits))
        if not self.splits:
            raise DynamicsConfigError("splits", "expected at least one split")
        if not isinstance(self.iou, bool):
            raise DynamicsConfigError("iou", f"expected true or false, got {self.iou!r}")
        value = self.score if self.score is not None else {}
        if isinstance(value, ScoreConfig):
            value = value.to_dict()
        ScoreConfig.from_dict(value, where="score")
        object.__setattr__(self, "score", dict(value))

    @property
    def score_config(self) -> ScoreConfig:
        return ScoreConfig.from_dict(self.score, where="score")
