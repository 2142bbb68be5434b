"""Inputs -> ``SourceAsset``: a physforge annotation + part meshes, a PhysXNet ``finaljson`` +
per-part OBJ folder, a PartNet-Mobility-style URDF, or a single mesh (a one-part rigid asset).

Every file reference is resolved inside the input's folder (no ``..``, absolute paths or
symlinks out of it); every error names the file and field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physforge.assets import geometry as geo
from physforge.assets.materials import lookup
from physforge.assets.schema import (SCHEMA_NAME, AssetAnnotation, KinematicGroup, PartAnnotation,
                                     annotation_from_dict, from_physxnet)
from physforge.assets.source import SourceAsset
from physforge.assets.urdf import UrdfImportConfig, import_urdf
from physforge.errors import InputFileError, WorldValidationError
from physforge.world import resolve_inside
from physforge.world.mesh_io import MESH_SUFFIXES

MAX_JSON_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ImportConfig:
    """material: for inputs without one (single mesh, URDF). up_axis: z, or y for y-up files
    (PartNet/PhysXNet meshes are y-up). scale: m per file unit (single mesh, URDF). base:
    fixed or free (None: the input's own choice; free for meshes, fixed for URDFs).
    name / category: for a single mesh (default: the file's stem, 'object')."""

    material: str = "plastic"
    up_axis: str = "z"
    scale: float = 1.0
    base: str | None = None
    name: str | None = None
    category: str = "object"

    def __post_init__(self):
        if self.up_axis not in ("z", "y"):
            raise ValueError(f"up_axis must be 'z' or 'y', got {self.up_axis!r}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"scale must be a positive number of metres per unit, got {self.scale}")
        if self.base not in (None, "fixed", "free"):
            raise ValueError(f"base must be 'fixed', 'free' or None, got {self.base!r}")


def load_source(path: str | Path, config: ImportConfig = ImportConfig()) -> SourceAsset:
    """Read any supported input (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "not found")
    if path.is_dir():
        for name in ("annotation.json",):
            if (path / name).is_file():
                return load_annotated(path / name)
        urdfs = sorted(path.glob("*.urdf"))
        if urdfs:
            return _urdf(urdfs[0], config)
        jsons = sorted(path.glob("*.json")) + sorted((path / "finaljson").glob("*.json"))
        if jsons:
            return load_annotated(jsons[0], config)
        raise InputFileError(path, "folder holds no annotation.json, *.urdf or PhysXNet finaljson")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return load_annotated(path, config)
    if suffix == ".urdf":
        return _urdf(path, config)
    if suffix in MESH_SUFFIXES:
        return load_single_mesh(path, config)
    raise InputFileError(path, f"unsupported input; give an annotation .json, a .urdf or a mesh "
                         f"({', '.join(MESH_SUFFIXES)})")


def _urdf(path: Path, config: ImportConfig) -> SourceAsset:
    return import_urdf(path, UrdfImportConfig(material=config.material, up_axis=config.up_axis, scale=config.scale,
                                              base=config.base or "fixed"))


def _read_json(path: Path):
    if path.stat().st_size > MAX_JSON_BYTES:
        raise InputFileError(path, f"larger than {MAX_JSON_BYTES} bytes; refusing to parse")
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(path, f"not valid JSON: {err}") from None
    except RecursionError:
        raise InputFileError(path, "JSON nested too deeply") from None


def load_annotated(path: Path, config: ImportConfig = ImportConfig()) -> SourceAsset:
    """A physforge ``annotation.json`` (meshes in ``parts/<label>.obj`` beside it) or a PhysXNet
    finaljson (meshes in ``objs/<label>.obj`` beside it, or the dataset layout
    ``finaljson/<id>.json`` + ``partseg/<id>/objs/<label>.obj``)."""
    data = _read_json(path)
    if isinstance(data, dict) and data.get("schema") == SCHEMA_NAME:
        try:
            annotation = annotation_from_dict(data)
        except WorldValidationError as err:
            raise WorldValidationError(f"{path.name}:{err.path}", err.reason, err.value) from None
        root = path.parent
        meshes = {p.label: _mesh(root, f"parts/{p.label}.obj", p) for p in annotation.parts}
        return SourceAsset(annotation=annotation, meshes=meshes)
    if isinstance(data, dict) and "group_info" in data:
        return _physxnet(path, data, config)
    raise InputFileError(path, "neither a physforge annotation (schema 'physforge.asset') nor a PhysXNet "
                         "finaljson (with 'group_info')")


def _mesh(root: Path, reference: str, part) -> tuple[np.ndarray, np.ndarray]:
    try:
        file_path = resolve_inside(root, reference)
    except InputFileError as err:
        raise InputFileError(err.path, f"mesh of part {part.label} ({part.name}): {err}") from None
    return geo.load_part_mesh(file_path)


def _physxnet(path: Path, data: dict, config: ImportConfig) -> SourceAsset:
    if path.parent.name == "finaljson" and (path.parent.parent / "partseg" / path.stem / "objs").is_dir():
        root, prefix = path.parent.parent, f"partseg/{path.stem}/objs"
    else:
        root, prefix = path.parent, "objs"
    raw_parts = data.get("parts")
    if not isinstance(raw_parts, list):
        raise WorldValidationError(f"{path.name}:parts", "expected a list of parts")
    raw = {}
    for i, p in enumerate(raw_parts):
        label = p.get("label") if isinstance(p, dict) else None
        if isinstance(label, bool) or not isinstance(label, int):
            raise WorldValidationError(f"{path.name}:parts[{i}].label", "expected an integer label", label)
        stub = PartAnnotation(label=label, name="part", material="plastic", density=1000.0, youngs_modulus=1e9,
                              poisson_ratio=0.3, affordance_rank=5)
        raw[label] = _mesh(root, f"{prefix}/{label}.obj", stub)
    if not raw:
        raise WorldValidationError(f"{path.name}:parts", "a PhysXNet finaljson needs at least one part")
    rotation = np.eye(3)
    if config.up_axis == "y":
        rotation = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    points = np.concatenate([v for v, _ in raw.values()]) @ rotation.T
    low, high = points.min(0), points.max(0)
    try:
        dims = [float(v) / 100.0 for v in re.split(r"[*x×, ]+", str(data.get("dimension", "")).strip()) if v]
    except ValueError:
        raise WorldValidationError(f"{path.name}:dimension", "expected 'L*W*H' in cm", data.get("dimension")) from None
    if len(dims) != 3 or min(dims) <= 0:
        raise WorldValidationError(f"{path.name}:dimension", "expected three positive numbers 'L*W*H' in cm",
                                   data.get("dimension"))
    scale = max(dims) / float((high - low).max())
    offset = np.array([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, -low[2]]) * scale
    rotated = _rotate_physxnet(data, rotation)
    try:
        annotation = from_physxnet(rotated, mesh_scale=scale, mesh_offset=tuple(offset), base=config.base or "free",
                                   source=f"physxnet:{path.name}")
    except WorldValidationError as err:
        raise WorldValidationError(f"{path.name}:{err.path}", err.reason, err.value) from None
    meshes = {label: ((v @ rotation.T) * scale + offset, f) for label, (v, f) in raw.items()}
    return SourceAsset(annotation=annotation, meshes=meshes)


def _rotate_physxnet(data: dict, rotation: np.ndarray) -> dict:
    """A copy of a finaljson with joint directions and positions turned by ``rotation``."""
    if np.allclose(rotation, np.eye(3)):
        return data
    out = dict(data)
    info = {}
    for key, value in data["group_info"].items():
        if key == "0" or not isinstance(value, list) or len(value) < 3 or not isinstance(value[2], list):
            info[key] = value
            continue
        params = [float(v) for v in value[2]]
        for start in (0, 3, 8, 11):
            if len(params) >= start + 3:
                params[start:start + 3] = (rotation @ np.array(params[start:start + 3])).tolist()
        info[key] = [value[0], value[1], params, *value[3:]]
    out["group_info"] = info
    return out


def load_single_mesh(path: Path, config: ImportConfig = ImportConfig()) -> SourceAsset:
    """One mesh file -> a one-part rigid asset (centred, resting on z = 0)."""
    vertices, faces = geo.load_part_mesh(path)
    rotation = np.eye(3)
    if config.up_axis == "y":
        rotation = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    vertices = (vertices @ rotation.T) * config.scale
    low, high = vertices.min(0), vertices.max(0)
    vertices = vertices - np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])
    props, _ = lookup(config.material)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.name or path.stem).strip("_") or "object"
    part = PartAnnotation(label=0, name=name, material=props.name, density=props.density,
                          youngs_modulus=props.youngs_modulus, poisson_ratio=props.poisson_ratio, affordance_rank=5,
                          basic_description=f"rigid object from {path.name}")
    extent = np.maximum(high - low, 1e-4)
    annotation = AssetAnnotation(name=name, category=config.category, dimensions=tuple(float(e) for e in extent),
                                 parts=(part,), groups=(KinematicGroup(0, (0,), name="base"),),
                                 base=config.base or "free", source=f"mesh:{path.name}")
    return SourceAsset(annotation=annotation, meshes={0: (vertices, faces)})
