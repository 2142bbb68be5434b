"""A procedural library of articulated objects, deterministic by seed.

    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    source = generate("cabinet", rng, seed=seed)         # SourceAsset: annotation + part meshes

Every object is built from boxes and cylinders (so its convex decomposition is exact and
known), sized in metres from randomised ranges, with randomised part counts, joint
placements, ranges and materials. Frames: z up, front +y, resting on z = 0, centred in x, y.
Moving parts keep a few millimetres of clearance from everything they do not hinge on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from physforge.assets.geometry import CollisionPiece
from physforge.assets.materials import MATERIALS
from physforge.assets.schema import AssetAnnotation, KinematicGroup, PartAnnotation
from physforge.assets.source import SourceAsset
from physforge.world import Box, Cylinder, Pose

#: Gap (m) between a moving part and the parts it must not touch.
CLEARANCE = 0.003


@dataclass(frozen=True)
class _Piece:
    kind: str  # box or cylinder
    center: tuple[float, float, float]
    size: tuple[float, float, float]  # box: full sizes; cylinder: (radius, radius, length)
    axis: str = "z"  # cylinder axis, or the box's rotation axis
    angle: float = 0.0  # box rotation about ``axis``, rad

    def quaternion(self) -> tuple[float, float, float, float]:
        if self.kind == "cylinder":
            return {"z": (1.0, 0.0, 0.0, 0.0), "x": (math.sqrt(0.5), 0.0, math.sqrt(0.5), 0.0),
                    "y": (math.sqrt(0.5), -math.sqrt(0.5), 0.0, 0.0)}[self.axis]
        half = 0.5 * self.angle
        s = math.sin(half)
        v = {"x": (s, 0.0, 0.0), "y": (0.0, s, 0.0), "z": (0.0, 0.0, s)}[self.axis]
        return (math.cos(half), *v)

    def collision(self, shift=(0.0, 0.0, 0.0)) -> CollisionPiece:
        pose = Pose(tuple(float(c + s) for c, s in zip(self.center, shift)), self.quaternion())
        if self.kind == "box":
            return CollisionPiece(Box(tuple(0.5 * s for s in self.size)), pose)
        return CollisionPiece(Cylinder(self.size[0], 0.5 * self.size[2]), pose)

    def manifold(self):
        import manifold3d

        if self.kind == "box":
            solid = manifold3d.Manifold.cube(list(self.size), True)
        else:
            solid = manifold3d.Manifold.cylinder(self.size[2], self.size[0], self.size[0], 40, True)
        w, x, y, z = self.quaternion()
        rotation = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        matrix = np.concatenate([rotation, np.array(self.center).reshape(3, 1)], axis=1)
        return solid.transform(matrix.tolist())


def box(center, size, *, axis: str = "z", angle: float = 0.0) -> _Piece:
    """A box centred at ``center`` (m) with full ``size`` (m), optionally turned ``angle`` rad about ``axis``."""
    return _Piece("box", tuple(float(c) for c in center), tuple(float(s) for s in size), axis, float(angle))


def cylinder(center, radius: float, length: float, axis: str = "z") -> _Piece:
    return _Piece("cylinder", tuple(float(c) for c in center), (float(radius), float(radius), float(length)), axis)


class _Builder:
    def __init__(self, category: str, rng: np.random.Generator, seed: int | None, base: str = "free"):
        self.category, self.rng, self.seed, self.base = category, rng, seed, base
        self.parts: list[PartAnnotation] = []
        self.pieces: dict[int, list[_Piece]] = {}
        self.groups: list[KinematicGroup] = []
        self._group_parts: dict[int, list[int]] = {0: []}

    def u(self, low: float, high: float, digits: int = 3) -> float:
        """A uniform sample rounded to ``digits`` decimals (mm for lengths)."""
        return round(float(self.rng.uniform(low, high)), digits)

    def choice(self, options):
        return options[int(self.rng.integers(len(options)))]

    def part(self, name: str, material: str, pieces: list[_Piece], *, group: int = 0, rank: int = 3,
             basic: str = "", function: str = "", movement: str = "static", grasp: str = "not grasped",
             density: float | None = None) -> int:
        label = len(self.parts)
        props = MATERIALS[material]
        self.parts.append(PartAnnotation(
            label=label, name=name, material=material, density=float(density or props.density),
            youngs_modulus=props.youngs_modulus, poisson_ratio=props.poisson_ratio, affordance_rank=rank,
            basic_description=basic or f"the {name.replace('_', ' ')} of the {self.category.replace('_', ' ')}",
            functional_description=function or f"part of the {self.category.replace('_', ' ')}",
            movement_description=movement, grasp_description=grasp))
        self.pieces[label] = pieces
        self._group_parts.setdefault(group, []).append(label)
        return label

    def joint(self, index: int, parent: int, joint_type: str, axis, pivot, range_=None, slide_range=None,
              name: str | None = None) -> int:
        self.groups.append(KinematicGroup(index=index, parts=(0,), parent=parent, joint_type=joint_type,
                                          axis=tuple(float(a) for a in axis), pivot=tuple(float(p) for p in pivot),
                                          range=range_, slide_range=slide_range, name=name))
        self._group_parts.setdefault(index, [])
        return index

    def finish(self, name: str) -> SourceAsset:
        import manifold3d

        groups = [KinematicGroup(0, tuple(self._group_parts[0]), None, "fixed", name="base")]
        for g in self.groups:
            groups.append(KinematicGroup(g.index, tuple(self._group_parts[g.index]), g.parent, g.joint_type, g.axis,
                                         g.pivot, g.range, g.slide_range, g.name))
        meshes, collision = {}, {}
        low, high = np.full(3, np.inf), np.full(3, -np.inf)
        for label, pieces in self.pieces.items():
            solid = manifold3d.Manifold.batch_boolean([p.manifold() for p in pieces], manifold3d.OpType.Add)
            mesh = solid.to_mesh64()
            vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
            faces = np.asarray(mesh.tri_verts, dtype=np.int64)
            meshes[label] = (vertices, faces)
            low, high = np.minimum(low, vertices.min(0)), np.maximum(high, vertices.max(0))
        # object frame: centred in x and y, resting on z = 0
        shift = np.array([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, -low[2]])
        for label, pieces in self.pieces.items():
            vertices, faces = meshes[label]
            meshes[label] = (vertices + shift, faces)
            collision[label] = tuple(p.collision(shift) for p in pieces)
        groups = [g if g.index == 0 else KinematicGroup(g.index, g.parts, g.parent, g.joint_type, g.axis,
                                                        tuple(float(v) for v in np.array(g.pivot) + shift), g.range,
                                                        g.slide_range, g.name) for g in groups]
        low, high = low + shift, high + shift
        annotation = AssetAnnotation(name=name, category=self.category,
                                     dimensions=tuple(float(round(d, 6)) for d in high - low), parts=tuple(self.parts),
                                     groups=tuple(groups), base=self.base, source="physforge.library", seed=self.seed)
        return SourceAsset(annotation=annotation, meshes=meshes, collision=collision)


def _open_box(w: float, d: float, h: float, t: float, *, z0: float = 0.0, front: bool = False, top: bool = False):
    """Bottom, back, left and right walls (plus optional front and top) of a box w x d x h from z0."""
    pieces = [box((0, 0, z0 + t / 2), (w, d, t)),
              box((0, -d / 2 + t / 2, z0 + h / 2), (w, t, h)),
              box((-w / 2 + t / 2, 0, z0 + h / 2), (t, d, h)),
              box((w / 2 - t / 2, 0, z0 + h / 2), (t, d, h))]
    if front:
        pieces.append(box((0, d / 2 - t / 2, z0 + h / 2), (w, t, h)))
    if top:
        pieces.append(box((0, 0, z0 + h - t / 2), (w, d, t)))
    return pieces


def _vertical_handle(b: _Builder, x: float, y_face: float, z: float, length: float, group: int, name: str) -> int:
    material = b.choice(["steel", "aluminium", "brass", "plastic"])
    return b.part(name, material, [box((x, y_face + 0.0125, z), (0.012, 0.025, length))], group=group, rank=10,
                  function="pulled to open", movement="moves with its door", grasp="grasped with the fingers")


def _horizontal_handle(b: _Builder, x: float, y_face: float, z: float, length: float, group: int, name: str) -> int:
    material = b.choice(["steel", "aluminium", "brass", "plastic"])
    return b.part(name, material, [box((x, y_face + 0.0125, z), (length, 0.025, 0.012))], group=group, rank=10,
                  function="pulled to open", movement="moves with its drawer", grasp="grasped with the fingers")


# -- categories ----------------------------------------------------------------------------

def _cabinet(b: _Builder) -> str:
    w, d, h, t = b.u(0.4, 1.0), b.u(0.3, 0.55), b.u(0.5, 1.2), 0.018
    wood = b.choice(["wood", "plywood"])
    b.part("carcass", wood, _open_box(w, d, h, t, top=True), rank=2, function="holds the shelves and doors")
    for k in range(int(b.rng.integers(0, 3))):
        z = (k + 1) * h / (int(k) + 3)
        b.part(f"shelf_{k}", wood, [box((0, -t / 2, z), (w - 2 * t - 0.001, d - t - 0.001, t))], rank=4,
               function="holds items")
    doors = 2 if w > 0.65 else int(b.rng.integers(1, 3))
    y0, td = d / 2 + CLEARANCE, 0.018
    zc, hd = h / 2, h - 2 * CLEARANCE
    open_max = b.u(1.6, 2.0)
    if doors == 1:
        hinge_left = bool(b.rng.integers(2))
        sign = -1.0 if hinge_left else 1.0
        b.joint(1, 0, "revolute", (0, 0, 1.0 if hinge_left else -1.0), (sign * w / 2, y0, zc), (0.0, open_max),
                name="door")
        b.part("door", wood, [box((0, y0 + td / 2, zc), (w, td, hd))], group=1, rank=7, movement="swings open")
        _vertical_handle(b, -sign * (w / 2 - 0.04), y0 + td, zc, min(0.15, 0.3 * h), 1, "door_handle")
    else:
        half = w / 2 - CLEARANCE / 2
        for index, (sign, label) in enumerate(((-1.0, "left"), (1.0, "right")), start=1):
            b.joint(index, 0, "revolute", (0, 0, -sign), (sign * w / 2, y0, zc), (0.0, open_max), name=f"{label}_door")
            cx = sign * (w / 2 - half / 2)
            b.part(f"{label}_door", wood, [box((cx, y0 + td / 2, zc), (half, td, hd))], group=index, rank=7,
                   movement="swings open")
            _vertical_handle(b, sign * (CLEARANCE / 2 + 0.04), y0 + td, zc, min(0.15, 0.3 * h), index,
                             f"{label}_door_handle")
    return f"cabinet_{doors}door"


def _drawer_chest(b: _Builder) -> str:
    n = int(b.rng.integers(2, 6))
    w, d, t = b.u(0.4, 0.9), b.u(0.35, 0.5), 0.018
    slot = b.u(0.12, 0.2)
    h = n * (slot + t) + t
    wood = b.choice(["wood", "plywood"])
    pieces = _open_box(w, d, h, t, top=True)
    for k in range(1, n):
        pieces.append(box((0, 0, k * (slot + t) + t / 2), (w, d, t)))
    b.part("carcass", wood, pieces, rank=2, function="holds the drawers")
    c, tw = 0.004, 0.012
    inner_w = w - 2 * t - 2 * c
    depth = d - t - c - 0.002
    for k in range(n):
        z0 = k * (slot + t) + t
        index = k + 1
        y_front = d / 2 + CLEARANCE
        b.joint(index, 0, "prismatic", (0, 1, 0), (0, y_front, z0 + slot / 2), (0.0, round(0.75 * depth, 3)),
                name=f"drawer_{k}")
        zb, hb = z0 + c, slot - 2 * c - 0.004
        y_back = y_front - depth
        drawer = [box((0, (y_back + y_front) / 2, zb + tw / 2), (inner_w, depth, tw)),
                  box((0, y_back + tw / 2, zb + hb / 2), (inner_w, tw, hb)),
                  box((-inner_w / 2 + tw / 2, (y_back + y_front) / 2, zb + hb / 2), (tw, depth, hb)),
                  box((inner_w / 2 - tw / 2, (y_back + y_front) / 2, zb + hb / 2), (tw, depth, hb)),
                  box((0, y_front + t / 2, z0 + slot / 2), (w - 2 * CLEARANCE, t, slot + t - 2 * CLEARANCE))]
        b.part(f"drawer_{k}", wood, drawer, group=index, rank=7, movement="slides out",
               function="stores items")
        _horizontal_handle(b, 0.0, y_front + t, z0 + slot / 2, min(0.2, 0.4 * w), index, f"drawer_{k}_handle")
    return f"chest_{n}drawers"


def _refrigerator(b: _Builder) -> str:
    w, d, h, t = b.u(0.55, 0.8), b.u(0.55, 0.7), b.u(1.4, 1.9), 0.04
    b.part("body", "plastic", _open_box(w, d, h, t, top=True), rank=2, density=350.0,
           function="insulated cold compartment")
    split = bool(b.rng.integers(2))
    z_split = round(h * b.u(0.25, 0.35), 3) if split else None
    shelves = int(b.rng.integers(1, 4))
    inner_top = h - t
    inner_bottom = z_split + t / 2 if split else t
    for k in range(shelves):
        z = inner_bottom + (k + 1) * (inner_top - inner_bottom) / (shelves + 1)
        b.part(f"shelf_{k}", "glass", [box((0, -t / 2, z), (w - 2 * t - 0.002, d - t - 0.05, 0.006))], rank=5,
               function="holds food")
    if split:
        b.part("divider", "plastic", [box((0, 0, z_split), (w, d, t))], rank=2, density=350.0)
    y0, td = d / 2 + CLEARANCE, 0.05
    spans = [(0.0, z_split), (z_split, h)] if split else [(0.0, h)]
    open_max = b.u(1.6, 1.95)
    for k, (za, zb) in enumerate(spans):
        index = k + 1
        name = ("freezer_door" if k == 0 else "door") if split else "door"
        zc = (za + zb) / 2
        b.joint(index, 0, "revolute", (0, 0, -1), (w / 2, y0, zc), (0.0, open_max), name=name)
        b.part(name, "plastic", [box((0, y0 + td / 2, zc), (w, td, zb - za - 2 * CLEARANCE))], group=index,
               rank=7, density=300.0, movement="swings open")
        _vertical_handle(b, -(w / 2 - 0.05), y0 + td, zc, min(0.3, 0.6 * (zb - za)), index, f"{name}_handle")
    return "refrigerator"


def _microwave(b: _Builder) -> str:
    w, d, h, t = b.u(0.42, 0.6), b.u(0.32, 0.45), b.u(0.25, 0.35), 0.012
    panel = round(0.28 * w, 3)
    cavity_w = w - panel
    b.part("housing", "steel", _open_box(w, d, h, t, top=True)
           + [box((w / 2 - panel + t / 2, 0, h / 2), (t, d, h))], rank=2, density=1200.0)
    b.part("control_panel", "plastic", [box((w / 2 - panel / 2 + t / 2, d / 2 - 0.02, h / 2),
                                            (panel - t, 0.04, h - 2 * t))], rank=8, function="buttons to start it")
    cx = -w / 2 + cavity_w / 2
    plate_r = round(min(cavity_w, d) / 2 - t - 0.02, 3)
    b.joint(1, 0, "revolute", (0, 0, 1), (cx, 0, t), None, name="turntable")
    b.part("turntable", "glass", [cylinder((cx, 0, t + 0.004 + 0.003), plate_r, 0.006)], group=1, rank=4,
           movement="turns while heating")
    y0, td = d / 2 + CLEARANCE, 0.025
    b.joint(2, 0, "revolute", (0, 0, 1), (-w / 2, y0, h / 2), (0.0, b.u(1.5, 1.9)), name="door")
    b.part("door", "plastic", [box((cx, y0 + td / 2, h / 2), (cavity_w - CLEARANCE, td, h - 2 * CLEARANCE))],
           group=2, rank=7, movement="swings open")
    b.part("window", "glass", [box((cx - 0.01, y0 + td + 0.002, h / 2), (cavity_w * 0.6, 0.004, h * 0.55))],
           group=2, rank=3)
    _vertical_handle(b, -w / 2 + cavity_w - 0.03, y0 + td, h / 2, 0.6 * h, 2, "door_handle")
    return "microwave"


def _lidded(b: _Builder, w: float, d: float, h: float, t: float, material: str, lid_t: float, index: int,
            open_max: float) -> None:
    z_lid = h + CLEARANCE
    b.joint(index, 0, "revolute", (1, 0, 0), (0, -d / 2, z_lid), (0.0, open_max), name="lid")
    b.part("lid", material, [box((0, 0, z_lid + lid_t / 2), (w, d, lid_t))], group=index, rank=8,
           movement="lifts open about its back edge", grasp="lifted at the front edge")


def _box_with_lid(b: _Builder) -> str:
    w, d, h = b.u(0.2, 0.7), b.u(0.15, 0.5), b.u(0.1, 0.4)
    material = b.choice(["wood", "plywood", "plastic", "cardboard"])
    t = 0.012 if material != "cardboard" else 0.006
    b.part("box", material, _open_box(w, d, h, t), rank=3, function="holds items")
    _lidded(b, w, d, h, t, material, t, 1, b.u(1.6, 2.0))
    if b.rng.integers(2):
        b.part("latch", "brass", [box((0, d / 2 + 0.005, h + CLEARANCE + t / 2), (0.03, 0.01, 0.012))], group=1,
               rank=10, grasp="pulled up to open")
    return "box_with_lid"


def _laptop(b: _Builder) -> str:
    w, d, hb, tl, ts = b.u(0.28, 0.38), b.u(0.19, 0.26), b.u(0.014, 0.02), b.u(0.005, 0.008), 0.002
    material = b.choice(["aluminium", "plastic"])
    b.part("base", material, [box((0, 0, hb / 2), (w, d, hb))], rank=5, density=1500.0,
           function="holds the keyboard and electronics")
    b.part("keyboard", "plastic", [box((0, 0.02, hb + 0.0005), (w * 0.85, d * 0.45, 0.001))], rank=9,
           function="typed on", grasp="pressed with the fingers")
    z_lid = hb + 0.001 + CLEARANCE
    b.joint(1, 0, "revolute", (1, 0, 0), (0, -d / 2, z_lid), (0.0, b.u(1.9, 2.3)), name="lid")
    b.part("lid", material, [box((0, 0, z_lid + ts + tl / 2), (w, d, tl))], group=1, rank=8, density=1200.0,
           movement="opens about the back edge", grasp="lifted at the front edge")
    b.part("screen", "glass", [box((0, 0.004, z_lid + ts / 2), (w * 0.9, d * 0.85, ts))], group=1, rank=3)
    return "laptop"


def _faucet(b: _Builder) -> str:
    b.base = "fixed"
    metal = b.choice(["steel", "brass"])
    r_mount, h_mount = b.u(0.025, 0.035), b.u(0.01, 0.02)
    r_col, h_col = b.u(0.014, 0.02), b.u(0.12, 0.25)
    b.part("mount", metal, [cylinder((0, 0, h_mount / 2), r_mount, h_mount)], rank=1, density=3000.0)
    b.part("column", metal, [cylinder((0, 0, h_mount + h_col / 2), r_col, h_col + 0.001)], rank=4, density=3000.0)
    z_top = h_mount + h_col + 0.0005
    collar_h = b.u(0.03, 0.05)
    reach = b.u(0.12, 0.22)
    b.joint(1, 0, "revolute", (0, 0, 1), (0, 0, z_top + 0.001), (round(-b.u(0.6, 1.2), 3), round(b.u(0.6, 1.2), 3)),
            name="spout")
    zc = z_top + 0.001 + collar_h / 2
    b.part("spout", metal, [cylinder((0, 0, zc), r_col + 0.004, collar_h),
                            box((0, reach / 2, zc), (0.022, reach, 0.022)),
                            cylinder((0, reach - 0.011, zc - 0.03), 0.011, 0.06)], group=1, rank=6, density=3000.0,
           movement="swivels left and right", function="delivers water")
    z_handle = z_top + 0.001 + collar_h + CLEARANCE
    lever = b.u(0.08, 0.12)
    b.joint(2, 1, "revolute", (-1, 0, 0), (0, 0, z_handle), (0.0, b.u(0.4, 0.7)), name="handle")
    b.part("handle", metal, [box((0, -lever / 2 + 0.01, z_handle + 0.006), (0.016, lever, 0.012))], group=2,
           rank=10, density=3000.0, movement="lifts to open the water", grasp="lifted by the lever end")
    return "faucet"


def _door_in_frame(b: _Builder) -> str:
    b.base = "fixed"
    w, h, t = b.u(0.7, 0.95), b.u(1.9, 2.1), b.u(0.035, 0.045)
    jamb, depth = b.u(0.05, 0.08), round(t + b.u(0.04, 0.08), 3)
    wood = b.choice(["wood", "plywood"])
    gap = 0.004
    frame = [box((-(w / 2 + gap + jamb / 2), 0, (h + gap + jamb) / 2), (jamb, depth, h + gap + jamb)),
             box(((w / 2 + gap + jamb / 2), 0, (h + gap + jamb) / 2), (jamb, depth, h + gap + jamb)),
             box((0, 0, h + gap + jamb / 2), (w + 2 * gap + 2 * jamb, depth, jamb))]
    b.part("frame", wood, frame, rank=1, function="holds the door")
    z0 = 0.008
    b.joint(1, 0, "revolute", (0, 0, 1), (-w / 2, t / 2, z0 + h / 2), (0.0, b.u(1.4, 1.8)), name="door")
    b.part("door", wood, [box((0, 0, z0 + (h - z0) / 2), (w, t, h - z0))], group=1, rank=6,
           movement="swings open about the hinges")
    hx, hz = w / 2 - 0.07, z0 + b.u(0.95, 1.05)
    b.joint(2, 1, "revolute", (0, 1, 0), (hx, t / 2 + 0.03, hz), (-0.7, 0.0), name="handle")
    b.part("handle", "steel", [cylinder((hx, t / 2 + 0.015, hz), 0.01, 0.03, axis="y"),
                               box((hx - 0.06, t / 2 + 0.035, hz), (0.13, 0.012, 0.018))], group=2, rank=10,
           density=3000.0, movement="turns down to unlatch", grasp="pressed down")
    return "door"


def _pedal_bin(b: _Builder) -> str:
    w, d, h = b.u(0.22, 0.35), b.u(0.2, 0.3), b.u(0.3, 0.55)
    material = b.choice(["plastic", "steel"])
    t = 0.006 if material == "plastic" else 0.003
    b.part("bin", material, _open_box(w, d, h, t, front=True), rank=3, function="holds rubbish")
    _lidded(b, w, d, h, t, material, 0.008, 1, b.u(1.2, 1.7))
    z_pivot, y_pivot = 0.04, d / 2 + 0.012
    length = b.u(0.06, 0.1)
    b.joint(2, 0, "revolute", (-1, 0, 0), (0, y_pivot, z_pivot), (0.0, 0.25), name="pedal")
    b.part("pedal", "plastic", [cylinder((0, y_pivot, z_pivot), 0.006, 0.1, axis="x"),
                                box((0, y_pivot + length / 2 + 0.004, z_pivot), (0.1, length, 0.01))], group=2,
           rank=9, movement="pressed down by the foot")
    return "pedal_bin"


def _bottle(b: _Builder) -> str:
    r, h = b.u(0.03, 0.05), b.u(0.15, 0.28)
    material = b.choice(["plastic", "glass"])
    r_neck, h_neck, h_shoulder = round(0.4 * r, 4), b.u(0.015, 0.03), b.u(0.02, 0.04)
    b.part("body", material, [cylinder((0, 0, h / 2), r, h),
                              cylinder((0, 0, h + h_shoulder / 2 - 0.0005), 0.7 * r, h_shoulder),
                              cylinder((0, 0, h + h_shoulder + h_neck / 2 - 0.001), r_neck, h_neck)], rank=6,
           density=900.0, function="holds a drink (filled)", grasp="held around the body")
    z_cap = h + h_shoulder + h_neck - 0.0015 + 0.001
    h_cap = b.u(0.012, 0.02)
    b.joint(1, 0, "revolute_prismatic", (0, 0, 1), (0, 0, z_cap), None, (0.0, b.u(0.008, 0.015)), name="cap")
    b.part("cap", "plastic", [cylinder((0, 0, z_cap + h_cap / 2), r_neck + 0.003, h_cap)], group=1, rank=10,
           movement="unscrews: turns and rises", grasp="twisted between the fingers")
    return "bottle"


def _scissors(b: _Builder) -> str:
    blade, th, lh = b.u(0.07, 0.12), 0.003, b.u(0.05, 0.07)
    ring = b.u(0.018, 0.025)
    for index, side in ((0, 1.0), (1, -1.0)):
        z = th / 2 + index * (th + 0.001)
        y_ring = side * (ring / 2 + 0.004)
        pieces = [box((blade / 2, 0, z), (blade, 0.012, th)),
                  cylinder((0, 0, z), 0.008, th),
                  box((-lh / 2, y_ring / 2, z), (lh, abs(y_ring) + 0.008, th)),
                  box((-lh - ring / 2, y_ring, z), (ring, ring, th))]
        group = 0 if index == 0 else 1
        if index == 1:
            b.joint(1, 0, "revolute", (0, 0, 1), (0, 0, th + 0.0005), (0.0, b.u(0.6, 1.0)), name="upper_half")
        name = "lower" if index == 0 else "upper"
        b.part(f"{name}_blade", "steel", pieces[:3], group=group, rank=4, movement="opens about the pivot screw")
        b.part(f"{name}_grip", "plastic", [pieces[3]], group=group, rank=10, grasp="fingers through the ring")
    return "scissors"


def _chair(b: _Builder) -> str:
    w, d, hs = b.u(0.4, 0.5), b.u(0.4, 0.5), b.u(0.42, 0.48)
    material = b.choice(["wood", "plastic", "steel"])
    leg = 0.03 if material != "steel" else 0.018
    density = None if material != "steel" else 2500.0
    seat_t = 0.03
    for k, (sx, sy) in enumerate(((-1, -1), (1, -1), (-1, 1), (1, 1))):
        b.part(f"leg_{k}", material, [box((sx * (w / 2 - leg / 2), sy * (d / 2 - leg / 2), (hs - seat_t) / 2),
                                          (leg, leg, hs - seat_t + 0.001))], rank=2, density=density)
    b.part("seat", b.choice(["wood", "fabric", "plastic"]), [box((0, 0, hs - seat_t / 2), (w, d, seat_t))], rank=6,
           function="sat on")
    back_h = b.u(0.35, 0.5)
    b.part("backrest", material, [box((0, -d / 2 + 0.01, hs + back_h / 2 - 0.001), (w, 0.02, back_h))], rank=7,
           density=density, function="leaned against", grasp="pulled at the top edge")
    if b.rng.integers(2):
        for k, sx in enumerate((-1, 1)):
            b.part(f"armrest_{k}", material, [box((sx * (w / 2 - 0.02), 0, hs + 0.2), (0.04, d * 0.8, 0.03)),
                                              box((sx * (w / 2 - 0.02), d * 0.3, hs + 0.1), (0.03, 0.03, 0.2))],
                   rank=6, density=density)
    return "chair"


def _table(b: _Builder) -> str:
    w, d, h = b.u(0.6, 1.6), b.u(0.5, 0.9), b.u(0.68, 0.78)
    wood = b.choice(["wood", "plywood", "stone"])
    top_t = 0.03 if wood != "stone" else 0.02
    leg = b.u(0.04, 0.07)
    b.part("top", wood, [box((0, 0, h - top_t / 2), (w, d, top_t))], rank=6, function="holds items")
    for k, (sx, sy) in enumerate(((-1, -1), (1, -1), (-1, 1), (1, 1))):
        b.part(f"leg_{k}", "wood" if wood == "stone" else wood,
               [box((sx * (w / 2 - leg / 2 - 0.02), sy * (d / 2 - leg / 2 - 0.02), (h - top_t) / 2),
                    (leg, leg, h - top_t + 0.001))], rank=2)
    if b.rng.integers(2) and w > 0.8:
        dw, dd, dh = round(0.4 * w, 3), round(d - 2 * leg - 0.1, 3), 0.08
        z_top = h - top_t
        rail_t = 0.015
        b.part("runners", "wood", [box((-(dw / 2 + CLEARANCE + rail_t / 2), 0, z_top - dh / 2 - 0.01),
                                       (rail_t, dd, dh + 0.02 - 0.001)),
                                   box(((dw / 2 + CLEARANCE + rail_t / 2), 0, z_top - dh / 2 - 0.01),
                                       (rail_t, dd, dh + 0.02 - 0.001)),
                                   box((0, 0, z_top - dh - 0.02 - 0.006), (dw + 2 * CLEARANCE + 2 * rail_t, dd, 0.012))],
               rank=1)
        y_front = dd / 2
        b.joint(1, 0, "prismatic", (0, 1, 0), (0, y_front, z_top - dh / 2 - 0.01), (0.0, round(0.7 * dd, 3)),
                name="drawer")
        zb = z_top - dh - 0.02 + CLEARANCE
        b.part("drawer", "wood", [box((0, 0, zb + 0.006), (dw, dd, 0.012)),
                                  box((0, -dd / 2 + 0.006, zb + dh / 2), (dw, 0.012, dh)),
                                  box((-dw / 2 + 0.006, 0, zb + dh / 2), (0.012, dd, dh)),
                                  box((dw / 2 - 0.006, 0, zb + dh / 2), (0.012, dd, dh)),
                                  box((0, dd / 2 - 0.006, zb + dh / 2), (dw, 0.012, dh))], group=1, rank=7,
               movement="slides out")
        _horizontal_handle(b, 0.0, dd / 2, zb + dh / 2, 0.1, 1, "drawer_handle")
    return "table"


def _lamp(b: _Builder) -> str:
    tilt, arm = b.u(0.7, 1.0), b.u(0.2, 0.3)
    # the base must hold the lamp upright with the arm and head reaching out: wide and heavy
    r_base, h_base = max(b.u(0.08, 0.11), round(0.45 * arm, 3)), b.u(0.025, 0.035)
    b.part("base", "stone", [cylinder((0, 0, h_base / 2), r_base, h_base)], rank=3, function="keeps the lamp upright")
    h_post = b.u(0.15, 0.3)
    b.part("post", "aluminium", [cylinder((0, 0, h_base + h_post / 2 - 0.0005), 0.01, h_post)], rank=5)
    z_top = h_base + h_post
    b.joint(1, 0, "revolute", (1, 0, 0), (0, 0, z_top + 0.012), (-0.6, 0.6), name="arm")
    end = (0.0, -arm * math.sin(tilt), z_top + 0.012 + arm * math.cos(tilt))
    b.part("arm", "aluminium", [cylinder((0, 0, z_top + 0.012), 0.01, 0.04, axis="x"),
                                box((0, end[1] / 2, (z_top + 0.012 + end[2]) / 2), (0.015, 0.015, arm), axis="x",
                                    angle=tilt)], group=1, rank=8, movement="tilts forward and back",
           grasp="pushed at the elbow")
    b.joint(2, 1, "ball", (0, 0, 1), (0, end[1], end[2]), (0.0, 0.6), name="head")
    shade_r, shade_h = b.u(0.04, 0.06), b.u(0.06, 0.1)
    b.part("head", "aluminium", [cylinder((0, end[1], end[2]), 0.012, 0.03, axis="x"),
                                 cylinder((0, end[1], end[2] - 0.02 - shade_h / 2), shade_r, shade_h)], group=2,
           rank=9, density=300.0, movement="turns in any direction", grasp="held by the shade")
    return "lamp"


CATEGORIES: dict[str, Callable[[_Builder], str]] = {
    "cabinet": _cabinet, "drawer_chest": _drawer_chest, "refrigerator": _refrigerator, "microwave": _microwave,
    "box_with_lid": _box_with_lid, "laptop": _laptop, "faucet": _faucet, "door": _door_in_frame,
    "pedal_bin": _pedal_bin, "bottle": _bottle, "scissors": _scissors, "chair": _chair, "table": _table,
    "lamp": _lamp,
}


def generate(category: str, rng: np.random.Generator, *, seed: int | None = None, name: str | None = None) -> SourceAsset:
    """One random object of ``category``, drawn with ``rng``; ``seed`` is recorded in the annotation."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose one of {', '.join(sorted(CATEGORIES))}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    builder = _Builder(category, rng, seed)
    label = CATEGORIES[category](builder)
    return builder.finish(name or (label if seed is None else f"{label}_{seed}"))


def object_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of library object ``index`` in a run with ``seed`` (SeedSequence-derived)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
