"""The typed config of a data-generation run, saved as ``config.json`` beside the dataset."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from physforge.data.errors import DataConfigError
from physforge.data.families import FAMILIES
from physforge.data.families.base import params_from_dict, params_to_dict

IID_SPLITS = ("train", "val", "test")
OOD_SPLITS = ("test_ood_params", "test_ood_family", "test_ood_compositional")
SPLITS = IID_SPLITS + OOD_SPLITS


def _default_params() -> dict[str, Any]:
    return {name: module.Params() for name, module in FAMILIES.items()}


@dataclass(frozen=True)
class DataConfig:
    """Everything that decides a dataset's content (with the number of scenes).

    seed: run seed; scene i uses ``SeedSequence([seed, i])``. families: family -> sampling
    weight (> 0; a family left out is not generated). params: family -> its Params (ranges in
    SI units). width, height: image size, px. num_frames, fps: frames shown per clip and
    their rate (1/s); the clip spans (num_frames - 1) / fps s. state_fps: rate of the recorded
    states (a multiple of fps). predict_horizon: s simulated after the clip, for predictive
    questions. split_fractions: train/val/test shares of i.i.d. scenes. ood_params_fraction,
    ood_compositional_fraction: shares of scenes drawn outside the training ranges / with more
    objects. heldout_families: families that only appear in ``test_ood_family``.
    plausibility_fraction: share of scenes that also get a physically impossible twin clip.
    perturbation_speed: m/s, size of the nudge given to every moving body for the
    near-threshold check; perturbation_trials: how many nudges. shard_size: scenes per shard.
    family_fps: family -> clip frame rate (1/s) used instead of fps for that family's scenes
    (same num_frames, so its clip spans (num_frames - 1) / rate s): each family's clip can
    cover the events that decide its questions (a block sliding to the foot of a ramp takes
    1-3.5 s, a domino run is over in 0.7 s). Each scene row records its own fps and clip_duration.
    """

    seed: int = 0
    families: dict[str, float] = field(default_factory=lambda: {name: 1.0 for name in FAMILIES})
    params: dict[str, Any] = field(default_factory=_default_params)
    width: int = 256
    height: int = 256
    num_frames: int = 8
    fps: float = 4.0
    state_fps: float = 20.0
    predict_horizon: float = 1.0
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    ood_params_fraction: float = 0.1
    ood_compositional_fraction: float = 0.1
    heldout_families: tuple[str, ...] = ("articulated",)
    plausibility_fraction: float = 0.25
    perturbation_speed: float = 0.005
    perturbation_trials: int = 1
    shard_size: int = 16
    family_fps: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise DataConfigError("seed", f"expected an integer >= 0, got {self.seed!r}")
        if not isinstance(self.families, dict) or not self.families:
            raise DataConfigError("families", "expected a non-empty mapping family -> weight")
        for name, weight in self.families.items():
            if name not in FAMILIES:
                raise DataConfigError(f"families.{name}", f"unknown family; expected one of {sorted(FAMILIES)}")
            if not (isinstance(weight, (int, float)) and weight > 0 and math.isfinite(weight)):
                raise DataConfigError(f"families.{name}", f"weight must be a positive number, got {weight!r}")
        params = dict(_default_params())
        for name, value in dict(self.params).items():
            if name not in FAMILIES:
                raise DataConfigError(f"params.{name}", f"unknown family; expected one of {sorted(FAMILIES)}")
            if isinstance(value, dict):
                value = params_from_dict(FAMILIES[name].Params, value, f"params.{name}")
            elif not isinstance(value, FAMILIES[name].Params):
                raise DataConfigError(f"params.{name}", f"expected {FAMILIES[name].__name__}.Params or a mapping")
            params[name] = value
        object.__setattr__(self, "params", params)
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 2048:
                raise DataConfigError(name, f"expected an integer number of pixels in [16, 2048], got {value!r}")
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int) or not 2 <= self.num_frames <= 256:
            raise DataConfigError("num_frames", f"expected an integer in [2, 256], got {self.num_frames!r}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise DataConfigError("fps", f"expected a positive rate in 1/s, got {self.fps!r}")
        ratio = self.state_fps / self.fps
        if not (ratio >= 1 and abs(ratio - round(ratio)) < 1e-9):
            raise DataConfigError("state_fps", f"must be a whole multiple of fps ({self.fps}), got {self.state_fps}")
        if not 0 <= self.predict_horizon <= 30:
            raise DataConfigError("predict_horizon", f"expected seconds in [0, 30], got {self.predict_horizon}")
        fractions = tuple(float(f) for f in self.split_fractions)
        if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise DataConfigError("split_fractions", f"expected 3 shares (train, val, test) summing to 1, got "
                                  f"{list(self.split_fractions)}")
        object.__setattr__(self, "split_fractions", fractions)
        for name in ("ood_params_fraction", "ood_compositional_fraction", "plausibility_fraction"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise DataConfigError(name, f"expected a fraction in [0, 1], got {value!r}")
        if self.ood_params_fraction + self.ood_compositional_fraction > 1:
            raise DataConfigError("ood_params_fraction", "the two OOD fractions add up to more than 1")
        heldout = tuple(self.heldout_families)
        for name in heldout:
            if name not in FAMILIES:
                raise DataConfigError("heldout_families", f"unknown family {name!r}; expected one of {sorted(FAMILIES)}")
        if heldout and set(self.families) <= set(heldout):
            raise DataConfigError("heldout_families", "every generated family is held out; nothing is left to train on")
        object.__setattr__(self, "heldout_families", heldout)
        if not 0 < self.perturbation_speed <= 0.1:
            raise DataConfigError("perturbation_speed", f"expected m/s in (0, 0.1], got {self.perturbation_speed}")
        if not isinstance(self.perturbation_trials, int) or not 0 <= self.perturbation_trials <= 8:
            raise DataConfigError("perturbation_trials", f"expected an integer in [0, 8], got {self.perturbation_trials}")
        if not isinstance(self.shard_size, int) or not 1 <= self.shard_size <= 10_000:
            raise DataConfigError("shard_size", f"expected an integer in [1, 10000], got {self.shard_size}")
        if not isinstance(self.family_fps, dict):
            raise DataConfigError("family_fps", "expected a mapping family -> clip frame rate (1/s)")
        for name, rate in self.family_fps.items():
            if name not in FAMILIES:
                raise DataConfigError(f"family_fps.{name}", f"unknown family; expected one of {sorted(FAMILIES)}")
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (rate > 0 and math.isfinite(rate)):
                raise DataConfigError(f"family_fps.{name}", f"expected a positive rate in 1/s, got {rate!r}")
            ratio = self.state_fps / rate
            if not (ratio >= 1 and abs(ratio - round(ratio)) < 1e-9):
                raise DataConfigError(f"family_fps.{name}", f"state_fps ({self.state_fps}) must be a whole multiple "
                                      f"of it, got {rate}")

    def for_family(self, family: str) -> "DataConfig":
        """This config with the clip timing of ``family`` (its family_fps entry, if any)."""
        if family not in self.family_fps or self.family_fps[family] == self.fps:
            return self
        return replace(self, fps=float(self.family_fps[family]), family_fps={})

    # -- timing ---------------------------------------------------------------------------------
    @property
    def clip_duration(self) -> float:
        """s covered by the rendered clip (the last frame's time)."""
        return (self.num_frames - 1) / self.fps

    @property
    def duration(self) -> float:
        """s simulated per scene: the clip plus the prediction horizon."""
        return self.clip_duration + self.predict_horizon

    @property
    def frame_stride(self) -> int:
        return int(round(self.state_fps / self.fps))

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "params":
                value = {name: params_to_dict(p) for name, p in sorted(value.items())}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "DataConfig":
        if not isinstance(data, dict):
            raise DataConfigError(where, "expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise DataConfigError(f"{where}.{sorted(unknown)[0]}", f"unknown field; expected one of {sorted(known)}")
        data = dict(data)
        for name in ("split_fractions", "heldout_families"):
            if name in data and isinstance(data[name], list):
                data[name] = tuple(data[name])
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "DataConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataConfigError(str(path), "config file not found; write one with `physforge data config`") from None
        except json.JSONDecodeError as err:
            raise DataConfigError(str(path), f"not valid JSON ({err.msg} at line {err.lineno})") from None
        try:
            return cls.from_dict(data)
        except DataConfigError as err:
            raise DataConfigError(f"{path}: {err.path}", str(err).split(": ", 1)[1]) from None
