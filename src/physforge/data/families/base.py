"""What every scene family shares: parameter ranges, the scene spec it returns, colours, cameras.

A family is a module with a frozen ``Params`` dataclass (ranges in SI units, validated on
construction) and ``build(rng, params, variant) -> SceneSpec``. ``variant`` is ``"iid"``,
``"params"`` (latent properties drawn outside the training ranges) or ``"compositional"``
(more objects than in training). Families build a ``physforge.world.World`` and nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from physforge.data.errors import DataConfigError
from physforge.world import Camera, Light, Material, World

VARIANTS = ("iid", "params", "compositional")

#: CLEVR's eight colours: name -> RGBA.
COLORS: dict[str, tuple[float, float, float, float]] = {
    "gray": (0.5, 0.5, 0.5, 1.0), "red": (0.85, 0.15, 0.12, 1.0), "blue": (0.15, 0.3, 0.85, 1.0),
    "green": (0.15, 0.65, 0.2, 1.0), "brown": (0.55, 0.35, 0.15, 1.0), "purple": (0.55, 0.2, 0.7, 1.0),
    "cyan": (0.1, 0.75, 0.8, 1.0), "yellow": (0.95, 0.85, 0.1, 1.0),
}


@dataclass(frozen=True)
class Range:
    """A closed interval [low, high] to sample uniformly from (units: those of the field)."""

    low: float
    high: float

    def __post_init__(self):
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise DataConfigError(name, f"expected a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.low > self.high:
            raise DataConfigError("low", f"low {self.low} is above high {self.high}; swap them")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high)) if self.high > self.low else self.low

    def sample_int(self, rng: np.random.Generator) -> int:
        return int(rng.integers(int(round(self.low)), int(round(self.high)) + 1))


def check_params(params: Any) -> None:
    """Validate a family's Params: every Range field is a Range with low >= 0 where physical."""
    for f in fields(params):
        value = getattr(params, f.name)
        if isinstance(value, dict) and set(value) == {"low", "high"}:
            try:
                value = Range(**value)
            except DataConfigError as err:
                raise DataConfigError(f"{f.name}.{err.path}", str(err).split(": ", 1)[1]) from None
            object.__setattr__(params, f.name, value)
        if isinstance(value, Range) and f.metadata.get("positive", True) and value.low < 0:
            raise DataConfigError(f.name, f"must be >= 0 ({f.metadata.get('unit', '')}), got low={value.low}")


def params_from_dict(cls, data: dict[str, Any], where: str):
    """Build ``cls`` (a family's Params) from JSON data, naming unknown or bad fields."""
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise DataConfigError(f"{where}.{sorted(unknown)[0]}", f"unknown parameter; expected one of {sorted(known)}")
    converted = {}
    for key, value in data.items():
        if isinstance(value, dict):
            try:
                value = Range(**value)
            except (DataConfigError, TypeError) as err:
                raise DataConfigError(f"{where}.{key}", f"expected {{'low': ..., 'high': ...}}: {err}") from None
        converted[key] = value
    try:
        return cls(**converted)
    except DataConfigError as err:
        raise DataConfigError(f"{where}.{err.path}", str(err).split(": ", 1)[1]) from None


def params_to_dict(params: Any) -> dict[str, Any]:
    out = {}
    for f in fields(params):
        value = getattr(params, f.name)
        out[f.name] = {"low": value.low, "high": value.high} if isinstance(value, Range) else value
    return out


@dataclass
class SceneObject:
    """A body a question can talk about: its world body name and what it looks like and is."""

    name: str
    color: str
    shape: str
    size: float  # m, characteristic half size (radius, half edge)
    mass: float  # kg
    friction: float  # sliding coefficient
    restitution: float

    @property
    def description(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass
class SceneSpec:
    """A family's scene: the world, the camera, the objects questions name, latent properties.

    latent: property path -> value (``"red_sphere.mass"``: kg, ``"gravity"``: m/s^2 ...);
    units: the same keys -> unit. facts: family-specific data the templates use (ramp
    angle, container bounds, the tower's blocks ...), all JSON-serialisable.
    """

    family: str
    world: World
    camera: Camera
    objects: list[SceneObject]
    latent: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def obj(self, name: str) -> SceneObject:
        for o in self.objects:
            if o.name == name:
                return o
        raise KeyError(name)

    def record_object_latents(self) -> None:
        for o in self.objects:
            for key, unit in (("mass", "kg"), ("friction", "1"), ("restitution", "1")):
                self.latent[f"{o.name}.{key}"] = round(float(getattr(o, key)), 6)
                self.units[f"{o.name}.{key}"] = unit


def pick_colors(rng: np.random.Generator, count: int) -> list[str]:
    names = list(COLORS)
    if count > len(names):
        raise DataConfigError("objects", f"at most {len(names)} objects per scene (one colour each), got {count}")
    return [names[i] for i in rng.permutation(len(names))[:count]]


def gravity_of(rng: np.random.Generator, params: Any, variant: str) -> float:
    """|g| in m/s^2: the training range, or the extrapolation range for the 'params' split."""
    return (params.ood_gravity if variant == "params" else params.gravity).sample(rng)


def material(name: str, density: float, friction: float, restitution: float) -> Material:
    return Material(name, density=round(density, 3), friction=(round(friction, 4), 0.005, 0.0001),
                    restitution=round(restitution, 4))


def random_camera(rng: np.random.Generator, look_at, distance: float, azimuth_deg: float, elevation_deg: float,
                  jitter_deg: float = 12.0, fovy_deg: float = 45.0) -> Camera:
    """A camera around ``look_at`` at ``distance`` m; azimuth/elevation jittered by ± jitter_deg."""
    azimuth = math.radians(azimuth_deg + rng.uniform(-jitter_deg, jitter_deg))
    elevation = math.radians(elevation_deg + rng.uniform(-0.5 * jitter_deg, 0.5 * jitter_deg))
    distance = distance * rng.uniform(0.92, 1.08)
    look = np.asarray(look_at, dtype=float)
    offset = distance * np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                                  math.sin(elevation)])
    position = look + offset
    return Camera("main", position=tuple(np.round(position, 5)), look_at=tuple(np.round(look, 5)),
                  fovy=math.radians(fovy_deg))


def random_lights(rng: np.random.Generator) -> tuple[Light, ...]:
    angle = rng.uniform(0, 2 * math.pi)
    position = (round(2.0 * math.cos(angle), 4), round(2.0 * math.sin(angle), 4), round(rng.uniform(3.0, 4.5), 4))
    direction = -np.array(position) / np.linalg.norm(position)
    level = round(float(rng.uniform(0.55, 0.85)), 4)
    return (Light("key", position=position, direction=tuple(direction), diffuse=(level, level, level)),)


def world_of(name: str, bodies, gravity: float, camera: Camera, rng: np.random.Generator, **kwargs) -> World:
    return World(name=name, bodies=tuple(bodies), gravity=(0.0, 0.0, -round(gravity, 5)), cameras=(camera,), timestep=0.004,
                 lights=random_lights(rng), **kwargs)
