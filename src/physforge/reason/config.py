"""Typed configs of the reasoning recipes (no torch import): the PhysEncoder's model arguments,
its training run, and the small VLM's training run. Each validates itself and is saved as
``config.json`` in the run folder."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from physforge.configs import JsonConfig, check_float, check_int
from physforge.reason.errors import ReasonConfigError


def _int(name: str, value: Any, low: int, high: int) -> None:
    check_int(name, value, low, high, ReasonConfigError)


def _float(name: str, value: Any, low: float, high: float) -> None:
    check_float(name, value, low, high, ReasonConfigError)


class _Config(JsonConfig):
    error_type = ReasonConfigError


@dataclass(frozen=True)
class EncoderConfig(_Config):
    """Model arguments of a PhysEncoder (saved in every checkpoint).

    image_size: px, frames are resized to image_size x image_size (a multiple of 16).
    clip_frames: frames per clip fed to the encoder; a question showing another number of frames
    is resampled to this many (nearest frame in time). channels: conv widths, one stride-2
    layer each. dim: size of the physical representation vector z. text_dim: size of the
    question/option encoding. hidden: size of the fused question-answering layer. vocab: question
    tokens (index 0 padding, 1 unknown, from ``physforge.reason.data.tokenize``). names: answer
    classes of 'name' questions. max_count: largest count answer. max_text: tokens kept per
    question or option. blind: ignore the images (a text-only model with the same heads).
    frame_diff: each frame also gets its difference to the previous frame as 3 more input
    channels, so motion (velocities, a collision's change of speed) is a local feature of the
    convolution rather than something the temporal layer must recover from flattened features.
    slot_options: each option of a multiple-choice question also gets the auxiliary heads'
    predictions (centred log mass, friction, restitution, displaced, future displacements) for
    the object its text names by colour: comparing two objects ("which is heavier, the red cube
    or the blue sphere?") then does not need the pooled question/option text to find, inside z,
    the object a colour word refers to.
    dropout: probability of zeroing a unit of z and of the fused question layer while training
    (0: none). Each training scene is seen many times from one fixed clip, so without it the
    encoder can key answers to a scene's look instead of its motion.
    track: add the object-tracking heads: from each frame's features, the image position of
    every object slot in that frame; from z, its image position in the next N_NEXT frames
    (trained with ``TrainConfig.track_weight``). With slot_options or slot_question the slot
    features then also hold these predicted positions of the object.
    slot_question: the fused question layer also gets the slot features (as for slot_options)
    of the first two objects the question names by colour (zeros where it names fewer): "if the
    blue pendulum were twice as heavy..." then reads the blue pendulum's predicted motion
    instead of having to find it inside z.
    keypoints: K > 0 adds a keypoint layer (for the tracking heads): K learned heatmaps (a 1x1
    convolution of the feature map after ``keypoint_stage`` conv layers, softmax over space)
    give per frame K expected image positions (spatial soft-argmax, [-1, 1], x right, y down)
    and the features pooled under each heatmap. The frame tracking head then reads these
    instead of the dense projection, and the temporal layer gets them beside it: a dense layer
    over the flattened map can key positions to a scene's whole layout, a soft-argmax cannot.
    0: off. keypoint_stage: how many conv layers feed the heatmaps (1 to len(channels)); the
    last map is image_size / 2**len(channels) px wide (2 px at 32 px with four layers), too
    coarse to place K objects, hence an earlier one. keypoint_gain: the heatmap convolution's
    initial weights are scaled by this: at 1 the maps start nearly uniform (soft-argmax near
    the image centre for every map) and barely sharpen in a short run.
    """

    image_size: int = 64
    clip_frames: int = 4
    channels: tuple[int, ...] = (16, 32, 48, 64)
    dim: int = 128
    text_dim: int = 64
    hidden: int = 128
    vocab: tuple[str, ...] = ("<pad>", "<unk>")
    names: tuple[str, ...] = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
    max_count: int = 10
    max_text: int = 48
    blind: bool = False
    frame_diff: bool = True
    slot_options: bool = False
    dropout: float = 0.0
    track: bool = False
    slot_question: bool = False
    keypoints: int = 0
    keypoint_stage: int = 2
    keypoint_gain: float = 1.0

    def __post_init__(self):
        _int("image_size", self.image_size, 16, 512)
        if self.image_size % 16:
            raise ReasonConfigError("image_size", f"must be a multiple of 16 px, got {self.image_size}")
        _int("clip_frames", self.clip_frames, 1, 32)
        channels = tuple(self.channels)
        if not 1 <= len(channels) <= 6 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
            raise ReasonConfigError("channels", f"expected 1 to 6 positive integers, got {list(channels)}")
        if self.image_size >> len(channels) < 1:
            raise ReasonConfigError("channels", f"{len(channels)} stride-2 layers shrink {self.image_size} px to "
                                     "nothing")
        object.__setattr__(self, "channels", channels)
        for name in ("dim", "text_dim", "hidden"):
            _int(name, getattr(self, name), 4, 4096)
        vocab = tuple(self.vocab)
        if vocab[:2] != ("<pad>", "<unk>") or len(set(vocab)) != len(vocab):
            raise ReasonConfigError("vocab", "must start with '<pad>', '<unk>' and hold no duplicates")
        object.__setattr__(self, "vocab", vocab)
        names = tuple(self.names)
        if not names or len(set(names)) != len(names):
            raise ReasonConfigError("names", f"expected distinct answer names, got {list(names)}")
        object.__setattr__(self, "names", names)
        _int("max_count", self.max_count, 1, 1000)
        _int("max_text", self.max_text, 4, 1024)
        _float("dropout", self.dropout, 0.0, 0.9)
        for name in ("blind", "frame_diff", "slot_options", "track", "slot_question"):
            if not isinstance(getattr(self, name), bool):
                raise ReasonConfigError(name, f"expected true or false, got {getattr(self, name)!r}")
        _int("keypoints", self.keypoints, 0, 256)
        _float("keypoint_gain", self.keypoint_gain, 0.0, 1000.0)
        # Checked against the conv depth only when used, so small models keep the default stage.
        _int("keypoint_stage", self.keypoint_stage, 1, len(channels) if self.keypoints else 6)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "model") -> "EncoderConfig":
        return super().from_dict(data, where)


@dataclass(frozen=True)
class TrainConfig(_Config):
    """One PhysEncoder training run (``physforge reason train``).

    data: dataset folder (``physforge data generate``). out: run folder (config.json,
    checkpoint/, init/, metrics.jsonl). seed: seeds initialisation and batch order. steps:
    optimiser steps. batch_size: questions per step. lr: AdamW learning rate. weight_decay:
    AdamW decay. aux_weight: weight of the auxiliary (state, property, stability, contact) losses
    relative to the question-answering loss; 0 trains question answering only. train_splits:
    splits trained on. val_split: split scored during training ('' for none). eval_every: steps
    between validation scores (0: only at the end). max_val_questions: validation sample size.
    model: the PhysEncoder's arguments (its vocab is built from the training questions).
    save_every: steps between resumable training states in ``out/resume/`` (0: none); a run
    killed part way and started again with ``resume`` ends with the same bytes. balance: weight
    each question's answering loss by 1 / (share of its answer within its template) over the
    training questions (numbers: 1), so a template whose physics mostly gives one answer cannot
    be learnt as that answer alone; weights are normalised to mean 1. threads: torch CPU threads
    while training (1 is fastest for these small models on a busy machine; a resumed run
    reproduces the same bytes only with the same count, so it is part of the config).
    augment: jitter each training clip's brightness and contrast (one draw per clip, so frame
    differences keep their sign and the colours their names; no flips or crops, which would
    change directions and positions that answers depend on). keep_best: with val_split and
    eval_every, the saved checkpoint is the one with the best validation accuracy over the run
    (early stopping; ``summary.json`` names its step) instead of the last.
    track_weight: weight of the object-tracking loss (0: off; > 0 turns on ``model.track``):
    smooth-L1 between the predicted and true image positions (coordinates in [-1, 1]) of every
    object in each frame the encoder is shown and in the N_NEXT frames after the last one, from
    the dataset's states projected through its camera. It makes the representation say where
    each object is and goes, which a new scene shares with the training ones, rather than which
    training scene it is looking at.
    """

    data: str
    out: str
    seed: int = 0
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    aux_weight: float = 1.0
    train_splits: tuple[str, ...] = ("train",)
    val_split: str = "val"
    eval_every: int = 0
    max_val_questions: int = 400
    model: EncoderConfig = field(default_factory=EncoderConfig)
    save_every: int = 0
    balance: bool = True
    threads: int = 1
    augment: bool = False
    keep_best: bool = False
    track_weight: float = 0.0

    def __post_init__(self):
        if not isinstance(self.data, str) or not self.data:
            raise ReasonConfigError("data", "expected the dataset folder")
        _int("threads", self.threads, 1, 1024)
        if not isinstance(self.out, str) or not self.out:
            raise ReasonConfigError("out", "expected the run folder")
        _int("seed", self.seed, 0, 2**63 - 1)
        _int("steps", self.steps, 0, 10_000_000)
        _int("batch_size", self.batch_size, 1, 65536)
        _float("lr", self.lr, 0.0, 10.0)
        _float("weight_decay", self.weight_decay, 0.0, 10.0)
        _float("aux_weight", self.aux_weight, 0.0, 1000.0)
        _float("track_weight", self.track_weight, 0.0, 1000.0)
        splits = tuple(self.train_splits)
        if not splits or not all(isinstance(s, str) for s in splits):
            raise ReasonConfigError("train_splits", f"expected split names, got {list(splits)}")
        object.__setattr__(self, "train_splits", splits)
        _int("eval_every", self.eval_every, 0, 10_000_000)
        _int("max_val_questions", self.max_val_questions, 1, 10_000_000)
        _int("save_every", self.save_every, 0, 10_000_000)
        for name in ("balance", "augment", "keep_best"):
            if not isinstance(getattr(self, name), bool):
                raise ReasonConfigError(name, f"expected true or false, got {getattr(self, name)!r}")
        if self.keep_best and not (self.val_split and self.eval_every):
            raise ReasonConfigError("keep_best", "needs a val_split and eval_every > 0 to pick the best step; set "
                                    "them or turn keep_best off")
        model = self.model
        if isinstance(model, dict):
            model = EncoderConfig.from_dict(model)
        if not isinstance(model, EncoderConfig):
            raise ReasonConfigError("model", "expected an EncoderConfig or a mapping of its fields")
        object.__setattr__(self, "model", model)
        if model.blind and self.track_weight > 0:
            raise ReasonConfigError("track_weight", "a blind model sees no frames, so there is nothing to track; set "
                                    "track_weight to 0 or model.blind to false")
        if model.keypoints and not (model.track or self.track_weight > 0):
            raise ReasonConfigError("model.keypoints", "the keypoint layer is trained through the tracking heads; "
                                    "set track_weight > 0 or model.keypoints to 0")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["train_splits"] = list(self.train_splits)
        out["model"] = self.model.to_dict()
        return out


@dataclass(frozen=True)
class VLMTrainConfig(_Config):
    """One small-VLM SFT run (``physforge reason train-vlm``).

    data: dataset folder. out: run folder (config.json, model/ with the processor, init/ for a
    from-scratch model). base_model: a local transformers VLM folder to fine-tune with LoRA
    (None: build a tiny Idefics3 from a config and train it from scratch). seed: initialisation
    and data order. steps: optimiser steps. batch_size: examples per step. lr: learning rate.
    image_size: px, longest image edge given to the vision tower (a multiple of patch_size).
    patch_size: px. hidden: text and vision width. layers: text and vision depth. heads: attention
    heads. vocab_size: BPE vocabulary trained on the dataset's text. lora_rank, lora_alpha: LoRA
    settings (base_model only). max_train_examples: cap on SFT examples (drawn with the seed).
    """

    data: str
    out: str
    base_model: str | None = None
    seed: int = 0
    steps: int = 60
    batch_size: int = 8
    lr: float = 1e-3
    image_size: int = 64
    patch_size: int = 16
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    vocab_size: int = 512
    lora_rank: int = 8
    lora_alpha: int = 16
    max_train_examples: int = 2000

    def __post_init__(self):
        for name in ("data", "out"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ReasonConfigError(name, "expected a folder path")
        if self.base_model is not None and (not isinstance(self.base_model, str) or not self.base_model):
            raise ReasonConfigError("base_model", "expected a local model folder or None")
        _int("seed", self.seed, 0, 2**63 - 1)
        _int("steps", self.steps, 1, 10_000_000)
        _int("batch_size", self.batch_size, 1, 4096)
        _float("lr", self.lr, 0.0, 10.0)
        _int("image_size", self.image_size, 16, 2048)
        _int("patch_size", self.patch_size, 2, 64)
        if self.image_size % self.patch_size:
            raise ReasonConfigError("image_size", f"must be a multiple of patch_size ({self.patch_size}), got "
                                    f"{self.image_size}")
        _int("hidden", self.hidden, 8, 8192)
        _int("layers", self.layers, 1, 64)
        _int("heads", self.heads, 1, 128)
        if self.hidden % self.heads:
            raise ReasonConfigError("heads", f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        _int("vocab_size", self.vocab_size, 300, 200_000)
        _int("lora_rank", self.lora_rank, 1, 1024)
        _int("lora_alpha", self.lora_alpha, 1, 4096)
        _int("max_train_examples", self.max_train_examples, 1, 100_000_000)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
