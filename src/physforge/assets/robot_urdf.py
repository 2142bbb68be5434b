"""Import a robot URDF as a ``physforge.world`` fragment that keeps what the file says.

``import_urdf`` (urdf.py) is for objects: it recomputes masses from geometry and merges parts.
A robot needs the opposite: the URDF's own inertials, joint limits and efforts, link frames
kept as body frames (so joint axes are the file's), and a position servo per actuated joint.

Links joined by fixed joints are folded into one body (inertials combined with the parallel-
axis theorem); ``RobotImport.link_frames`` says where each link ended up. Collision geometry
is the convex hull of each collision mesh (MuJoCo collides with hulls anyway); links outside
``collision_links`` keep their hulls as visual geoms. XML is parsed with defusedxml, mesh paths
(``package://`` resolved against ``package_root``) must stay inside that folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from physforge.assets.urdf import _floats, _transform, parse_untrusted_xml
from physforge.errors import InputFileError
from physforge.world import Actuator, Body, Geom, Inertial, Joint, Material, Mesh, Pose, World, resolve_inside
from physforge.world.mesh_io import load_mesh_arrays

#: Inertials lighter than this (kg) are placeholders (e.g. a grasp-target frame) and dropped.
MIN_LINK_MASS = 1e-6


@dataclass(frozen=True)
class RobotUrdfConfig:
    """How a robot URDF becomes bodies.

    package_root: folder that ``package://`` and relative mesh paths resolve against (None: the
        URDF's folder). base_pose: pose (m, world) of the root link, welded to the world.
    revolute_gain / revolute_damping: position-servo kp (N·m/rad) and kv (N·m·s/rad).
    prismatic_gain / prismatic_damping: kp (N/m) and kv (N·s/m).
    armature: kg·m^2 (or kg) rotor inertia on every actuated joint (steadies stiff servos).
    joint_damping: N·m·s/rad added to the URDF's <dynamics damping>.
    collision_links: link names whose geometry collides; None = every link.
    material: contact material of the colliding geoms.
    """

    package_root: Path | None = None
    base_pose: Pose = Pose()
    revolute_gain: float = 4000.0
    revolute_damping: float = 400.0
    prismatic_gain: float = 2000.0
    prismatic_damping: float = 100.0
    armature: float = 0.1
    joint_damping: float = 1.0
    collision_links: tuple[str, ...] | None = None
    material: Material = Material(name="rubber", density=1000.0, friction=(1.5, 0.005, 0.0001))

    def __post_init__(self):
        for name in ("revolute_gain", "prismatic_gain"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"RobotUrdfConfig.{name} must be a positive number, got {value}")
        for name in ("revolute_damping", "prismatic_damping", "armature", "joint_damping"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"RobotUrdfConfig.{name} must be >= 0, got {value}")
        if not isinstance(self.base_pose, Pose):
            raise TypeError(f"RobotUrdfConfig.base_pose must be a Pose, got {type(self.base_pose).__name__}")
        if self.package_root is not None:
            object.__setattr__(self, "package_root", Path(self.package_root))
        if self.collision_links is not None:
            object.__setattr__(self, "collision_links", tuple(self.collision_links))


@dataclass(frozen=True)
class RobotImport:
    """bodies / actuators: to add to a World. joints: actuated joint names in file order, each
    also the name of its actuator and of the body it moves (``joint_body``). link_frames: link ->
    (body name, (4, 4) float64 transform body-from-link). joint_ranges: joint -> (low, high) rad
    or m. joint_efforts: joint -> N·m or N."""

    bodies: tuple[Body, ...]
    actuators: tuple[Actuator, ...]
    joints: tuple[str, ...]
    joint_body: dict[str, str]
    link_frames: dict[str, tuple[str, np.ndarray]]
    joint_ranges: dict[str, tuple[float, float]]
    joint_efforts: dict[str, float] = field(default_factory=dict)

    def world(self, **world_fields) -> World:
        return World(bodies=self.bodies, actuators=self.actuators, **world_fields)


def _quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(w, x, y, z) of a (3, 3) rotation matrix (Shepperd's method)."""
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = (0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = ((m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s)
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s)
    q = np.array(q)
    q = q / np.linalg.norm(q)
    return tuple(float(v) for v in (q if q[0] >= 0 else -q))


def _pose(matrix: np.ndarray) -> Pose:
    return Pose(tuple(float(v) for v in matrix[:3, 3]), _quaternion(matrix[:3, :3]))


def _hull(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    hull = trimesh.convex.convex_hull(vertices)
    return np.asarray(hull.vertices, dtype=np.float64), np.asarray(hull.faces, dtype=np.int64)


def _link_inertial(link, path: Path) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(mass kg, com (3,) m, inertia (3, 3) kg·m^2 about the com) in the link frame, or None."""
    element = link.find("inertial")
    if element is None:
        return None
    where = f"link '{link.get('name')}' inertial"
    mass_element = element.find("mass")
    mass = float(_floats(mass_element, "value", "0", path, where)[0]) if mass_element is not None else 0.0
    if mass < MIN_LINK_MASS:
        return None
    origin = _transform(element.find("origin"), path, where)
    inertia = element.find("inertia")
    values = {k: 0.0 for k in ("ixx", "iyy", "izz", "ixy", "ixz", "iyz")}
    if inertia is not None:
        for key in values:
            values[key] = float(_floats(inertia, key, "0", path, where)[0])
    tensor = np.array([[values["ixx"], values["ixy"], values["ixz"]],
                       [values["ixy"], values["iyy"], values["iyz"]],
                       [values["ixz"], values["iyz"], values["izz"]]])
    rotation = origin[:3, :3]
    return mass, origin[:3, 3].copy(), rotation @ tensor @ rotation.T


def _combine(parts: list[tuple[float, np.ndarray, np.ndarray]]) -> Inertial | None:
    """One Inertial from (mass, com, inertia about com) triples in a common frame."""
    if not parts:
        return None
    mass = sum(p[0] for p in parts)
    com = sum(p[0] * p[1] for p in parts) / mass
    tensor = np.zeros((3, 3))
    for m, c, inertia in parts:
        d = c - com
        tensor += inertia + m * (np.dot(d, d) * np.eye(3) - np.outer(d, d))
    return Inertial(mass=float(mass), center_of_mass=tuple(float(v) for v in com),
                    inertia=(tensor[0, 0], tensor[1, 1], tensor[2, 2], tensor[0, 1], tensor[0, 2], tensor[1, 2]))


def import_robot_urdf(path: str | Path, config: RobotUrdfConfig = RobotUrdfConfig(),
                      *, name_prefix: str = "") -> RobotImport:
    """Bodies and position actuators of the robot in the URDF at ``path`` (see module doc).

    Raises InputFileError for unreadable files, unsupported joints or mesh paths outside the
    package root.
    """
    path = Path(path)
    root = parse_untrusted_xml(path)
    if root.tag != "robot":
        raise InputFileError(path, f"root element is <{root.tag}>, expected <robot>")
    package_root = config.package_root or path.parent
    links = {link.get("name"): link for link in root.findall("link")}
    if None in links:
        raise InputFileError(path, "a <link> has no name")
    if config.collision_links is not None:
        unknown = sorted(set(config.collision_links) - set(links))
        if unknown:
            raise InputFileError(path, f"collision_links {unknown} are not links of this robot; links are "
                                 f"{sorted(links)}")
    children: dict[str, list] = {}
    child_links: set[str] = set()
    for joint in root.findall("joint"):
        kind = joint.get("type", "")
        name = joint.get("name", "?")
        if kind not in ("fixed", "revolute", "continuous", "prismatic"):
            raise InputFileError(path, f"joint '{name}' has type '{kind}'; a robot import reads fixed, revolute, "
                                 "continuous and prismatic joints")
        parent, child = joint.find("parent"), joint.find("child")
        if parent is None or child is None or parent.get("link") not in links or child.get("link") not in links:
            raise InputFileError(path, f"joint '{name}' needs <parent link> and <child link> naming defined links")
        if child.get("link") in child_links:
            raise InputFileError(path, f"link '{child.get('link')}' is the child of two joints")
        child_links.add(child.get("link"))
        children.setdefault(parent.get("link"), []).append(joint)
    roots = [n for n in links if n not in child_links]
    if len(roots) != 1:
        raise InputFileError(path, f"expected one root link, found {roots}")

    link_frames: dict[str, tuple[str, np.ndarray]] = {roots[0]: (prefix_name(name_prefix, roots[0]), np.eye(4))}
    body_specs: dict[str, dict] = {prefix_name(name_prefix, roots[0]): {"parent": None, "pose": config.base_pose,
                                                                         "joint": Joint("fixed"), "links": [roots[0]]}}
    joint_order, joint_body, ranges, efforts = [], {}, {}, {}
    stack = [roots[0]]
    while stack:
        current = stack.pop(0)
        body_name, body_from_link = link_frames[current]
        for joint in children.get(current, []):
            name, kind = joint.get("name"), joint.get("type")
            child = joint.find("child").get("link")
            where = f"joint '{name}'"
            origin = _transform(joint.find("origin"), path, where)
            stack.append(child)
            if kind == "fixed":
                link_frames[child] = (body_name, body_from_link @ origin)
                body_specs[body_name]["links"].append(child)
                continue
            axis = _floats(joint.find("axis"), "xyz", "1 0 0", path, where)
            if len(axis) != 3 or np.linalg.norm(axis) < 1e-9:
                raise InputFileError(path, f"{where}: axis must be 3 numbers, not all zero")
            limit = joint.find("limit")
            joint_range = None
            if kind in ("revolute", "prismatic") and limit is not None:
                low, high = float(limit.get("lower", "0")), float(limit.get("upper", "0"))
                if low < high:
                    joint_range = (low, high)
            effort = float(limit.get("effort", "0")) if limit is not None else 0.0
            dynamics = joint.find("dynamics")
            damping = float(dynamics.get("damping", "0")) if dynamics is not None else 0.0
            frictionloss = float(dynamics.get("friction", "0")) if dynamics is not None else 0.0
            child_body = prefix_name(name_prefix, child)
            body_specs[child_body] = {
                "parent": body_name, "pose": _pose(body_from_link @ origin), "links": [child],
                "joint": Joint("prismatic" if kind == "prismatic" else "revolute", axis=tuple(axis / np.linalg.norm(axis)),
                               range=joint_range, damping=damping + config.joint_damping, frictionloss=frictionloss,
                               armature=config.armature)}
            link_frames[child] = (child_body, np.eye(4))
            joint_order.append(child_body)
            joint_body[child_body] = child_body
            ranges[child_body] = joint_range if joint_range is not None else (-math.pi, math.pi)
            efforts[child_body] = effort

    bodies = []
    for body_name, spec in body_specs.items():
        geoms, inertials = [], []
        for link_name in spec["links"]:
            _, body_from_link = link_frames[link_name]
            link = links[link_name]
            found = _link_inertial(link, path)
            if found is not None:
                mass, com, tensor = found
                rotation = body_from_link[:3, :3]
                inertials.append((mass, rotation @ com + body_from_link[:3, 3], rotation @ tensor @ rotation.T))
            collide = config.collision_links is None or link_name in config.collision_links
            for k, element in enumerate(link.findall("collision")):
                where = f"link '{link_name}' collision {k}"
                geometry = element.find("geometry")
                mesh = None if geometry is None else geometry.find("mesh")
                if mesh is None:
                    raise InputFileError(path, f"{where}: only <mesh> collision geometry is imported")
                filename = mesh.get("filename", "")
                for scheme in ("package://", "file://"):
                    if filename.startswith(scheme):
                        filename = filename[len(scheme):]
                vertices, _ = load_mesh_arrays(resolve_inside(package_root, filename))
                scale = _floats(mesh, "scale", "1 1 1", path, where)
                local = body_from_link @ _transform(element.find("origin"), path, where)
                hull_v, hull_f = _hull(vertices * (scale if len(scale) == 3 else np.repeat(scale, 3)))
                geoms.append(Geom(Mesh(vertices=hull_v, faces=hull_f), pose=_pose(local), material=config.material,
                                  rgba=(0.85, 0.85, 0.88, 1.0) if collide else (0.95, 0.95, 0.97, 1.0),
                                  collide=collide))
        inertial = _combine(inertials)
        if not geoms:
            raise InputFileError(path, f"body '{body_name}' (links {spec['links']}) has no collision mesh")
        if inertial is None and spec["parent"] is not None:
            raise InputFileError(path, f"body '{body_name}' (links {spec['links']}) has no inertial mass")
        bodies.append(Body(body_name, tuple(geoms), pose=spec["pose"], joint=spec["joint"], parent=spec["parent"],
                           inertial=inertial))
    actuators = []
    for joint_name in joint_order:
        prismatic = body_specs[joint_name]["joint"].type == "prismatic"
        effort = efforts[joint_name]
        actuators.append(Actuator(joint_name, joint_name, "position",
                                  gain=config.prismatic_gain if prismatic else config.revolute_gain,
                                  damping=config.prismatic_damping if prismatic else config.revolute_damping,
                                  control_range=ranges[joint_name],
                                  force_range=(-effort, effort) if effort > 0 else None))
    return RobotImport(bodies=tuple(bodies), actuators=tuple(actuators), joints=tuple(joint_order),
                       joint_body=joint_body, link_frames=link_frames, joint_ranges=ranges, joint_efforts=efforts)


def prefix_name(prefix: str, name: str) -> str:
    import re

    return prefix + (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "link")
