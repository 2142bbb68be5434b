"""The physical world description: plain, immutable data with no simulator attached.

Units are SI throughout: m, kg, s, rad, kg/m^3, N·s/m. Quaternions are (w, x, y, z).
Every class validates itself on construction and raises ``WorldValidationError`` naming the
field; a ``World`` additionally checks the relations between bodies, so a validated world
always compiles.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from physforge.errors import WorldValidationError
from physforge.world import _checks
from physforge.world.geometry import Shape, Box, Sphere, Capsule, Cylinder, Mesh, Voxels

JOINT_TYPES = ("free", "fixed", "revolute", "prismatic", "ball", "revolute_prismatic")
INTEGRATORS = ("implicitfast", "RK4", "Euler", "implicit")
IDENTITY_QUATERNION = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Material:
    """Bulk and contact properties of a solid.

    density: kg/m^3, used for mass and inertia when the body gives none.
    friction: (sliding, torsional, rolling) coefficients; sliding is Coulomb's mu,
        torsional (m) and rolling (m) are MuJoCo's lengths. Two touching materials use the
        larger of their coefficients (MuJoCo's rule): a slippery block slides only on a
        surface at least as slippery.
    restitution: normal coefficient of restitution in [0, 1]; 1 is elastic. Two touching
        materials use a contact in between the two (MuJoCo averages their contact springs).
    """

    name: str = "default"
    density: float = 1000.0
    friction: tuple[float, float, float] = (1.0, 0.005, 0.0001)
    restitution: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "name", _checks.name("name", self.name))
        object.__setattr__(self, "density", _checks.number("density", self.density, minimum=0.0, strict=True))
        friction = _checks.vector("friction", self.friction, 3)
        if any(f < 0 for f in friction):
            raise WorldValidationError("friction", "coefficients must be >= 0", self.friction)
        object.__setattr__(self, "friction", friction)
        object.__setattr__(self, "restitution",
                           _checks.number("restitution", self.restitution, minimum=0.0, maximum=1.0))


@dataclass(frozen=True)
class Pose:
    """A rigid transform: ``position`` (3,) m and ``quaternion`` (w, x, y, z)."""

    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quaternion: tuple[float, float, float, float] = IDENTITY_QUATERNION

    def __post_init__(self):
        object.__setattr__(self, "position", _checks.vector("position", self.position, 3))
        object.__setattr__(self, "quaternion", _checks.unit_quaternion("quaternion", self.quaternion))

    @classmethod
    def from_axis_angle(cls, position, axis, angle: float) -> "Pose":
        """Pose rotated by ``angle`` rad about ``axis`` (any length)."""
        x, y, z = _checks.unit_axis("axis", axis)
        half = 0.5 * float(angle)
        s = math.sin(half)
        return cls(position=position, quaternion=(math.cos(half), x * s, y * s, z * s))


@dataclass(frozen=True)
class Inertial:
    """Explicit mass properties, replacing those derived from geometry and density.

    mass: kg. center_of_mass: (3,) m in the body frame. inertia: (ixx, iyy, izz, ixy, ixz, iyz)
    kg·m^2 about the centre of mass, body axes; must be positive definite and satisfy the
    triangle inequality (no real object violates it).
    """

    mass: float
    inertia: tuple[float, float, float, float, float, float]
    center_of_mass: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        object.__setattr__(self, "mass", _checks.number("mass", self.mass, minimum=0.0, strict=True))
        object.__setattr__(self, "center_of_mass", _checks.vector("center_of_mass", self.center_of_mass, 3))
        inertia = self.inertia
        if isinstance(inertia, (list, tuple, np.ndarray)) and len(inertia) == 3:
            inertia = tuple(inertia) + (0.0, 0.0, 0.0)
        inertia = _checks.vector("inertia", inertia, 6)
        ixx, iyy, izz, ixy, ixz, iyz = inertia
        tensor = np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]])
        principal = np.linalg.eigvalsh(tensor)
        if principal[0] <= 0:
            raise WorldValidationError("inertia", "tensor must be positive definite", inertia)
        a, b, c = principal
        if a + b < c * (1 - 1e-9):
            raise WorldValidationError("inertia", "principal moments violate the triangle inequality "
                                       f"({a:.4g} + {b:.4g} < {c:.4g})", inertia)
        object.__setattr__(self, "inertia", inertia)


@dataclass(frozen=True)
class Geom:
    """One piece of a body's geometry.

    shape: a Box, Sphere, Capsule, Cylinder, Mesh or Voxels. pose: in the body frame.
    collide: False makes it visual only (no contacts, no mass).
    """

    shape: Shape
    pose: Pose = Pose()
    material: Material = Material()
    rgba: tuple[float, float, float, float] = (0.6, 0.6, 0.65, 1.0)
    collide: bool = True
    name: str | None = None

    def __post_init__(self):
        if not isinstance(self.shape, (Box, Sphere, Capsule, Cylinder, Mesh, Voxels)):
            raise WorldValidationError("shape", "expected a Box, Sphere, Capsule, Cylinder, Mesh or Voxels",
                                       type(self.shape).__name__)
        if not isinstance(self.pose, Pose):
            raise WorldValidationError("pose", "expected a Pose", self.pose)
        if not isinstance(self.material, Material):
            raise WorldValidationError("material", "expected a Material", self.material)
        object.__setattr__(self, "rgba", _checks.rgba("rgba", self.rgba))
        if not isinstance(self.collide, bool):
            raise WorldValidationError("collide", "expected true or false", self.collide)
        if self.name is not None:
            _checks.name("name", self.name)


@dataclass(frozen=True)
class Joint:
    """How a body moves relative to its parent (or the world).

    type: free (6 DoF, top-level bodies only), fixed (welded), revolute (hinge), prismatic
        (slide), ball, revolute_prismatic (hinge and slide about one axis, e.g. a screw cap).
    axis: (3,) direction in the body frame, normalised on construction.
    pivot: (3,) m, the point the joint acts at, in the body frame.
    range: rad (revolute, ball: max angle as (0, a)) or m (prismatic); None = unlimited.
    slide_range: m, the prismatic range of a revolute_prismatic joint.
    damping: N·m·s/rad or N·s/m. frictionloss: N·m or N (dry friction). armature: kg·m^2
        or kg (rotor inertia). stiffness: N·m/rad or N/m, a spring towards ``spring_reference``.
    initial_position / initial_velocity: rad or m, rad/s or m/s (1-DoF part only).
    """

    type: str
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)
    range: tuple[float, float] | None = None
    slide_range: tuple[float, float] | None = None
    damping: float = 0.0
    frictionloss: float = 0.0
    armature: float = 0.0
    stiffness: float = 0.0
    spring_reference: float = 0.0
    initial_position: float = 0.0
    initial_velocity: float = 0.0

    def __post_init__(self):
        _checks.one_of("type", self.type, JOINT_TYPES)
        object.__setattr__(self, "axis", _checks.unit_axis("axis", self.axis))
        object.__setattr__(self, "pivot", _checks.vector("pivot", self.pivot, 3))
        object.__setattr__(self, "range", _checks.interval("range", self.range))
        object.__setattr__(self, "slide_range", _checks.interval("slide_range", self.slide_range))
        for name in ("damping", "frictionloss", "armature", "stiffness"):
            object.__setattr__(self, name, _checks.number(name, getattr(self, name), minimum=0.0))
        for name in ("spring_reference", "initial_position", "initial_velocity"):
            object.__setattr__(self, name, _checks.number(name, getattr(self, name)))
        if self.slide_range is not None and self.type != "revolute_prismatic":
            raise WorldValidationError("slide_range", "only a revolute_prismatic joint has a slide_range",
                                       self.slide_range)
        if self.range is not None and self.type in ("free", "fixed"):
            raise WorldValidationError("range", f"a {self.type} joint has no range", self.range)
        if self.type == "ball" and self.range is not None and self.range[0] != 0.0:
            raise WorldValidationError("range", "a ball joint's range is (0, max_angle)", self.range)

    @property
    def dof_count(self) -> int:
        return {"free": 6, "fixed": 0, "revolute": 1, "prismatic": 1, "ball": 3, "revolute_prismatic": 2}[self.type]


@dataclass(frozen=True)
class Body:
    """A rigid body: geoms, a pose relative to its parent, and the joint to that parent.

    parent: name of the parent body, None for the world. A top-level body with a ``fixed``
        joint is static scenery. pose: in the parent frame (world for top-level bodies).
    velocity / angular_velocity: (3,) m/s and rad/s, world frame; initial state of a free body.
    inertial: explicit mass properties; None derives them from the geoms and densities.
    """

    name: str
    geoms: tuple[Geom, ...]
    pose: Pose = Pose()
    joint: Joint = Joint("free")
    parent: str | None = None
    inertial: Inertial | None = None
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    angular_velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        object.__setattr__(self, "name", _checks.name("name", self.name))
        geoms = tuple(self.geoms)
        for i, geom in enumerate(geoms):
            if not isinstance(geom, Geom):
                raise WorldValidationError(f"geoms[{i}]", "expected a Geom", type(geom).__name__)
        if not geoms:
            raise WorldValidationError("geoms", "a body needs at least one geom")
        if not any(g.collide for g in geoms) and self.inertial is None and self.joint.type != "fixed":
            raise WorldValidationError("geoms", "a moving body with only visual geoms needs an explicit 'inertial'")
        object.__setattr__(self, "geoms", geoms)
        if not isinstance(self.pose, Pose):
            raise WorldValidationError("pose", "expected a Pose", self.pose)
        if not isinstance(self.joint, Joint):
            raise WorldValidationError("joint", "expected a Joint", self.joint)
        if self.parent is not None:
            _checks.name("parent", self.parent)
            if self.parent == self.name:
                raise WorldValidationError("parent", "a body cannot be its own parent", self.parent)
        if self.inertial is not None and not isinstance(self.inertial, Inertial):
            raise WorldValidationError("inertial", "expected an Inertial", self.inertial)
        object.__setattr__(self, "velocity", _checks.vector("velocity", self.velocity, 3))
        object.__setattr__(self, "angular_velocity", _checks.vector("angular_velocity", self.angular_velocity, 3))
        moving = any(self.velocity) or any(self.angular_velocity)
        if moving and self.joint.type != "free":
            raise WorldValidationError("velocity", "only a body with a free joint takes an initial velocity; "
                                       "use joint.initial_velocity for hinges and slides", self.velocity)

    @property
    def is_static(self) -> bool:
        return self.parent is None and self.joint.type == "fixed"


ACTUATOR_KINDS = ("position", "velocity", "motor")


@dataclass(frozen=True)
class Actuator:
    """A motor on a 1-DoF joint, driven by a control value each step.

    joint: the body whose joint it drives (``"lid"``), or ``"lid/slide"`` for the prismatic
        half of a revolute_prismatic joint.
    kind: position (servo to the control value, rad or m; ``gain`` is the stiffness kp in N·m/rad
        or N/m, ``damping`` its kv), velocity (servo to rad/s or m/s; ``gain`` is kv), or motor
        (the control value is a torque or force, scaled by ``gain``).
    control_range: allowed control values (clamped); None = unlimited.
    force_range: N·m or N; None = unlimited.
    """

    name: str
    joint: str
    kind: str = "position"
    gain: float = 100.0
    damping: float = 10.0
    control_range: tuple[float, float] | None = None
    force_range: tuple[float, float] | None = None

    def __post_init__(self):
        object.__setattr__(self, "name", _checks.name("name", self.name))
        if not isinstance(self.joint, str) or not self.joint:
            raise WorldValidationError("joint", "expected the name of a jointed body", self.joint)
        _checks.one_of("kind", self.kind, ACTUATOR_KINDS)
        object.__setattr__(self, "gain", _checks.number("gain", self.gain, minimum=0.0, strict=True))
        object.__setattr__(self, "damping", _checks.number("damping", self.damping, minimum=0.0))
        object.__setattr__(self, "control_range", _checks.interval("control_range", self.control_range))
        object.__setattr__(self, "force_range", _checks.interval("force_range", self.force_range))


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at ``position`` (m, world) looking at ``look_at``; ``fovy`` vertical field of view, rad.

    ``up`` is the world direction that appears upwards in the image; a camera looking straight
    along it (top-down) uses +y instead.
    """

    name: str
    position: tuple[float, float, float]
    look_at: tuple[float, float, float] = (0.0, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fovy: float = math.radians(45.0)

    def __post_init__(self):
        object.__setattr__(self, "name", _checks.name("name", self.name))
        object.__setattr__(self, "position", _checks.vector("position", self.position, 3))
        object.__setattr__(self, "look_at", _checks.vector("look_at", self.look_at, 3))
        object.__setattr__(self, "up", _checks.unit_axis("up", self.up))
        object.__setattr__(self, "fovy", _checks.number("fovy", self.fovy, minimum=1e-3, maximum=math.pi - 1e-3))
        forward = np.subtract(self.look_at, self.position)
        if np.linalg.norm(forward) < 1e-9:
            raise WorldValidationError("look_at", "camera looks at its own position", self.look_at)

    def rotation_matrix(self) -> np.ndarray:
        """(3, 3) world-from-camera rotation; camera looks along its -z, y is up (OpenGL)."""
        forward = np.subtract(self.look_at, self.position)
        forward = forward / np.linalg.norm(forward)
        right = np.cross(forward, self.up)
        if np.linalg.norm(right) < 1e-6:  # looking straight along `up` (a top-down camera): image up is +y
            right = np.cross(forward, (0.0, 1.0, 0.0))
        right /= np.linalg.norm(right)
        true_up = np.cross(right, forward)
        return np.stack([right, true_up, -forward], axis=1)

    def intrinsics(self, width: int, height: int) -> np.ndarray:
        """(3, 3) pinhole matrix K in pixels for an image of ``width`` x ``height``."""
        focal = 0.5 * height / math.tan(0.5 * self.fovy)
        return np.array([[focal, 0.0, 0.5 * width], [0.0, focal, 0.5 * height], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Light:
    """A light at ``position`` (m) shining along ``direction``; ``diffuse`` RGB in [0, 1]."""

    name: str
    position: tuple[float, float, float] = (0.0, 0.0, 3.0)
    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    diffuse: tuple[float, float, float] = (0.7, 0.7, 0.7)
    directional: bool = False
    cast_shadow: bool = False

    def __post_init__(self):
        object.__setattr__(self, "name", _checks.name("name", self.name))
        object.__setattr__(self, "position", _checks.vector("position", self.position, 3))
        object.__setattr__(self, "direction", _checks.unit_axis("direction", self.direction))
        diffuse = _checks.vector("diffuse", self.diffuse, 3)
        if any(c < 0 or c > 1 for c in diffuse):
            raise WorldValidationError("diffuse", "channels must lie in [0, 1]", self.diffuse)
        object.__setattr__(self, "diffuse", diffuse)


@dataclass(frozen=True)
class Ground:
    """The plane z = 0; ``half_size`` (x, y) m is its visible and colliding extent.

    Rendered as a checkerboard of ``checker_square`` m squares (world-aligned, starting at the
    plane's -x, -y corner) alternating ``rgba`` and ``checker_shade`` x ``rgba``; the defaults are the faint
    pattern every world had before these fields existed. A strong pattern (a low shade) puts a
    metric ruler under objects in renders.
    """

    half_size: tuple[float, float] = (5.0, 5.0)
    material: Material = Material(name="ground")
    rgba: tuple[float, float, float, float] = (0.82, 0.82, 0.80, 1.0)
    checker_square: float = 0.25
    checker_shade: float = 0.85

    def __post_init__(self):
        object.__setattr__(self, "half_size", _checks.positive_vector("half_size", self.half_size, 2, 1e-3))
        if not isinstance(self.material, Material):
            raise WorldValidationError("material", "expected a Material", self.material)
        object.__setattr__(self, "rgba", _checks.rgba("rgba", self.rgba))
        object.__setattr__(self, "checker_square",
                           _checks.number("checker_square", self.checker_square, minimum=1e-3, maximum=100.0))
        object.__setattr__(self, "checker_shade",
                           _checks.number("checker_shade", self.checker_shade, minimum=0.0, maximum=1.0))


@dataclass(frozen=True)
class World:
    """Everything needed to simulate and render a scene.

    gravity: (3,) m/s^2. timestep: s, the physics step. bodies: parents before or after
    children, in any order, names unique. ground: None for no floor.
    asset_dir: folder that relative mesh paths resolve against (set by ``load_world``; not
    part of the description itself).
    """

    bodies: tuple[Body, ...] = ()
    name: str = "world"
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    timestep: float = 0.002
    integrator: str = "implicitfast"
    ground: Ground | None = Ground()
    cameras: tuple[Camera, ...] = ()
    lights: tuple[Light, ...] = (Light("key", position=(1.5, -1.5, 4.0), direction=(-0.3, 0.3, -1.0)),)
    actuators: tuple[Actuator, ...] = ()
    asset_dir: Path | None = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "name", _checks.name("name", self.name))
        object.__setattr__(self, "gravity", _checks.vector("gravity", self.gravity, 3))
        object.__setattr__(self, "timestep",
                           _checks.number("timestep", self.timestep, minimum=1e-6, maximum=0.1))
        _checks.one_of("integrator", self.integrator, INTEGRATORS)
        if self.ground is not None and not isinstance(self.ground, Ground):
            raise WorldValidationError("ground", "expected a Ground or null", self.ground)
        bodies = tuple(self.bodies)
        cameras = tuple(self.cameras)
        lights = tuple(self.lights)
        object.__setattr__(self, "bodies", bodies)
        object.__setattr__(self, "cameras", cameras)
        object.__setattr__(self, "lights", lights)
        self._check_bodies(bodies)
        _unique("cameras", [c.name for c in cameras], cameras, Camera)
        _unique("lights", [l.name for l in lights], lights, Light)
        actuators = tuple(self.actuators)
        object.__setattr__(self, "actuators", actuators)
        _unique("actuators", [a.name for a in actuators], actuators, Actuator)
        by_name = {b.name: b for b in bodies}
        for i, actuator in enumerate(actuators):
            body_name, _, part = actuator.joint.partition("/")
            body = by_name.get(body_name)
            if body is None:
                raise WorldValidationError(f"actuators[{i}].joint", "names no body", actuator.joint)
            one_dof = body.joint.type in ("revolute", "prismatic") and not part
            slide = body.joint.type == "revolute_prismatic" and part in ("", "slide")
            if not (one_dof or slide):
                raise WorldValidationError(f"actuators[{i}].joint", f"body '{body_name}' has a {body.joint.type} "
                                           "joint; actuators drive revolute or prismatic joints (or "
                                           "'body/slide' of a revolute_prismatic one)", actuator.joint)
        if self.asset_dir is not None:
            object.__setattr__(self, "asset_dir", Path(self.asset_dir))

    @staticmethod
    def _check_bodies(bodies: tuple[Body, ...]) -> None:
        _unique("bodies", [b.name for b in bodies], bodies, Body)
        by_name = {b.name: b for b in bodies}
        geom_names: set[str] = set()
        for i, body in enumerate(bodies):
            where = f"bodies[{i}]"
            if body.parent is not None and body.parent not in by_name:
                raise WorldValidationError(f"{where}.parent", f"body '{body.name}' names a parent that does not exist",
                                           body.parent)
            if body.joint.type == "free" and body.parent is not None:
                raise WorldValidationError(f"{where}.joint.type", "a free joint is only allowed on a top-level body "
                                           "(parent null); give a child link a revolute, prismatic, ball or fixed "
                                           "joint", body.joint.type)
            for j, geom in enumerate(body.geoms):
                if geom.name is not None:
                    if geom.name in geom_names:
                        raise WorldValidationError(f"{where}.geoms[{j}].name", "geom names must be unique", geom.name)
                    geom_names.add(geom.name)
        for i, body in enumerate(bodies):  # cycles: follow parents, at most len(bodies) hops
            seen, current = 0, body
            while current.parent is not None:
                current = by_name[current.parent]
                seen += 1
                if seen > len(bodies):
                    raise WorldValidationError(f"bodies[{i}].parent", "parent links form a cycle", body.name)

    # -- named access -----------------------------------------------------------------------
    def body(self, name: str) -> Body:
        for body in self.bodies:
            if body.name == name:
                return body
        raise KeyError(f"no body named {name!r}; bodies are {[b.name for b in self.bodies]}")

    def body_index(self, name: str) -> int:
        for i, body in enumerate(self.bodies):
            if body.name == name:
                return i
        raise KeyError(f"no body named {name!r}; bodies are {[b.name for b in self.bodies]}")

    def camera(self, name: str) -> Camera:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise KeyError(f"no camera named {name!r}; cameras are {[c.name for c in self.cameras]}")

    def children(self, name: str) -> list[Body]:
        return [b for b in self.bodies if b.parent == name]

    def subtree(self, name: str) -> list[str]:
        """Names of ``name`` and all its descendants."""
        out, stack = [], [name]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(b.name for b in self.children(current))
        return out

    def iter_geoms(self) -> Iterator[tuple[Body, Geom]]:
        for body in self.bodies:
            for geom in body.geoms:
                yield body, geom

    # -- edits (each returns a new, validated World) ---------------------------------------
    def replace(self, **changes) -> "World":
        return dataclasses.replace(self, **changes)

    def with_body(self, body: Body) -> "World":
        """A copy with ``body`` added, or replacing the body of the same name."""
        bodies = [b for b in self.bodies if b.name != body.name]
        index = next((i for i, b in enumerate(self.bodies) if b.name == body.name), len(bodies))
        bodies.insert(index, body)
        return self.replace(bodies=tuple(bodies))

    def without_body(self, name: str) -> "World":
        """A copy without ``name`` and everything attached below it."""
        self.body(name)
        dropped = set(self.subtree(name))
        return self.replace(bodies=tuple(b for b in self.bodies if b.name not in dropped))


def _unique(path: str, names: list[str], items, cls) -> None:
    seen: set[str] = set()
    for i, (name, item) in enumerate(zip(names, items)):
        if not isinstance(item, cls):
            raise WorldValidationError(f"{path}[{i}]", f"expected a {cls.__name__}", type(item).__name__)
        if name in seen:
            raise WorldValidationError(f"{path}[{i}].name", "names must be unique", name)
        seen.add(name)
