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
#: physics priors of the generator (GeneratorConfig.prior)
PRIORS = ("none", "constant_velocity", "ballistic")
#: deterministic predictors scored next to the models (EvalConfig.baselines): every object stays where
#: it is; flies ballistically and stops at the ground (the "ballistic" prior alone); or the whole
#: closed-form prior with known friction (``physforge.dynamics.recipe.baseline_motions``)
BASELINES = ("static", "ballistic", "physics")
#: ScoreConfig weights of the cost's terms
COST_WEIGHTS = ("w_l2", "w_chamfer", "w_iou", "w_gravity", "w_penetration", "w_energy")


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
    use_gravity: condition on the scene's gravity vector (m/s^2, world frame; it varies between
    scenes and is not visible in one frame either). use_properties: condition on each object's
    sliding friction, restitution and mass from the known world (how far it slides and how high it
    bounces; none of them is visible in one frame). Without them those are latent and the
    generator has to spread its samples over them.
    prior: the physics prior every component mean is a learned residual over (the network learns
    contacts, friction and bounces, not free flight): "none" (raw displacements), "constant_velocity"
    (needs use_velocity) or "ballistic" (free flight p0 + v t + g t^2 / 2 under the known gravity,
    held above the ground plane z = 0 at the object's resting height; needs use_velocity and
    use_gravity). See ``physforge.dynamics.model.physics_prior``. learn_deceleration: with the
    ballistic prior, each component also predicts, per object, a sliding deceleration (m/s^2,
    ~ mu g) that slows it once it is down, so "slides and stops" is one number to learn rather than
    a residual curve. support_prior: with the ballistic prior, an object that starts resting on a
    tilted surface (a ramp) rolls, slides or sticks on it by the closed form of
    ``physforge.dynamics.model.support_acceleration`` (its normal and friction are read from the
    known world) instead of falling straight through it. friction_prior: the learned sliding
    deceleration is a correction around Coulomb's mu g from the known friction (0 for a ball,
    which rolls; ``physforge.dynamics.model.known_deceleration``) instead of a value the network
    maps friction to on its own (which it cannot extrapolate outside the trained friction range);
    needs learn_deceleration and support_prior.
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
    use_gravity: bool = True
    use_properties: bool = True
    prior: str = "ballistic"
    learn_deceleration: bool = True
    support_prior: bool = True
    friction_prior: bool = True
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
        for name in ("use_velocity", "use_gravity", "use_properties", "learn_deceleration", "support_prior",
                     "friction_prior"):
            if not isinstance(getattr(self, name), bool):
                raise DynamicsConfigError(name, f"expected true or false, got {getattr(self, name)!r}")
        if self.prior not in PRIORS:
            raise DynamicsConfigError("prior", f"expected one of {list(PRIORS)}, got {self.prior!r}")
        if self.prior != "none" and not self.use_velocity:
            raise DynamicsConfigError("prior", f"the {self.prior!r} prior extrapolates the initial velocities; "
                                      "set use_velocity to true or prior to 'none'")
        if self.prior == "ballistic" and not self.use_gravity:
            raise DynamicsConfigError("prior", "the 'ballistic' prior needs the gravity vector; set use_gravity to "
                                      "true or choose prior 'constant_velocity' or 'none'")
        if self.learn_deceleration and self.prior != "ballistic":
            raise DynamicsConfigError("learn_deceleration", f"a learned sliding deceleration is part of the "
                                      f"'ballistic' prior (got prior {self.prior!r}); set it to false")
        if self.support_prior and self.prior != "ballistic":
            raise DynamicsConfigError("support_prior", f"sliding and rolling on a support are part of the "
                                      f"'ballistic' prior (got prior {self.prior!r}); set it to false")
        if self.friction_prior and not (self.learn_deceleration and self.support_prior):
            raise DynamicsConfigError("friction_prior", "the known-friction deceleration corrects the learned one and "
                                      "reads the support's friction; it needs learn_deceleration and support_prior "
                                      "(set them to true, or friction_prior to false)")
        _float("min_sigma", self.min_sigma, 1e-6, 1.0)


@dataclass(frozen=True)
class ScoreConfig(_Config):
    """The physics verifier (``physforge dynamics score``) and its scalar cost, the preference oracle.

    gravity_tolerance: m/s^2, a free-flight acceleration residual above this is a violation.
    penetration_tolerance: m, interpenetration deeper than this is a violation (MuJoCo's soft
    contacts sink a few mm at rest). energy_tolerance: J/kg, specific mechanical energy above its
    starting value by more than this is "energy created". flight_margin: m, a body counts as in
    free flight at a frame when its clearance exceeds its travel over one step plus this margin.
    iou_stride: render every n-th frame for mask IoU; image_size: px of those renders.

    The cost (lower is better; its negation is the reward) adds every physics term the verifier
    measures, each divided by a scale of the scene so that predicting no motion at all costs about
    1 per term, whatever the units: with L = max(min_motion_scale, the mean distance the objects
    travel from their start in the simulator rollout) [m], i.e. the L2 of the "nothing moves"
    prediction,

        cost = w_l2 L2 / L + w_chamfer CD / L + w_iou (1 - IoU) + w_gravity residual / |g|
               + w_penetration penetration / L + w_energy energy created / (|g| L)

    (an object standing still where it should fall has a residual of |g|; creating |g| L J/kg is
    the energy of a fall over the whole motion). The IoU term needs renders: ``Verifier.score``
    computes IoU whenever w_iou > 0 unless told not to, and a cost without it is NaN.
    Default weights (unitless) make each term move the ranking of one image's samples about as
    much as L2 does: among 8 samples of an SFT generator on 60 training scenes the median spread
    (std) of the normalised terms was L2 0.094, Chamfer 0.050, 1 - IoU 0.045, gravity 0.012,
    penetration 0.046, energy 0.034, so their weights are about 0.094 / spread (gravity 8).
    Under the old raw-unit weights (gravity 0.002 per m/s^2) gravity moved the cost by ~1/300 of
    L2 and DPO traded it away.
    """

    gravity_tolerance: float = 0.1
    penetration_tolerance: float = 0.01
    energy_tolerance: float = 0.05
    flight_margin: float = 0.01
    iou_stride: int = 4
    image_size: int = 64
    min_motion_scale: float = 0.05
    w_l2: float = 1.0
    w_chamfer: float = 2.0
    w_iou: float = 2.0
    w_gravity: float = 8.0
    w_penetration: float = 2.0
    w_energy: float = 3.0

    def __post_init__(self):
        _float("gravity_tolerance", self.gravity_tolerance, 0.0, 100.0)
        _float("penetration_tolerance", self.penetration_tolerance, 0.0, 1.0)
        _float("energy_tolerance", self.energy_tolerance, 0.0, 100.0)
        _float("flight_margin", self.flight_margin, 0.0, 1.0)
        _int("iou_stride", self.iou_stride, 1, 1000)
        _int("image_size", self.image_size, 16, 1024)
        _float("min_motion_scale", self.min_motion_scale, 1e-4, 100.0)
        for name in COST_WEIGHTS:
            _float(name, getattr(self, name), 0.0, 1e6)
        if not any(getattr(self, name) > 0 for name in COST_WEIGHTS):
            raise DynamicsConfigError("w_l2", f"every cost weight ({', '.join(COST_WEIGHTS)}) is 0: the cost "
                                      "ranks nothing; give at least one a positive weight")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Stage 1: supervised training (negative log-likelihood) of generator and PhysEncoder.

    dataset: a ``physforge data generate`` folder. seed: weights, batch order. steps, batch_size,
    lr (1/step), weight_decay. threads: torch CPU threads (1 is fastest on a shared machine:
    more threads than free cores slows small models ~10x). encoder_checkpoint: optional
    ``physforge reason train`` checkpoint
    folder to start the PhysEncoder from (else it starts from scratch). eval_every: steps between
    scores on the val split. keep_best: save the weights with the lowest val L2 (of sampled
    motions) instead of the last ones. mean_weight: weight of a squared-error term on the
    component means (responsibility-weighted, SCALE units) added to the NLL per dimension; 0 =
    plain maximum likelihood (see ``TrajectoryGenerator.mean_error``). energy_weight: weight of the
    energy score of sampled motions (``TrajectoryGenerator.energy_score``, SCALE units) added to the
    loss; 0 = none. model: GeneratorConfig fields.
    """

    dataset: str = ""
    seed: int = 0
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    encoder_checkpoint: str = ""
    eval_every: int = 50
    keep_best: bool = True
    mean_weight: float = 1.0
    energy_weight: float = 1.0
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
        _int("eval_every", self.eval_every, 1, 10_000_000)
        _float("mean_weight", self.mean_weight, 0.0, 1e6)
        _float("energy_weight", self.energy_weight, 0.0, 1e6)
        if not isinstance(self.keep_best, bool):
            raise DynamicsConfigError("keep_best", f"expected true or false, got {self.keep_best!r}")
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
    best with second worst ...). margin: minimum cost gap (ScoreConfig's unitless cost) between
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
    trajectories are O(1000) nats and chosen and rejected samples differ by hundreds, so beta is
    small: at 0.05 the sigmoid saturates on most pairs at once and the few misordered ones give
    unstable steps). sft_weight: weight of an added NLL term on
    the chosen sample (0 = plain DPO; it keeps the policy on its chosen samples: on seed 0 of
    ``examples/dynamics``, plain DPO cut test L2 by 0.020 m but raised the gravity residual by 0.19
    m/s^2 and lowered IoU by 0.014, while weight 1 cut L2 by 0.010 m with both level). lr, batch_size. pairs: PairConfig fields. score:
    ScoreConfig fields. max_images: conditioning images (training split) used per round.
    threads: torch CPU threads.
    """

    checkpoint: str = ""
    dataset: str = ""
    train: str = "generator"
    seed: int = 0
    rounds: int = 2
    steps: int = 150
    beta: float = 0.01
    sft_weight: float = 0.0
    lr: float = 1e-4
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
    iou: also render masks for IoU (slower), on the first ``iou_samples`` samples of each image.
    baselines: trivial predictors scored in the same table (``BASELINES``: "static", "ballistic").
    threads: torch CPU threads. score: ScoreConfig fields."""

    dataset: str = ""
    seed: int = 0
    samples: int = 8
    splits: tuple[str, ...] = IID_EVAL_SPLITS + OOD_EVAL_SPLITS
    max_scenes: int = 200
    iou: bool = True
    iou_samples: int = 2
    baselines: tuple[str, ...] = BASELINES
    threads: int = 1
    score: dict = None  # type: ignore[assignment]

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise DynamicsConfigError("dataset", "expected the path of a `physforge data generate` folder")
        object.__setattr__(self, "baselines", tuple(self.baselines))
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise DynamicsConfigError("baselines", f"unknown {unknown}; choose from {list(BASELINES)}")
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
