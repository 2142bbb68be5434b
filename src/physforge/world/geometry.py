"""Shapes a geom can have. All sizes in metres, in the geom's own frame.

Primitives follow MuJoCo's conventions (half sizes; capsule and cylinder along local z) so
that compiling them is exact, but the names say what the numbers are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from physforge.constants import MAX_MESH_FACES, MAX_VOXEL_CELLS, MIN_GEOMETRY_SIZE
from physforge.errors import WorldValidationError
from physforge.world import _checks


@dataclass(frozen=True)
class Box:
    """A cuboid centred on the geom frame; ``half_extents`` (3,) m."""

    half_extents: tuple[float, float, float]
    type: str = field(default="box", init=False)

    def __post_init__(self):
        object.__setattr__(self, "half_extents",
                           _checks.positive_vector("half_extents", self.half_extents, 3, MIN_GEOMETRY_SIZE))

    def volume(self) -> float:
        x, y, z = self.half_extents
        return 8.0 * x * y * z


@dataclass(frozen=True)
class Sphere:
    """A ball of ``radius`` m."""

    radius: float
    type: str = field(default="sphere", init=False)

    def __post_init__(self):
        object.__setattr__(self, "radius", _checks.number("radius", self.radius, minimum=MIN_GEOMETRY_SIZE))

    def volume(self) -> float:
        return 4.0 / 3.0 * math.pi * self.radius**3


@dataclass(frozen=True)
class Capsule:
    """A cylinder of ``radius`` with hemispherical caps; the cylinder spans z in ±``half_length``."""

    radius: float
    half_length: float
    type: str = field(default="capsule", init=False)

    def __post_init__(self):
        object.__setattr__(self, "radius", _checks.number("radius", self.radius, minimum=MIN_GEOMETRY_SIZE))
        object.__setattr__(self, "half_length",
                           _checks.number("half_length", self.half_length, minimum=MIN_GEOMETRY_SIZE))

    def volume(self) -> float:
        return math.pi * self.radius**2 * 2 * self.half_length + 4.0 / 3.0 * math.pi * self.radius**3


@dataclass(frozen=True)
class Cylinder:
    """A solid cylinder of ``radius`` spanning z in ±``half_length``."""

    radius: float
    half_length: float
    type: str = field(default="cylinder", init=False)

    def __post_init__(self):
        object.__setattr__(self, "radius", _checks.number("radius", self.radius, minimum=MIN_GEOMETRY_SIZE))
        object.__setattr__(self, "half_length",
                           _checks.number("half_length", self.half_length, minimum=MIN_GEOMETRY_SIZE))

    def volume(self) -> float:
        return math.pi * self.radius**2 * 2 * self.half_length


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh: either a file (``path``, relative to the world's folder) or arrays.

    ``vertices`` (n, 3) float64 m, geom frame; ``faces`` (m, 3) int64 vertex indices,
    counter-clockwise seen from outside. ``scale`` (3,) multiplies the vertices of either.
    MuJoCo collides with the convex hull of each mesh geom: split concave parts into several
    convex geoms (the asset pipeline does this with CoACD).
    """

    path: str | None = None
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    type: str = field(default="mesh", init=False)

    def __post_init__(self):
        object.__setattr__(self, "scale", _checks.positive_vector("scale", self.scale, 3, MIN_GEOMETRY_SIZE))
        has_path = self.path is not None
        has_arrays = self.vertices is not None or self.faces is not None
        if has_path == has_arrays:
            raise WorldValidationError("mesh", "give either 'path' or both 'vertices' and 'faces'",
                                       {"path": self.path, "has_arrays": has_arrays})
        if has_path:
            if not isinstance(self.path, str) or not self.path:
                raise WorldValidationError("path", "expected a non-empty relative file path", self.path)
            return
        vertices = _as_array("vertices", self.vertices, np.float64)
        faces = _as_array("faces", self.faces, np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 4:
            raise WorldValidationError("vertices", "expected shape (n >= 4, 3)", vertices.shape)
        if not np.isfinite(vertices).all():
            raise WorldValidationError("vertices", "contains NaN or infinite coordinates")
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) < 4:
            raise WorldValidationError("faces", "expected shape (m >= 4, 3)", faces.shape)
        if len(faces) > MAX_MESH_FACES:
            raise WorldValidationError("faces", f"mesh has more than {MAX_MESH_FACES} faces; simplify it first",
                                       len(faces))
        if faces.min() < 0 or faces.max() >= len(vertices):
            raise WorldValidationError("faces", f"vertex index outside [0, {len(vertices) - 1}]",
                                       (int(faces.min()), int(faces.max())))
        extent = np.ptp(vertices, axis=0)
        if (extent < MIN_GEOMETRY_SIZE).sum() > 0:
            raise WorldValidationError("vertices", "mesh is flat or zero-size along an axis (no volume)",
                                       extent.tolist())
        vertices.setflags(write=False)
        faces.setflags(write=False)
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", faces)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mesh):
            return NotImplemented
        return (self.path == other.path and self.scale == other.scale
                and _arrays_equal(self.vertices, other.vertices) and _arrays_equal(self.faces, other.faces))

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class Voxels:
    """A solid made of cubes: ``occupancy`` (nx, ny, nz) bool, cell edge ``voxel_size`` m.

    Cell (i, j, k) is centred at ``origin + (i + 0.5, j + 0.5, k + 0.5) * voxel_size`` in the
    geom frame. Compiled as the smallest set of boxes that tiles the occupied cells exactly.
    """

    occupancy: np.ndarray
    voxel_size: float
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    type: str = field(default="voxels", init=False)

    def __post_init__(self):
        grid = np.asarray(self.occupancy)
        if grid.ndim != 3:
            raise WorldValidationError("occupancy", "expected a 3-D boolean array", grid.shape)
        if grid.size > MAX_VOXEL_CELLS:
            raise WorldValidationError("occupancy", f"grid has more than {MAX_VOXEL_CELLS} cells", grid.shape)
        grid = grid.astype(bool, copy=True)
        if not grid.any():
            raise WorldValidationError("occupancy", "no cell is occupied (zero volume)")
        grid.setflags(write=False)
        object.__setattr__(self, "occupancy", grid)
        object.__setattr__(self, "voxel_size",
                           _checks.number("voxel_size", self.voxel_size, minimum=MIN_GEOMETRY_SIZE))
        object.__setattr__(self, "origin", _checks.vector("origin", self.origin, 3))

    def volume(self) -> float:
        return float(self.occupancy.sum()) * self.voxel_size**3

    def boxes(self) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
        """Cuboids ``(start cell, size in cells)`` that tile the occupied cells exactly, no overlap.

        Greedy: grow each box along x, then y, then z while every cell is free and occupied.
        """
        remaining = np.array(self.occupancy, dtype=bool)
        nx, ny, nz = remaining.shape
        out = []
        for i, j, k in zip(*np.nonzero(remaining)):
            if not remaining[i, j, k]:
                continue
            di = 1
            while i + di < nx and remaining[i + di, j, k]:
                di += 1
            dj = 1
            while j + dj < ny and remaining[i:i + di, j + dj, k].all():
                dj += 1
            dk = 1
            while k + dk < nz and remaining[i:i + di, j:j + dj, k + dk].all():
                dk += 1
            remaining[i:i + di, j:j + dj, k:k + dk] = False
            out.append(((int(i), int(j), int(k)), (di, dj, dk)))
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Voxels):
            return NotImplemented
        return (self.voxel_size == other.voxel_size and self.origin == other.origin
                and _arrays_equal(self.occupancy, other.occupancy))

    __hash__ = None  # type: ignore[assignment]


Shape = Union[Box, Sphere, Capsule, Cylinder, Mesh, Voxels]
SHAPE_TYPES: dict[str, type] = {cls.__dataclass_fields__["type"].default: cls  # type: ignore[attr-defined]
                                for cls in (Box, Sphere, Capsule, Cylinder, Mesh, Voxels)}


def shape_to_dict(shape: Shape) -> dict[str, Any]:
    if isinstance(shape, Mesh):
        out: dict[str, Any] = {"type": "mesh", "scale": list(shape.scale)}
        if shape.path is not None:
            out["path"] = shape.path
        else:
            out["vertices"] = shape.vertices.tolist()
            out["faces"] = shape.faces.tolist()
        return out
    if isinstance(shape, Voxels):
        return {"type": "voxels", "shape": list(shape.occupancy.shape),
                "occupied": np.flatnonzero(shape.occupancy).tolist(),
                "voxel_size": shape.voxel_size, "origin": list(shape.origin)}
    out = {"type": shape.type}
    for name in shape.__dataclass_fields__:
        if name != "type":
            value = getattr(shape, name)
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def shape_from_dict(data: Any) -> Shape:
    if not isinstance(data, dict):
        raise WorldValidationError("", "expected an object with a 'type'", data)
    kind = _checks.one_of("type", data.get("type"), SHAPE_TYPES)
    fields = {k: v for k, v in data.items() if k != "type"}
    if kind == "voxels":
        shape = _checks.vector("shape", fields.get("shape"), 3)
        if any(s < 1 or s != int(s) for s in shape) or math.prod(shape) > MAX_VOXEL_CELLS:
            raise WorldValidationError("shape", f"expected 3 positive integers with product <= {MAX_VOXEL_CELLS}",
                                       fields.get("shape"))
        shape = tuple(int(s) for s in shape)
        occupied = _as_array("occupied", fields.get("occupied", []), np.int64).reshape(-1)
        if occupied.size and (occupied.min() < 0 or occupied.max() >= math.prod(shape)):
            raise WorldValidationError("occupied", "cell index outside the grid")
        grid = np.zeros(math.prod(shape), dtype=bool)
        grid[occupied] = True
        return Voxels(occupancy=grid.reshape(shape), voxel_size=fields.get("voxel_size"),
                      origin=fields.get("origin", (0.0, 0.0, 0.0)))
    cls = SHAPE_TYPES[kind]
    allowed = set(cls.__dataclass_fields__) - {"type"}
    unknown = set(fields) - allowed
    if unknown:
        raise WorldValidationError(sorted(unknown)[0], f"unknown field for a {kind}; expected {sorted(allowed)}")
    try:
        return cls(**fields)
    except TypeError as err:  # missing required field
        raise WorldValidationError("", f"{kind}: {err}") from None


def _as_array(path: str, value: Any, dtype) -> np.ndarray:
    try:
        array = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise WorldValidationError(path, f"expected an array of {np.dtype(dtype).name}") from None
    return array


def _arrays_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))
