"""Part meshes: repair, mass properties from the watertight volume, and CoACD decomposition.

Arrays: vertices (n, 3) float64 m, object frame; faces (m, 3) int64, counter-clockwise
from outside. Inertia tensors (3, 3) kg·m^2 about the centre of mass, object axes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from physforge.errors import MissingDependencyError, PhysforgeError
from physforge.world import Box, Cylinder, Mesh, Pose

log = logging.getLogger(__name__)

#: A part with less volume than this (m^3; a 1 mm cube) is degenerate.
MIN_PART_VOLUME = 1e-9
#: Largest object dimension accepted (m). Anything bigger is almost always a unit mistake (mm as m).
MAX_OBJECT_SIZE = 20.0
#: Largest part mesh accepted (faces). Simplify bigger meshes first.
MAX_PART_FACES = 300_000


class MeshQualityError(PhysforgeError, ValueError):
    """A part mesh cannot be made sim-ready: not watertight, zero volume, too big."""


@dataclass(frozen=True)
class CollisionPiece:
    """One convex collision shape of a part: a Box, Cylinder or convex Mesh at ``pose`` (object frame)."""

    shape: Box | Cylinder | Mesh
    pose: Pose = Pose()


@dataclass(frozen=True)
class CoacdConfig:
    """CoACD parameters (see SarahWeiii/CoACD). threshold: concavity tolerance (smaller = more,
    tighter hulls). max_convex_hull: cap on hulls per part (-1 = no cap). resolution /
    mcts_iterations: search effort. seed: CoACD's own seed (it is deterministic per seed)."""

    threshold: float = 0.05
    max_convex_hull: int = 16
    resolution: int = 1000
    preprocess_resolution: int = 30
    mcts_iterations: int = 60
    mcts_max_depth: int = 3
    max_hull_vertices: int = 64
    seed: int = 0

    def __post_init__(self):
        if not 0.001 <= self.threshold <= 1.0:
            raise ValueError(f"coacd threshold must lie in [0.001, 1], got {self.threshold}")
        if self.max_convex_hull == 0 or self.max_convex_hull < -1:
            raise ValueError(f"coacd max_convex_hull must be -1 or >= 1, got {self.max_convex_hull}")
        if self.max_hull_vertices < 4:
            raise ValueError(f"coacd max_hull_vertices must be >= 4, got {self.max_hull_vertices}")


def to_trimesh(vertices: np.ndarray, faces: np.ndarray):
    import trimesh

    return trimesh.Trimesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64), process=False)


def repair(vertices: np.ndarray, faces: np.ndarray, where: str):
    """A watertight, consistently oriented copy of the mesh, or MeshQualityError saying why not.

    Merges duplicate vertices, drops degenerate and duplicate faces, fills small holes and
    orients the faces outward. ``where`` names the part in messages.
    """
    import trimesh

    if len(faces) > MAX_PART_FACES:
        raise MeshQualityError(f"{where}: {len(faces)} faces is more than the cap of {MAX_PART_FACES}; "
                               "simplify the mesh (e.g. quadric decimation) and try again")
    mesh = trimesh.Trimesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64), process=False)
    if not mesh.is_watertight:  # merge duplicate vertices, drop degenerate faces, then look again
        mesh = trimesh.Trimesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64),
                               process=True, validate=True)
    if len(mesh.faces) == 0:
        raise MeshQualityError(f"{where}: the mesh has no non-degenerate triangles (zero area)")
    extent = float(np.ptp(mesh.vertices, axis=0).max())
    if extent > MAX_OBJECT_SIZE:
        raise MeshQualityError(f"{where}: the part is {extent:.3g} m across, more than the cap of {MAX_OBJECT_SIZE} m; "
                               "is the mesh in millimetres? scale it to metres")
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
    if not mesh.is_watertight:
        open_edges = int(len(trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1)))
        raise MeshQualityError(f"{where}: the mesh is not watertight ({open_edges} open edges after hole filling); "
                               "close it (e.g. in Blender: 3D-Print toolbox > Make Manifold) or pass "
                               "repair='hull' to use its convex hull")
    trimesh.repair.fix_normals(mesh)
    if mesh.volume < 0:
        mesh.invert()
    if not (mesh.volume > MIN_PART_VOLUME):
        raise MeshQualityError(f"{where}: the mesh encloses {mesh.volume:.3g} m^3, below the minimum of "
                               f"{MIN_PART_VOLUME:g} m^3 (degenerate or flat); give it thickness")
    return mesh


def hull(vertices: np.ndarray, where: str):
    """The convex hull of the points as a watertight mesh (the fallback repair)."""
    import trimesh

    try:
        mesh = trimesh.convex.convex_hull(np.asarray(vertices, dtype=np.float64))
    except Exception as err:  # qhull raises its own error types on flat input
        raise MeshQualityError(f"{where}: no convex hull ({type(err).__name__}); the mesh is flat or degenerate") \
            from None
    if not (mesh.volume > MIN_PART_VOLUME):
        raise MeshQualityError(f"{where}: convex hull volume {mesh.volume:.3g} m^3 is degenerate")
    return mesh


@dataclass(frozen=True)
class MassProperties:
    """mass kg; center_of_mass (3,) m; inertia (3, 3) kg·m^2 about the centre of mass; volume m^3."""

    mass: float
    center_of_mass: np.ndarray
    inertia: np.ndarray
    volume: float


def mass_properties(mesh, density: float) -> MassProperties:
    """Exact mass properties of a watertight mesh of uniform ``density`` (kg/m^3)."""
    volume = float(mesh.volume)
    com = np.asarray(mesh.center_mass, dtype=np.float64)
    # trimesh's moment_inertia is about the centre of mass for unit density
    inertia = np.asarray(mesh.moment_inertia, dtype=np.float64) * density
    return MassProperties(mass=volume * density, center_of_mass=com, inertia=inertia, volume=volume)


def combine(items: list[MassProperties]) -> MassProperties:
    """Mass properties of rigidly joined parts (parallel-axis theorem)."""
    mass = sum(i.mass for i in items)
    com = sum(i.mass * i.center_of_mass for i in items) / mass
    inertia = np.zeros((3, 3))
    for item in items:
        d = item.center_of_mass - com
        inertia += item.inertia + item.mass * (np.dot(d, d) * np.eye(3) - np.outer(d, d))
    return MassProperties(mass=mass, center_of_mass=com, inertia=inertia, volume=sum(i.volume for i in items))


def content_hash(vertices: np.ndarray, faces: np.ndarray, config: CoacdConfig) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(vertices, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(faces, dtype="<i8").tobytes())
    digest.update(json.dumps(asdict(config), sort_keys=True).encode())
    return digest.hexdigest()[:32]


def convex_decomposition(mesh, config: CoacdConfig, cache_dir: Path | None) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """``(hulls, cache_hit)``: CoACD's convex pieces of a watertight mesh, each (vertices, faces).

    Results are cached in ``cache_dir`` under the hash of the mesh arrays and the parameters,
    so a second build of the same part is instant. None disables the cache.
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    key = content_hash(vertices, faces, config)
    cache_file = None if cache_dir is None else Path(cache_dir) / f"coacd-{key}.npz"
    if cache_file is not None and cache_file.is_file():
        try:
            with np.load(cache_file) as stored:
                count = int(stored["count"])
                return [(stored[f"v{i}"], stored[f"f{i}"]) for i in range(count)], True
        except (OSError, KeyError, ValueError):
            log.warning("ignoring unreadable CoACD cache entry %s", cache_file)
    try:
        import coacd
    except ImportError:
        raise MissingDependencyError("coacd", "assets") from None
    coacd.set_log_level("error")
    parts = []
    # one run per connected piece: CoACD's manifold preprocessing of a multi-piece mesh
    # inflates it by a voxel (cm); each watertight piece is decomposed as it is
    for piece in sorted(mesh.split(only_watertight=False), key=lambda m: tuple(m.bounds[0])):
        parts += coacd.run_coacd(coacd.Mesh(np.asarray(piece.vertices), np.asarray(piece.faces)),
                                 threshold=config.threshold, max_convex_hull=config.max_convex_hull,
                                 preprocess_mode="off" if piece.is_watertight else "on",
                                 resolution=config.resolution, preprocess_resolution=config.preprocess_resolution,
                                 mcts_iterations=config.mcts_iterations, mcts_max_depth=config.mcts_max_depth,
                                 decimate=True, max_ch_vertex=config.max_hull_vertices, seed=config.seed)
    hulls = []
    for v, f in parts:
        v = np.asarray(v, dtype=np.float64)
        f = np.asarray(f, dtype=np.int64)
        if len(f) >= 4 and np.ptp(v, axis=0).min() > 1e-6:
            hulls.append((v, f))
    if not hulls:  # CoACD gave nothing usable: the part's own convex hull
        h = hull(vertices, "coacd fallback")
        hulls = [(np.asarray(h.vertices), np.asarray(h.faces, dtype=np.int64))]
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"count": np.array(len(hulls))}
        for i, (v, f) in enumerate(hulls):
            arrays[f"v{i}"], arrays[f"f{i}"] = v, f
        temporary = cache_file.with_name(f".{cache_file.stem}.tmp.npz")
        np.savez(temporary, **arrays)
        temporary.replace(cache_file)
    return hulls, False


def load_part_mesh(path: Path):
    """Vertices and faces of a mesh file (OBJ/STL/PLY/GLB…); InputFileError for unreadable files."""
    from physforge.world.mesh_io import load_mesh_arrays

    return load_mesh_arrays(path)
