"""The physical annotation of an articulated object, compatible with PhysXNet / PhysX-Anything.

SI units inside (m, kg/m^3, Pa, rad). The PhysXNet ``finaljson`` form (cm, g/cm^3, GPa, degrees,
joint letters A/B/C/D/CB/E) is produced and read only at the edge, by ``to_physxnet`` and
``from_physxnet``.

Frames: the *object frame* is z up, the object resting on z = 0 and centred in x and y; every
part mesh, axis and pivot is given in it, with all joints at position 0 (the rest pose).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from physforge.errors import WorldValidationError
from physforge.world import _checks

SCHEMA_NAME = "physforge.asset"
SCHEMA_VERSION = 1
BASE_TYPES = ("fixed", "free")
GROUP_JOINT_TYPES = ("fixed", "free", "revolute", "prismatic", "ball", "revolute_prismatic")
#: PhysX-Anything / PhysXNet joint letters.
PHYSX_LETTERS = {"free": "A", "prismatic": "B", "revolute": "C", "ball": "D", "revolute_prismatic": "CB",
                 "fixed": "E"}
LETTER_TYPES = {v: k for k, v in PHYSX_LETTERS.items()}


@dataclass(frozen=True)
class PartAnnotation:
    """One part: ``label`` (int, unique), ``name``, ``material`` (a name; see materials.py),
    density kg/m^3, youngs_modulus Pa, poisson_ratio, affordance_rank 1 (never touched) to
    10 (touched first), and the four PhysXNet descriptions."""

    label: int
    name: str
    material: str
    density: float
    youngs_modulus: float
    poisson_ratio: float
    affordance_rank: int
    basic_description: str = ""
    functional_description: str = ""
    movement_description: str = ""
    grasp_description: str = ""

    def __post_init__(self):
        if isinstance(self.label, bool) or not isinstance(self.label, int) or self.label < 0:
            raise WorldValidationError("label", "expected an integer >= 0", self.label)
        _checks.name("name", self.name)
        if not isinstance(self.material, str) or not self.material:
            raise WorldValidationError("material", "expected a material name", self.material)
        object.__setattr__(self, "density", _checks.number("density", self.density, minimum=1.0, maximum=25000.0))
        object.__setattr__(self, "youngs_modulus", _checks.number("youngs_modulus", self.youngs_modulus, minimum=0.0,
                                                                   strict=True))
        object.__setattr__(self, "poisson_ratio", _checks.number("poisson_ratio", self.poisson_ratio, minimum=-1.0,
                                                                  maximum=0.5))
        if isinstance(self.affordance_rank, bool) or not isinstance(self.affordance_rank, int) \
                or not 1 <= self.affordance_rank <= 10:
            raise WorldValidationError("affordance_rank", "expected an integer from 1 to 10", self.affordance_rank)
        for name in ("basic_description", "functional_description", "movement_description", "grasp_description"):
            if not isinstance(getattr(self, name), str):
                raise WorldValidationError(name, "expected text", getattr(self, name))


@dataclass(frozen=True)
class KinematicGroup:
    """Parts that move together (one rigid body) and the joint to their parent group.

    index: group id, 0 is the base. parts: part labels. parent: parent group index (None for
    the base and for free parts). joint_type: fixed, free, revolute, prismatic, ball or
    revolute_prismatic. axis (3,) unit, object frame. pivot (3,) m, object frame (a point on
    the axis). range: rad (revolute; ball as (0, max angle)) or m (prismatic); None for
    unlimited. slide_range: m, the slide of a revolute_prismatic joint (along ``axis``).
    name: the body's name in the world (default: the first part's name; the base: ``base``).
    """

    index: int
    parts: tuple[int, ...]
    parent: int | None = None
    joint_type: str = "fixed"
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)
    range: tuple[float, float] | None = None
    slide_range: tuple[float, float] | None = None
    name: str | None = None

    def __post_init__(self):
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise WorldValidationError("index", "expected an integer >= 0", self.index)
        parts = tuple(self.parts)
        if not parts or any(isinstance(p, bool) or not isinstance(p, int) for p in parts):
            raise WorldValidationError("parts", "expected a non-empty list of part labels", self.parts)
        object.__setattr__(self, "parts", parts)
        _checks.one_of("joint_type", self.joint_type, GROUP_JOINT_TYPES)
        object.__setattr__(self, "axis", _checks.unit_axis("axis", self.axis))
        object.__setattr__(self, "pivot", _checks.vector("pivot", self.pivot, 3))
        object.__setattr__(self, "range", _checks.interval("range", self.range))
        object.__setattr__(self, "slide_range", _checks.interval("slide_range", self.slide_range))
        if self.name is not None:
            _checks.name("name", self.name)
        if self.index == 0 and self.parent is not None:
            raise WorldValidationError("parent", "group 0 is the base and has no parent", self.parent)
        if self.index != 0 and self.joint_type != "free" and self.parent is None:
            raise WorldValidationError("parent", f"group {self.index} ({self.joint_type}) needs a parent group")
        if self.joint_type in ("fixed", "free") and self.range is not None:
            raise WorldValidationError("range", f"a {self.joint_type} joint has no range", self.range)
        if self.slide_range is not None and self.joint_type != "revolute_prismatic":
            raise WorldValidationError("slide_range", "only revolute_prismatic groups have a slide_range")
        if self.joint_type == "ball" and self.range is not None and self.range[0] != 0.0:
            raise WorldValidationError("range", "a ball joint's range is (0, max angle)", self.range)


@dataclass(frozen=True)
class AssetAnnotation:
    """A whole object: name, category, dimensions (3,) m (x, y, z extents at rest), parts,
    kinematic groups, base (fixed: welded to the world; free: resting on the floor), and where
    it came from (``source``; ``seed`` for library objects)."""

    name: str
    category: str
    dimensions: tuple[float, float, float]
    parts: tuple[PartAnnotation, ...]
    groups: tuple[KinematicGroup, ...]
    base: str = "free"
    source: str = "user"
    seed: int | None = None

    def __post_init__(self):
        _checks.name("name", self.name)
        _checks.name("category", self.category)
        object.__setattr__(self, "dimensions", _checks.positive_vector("dimensions", self.dimensions, 3, 1e-4))
        _checks.one_of("base", self.base, BASE_TYPES)
        parts, groups = tuple(self.parts), tuple(self.groups)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "groups", groups)
        labels = [p.label for p in parts]
        if len(set(labels)) != len(labels):
            raise WorldValidationError("parts", "part labels must be unique", labels)
        if not parts:
            raise WorldValidationError("parts", "an object needs at least one part")
        indices = [g.index for g in groups]
        if len(set(indices)) != len(indices):
            raise WorldValidationError("groups", "group indices must be unique", indices)
        if 0 not in indices:
            raise WorldValidationError("groups", "group 0 (the base) is missing", indices)
        owner: dict[int, int] = {}
        for i, group in enumerate(groups):
            for label in group.parts:
                if label not in labels:
                    raise WorldValidationError(f"groups[{i}].parts", f"group {group.index} refers to part {label}, "
                                               f"which does not exist; parts are {sorted(labels)}", label)
                if label in owner:
                    raise WorldValidationError(f"groups[{i}].parts", f"part {label} is in groups {owner[label]} "
                                               f"and {group.index}; each part belongs to one group", label)
                owner[label] = group.index
            if group.parent is not None and group.parent not in indices:
                raise WorldValidationError(f"groups[{i}].parent", f"group {group.index} names parent group "
                                           f"{group.parent}, which does not exist", group.parent)
        missing = sorted(set(labels) - set(owner))
        if missing:
            raise WorldValidationError("groups", f"parts {missing} belong to no group; add them to group 0 "
                                       "(the base) or give them their own group")
        by_index = {g.index: g for g in groups}
        for group in groups:  # cycles
            seen, current = 0, group
            while current.parent is not None:
                current = by_index[current.parent]
                seen += 1
                if seen > len(groups):
                    raise WorldValidationError("groups", "parent groups form a cycle", group.index)
        names = [self.body_name(g) for g in groups]
        if len(set(names)) != len(names):
            raise WorldValidationError("groups", "body names must be unique; set KinematicGroup.name", names)

    def part(self, label: int) -> PartAnnotation:
        for part in self.parts:
            if part.label == label:
                return part
        raise KeyError(f"no part with label {label}")

    def group(self, index: int) -> KinematicGroup:
        for group in self.groups:
            if group.index == index:
                return group
        raise KeyError(f"no group {index}")

    def body_name(self, group: KinematicGroup) -> str:
        if group.name is not None:
            return group.name
        if group.index == 0:
            return "base"
        return self.part(group.parts[0]).name


# -- JSON (SI) ------------------------------------------------------------------------------

def annotation_to_dict(annotation: AssetAnnotation) -> dict[str, Any]:
    data = asdict(annotation)
    return {"schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION, **_lists(data)}


def annotation_from_dict(data: Any) -> AssetAnnotation:
    if not isinstance(data, dict):
        raise WorldValidationError("$", "an asset annotation is a JSON object", type(data).__name__)
    if data.get("schema", SCHEMA_NAME) != SCHEMA_NAME:
        raise WorldValidationError("schema", f"not a physforge asset annotation (expected '{SCHEMA_NAME}')",
                                   data.get("schema"))
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise WorldValidationError("schema_version", f"this physforge reads version {SCHEMA_VERSION}",
                                   data.get("schema_version"))
    fields = {k: v for k, v in data.items() if k not in ("schema", "schema_version")}
    allowed = set(AssetAnnotation.__dataclass_fields__)
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise WorldValidationError(unknown[0], f"unknown field; expected one of {sorted(allowed)}")
    parts = tuple(_checks.located(f"parts[{i}]", lambda p=p: _make(PartAnnotation, p))
                  for i, p in enumerate(_list(fields, "parts")))
    groups = []
    for i, g in enumerate(_list(fields, "groups")):
        g = dict(g) if isinstance(g, dict) else g
        if isinstance(g, dict):
            for key in ("parts", "axis", "pivot", "range", "slide_range"):
                if isinstance(g.get(key), list):
                    g[key] = tuple(g[key])
        groups.append(_checks.located(f"groups[{i}]", lambda g=g: _make(KinematicGroup, g)))
    fields["parts"], fields["groups"] = parts, tuple(groups)
    try:
        return AssetAnnotation(**fields)
    except TypeError as err:
        raise WorldValidationError("$", f"asset annotation: {err}") from None


def annotation_json(annotation: AssetAnnotation) -> str:
    """Canonical JSON text (sorted keys, fixed separators): same annotation, same bytes."""
    return json.dumps(annotation_to_dict(annotation), indent=1, sort_keys=True, allow_nan=False) + "\n"


def _make(cls, data: Any):
    if not isinstance(data, dict):
        raise WorldValidationError("$", "expected a JSON object", type(data).__name__)
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise WorldValidationError(unknown[0], f"unknown field; expected one of {sorted(allowed)}")
    try:
        return cls(**data)
    except TypeError as err:
        raise WorldValidationError("$", f"{cls.__name__}: {err}") from None


def _list(data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise WorldValidationError(key, "expected a list", type(value).__name__)
    return value


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


# -- PhysXNet finaljson (cm, g/cm^3, GPa, degrees) ------------------------------------------

def to_physxnet(annotation: AssetAnnotation) -> dict[str, Any]:
    """The PhysXNet ``finaljson`` form. Part meshes in metres of the object frame correspond
    to mesh units = m here (scale 1): pivots are in metres, prismatic ranges in metres."""
    dims_cm = [round(d * 100.0, 4) for d in annotation.dimensions]
    parts = []
    for p in annotation.parts:
        parts.append({
            "label": p.label, "name": p.name, "material": p.material,
            "density": f"{p.density / 1000.0:.6g} g/cm^3", "priority_rank": p.affordance_rank,
            "Basic_description": p.basic_description, "Functional_description": p.functional_description,
            "Movement_description": p.movement_description, "Grasped_description": p.grasp_description,
            "Young's Modulus (GPa)": float(f"{p.youngs_modulus / 1e9:.6g}"), "Poisson's Ratio": p.poisson_ratio,
        })
    group_info: dict[str, Any] = {}
    for g in annotation.groups:
        if g.index == 0:
            group_info["0"] = list(g.parts)
            continue
        if g.joint_type == "revolute":
            low, high = g.range if g.range is not None else (-math.pi, math.pi)
            params = [*g.axis, *g.pivot, math.degrees(low), math.degrees(high)]
        elif g.joint_type == "prismatic":
            params = [*g.axis, *g.pivot, *(g.range if g.range is not None else (0.0, 0.0))]
        elif g.joint_type == "revolute_prismatic":
            low, high = g.range if g.range is not None else (-math.pi, math.pi)
            params = [*g.axis, *g.pivot, math.degrees(low), math.degrees(high),
                      *g.axis, 0.0, 0.0, 0.0, *(g.slide_range if g.slide_range is not None else (0.0, 0.0))]
        elif g.joint_type == "ball":
            params = [*g.axis, *g.pivot, 0.0, math.degrees(g.range[1]) if g.range is not None else 180.0]
        else:
            params = [*g.axis, *g.pivot, 0.0, 0.0]
        group_info[str(g.index)] = [list(g.parts), str(g.parent if g.parent is not None else 0),
                                    [float(f"{v:.9g}") for v in params], PHYSX_LETTERS[g.joint_type]]
    return {"object_name": annotation.name, "category": annotation.category,
            "dimension": "*".join(f"{d:g}" for d in dims_cm), "parts": parts, "group_info": group_info}


_DENSITY = re.compile(r"^\s*([0-9.eE+-]+)\s*(g/cm\^?3|kg/m\^?3)?\s*$")


def from_physxnet(data: Any, *, mesh_scale: float, mesh_offset=(0.0, 0.0, 0.0), base: str = "free",
                  source: str = "physxnet") -> AssetAnnotation:
    """Read a PhysXNet ``finaljson`` dict. ``mesh_scale`` (m per mesh unit) and ``mesh_offset``
    (m) map the part meshes' coordinates into the object frame; pivots and prismatic ranges
    are in mesh units and are mapped the same way. Errors name the JSON field."""
    if not isinstance(data, dict):
        raise WorldValidationError("$", "a PhysXNet annotation is a JSON object", type(data).__name__)
    for key in ("object_name", "dimension", "parts", "group_info"):
        if key not in data:
            raise WorldValidationError(key, "missing; a PhysXNet finaljson has object_name, category, dimension, "
                                       "parts and group_info")
    name = _safe_name(str(data["object_name"]))
    category = _safe_name(str(data.get("category", "object")))
    dims = _dimension_cm("dimension", data["dimension"])
    parts = []
    if not isinstance(data["parts"], list):
        raise WorldValidationError("parts", "expected a list", type(data["parts"]).__name__)
    for i, p in enumerate(data["parts"]):
        parts.append(_checks.located(f"parts[{i}]", lambda p=p: _physx_part(p)))
    info = data["group_info"]
    if not isinstance(info, dict) or "0" not in info:
        raise WorldValidationError("group_info", "expected an object with group \"0\" (the base parts)", info)
    offset = _checks.vector("mesh_offset", mesh_offset, 3)
    groups = [KinematicGroup(0, tuple(_to_int("group_info.0", v) for v in _as_list("group_info.0", info["0"])), None,
                             "fixed")]
    for key, value in info.items():
        if key == "0":
            continue
        where = f"group_info.{key}"
        if not isinstance(value, list) or len(value) < 4:
            raise WorldValidationError(where, "expected [[child labels], parent group, [params], type letter]", value)
        labels, parent, params, letter = value[0], value[1], value[2], value[3]
        if not isinstance(letter, str) or letter not in LETTER_TYPES:
            raise WorldValidationError(f"{where}[3]", f"joint type must be one of {sorted(LETTER_TYPES)}", letter)
        kind = LETTER_TYPES[letter]
        params = [_to_float(f"{where}[2]", v) for v in _as_list(f"{where}[2]", params)]
        if kind != "free" and kind != "fixed" and len(params) < 8:
            raise WorldValidationError(f"{where}[2]", "expected direction (3), position (3) and range (2)", params)
        params += [0.0] * max(0, 8 - len(params))
        axis = tuple(params[0:3]) if any(params[0:3]) else (0.0, 0.0, 1.0)
        pivot = tuple(mesh_scale * params[3 + k] + offset[k] for k in range(3))
        rng: tuple[float, float] | None = None
        slide: tuple[float, float] | None = None
        if kind == "revolute":
            rng = (math.radians(params[6]), math.radians(params[7]))
        elif kind == "prismatic":
            rng = (mesh_scale * params[6], mesh_scale * params[7])
        elif kind == "revolute_prismatic":
            rng = (math.radians(params[6]), math.radians(params[7]))
            if len(params) >= 16:
                slide_axis = params[8:11]
                cross = _cross(axis, slide_axis)
                if any(slide_axis) and max(abs(c) for c in cross) > 1e-3 * _norm(slide_axis) * _norm(axis):
                    raise WorldValidationError(f"{where}[2]", "a revolute+prismatic (CB) joint whose slide direction "
                                               "differs from its rotation axis is not supported; physforge models a "
                                               "screw-like joint (one axis)", params)
                slide = (mesh_scale * params[14], mesh_scale * params[15])
        elif kind == "ball":
            rng = (0.0, math.radians(params[7])) if params[7] > 0 else None
        if rng is not None and not rng[0] < rng[1]:
            rng = None
        if kind in ("revolute", "revolute_prismatic") and rng is not None and rng[1] - rng[0] >= 2 * math.pi - 1e-6:
            rng = None  # a full turn or more: a continuous joint
        if slide is not None and not slide[0] < slide[1]:
            slide = None
        parent_index = None if kind == "free" else _to_int(f"{where}[1]", parent)
        groups.append(_checks.located(where, lambda: KinematicGroup(
            _to_int(where, key), tuple(_to_int(f"{where}[0]", v) for v in _as_list(f"{where}[0]", labels)),
            parent_index, kind, axis, pivot, rng,
            slide)))
    return AssetAnnotation(name=name, category=category, dimensions=dims, parts=tuple(parts), groups=tuple(groups),
                           base=base, source=source)


def _physx_part(p: Any) -> PartAnnotation:
    if not isinstance(p, dict):
        raise WorldValidationError("$", "expected a JSON object", type(p).__name__)
    density = p.get("density", "1.0 g/cm^3")
    if isinstance(density, (int, float)):
        value = float(density) * 1000.0
    else:
        match = _DENSITY.match(str(density))
        if not match:
            raise WorldValidationError("density", "expected e.g. '1.2 g/cm^3'", density)
        value = _to_float("density", match.group(1)) * (1.0 if (match.group(2) or "").startswith("kg") else 1000.0)
    young = p.get("Young's Modulus (GPa)", p.get("Young's modulus (GPa)", 1.0))
    poisson = p.get("Poisson's Ratio", p.get("Poisson's ratio", 0.3))
    rank = p.get("priority_rank", 5)
    return PartAnnotation(
        label=_to_int("label", p.get("label", -1)), name=_safe_name(str(p.get("name", f"part_{p.get('label')}"))),
        material=str(p.get("material", "plastic")) or "plastic", density=value,
        youngs_modulus=_physx_number("Young's Modulus (GPa)", young) * 1e9,
        poisson_ratio=_physx_number("Poisson's Ratio", poisson),
        affordance_rank=int(min(10, max(1, round(_physx_number("priority_rank", rank))))),
        basic_description=str(p.get("Basic_description", "")),
        functional_description=str(p.get("Functional_description", "")),
        movement_description=str(p.get("Movement_description", "")),
        grasp_description=str(p.get("Grasped_description", "")))


def _physx_number(path: str, value: Any) -> float:
    if isinstance(value, str):
        match = re.search(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?", value)
        if not match:
            raise WorldValidationError(path, "expected a number", value)
        value = float(match.group(0))
    return _checks.number(path, value)


def _dimension_cm(path: str, value: Any) -> tuple[float, float, float]:
    if isinstance(value, str):
        items = [v for v in re.split(r"[*x×, ]+", value.strip()) if v]
    else:
        items = _as_list(path, value)
    try:
        dims = [float(v) / 100.0 for v in items]
    except (TypeError, ValueError):
        raise WorldValidationError(path, "expected 'L*W*H' in cm", value) from None
    return _checks.positive_vector(path, dims, 3, 1e-4)  # type: ignore[return-value]


def _to_int(path: str, value: Any) -> int:
    """An integer from JSON (PhysXNet writes some as strings, e.g. parent "0"); refuses the rest."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]{1,18}\s*", value):
        return int(value)
    raise WorldValidationError(path, "expected an integer", value)


def _to_float(path: str, value: Any) -> float:
    """A finite number from JSON (or a numeric string); refuses the rest."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value) if abs(value) < 1e300 else math.inf
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise WorldValidationError(path, "expected a number", value) from None
    else:
        raise WorldValidationError(path, "expected a number", value)
    if not math.isfinite(number):
        raise WorldValidationError(path, "expected a finite number", value)
    return number


def _as_list(path: str, value: Any) -> list:
    if not isinstance(value, list):
        raise WorldValidationError(path, "expected a list", value)
    return value


def _safe_name(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("_")
    return cleaned or "part"


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _norm(a) -> float:
    return math.sqrt(sum(v * v for v in a))
