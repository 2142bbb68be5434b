"""Image-to-dynamics examples read from a ``physforge data generate`` folder (no torch import).

One example per scene: the first rendered frame, the known scene (the serialized ``World``, which
bodies are the free objects, their initial positions and sizes) and the simulator's future
positions of those objects, resampled to the generator's step ``dt``.

Arrays: image (S, S, 3) uint8; initial (max_objects, 3) float32 m, world frame; size (max_objects,)
float32 m (the data engine's characteristic size); velocity (max_objects, 3) float32 m/s, world
frame, the known initial velocity (part of the scene's state, not visible in one frame); mask
(max_objects,) bool (slot holds an object); properties (max_objects, 3) float32: sliding friction
coefficient, restitution and log10 of the mass in kg of each object (from the known ``World``;
one frame shows none of them); support (max_objects, 6) float32: what each object rests on at the
start, from the known ``World`` (``object_support``): the unit normal of the surface (world frame,
zero when it rests on nothing), the sliding friction of that contact (of the ground, where it comes
down, when it rests on nothing), whether the object can roll
(1 for a single-sphere body, else 0) and its I / (m r^2) (0.4 for a solid ball);
target (horizon + 1, max_objects, 3) float64 m, world frame, frame 0 = the conditioning frame;
quaternion (horizon + 1, max_objects, 4) (w, x, y, z) of the reference.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physforge.dynamics.errors import DynamicsDataError

log = logging.getLogger(__name__)

#: s, how far a recorded state time may sit from a multiple of dt and still be used
TIME_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Example:
    scene_id: str
    split: str
    family: str
    image: np.ndarray
    bodies: tuple[str, ...]
    initial: np.ndarray
    velocity: np.ndarray
    size: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    quaternion: np.ndarray
    world_json: str
    gravity: np.ndarray
    properties: np.ndarray
    support: np.ndarray

    def world(self):
        from physforge.world import world_from_dict

        return world_from_dict(json.loads(self.world_json))


def decode_png(data: bytes) -> np.ndarray:
    """One dataset frame as (H, W, 3) uint8; a downloaded dataset is untrusted, so it goes through load_image."""
    from physforge.images import load_image

    return load_image(data, min_side=1, name="dataset frame (PNG)")


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of (H, W, 3) uint8 to (size, size, 3)."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    rows = np.minimum((np.arange(size) + 0.5) * h / size, h - 1).astype(int)
    cols = np.minimum((np.arange(size) + 0.5) * w / size, w - 1).astype(int)
    return image[rows][:, cols]


def example_from_row(row: dict, *, horizon: int, dt: float, max_objects: int, image_size: int,
                     with_properties: bool = True) -> Example | None:
    """An Example from a scenes-table row, or None when the scene has no free object, more than
    ``max_objects`` of them, or too short a recording for ``horizon`` steps of ``dt``.
    with_properties: fill ``properties`` (compiles the world once; else zeros)."""
    world = json.loads(row["world"])
    joints = {b["name"]: (b.get("joint") or {}).get("type") for b in world["bodies"]}
    bodies = tuple(o["name"] for o in row["objects"] if joints.get(o["name"]) == "free")
    if not bodies or len(bodies) > max_objects:
        return None
    states = row["states"]
    times = np.asarray(states["time"])
    wanted = np.arange(horizon + 1) * dt
    index = np.searchsorted(times, wanted - TIME_TOLERANCE)
    if index[-1] >= len(times) or np.any(np.abs(times[np.minimum(index, len(times) - 1)] - wanted) > TIME_TOLERANCE):
        return None
    names = list(states["body_names"])
    columns = [names.index(b) for b in bodies]
    position = np.asarray(states["position"], dtype=np.float64)[index][:, columns]
    quaternion = np.asarray(states["quaternion"], dtype=np.float64)[index][:, columns]
    n = len(bodies)
    velocity = np.zeros((max_objects, 3), np.float32)
    velocity[:n] = np.asarray(states["linear_velocity"], dtype=np.float64)[0][columns]
    target = np.zeros((horizon + 1, max_objects, 3))
    target[:, :n] = position
    quats = np.zeros((horizon + 1, max_objects, 4))
    quats[..., 0] = 1.0
    quats[:, :n] = quaternion
    sizes = {o["name"]: o["size"] for o in row["objects"]}
    size = np.zeros(max_objects, np.float32)
    size[:n] = [sizes[b] for b in bodies]
    mask = np.zeros(max_objects, bool)
    mask[:n] = True
    image = resize_image(decode_png(row["frames"][0]["bytes"])[..., :3], image_size)
    from physforge.world import world_from_dict

    known = world_from_dict(world)
    properties = object_properties(known, bodies, max_objects) if with_properties else \
        np.zeros((max_objects, 3), np.float32)
    return Example(scene_id=row["scene_id"], split=row["split"], family=row["family"], image=image, bodies=bodies,
                   initial=target[0].astype(np.float32), velocity=velocity, size=size, mask=mask, target=target,
                   quaternion=quats,
                   world_json=row["world"], gravity=np.asarray(world["gravity"], dtype=np.float64),
                   properties=properties, support=object_support(known, bodies, max_objects))


def object_properties(world, bodies: tuple[str, ...], max_objects: int) -> np.ndarray:
    """(max_objects, 3) float32: sliding friction, restitution (the largest over each body's geoms:
    MuJoCo uses the larger of two touching materials) and log10(mass / kg) of ``bodies``, in order;
    empty slots are zero. Masses come from the compiled model (``physforge.sim``), so explicit
    inertials and densities count exactly as in simulation."""
    from physforge.sim.poses import BodyPoseProbe

    out = np.zeros((max_objects, 3), np.float32)
    masses = BodyPoseProbe(world, bodies).masses
    for i, name in enumerate(bodies):
        materials = [g.material for g in world.body(name).geoms]
        out[i] = (max(m.friction[0] for m in materials), max(m.restitution for m in materials),
                  np.log10(max(masses[i], 1e-9)))
    return out


#: m, an object this close to another surface at the start rests on it (the data engine places
#: objects 0.5 mm above a ramp)
SUPPORT_DISTANCE = 0.005


def object_support(world, bodies: tuple[str, ...], max_objects: int) -> np.ndarray:
    """(max_objects, 6) float32, see the module doc: normal (3), contact friction, rolls, I / (m r^2)
    of ``bodies`` at their initial poses; empty slots and objects resting on nothing are zero.
    Normals and friction come from the compiled world (``BodyPoseProbe.support``)."""
    from physforge.sim.poses import BodyPoseProbe
    from physforge.world import Sphere

    out = np.zeros((max_objects, 6), np.float32)
    probe = BodyPoseProbe(world, bodies)
    normals, friction = probe.support(SUPPORT_DISTANCE)
    model = probe.model
    for i, name in enumerate(bodies):
        out[i, :3], out[i, 3] = normals[i], friction[i]
        geoms = world.body(name).geoms
        if len(geoms) == 1 and isinstance(geoms[0].shape, Sphere):
            body = probe.compiled.body_id(name)
            radius = geoms[0].shape.radius
            out[i, 4] = 1.0
            out[i, 5] = float(model.body_inertia[body][0] / (model.body_mass[body] * radius ** 2))
    return out


def object_size(body) -> float:
    """m, a free body's characteristic size as the data engine reports it: sphere radius, box half
    extent, cylinder / capsule radius or half length (the largest over the colliding geoms)."""
    sizes = []
    for geom in body.geoms:
        shape = geom.shape
        for attribute in ("radius", "half_length"):
            if hasattr(shape, attribute):
                sizes.append(float(getattr(shape, attribute)))
        if hasattr(shape, "half_extents"):
            sizes.append(float(max(shape.half_extents)))
    return max(sizes) if sizes else 0.0


def example_from_world(world, image: np.ndarray, *, max_objects: int, image_size: int, horizon: int) -> Example:
    """A condition (no known future: ``target`` repeats the initial positions) from a known scene and
    its image: every top-level free body of ``world`` is an object, at its initial pose and velocity."""
    from physforge.world import world_to_dict

    bodies = tuple(b.name for b in world.bodies if b.joint.type == "free" and b.parent is None)
    if not bodies:
        raise DynamicsDataError(f"world {world.name!r} has no free body to predict; objects need a free joint")
    if len(bodies) > max_objects:
        raise DynamicsDataError(f"world {world.name!r} has {len(bodies)} free bodies; the generator has "
                                f"{max_objects} object slots")
    n = len(bodies)
    initial = np.zeros((max_objects, 3), np.float32)
    initial[:n] = [world.body(b).pose.position for b in bodies]
    size = np.zeros(max_objects, np.float32)
    size[:n] = [object_size(world.body(b)) for b in bodies]
    velocity = np.zeros((max_objects, 3), np.float32)
    velocity[:n] = [world.body(b).velocity for b in bodies]
    mask = np.zeros(max_objects, bool)
    mask[:n] = True
    quats = np.zeros((horizon + 1, max_objects, 4))
    quats[..., 0] = 1.0
    quats[:, :n] = [world.body(b).pose.quaternion for b in bodies]
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] < 3:
        raise DynamicsDataError(f"image: expected an RGB image (H, W, 3), got shape {image.shape}")
    return Example(scene_id=world.name, split="", family="", image=resize_image(image[..., :3], image_size),
                   bodies=bodies, initial=initial, velocity=velocity, size=size, mask=mask,
                   target=np.repeat(initial[None].astype(np.float64), horizon + 1, 0), quaternion=quats,
                   world_json=json.dumps(world_to_dict(world)), gravity=np.asarray(world.gravity, dtype=np.float64),
                   properties=object_properties(world, bodies, max_objects),
                   support=object_support(world, bodies, max_objects))


def load_examples(dataset: str | Path, split: str, *, horizon: int, dt: float, max_objects: int, image_size: int,
                  limit: int | None = None, with_properties: bool = True) -> list[Example]:
    """Examples of one split, in scene order (see ``example_from_row`` for what is skipped)."""
    import pyarrow.parquet as pq

    folder = Path(dataset)
    if not (folder / "meta" / "info.json").is_file():
        raise DynamicsDataError(f"{folder}: not a physforge dataset (no meta/info.json); make one with "
                                "`physforge data generate`")
    files = sorted((folder / "scenes" / split).glob("*.parquet"))
    if not files:
        raise DynamicsDataError(f"{folder}: split {split!r} has no scenes; splits here: "
                                f"{sorted(p.name for p in (folder / 'scenes').iterdir())}")
    out, skipped = [], 0
    columns = ["scene_id", "split", "family", "frames", "objects", "states", "world"]
    for path in files:
        for row in pq.read_table(path, columns=columns).to_pylist():
            example = example_from_row(row, horizon=horizon, dt=dt, max_objects=max_objects, image_size=image_size,
                                       with_properties=with_properties)
            if example is None:
                skipped += 1
                continue
            out.append(example)
            if limit is not None and len(out) >= limit:
                return out
    if skipped:
        log.info("%s/%s: skipped %d scenes (no free object, more than %d, or shorter than %d steps of %g s)",
                 folder, split, skipped, max_objects, horizon, dt)
    if not out:
        raise DynamicsDataError(f"{folder}/{split}: no usable scene for horizon {horizon} x dt {dt} s with at most "
                                f"{max_objects} objects; generate with predict_horizon >= {horizon * dt:g} s")
    return out


def available_splits(dataset: str | Path) -> list[str]:
    root = Path(dataset) / "scenes"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.parquet"))) if root.is_dir() else []
