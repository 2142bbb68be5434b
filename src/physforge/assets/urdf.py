"""URDF export (metric, collision + visual + inertial, limits and dynamics) and a safe
PartNet-Mobility-style URDF importer.

Export: one link per body, named like the body; visual meshes and collision hulls as OBJ files
in ``urdf_meshes/``; primitives as URDF boxes and cylinders. Joints a URDF cannot express
directly are split through small connector links (``<body>__slide``, ``<body>__ball_x`` ...) of
CONNECTOR_MASS kg: a revolute_prismatic joint becomes revolute + prismatic, a ball joint three
revolutes (its cone limit becomes a limit per axis). A free base is a root link with no joint;
a fixed base is welded to a ``world`` link. A ``<mujoco>`` extension tells MuJoCo where the
meshes are and to keep every link.

Import: XML is parsed with defusedxml (entities and DTDs refused); mesh paths must stay in the
URDF's folder.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physforge.assets import geometry as geo
from physforge.assets.build import SimAsset
from physforge.assets.materials import lookup
from physforge.assets.schema import AssetAnnotation, KinematicGroup, PartAnnotation
from physforge.assets.source import SourceAsset
from physforge.errors import InputFileError
from physforge.world import Box, Cylinder, Mesh, resolve_inside
from physforge.world.xmlsafe import parse_untrusted_xml
from physforge.world.mesh_io import write_obj

URDF_MESH_FOLDER = "urdf_meshes"
#: Mass (kg) of a connector link that splits a joint URDF cannot express; its inertia is that
#: of a 1 cm sphere of this mass.
CONNECTOR_MASS = 1e-3
JOINT_EFFORT = 1000.0
JOINT_VELOCITY = 10.0


def _f(value: float) -> str:
    return f"{float(value):.9g}"


def _vec(values) -> str:
    return " ".join(_f(v) for v in values)


def _rpy(quaternion) -> tuple[float, float, float]:
    w, x, y, z = quaternion
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return roll, pitch, yaw


def _inertial(link: ET.Element, mass: float, com, tensor) -> None:
    inertial = ET.SubElement(link, "inertial")
    ET.SubElement(inertial, "origin", xyz=_vec(com), rpy="0 0 0")
    ET.SubElement(inertial, "mass", value=_f(mass))
    ixx, iyy, izz, ixy, ixz, iyz = tensor
    ET.SubElement(inertial, "inertia", ixx=_f(ixx), ixy=_f(ixy), ixz=_f(ixz), iyy=_f(iyy), iyz=_f(iyz),
                  izz=_f(izz))


def _connector(robot: ET.Element, name: str) -> None:
    link = ET.SubElement(robot, "link", name=name)
    inertia = 0.4 * CONNECTOR_MASS * 0.005**2
    _inertial(link, CONNECTOR_MASS, (0, 0, 0), (inertia, inertia, inertia, 0, 0, 0))


def _joint(robot: ET.Element, name: str, kind: str, parent: str, child: str, xyz, axis=None, limit=None,
           damping: float = 0.0, friction: float = 0.0) -> None:
    joint = ET.SubElement(robot, "joint", name=name, type=kind)
    ET.SubElement(joint, "origin", xyz=_vec(xyz), rpy="0 0 0")
    ET.SubElement(joint, "parent", link=parent)
    ET.SubElement(joint, "child", link=child)
    if axis is not None:
        ET.SubElement(joint, "axis", xyz=_vec(axis))
    if limit is not None:
        ET.SubElement(joint, "limit", lower=_f(limit[0]), upper=_f(limit[1]), effort=_f(JOINT_EFFORT),
                      velocity=_f(JOINT_VELOCITY))
    elif kind == "continuous":
        ET.SubElement(joint, "limit", effort=_f(JOINT_EFFORT), velocity=_f(JOINT_VELOCITY))
    if kind != "fixed":
        ET.SubElement(joint, "dynamics", damping=_f(damping), friction=_f(friction))


def export_urdf(asset: SimAsset, path: str | Path) -> Path:
    """Write ``asset`` as a URDF at ``path`` with meshes in ``urdf_meshes/`` beside it."""
    path = Path(path)
    mesh_dir = path.parent / URDF_MESH_FOLDER
    mesh_dir.mkdir(parents=True, exist_ok=True)
    world = asset.world
    robot = ET.Element("robot", name=asset.annotation.name)
    mj = ET.SubElement(robot, "mujoco")
    ET.SubElement(mj, "compiler", balanceinertia="false", discardvisual="false",
                  fusestatic="false", strippath="false")
    if asset.annotation.base == "fixed":
        ET.SubElement(robot, "link", name="world")
    for body in world.bodies:
        link = ET.SubElement(robot, "link", name=body.name)
        inertial = body.inertial
        _inertial(link, inertial.mass, inertial.center_of_mass, inertial.inertia)
        for geom in body.geoms:
            element = ET.SubElement(link, "visual" if not geom.collide else "collision", name=geom.name)
            ET.SubElement(element, "origin", xyz=_vec(geom.pose.position), rpy=_vec(_rpy(geom.pose.quaternion)))
            geometry = ET.SubElement(element, "geometry")
            shape = geom.shape
            if isinstance(shape, Box):
                ET.SubElement(geometry, "box", size=_vec(2 * h for h in shape.half_extents))
            elif isinstance(shape, Cylinder):
                ET.SubElement(geometry, "cylinder", radius=_f(shape.radius), length=_f(2 * shape.half_length))
            elif isinstance(shape, Mesh):
                file_name = geom.name.replace("/", "_") + ".obj"
                vertices, faces = _arrays(shape, world)
                write_obj(mesh_dir / file_name, vertices * np.array(shape.scale), faces)
                ET.SubElement(geometry, "mesh", filename=f"{URDF_MESH_FOLDER}/{file_name}", scale="1 1 1")
            else:  # sphere/capsule/voxels never appear in assets
                raise TypeError(f"URDF export does not support {type(shape).__name__} geoms")
            if not geom.collide:
                material = ET.SubElement(element, "material", name=f"{geom.name}.colour")
                ET.SubElement(material, "color", rgba=_vec(geom.rgba))
    for body in world.bodies:
        joint = body.joint
        if body.parent is None:
            if joint.type == "fixed":
                _joint(robot, f"{body.name}__weld", "fixed", "world", body.name, body.pose.position)
            continue
        xyz = body.pose.position
        kind = joint.type
        if kind == "fixed":
            _joint(robot, body.name, "fixed", body.parent, body.name, xyz)
        elif kind == "prismatic":
            _joint(robot, body.name, "prismatic", body.parent, body.name, xyz, joint.axis, joint.range,
                   joint.damping, joint.frictionloss)
        elif kind == "revolute":
            _joint(robot, body.name, "revolute" if joint.range else "continuous", body.parent, body.name, xyz,
                   joint.axis, joint.range, joint.damping, joint.frictionloss)
        elif kind == "revolute_prismatic":
            connector = f"{body.name}__slide"
            _connector(robot, connector)
            _joint(robot, f"{body.name}__slide", "prismatic", body.parent, connector, xyz, joint.axis,
                   joint.slide_range or (-1.0, 1.0), joint.damping, joint.frictionloss)
            _joint(robot, body.name, "revolute" if joint.range else "continuous", connector, body.name, (0, 0, 0),
                   joint.axis, joint.range, joint.damping, joint.frictionloss)
        elif kind == "ball":
            limit = (-joint.range[1], joint.range[1]) if joint.range else None
            previous = body.parent
            for k, axis in enumerate(((1, 0, 0), (0, 1, 0), (0, 0, 1))):
                child = body.name if k == 2 else f"{body.name}__ball_{'xyz'[k]}"
                if k < 2:
                    _connector(robot, child)
                _joint(robot, body.name if k == 2 else f"{body.name}__ball_{'xyz'[k]}",
                       "revolute" if limit else "continuous", previous, child, xyz if k == 0 else (0, 0, 0), axis,
                       limit, joint.damping, joint.frictionloss)
                previous = child
        else:
            raise TypeError(f"joint type {kind} of body {body.name} has no URDF form")
    ET.indent(robot, space=" ")
    text = ET.tostring(robot, encoding="unicode", xml_declaration=False)
    path.write_text('<?xml version="1.0"?>\n' + text + "\n")
    return path


def _arrays(shape: Mesh, world) -> tuple[np.ndarray, np.ndarray]:
    if shape.path is None:
        return np.asarray(shape.vertices), np.asarray(shape.faces)
    from physforge.world.mesh_io import load_mesh_arrays

    return load_mesh_arrays(resolve_inside(world.asset_dir, shape.path))


# -- import ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UrdfImportConfig:
    """material: table name given to every part (URDFs carry no materials we trust). up_axis:
    z, or y to turn a y-up file (PartNet) z-up. scale: m per file unit. base: fixed or free."""

    material: str = "plastic"
    up_axis: str = "z"
    scale: float = 1.0
    base: str = "fixed"

    def __post_init__(self):
        if self.up_axis not in ("z", "y"):
            raise ValueError(f"up_axis must be 'z' or 'y', got {self.up_axis!r}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"scale must be a positive number of metres per unit, got {self.scale}")
        if self.base not in ("fixed", "free"):
            raise ValueError(f"base must be 'fixed' or 'free', got {self.base!r}")


def _floats(element: ET.Element | None, attribute: str, default: str, path: Path, where: str) -> np.ndarray:
    text = default if element is None else element.get(attribute, default)
    try:
        values = np.array([float(v) for v in text.split()], dtype=np.float64)
    except ValueError:
        raise InputFileError(path, f"{where}: {attribute}='{text}' is not a list of numbers") from None
    if not np.isfinite(values).all():
        raise InputFileError(path, f"{where}: {attribute}='{text}' is not finite")
    return values


def _transform(origin: ET.Element | None, path: Path, where: str) -> np.ndarray:
    xyz = _floats(origin, "xyz", "0 0 0", path, where)
    rpy = _floats(origin, "rpy", "0 0 0", path, where)
    if len(xyz) != 3 or len(rpy) != 3:
        raise InputFileError(path, f"{where}: origin needs 3 numbers in xyz and rpy")
    roll, pitch, yaw = rpy
    cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw), \
        math.sin(yaw)
    matrix = np.eye(4)
    matrix[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                      [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                      [-sp, cp * sr, cp * cr]]
    matrix[:3, 3] = xyz
    return matrix


def import_urdf(path: str | Path, config: UrdfImportConfig = UrdfImportConfig()) -> SourceAsset:
    """A SourceAsset from a PartNet-Mobility-style URDF: one part per link with geometry (its
    visual meshes, or collision meshes if it has no visuals), links joined by fixed joints
    merged into one group. Joint limits and axes are kept; masses are recomputed from geometry."""
    path = Path(path)
    root = parse_untrusted_xml(path)
    if root.tag != "robot":
        raise InputFileError(path, f"root element is <{root.tag}>, expected <robot>")
    folder = path.parent
    links = {}
    for link in root.findall("link"):
        name = link.get("name")
        if not name:
            raise InputFileError(path, "a <link> has no name")
        links[name] = link
    joints = []
    child_of: dict[str, str] = {}
    for joint in root.findall("joint"):
        name, kind = joint.get("name", "?"), joint.get("type", "")
        parent = joint.find("parent")
        child = joint.find("child")
        if parent is None or child is None:
            raise InputFileError(path, f"joint '{name}' needs <parent link> and <child link>")
        p, c = parent.get("link"), child.get("link")
        for side, link_name in (("parent", p), ("child", c)):
            if link_name not in links:
                raise InputFileError(path, f"joint '{name}' {side} link '{link_name}' is not defined; "
                                     f"links are {sorted(links)}")
        if kind not in ("fixed", "revolute", "continuous", "prismatic", "floating"):
            raise InputFileError(path, f"joint '{name}' has type '{kind}'; physforge reads fixed, revolute, "
                                 "continuous, prismatic and floating")
        if c in child_of:
            raise InputFileError(path, f"link '{c}' is the child of two joints")
        child_of[c] = p
        joints.append((name, kind, p, c, joint))
    roots = [name for name in links if name not in child_of]
    if len(roots) != 1:
        raise InputFileError(path, f"expected one root link, found {roots}")
    up = np.eye(4)
    if config.up_axis == "y":
        up[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    transforms = {roots[0]: up.copy()}
    by_parent: dict[str, list] = {}
    for item in joints:
        by_parent.setdefault(item[2], []).append(item)
    order = [roots[0]]
    group_of = {roots[0]: 0}
    group_specs: list[dict] = [{"index": 0, "parent": None, "type": "fixed", "name": "base"}]
    stack = [roots[0]]
    while stack:
        current = stack.pop()
        for name, kind, parent, child, element in by_parent.get(current, []):
            where = f"joint '{name}'"
            local = _transform(element.find("origin"), path, where)
            transforms[child] = transforms[parent] @ local
            order.append(child)
            stack.append(child)
            if kind == "fixed":
                group_of[child] = group_of[parent]
                continue
            axis = _floats(element.find("axis"), "xyz", "1 0 0", path, where)
            if len(axis) != 3 or np.linalg.norm(axis) < 1e-9:
                raise InputFileError(path, f"{where}: axis must be 3 numbers, not all zero")
            axis = transforms[child][:3, :3] @ (axis / np.linalg.norm(axis))
            limit = element.find("limit")
            rng = None
            if kind in ("revolute", "prismatic") and limit is not None:
                low = float(limit.get("lower", "0"))
                high = float(limit.get("upper", "0"))
                if kind == "prismatic":
                    low, high = low * config.scale, high * config.scale
                if low < high:
                    rng = (low, high)
            spec = {"index": len(group_specs), "parent": None if kind == "floating" else group_of[parent],
                    "type": {"revolute": "revolute", "continuous": "revolute", "prismatic": "prismatic",
                             "floating": "free"}[kind],
                    "axis": tuple(float(a) for a in axis), "pivot_h": transforms[child][:3, 3].copy(), "range": rng,
                    "name": _clean(name)}
            group_of[child] = spec["index"]
            group_specs.append(spec)
    parts, meshes = [], {}
    props, _ = lookup(config.material)
    group_parts: dict[int, list[int]] = {}
    for link_name in order:
        link = links[link_name]
        elements = link.findall("visual") or link.findall("collision")
        pieces = []
        for k, element in enumerate(elements):
            where = f"link '{link_name}' geometry {k}"
            geometry = element.find("geometry")
            mesh = None if geometry is None else geometry.find("mesh")
            if mesh is None:
                if geometry is not None and len(geometry):
                    raise InputFileError(path, f"{where}: only <mesh> geometry is imported (got "
                                         f"<{geometry[0].tag}>)")
                continue
            filename = mesh.get("filename", "")
            if filename.startswith("package://"):
                raise InputFileError(path, f"{where}: '{filename}' uses package://; give a path relative to "
                                     "the URDF's folder")
            if filename.startswith("file://"):
                filename = filename[len("file://"):]
            file_path = resolve_inside(folder, filename)
            vertices, faces = geo.load_part_mesh(file_path)
            scale = _floats(mesh, "scale", "1 1 1", path, where)
            if len(scale) == 1:
                scale = np.repeat(scale, 3)
            local = _transform(element.find("origin"), path, where)
            world = transforms[link_name] @ local
            v = (vertices * scale) @ world[:3, :3].T + world[:3, 3]
            pieces.append((v * config.scale, faces))
        if not pieces:
            continue
        offset, vs, fs = 0, [], []
        for v, f in pieces:
            vs.append(v)
            fs.append(f + offset)
            offset += len(v)
        label = len(parts)
        parts.append(PartAnnotation(label=label, name=_clean(link_name), material=props.name, density=props.density,
                                    youngs_modulus=props.youngs_modulus, poisson_ratio=props.poisson_ratio,
                                    affordance_rank=5, basic_description=f"link {link_name} of {root.get('name')}"))
        meshes[label] = (np.concatenate(vs), np.concatenate(fs))
        group_parts.setdefault(group_of[link_name], []).append(label)
    if not parts:
        raise InputFileError(path, "no link has mesh geometry")
    if 0 not in group_parts:
        raise InputFileError(path, f"the root link '{roots[0]}' and the links fixed to it have no mesh geometry")
    group_specs = _merge_connectors(group_specs, group_parts, path)
    # object frame: centred in x, y, resting on z = 0
    points = np.concatenate([m[0] for m in meshes.values()])
    low, high = points.min(0), points.max(0)
    shift = np.array([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, -low[2]])
    meshes = {k: (v + shift, f) for k, (v, f) in meshes.items()}
    groups = []
    for spec in group_specs:
        if spec["index"] == 0:
            groups.append(KinematicGroup(0, tuple(group_parts[0]) if 0 in group_parts else (), None, "fixed",
                                         name="base"))
            continue
        pivot = tuple(float(v) for v in spec["pivot_h"] * config.scale + shift)
        groups.append(KinematicGroup(spec["index"], tuple(group_parts[spec["index"]]), spec["parent"], spec["type"],
                                     spec["axis"], pivot, spec["range"], spec.get("slide"), spec["name"]))
    annotation = AssetAnnotation(name=_clean(root.get("name") or path.stem), category="object",
                                 dimensions=tuple(float(d) for d in high - low), parts=tuple(parts),
                                 groups=tuple(groups), base=config.base, source=f"urdf:{path.name}")
    return SourceAsset(annotation=annotation, meshes=meshes)


def _merge_connectors(specs: list[dict], group_parts: dict[int, list[int]], path: Path) -> list[dict]:
    """Fold joints through geometry-less links back into one joint: prismatic + revolute about
    one axis -> revolute_prismatic; three revolutes about orthogonal axes -> ball (the limit is
    the smallest of theirs). This is how physforge's own URDF expresses those joints."""
    specs = [dict(s) for s in specs]
    by_index = {s["index"]: s for s in specs}

    def depth(spec):
        d, current = 0, spec
        while current["parent"] is not None and current["parent"] in by_index:
            current, d = by_index[current["parent"]], d + 1
        return d

    empties = sorted((s for s in specs if s["index"] != 0 and s["index"] not in group_parts), key=depth,
                     reverse=True)
    for empty in empties:
        children = [s for s in specs if s["parent"] == empty["index"]]
        if len(children) != 1:
            raise InputFileError(path, f"joint '{empty['name']}' moves a link with no geometry; give it a "
                                 "<visual> or <collision> mesh")
        child = children[0]
        parallel = abs(abs(float(np.dot(empty["axis"], child["axis"]))) - 1.0) < 1e-6
        if empty["type"] == "prismatic" and child["type"] == "revolute" and parallel:
            child["type"], child["slide"] = "revolute_prismatic", empty["range"]
        elif empty["type"] == "revolute" and child["type"] in ("revolute", "ball_partial") and not parallel:
            axes = child.get("ball_axes", [child["axis"]]) + [empty["axis"]]
            ranges = child.get("ball_ranges", [child["range"]]) + [empty["range"]]
            child["ball_axes"], child["ball_ranges"], child["type"] = axes, ranges, "ball_partial"
            if len(axes) == 3:
                limits = [min(-r[0], r[1]) for r in ranges if r is not None]
                unlimited = len(limits) < 3 or min(limits) <= 0
                child["type"], child["axis"] = "ball", (0.0, 0.0, 1.0)
                child["range"] = None if unlimited else (0.0, min(limits))
        else:
            raise InputFileError(path, f"joint '{empty['name']}' ({empty['type']}) moves a link with no geometry "
                                 f"and cannot be folded into joint '{child['name']}'; give the link a mesh")
        child["parent"] = empty["parent"]
        specs.remove(empty)
    for spec in specs:
        if spec["type"] == "ball_partial":
            raise InputFileError(path, f"joint '{spec['name']}': revolutes through geometry-less links that "
                                 "are not three orthogonal axes cannot be imported")
    return specs


def _clean(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "link"
