"""World <-> JSON, with a schema version and field paths in every error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from physforge.constants import MAX_WORLD_FILE_BYTES
from physforge.errors import InputFileError, WorldValidationError
from physforge.world._checks import located
from physforge.world.geometry import Mesh, shape_from_dict, shape_to_dict
from physforge.world.model import (Actuator, Body, Camera, Geom, Ground, Inertial, Joint, Light, Material, Pose,
                                   World)
from physforge.world.paths import resolve_inside

SCHEMA_VERSION = 1
SCHEMA_NAME = "physforge.world"


def world_to_dict(world: World) -> dict[str, Any]:
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "name": world.name,
        "gravity": list(world.gravity),
        "timestep": world.timestep,
        "integrator": world.integrator,
        "ground": None if world.ground is None else _ground_to_dict(world.ground),
        "bodies": [_body_to_dict(b) for b in world.bodies],
        "cameras": [_plain(c) for c in world.cameras],
        "lights": [_plain(l) for l in world.lights],
        "actuators": [_plain(a) for a in world.actuators],
    }


def world_from_dict(data: Any, *, asset_dir: Path | None = None) -> World:
    if not isinstance(data, dict):
        raise WorldValidationError("$", "a world is a JSON object", type(data).__name__)
    schema = data.get("schema", SCHEMA_NAME)
    if schema != SCHEMA_NAME:
        raise WorldValidationError("schema", f"not a physforge world file (expected '{SCHEMA_NAME}')", schema)
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise WorldValidationError("schema_version", f"this physforge reads version {SCHEMA_VERSION}", version)
    _no_unknown("", data, {"schema", "schema_version", "name", "gravity", "timestep", "integrator", "ground",
                           "bodies", "cameras", "lights", "actuators"})
    kwargs: dict[str, Any] = {k: data[k] for k in ("name", "gravity", "timestep", "integrator") if k in data}
    if "ground" in data:
        kwargs["ground"] = None if data["ground"] is None else located("ground", lambda: _ground(data["ground"]))
    kwargs["bodies"] = tuple(located(f"bodies[{i}]", lambda b=b: _body(b)) for i, b in enumerate(_list(data, "bodies")))
    kwargs["cameras"] = tuple(located(f"cameras[{i}]", lambda c=c: _make(Camera, c))
                              for i, c in enumerate(_list(data, "cameras")))
    if "lights" in data:
        kwargs["lights"] = tuple(located(f"lights[{i}]", lambda l=l: _make(Light, l))
                                 for i, l in enumerate(_list(data, "lights")))
    kwargs["actuators"] = tuple(located(f"actuators[{i}]", lambda a=a: _make(Actuator, a))
                                for i, a in enumerate(_list(data, "actuators")))
    return World(asset_dir=asset_dir, **kwargs)


def save_world(world: World, path: str | Path) -> Path:
    """Write ``world`` as JSON, atomically (temporary file, then rename)."""
    path = Path(path)
    text = json.dumps(world_to_dict(world), indent=1, allow_nan=False)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text + "\n")
    temporary.replace(path)
    return path


def load_world(path: str | Path) -> World:
    """Read a world JSON; mesh paths are checked to stay inside the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "world file not found")
    if path.stat().st_size > MAX_WORLD_FILE_BYTES:
        raise InputFileError(path, f"larger than {MAX_WORLD_FILE_BYTES} bytes; refusing to parse")
    try:
        data = json.loads(path.read_bytes(), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(path, f"not valid JSON: {err}") from None
    except ValueError as err:
        raise InputFileError(path, str(err)) from None
    except RecursionError:
        raise InputFileError(path, "JSON nested too deeply") from None
    try:
        world = world_from_dict(data, asset_dir=path.parent)
    except WorldValidationError as err:
        raise WorldValidationError(f"{path.name}:{err.path}", err.reason, err.value) from None
    for i, body in enumerate(world.bodies):
        for j, geom in enumerate(body.geoms):
            if isinstance(geom.shape, Mesh) and geom.shape.path is not None:
                resolve_inside(path.parent, geom.shape.path)
    return world


def _refuse_constant(token: str):
    raise ValueError(f"non-finite number {token} is not allowed in a world file")


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {name: _plain(getattr(obj, name)) for name in obj.__dataclass_fields__
                if name not in ("asset_dir",)}
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    return obj


def _body_to_dict(body: Body) -> dict[str, Any]:
    return {
        "name": body.name,
        "parent": body.parent,
        "pose": _plain(body.pose),
        "joint": _plain(body.joint),
        "inertial": None if body.inertial is None else _plain(body.inertial),
        "velocity": list(body.velocity),
        "angular_velocity": list(body.angular_velocity),
        "geoms": [{"shape": shape_to_dict(g.shape), "pose": _plain(g.pose), "material": _plain(g.material),
                   "rgba": list(g.rgba), "collide": g.collide, "name": g.name} for g in body.geoms],
    }


def _body(data: Any) -> Body:
    _need_object("", data)
    _no_unknown("", data, set(Body.__dataclass_fields__))
    kwargs = dict(data)
    kwargs["geoms"] = tuple(located(f"geoms[{i}]", lambda g=g: _geom(g)) for i, g in enumerate(_list(data, "geoms")))
    if "pose" in data:
        kwargs["pose"] = located("pose", lambda: _make(Pose, data["pose"]))
    if "joint" in data:
        kwargs["joint"] = located("joint", lambda: _make(Joint, data["joint"]))
    if data.get("inertial") is not None:
        kwargs["inertial"] = located("inertial", lambda: _make(Inertial, data["inertial"]))
    if "name" not in data:
        raise WorldValidationError("name", "every body needs a name")
    return Body(**kwargs)


def _geom(data: Any) -> Geom:
    _need_object("", data)
    _no_unknown("", data, set(Geom.__dataclass_fields__))
    if "shape" not in data:
        raise WorldValidationError("shape", "every geom needs a shape")
    kwargs = dict(data)
    kwargs["shape"] = located("shape", lambda: shape_from_dict(data["shape"]))
    if "pose" in data:
        kwargs["pose"] = located("pose", lambda: _make(Pose, data["pose"]))
    if "material" in data:
        kwargs["material"] = located("material", lambda: _make(Material, data["material"]))
    return Geom(**kwargs)


def _ground_to_dict(ground: Ground) -> dict[str, Any]:
    out = {"half_size": list(ground.half_size), "material": _plain(ground.material), "rgba": list(ground.rgba)}
    # the checker fields are written only when set, so worlds that leave them at their defaults
    # serialise to the same bytes as before the fields existed (dataset hashes depend on it)
    for name in ("checker_square", "checker_shade"):
        if getattr(ground, name) != Ground.__dataclass_fields__[name].default:
            out[name] = getattr(ground, name)
    return out


def _ground(data: Any) -> Ground:
    _need_object("", data)
    _no_unknown("", data, set(Ground.__dataclass_fields__))
    kwargs = dict(data)
    if "material" in data:
        kwargs["material"] = located("material", lambda: _make(Material, data["material"]))
    return Ground(**kwargs)


def _make(cls, data: Any):
    _need_object("", data)
    _no_unknown("", data, set(cls.__dataclass_fields__))
    try:
        return cls(**data)
    except TypeError as err:
        raise WorldValidationError("", f"{cls.__name__}: {err}") from None


def _need_object(path: str, data: Any) -> None:
    if not isinstance(data, dict):
        raise WorldValidationError(path or "$", "expected a JSON object", type(data).__name__)


def _no_unknown(path: str, data: dict, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise WorldValidationError(where, f"unknown field; expected one of {sorted(allowed)}")


def _list(data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise WorldValidationError(key, "expected a list", type(value).__name__)
    return value


