"""Mesh + annotation -> sim-ready articulated asset (a ``physforge.world.World``).

Per part: repair to watertight, mass properties from the watertight volume x density,
collision from exact convex pieces (library) or CoACD (cached by content hash), the visual
mesh kept separate. Per kinematic group: one rigid body with an explicit inertial, its joint
with limits from the annotation, and damping / friction loss sized so the part holds any
pose in its range against gravity (a door stays where it is left).

Body frames: every body's origin sits at its joint pivot, axes parallel to the object frame;
the base's origin is the object origin.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from physforge.assets import geometry as geo
from physforge.assets.geometry import CoacdConfig, CollisionPiece, MassProperties, MeshQualityError
from physforge.assets.materials import lookup
from physforge.assets.schema import AssetAnnotation, KinematicGroup
from physforge.assets.source import SourceAsset
from physforge.world import Body, Geom, Inertial, Joint, Material, Mesh, Pose, World

log = logging.getLogger(__name__)

GRAVITY = 9.81
REPAIR_MODES = ("strict", "hull", "voxel")
COLLISION_MODES = ("auto", "coacd", "hull")


@dataclass(frozen=True)
class BuildConfig:
    """How a source becomes a sim-ready asset.

    base: None keeps the annotation's choice; "fixed" welds the base to the world, "free" lets
        the object rest on the floor.
    collision: auto (exact pieces when the source has them, else CoACD), coacd (always), or
        hull (one convex hull per part; fast, fills cavities).
    repair: strict (refuse non-watertight meshes), hull (fall back to the convex hull), voxel
        (fall back to a voxelised, marching-cubes remesh at ``repair_resolution`` cells).
    cache_dir: CoACD result cache (None: no cache).
    hold_factor: friction loss = hold_factor x the largest gravity torque (N·m) or force (N)
        the joint must resist anywhere in its range.
    damping_time: s; joint damping = 2 x (moving inertia or mass) / damping_time, so a
        pushed part slows to rest within about this time.
    min_frictionloss: N·m per (kg·m) of moving mass x reach (revolute) or N per kg (prismatic):
        the stiction floor that keeps parts still when gravity does not load the joint.
    """

    base: str | None = None
    collision: str = "auto"
    repair: str = "strict"
    repair_resolution: int = 64
    coacd: CoacdConfig = CoacdConfig()
    cache_dir: Path | None = None
    hold_factor: float = 2.0
    damping_time: float = 0.3
    min_frictionloss: float = 0.5
    timestep: float = 0.002

    def __post_init__(self):
        if self.base not in (None, "fixed", "free"):
            raise ValueError(f"base must be 'fixed', 'free' or None, got {self.base!r}")
        if self.collision not in COLLISION_MODES:
            raise ValueError(f"collision must be one of {COLLISION_MODES}, got {self.collision!r}")
        if self.repair not in REPAIR_MODES:
            raise ValueError(f"repair must be one of {REPAIR_MODES}, got {self.repair!r}")
        if not 16 <= self.repair_resolution <= 256:
            raise ValueError(f"repair_resolution must lie in [16, 256], got {self.repair_resolution}")
        if not self.hold_factor >= 1.0:
            raise ValueError(f"hold_factor must be >= 1 (it is a safety factor), got {self.hold_factor}")
        if not self.damping_time > 0:
            raise ValueError(f"damping_time must be > 0 s, got {self.damping_time}")
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        return data


@dataclass(frozen=True)
class PartPhysics:
    """What the pipeline computed for one part (object frame)."""

    label: int
    name: str
    body: str
    mass: MassProperties
    visual: tuple[np.ndarray, np.ndarray]
    collision: tuple[CollisionPiece, ...]
    repaired: str  # "none", "hull" or "voxel"
    coacd_cache_hit: bool | None  # None when CoACD did not run


@dataclass(frozen=True)
class SimAsset:
    """A sim-ready asset: the annotation, per-part physics and the world (base at the origin)."""

    annotation: AssetAnnotation
    parts: tuple[PartPhysics, ...]
    world: World
    body_origins: dict[str, np.ndarray]
    config: BuildConfig = field(default_factory=BuildConfig)

    def body_parts(self, body: str) -> list[PartPhysics]:
        return [p for p in self.parts if p.body == body]


def build_asset(source: SourceAsset, config: BuildConfig = BuildConfig()) -> SimAsset:
    """Attach physics to ``source``; raises MeshQualityError naming the part on bad geometry."""
    annotation = source.annotation
    if config.base is not None and config.base != annotation.base:
        import dataclasses

        annotation = dataclasses.replace(annotation, base=config.base)
    owner = {label: g for g in annotation.groups for label in g.parts}
    parts = []
    for part in annotation.parts:
        group = owner[part.label]
        where = f"part {part.label} ({part.name})"
        vertices, faces = source.meshes[part.label]
        mesh, repaired = _watertight(vertices, faces, where, config)
        mass = geo.mass_properties(mesh, part.density)
        pieces = source.collision.get(part.label) if config.collision == "auto" else None
        cache_hit = None
        if pieces is None:
            if config.collision == "hull":
                h = geo.hull(mesh.vertices, where)
                hulls = [(np.asarray(h.vertices), np.asarray(h.faces, dtype=np.int64))]
            else:
                hulls, cache_hit = geo.convex_decomposition(mesh, config.coacd, config.cache_dir)
            pieces = tuple(CollisionPiece(Mesh(vertices=v, faces=f)) for v, f in hulls)
        parts.append(PartPhysics(label=part.label, name=part.name, body=annotation.body_name(group), mass=mass,
                                 visual=(np.asarray(mesh.vertices, dtype=np.float64),
                                         np.asarray(mesh.faces, dtype=np.int64)),
                                 collision=tuple(pieces), repaired=repaired, coacd_cache_hit=cache_hit))
    _check_extent(parts, annotation)
    origins = {annotation.body_name(g): (np.zeros(3) if g.index == 0 else np.array(g.pivot)) for g in annotation.groups}
    world = make_world(annotation, parts, origins, config)
    return SimAsset(annotation=annotation, parts=tuple(parts), world=world, body_origins=origins, config=config)


def _watertight(vertices, faces, where: str, config: BuildConfig):
    try:
        return geo.repair(vertices, faces, where), "none"
    except MeshQualityError as err:
        if config.repair == "strict" or "cap" in str(err):
            raise
        if config.repair == "hull":
            log.warning("%s; using its convex hull", err)
            return geo.hull(vertices, where), "hull"
        from physforge.assets.tokens import remesh_watertight

        log.warning("%s; remeshing it from %d^3 voxels", err, config.repair_resolution)
        v, f = remesh_watertight(np.asarray(vertices), np.asarray(faces), config.repair_resolution)
        return geo.repair(v, f, where), "voxel"


def _check_extent(parts: list[PartPhysics], annotation: AssetAnnotation) -> None:
    points = np.concatenate([p.visual[0] for p in parts])
    extent = np.ptp(points, axis=0)
    if extent.max() > geo.MAX_OBJECT_SIZE:
        raise MeshQualityError(f"object '{annotation.name}' is {extent.max():.3g} m across, more than the cap of "
                               f"{geo.MAX_OBJECT_SIZE} m; is it in millimetres? scale it to metres")


def make_world(annotation: AssetAnnotation, parts: list[PartPhysics] | tuple[PartPhysics, ...],
               origins: dict[str, np.ndarray], config: BuildConfig, *,
               mesh_paths: dict[int, str] | None = None, hull_paths: dict[tuple[int, int], str] | None = None,
               joint_positions: dict[str, float] | None = None) -> World:
    """The world of the asset. mesh_paths / hull_paths: reference mesh files (relative to the
    asset folder, object frame) instead of embedding arrays. joint_positions: initial joint
    positions by body name (rad or m)."""
    by_body: dict[str, list[PartPhysics]] = {}
    for part in parts:
        by_body.setdefault(part.body, []).append(part)
    groups = {g.index: g for g in annotation.groups}
    names = {g.index: annotation.body_name(g) for g in annotation.groups}
    bodies = []
    for group in annotation.groups:
        name = names[group.index]
        origin = origins[name]
        members = by_body[name]
        mass = geo.combine([p.mass for p in members])
        tensor = mass.inertia
        inertial = Inertial(mass=mass.mass, center_of_mass=tuple(mass.center_of_mass - origin),
                            inertia=(tensor[0, 0], tensor[1, 1], tensor[2, 2], tensor[0, 1], tensor[0, 2],
                                     tensor[1, 2]))
        geoms = []
        for part in members:
            props, _ = lookup(annotation.part(part.label).material)
            material = Material(name=props.name, density=annotation.part(part.label).density,
                                friction=(props.friction, 0.005, 0.0001), restitution=props.restitution)
            rgba = _colour(props.name)
            shift = Pose(tuple(-origin))
            if mesh_paths is not None:
                visual = Mesh(path=mesh_paths[part.label])
            else:
                visual = Mesh(vertices=part.visual[0], faces=part.visual[1])
            geoms.append(Geom(visual, pose=shift, material=material, rgba=rgba, collide=False,
                              name=f"{name}.visual.{part.name}"))
            for k, piece in enumerate(part.collision):
                shape = piece.shape
                if isinstance(shape, Mesh) and hull_paths is not None:
                    shape = Mesh(path=hull_paths[(part.label, k)])
                pose = Pose(tuple(np.array(piece.pose.position) - origin), piece.pose.quaternion)
                geoms.append(Geom(shape, pose=pose, material=material, rgba=rgba[:3] + (0.5,), collide=True,
                                  name=f"{name}.collision.{part.name}.{k}"))
        if group.index == 0:
            joint = Joint("free" if annotation.base == "free" else "fixed")
            parent, pose = None, Pose()
        else:
            joint = _joint(annotation, group, groups, by_body, names, config, joint_positions)
            if group.joint_type == "free":
                parent, pose = None, Pose(tuple(origin))
            else:
                parent = names[group.parent]
                pose = Pose(tuple(origin - origins[parent]))
        bodies.append(Body(name, tuple(geoms), pose, joint, parent, inertial))
    return World(bodies=tuple(bodies), name=annotation.name, timestep=config.timestep)


def _colour(material: str) -> tuple[float, float, float, float]:
    palette = {"wood": (0.62, 0.45, 0.3), "plywood": (0.72, 0.58, 0.4), "steel": (0.7, 0.72, 0.75),
               "aluminium": (0.8, 0.82, 0.85), "brass": (0.78, 0.65, 0.3), "glass": (0.7, 0.85, 0.9),
               "plastic": (0.85, 0.85, 0.82), "rubber": (0.15, 0.15, 0.15), "stone": (0.5, 0.5, 0.52),
               "fabric": (0.35, 0.4, 0.6), "cardboard": (0.7, 0.6, 0.45)}
    return (*palette.get(material, (0.6, 0.6, 0.65)), 1.0)


def subtree_groups(annotation: AssetAnnotation, index: int) -> list[KinematicGroup]:
    out, stack = [], [index]
    while stack:
        current = stack.pop()
        out.append(annotation.group(current))
        stack.extend(g.index for g in annotation.groups if g.parent == current and g.joint_type != "free")
    return out


def joint_loads(annotation: AssetAnnotation, group: KinematicGroup, by_body: dict[str, list[PartPhysics]],
                names: dict[int, str]) -> dict[str, float]:
    """Mass (kg) moved by the joint, its reach (m: farthest moving point from the axis), the
    largest gravity torque (N·m) or force (N) over any pose, and the moving inertia about the axis."""
    members = [p for g in subtree_groups(annotation, group.index) for p in by_body[names[g.index]]]
    mass = geo.combine([p.mass for p in members])
    axis, pivot = np.array(group.axis), np.array(group.pivot)
    points = np.concatenate([p.visual[0] for p in members]) - pivot
    radial = points - np.outer(points @ axis, axis)
    reach = float(np.sqrt((radial**2).sum(1)).max())
    horizontal = math.sqrt(max(0.0, 1.0 - axis[2] ** 2))  # |axis x z|: how much gravity can turn it
    d = mass.center_of_mass - pivot
    d_perp = d - (d @ axis) * axis
    moment = float(axis @ mass.inertia @ axis + mass.mass * (d_perp @ d_perp))
    if group.joint_type == "prismatic":
        load = mass.mass * GRAVITY * abs(axis[2])
    elif group.joint_type == "ball":
        load = mass.mass * GRAVITY * reach
    else:  # revolute and revolute_prismatic: torque, plus the slide's weight
        load = mass.mass * GRAVITY * reach * horizontal
        if group.joint_type == "revolute_prismatic":
            load = max(load, mass.mass * GRAVITY * abs(axis[2]))
    return {"mass": mass.mass, "reach": reach, "gravity_load": load, "moment": moment}


def _joint(annotation, group, groups, by_body, names, config: BuildConfig, joint_positions) -> Joint:
    if group.joint_type == "free":
        return Joint("free")
    if group.joint_type == "fixed":
        return Joint("fixed")
    loads = joint_loads(annotation, group, by_body, names)
    if group.joint_type == "prismatic":
        floor = config.min_frictionloss * loads["mass"]
        damping = 2.0 * loads["mass"] / config.damping_time
    else:
        floor = config.min_frictionloss * loads["mass"] * max(loads["reach"], 0.01)
        damping = 2.0 * loads["moment"] / config.damping_time
    frictionloss = max(config.hold_factor * loads["gravity_load"], floor)
    initial = 0.0
    if joint_positions and names[group.index] in joint_positions:
        initial = float(joint_positions[names[group.index]])
    return Joint(group.joint_type, axis=group.axis, pivot=(0.0, 0.0, 0.0), range=group.range,
                 slide_range=group.slide_range, damping=float(f"{damping:.6g}"),
                 frictionloss=float(f"{frictionloss:.6g}"), armature=float(f"{0.01 * loads['moment']:.6g}")
                 if group.joint_type != "prismatic" else float(f"{0.01 * loads['mass']:.6g}"),
                 initial_position=initial)
