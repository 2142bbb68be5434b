"""World -> MuJoCo model, through ``mujoco.MjSpec`` (no XML string templates).

The compiled model keeps the world's names: body ``name``, joint ``name`` (and
``name/slide`` for the prismatic half of a revolute_prismatic joint), geoms ``name/0``,
``name/1`` … unless a geom is named, cameras and lights by name, the floor ``ground``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from physforge.errors import InputFileError, PhysforgeError, WorldValidationError
from physforge.world import Body, Geom, World
from physforge.world.geometry import Box, Capsule, Cylinder, Mesh, Sphere, Voxels
from physforge.world.mesh_io import load_mesh_arrays, prepare_for_mass, write_obj
from physforge.world.paths import resolve_inside

logger = logging.getLogger(__name__)

#: Duration (s) of an elastic contact's compression-and-release. Shorter is stiffer (less
#: penetration) but needs more physics steps per contact; below 6 the bounce drifts from e.
CONTACT_DURATION_STEPS = 6
#: MuJoCo impedance (solimp): near-hard constraint so restitution follows the spring-damper.
CONTACT_SOLIMP = (0.99, 0.99, 0.001, 0.5, 2.0)
#: Joint friction loss (dry friction) is a soft constraint in MuJoCo; with its default (solref
#: 0.02 s, impedance 0.9) a part held only by friction creeps at ~1e-3 of its unresisted
#: acceleration (a laptop lid sinks ~6 degrees in 2 s). This time constant (s, at least
#: STICTION_MIN_STEPS physics steps) and impedance make it ~40x stiffer: held parts stay put.
STICTION_TIMECONST = 0.005
STICTION_MIN_STEPS = 2.5
STICTION_SOLIMP = (0.99, 0.999, 0.001, 0.5, 2.0)
GROUND_GEOM_NAME = "ground"
#: MuJoCo draws a plane as quads this many metres apart (its third size); physics never reads
#: it, and a fine grid halves RGB speed in software GL.
GROUND_RENDER_GRID = 1.0
#: Worlds with at most this many touchable body pairs get one MuJoCo contact sensor per pair and
#: are stepped in C by ``mujoco.rollout``. Each contact sensor scans every active contact at
#: every step (~66 instructions a contact, measured with callgrind): 210 pairs of a 20-body pile
#: add 59 % to its physics, while reading the contact list with numpy after each Python-level
#: mj_step costs about as much as ~55 pairs' sensors in a resting pile. Larger worlds use that.
MAX_CONTACT_SENSOR_PAIRS = 55
_CONTACT_SENSOR_FIELDS = (1 << int(mujoco.mjtConDataField.mjCONDATA_FOUND)) | (
    1 << int(mujoco.mjtConDataField.mjCONDATA_FORCE))
_REDUCE_NETFORCE = 3
#: Significant digits of every number handed to MuJoCo. MuJoCo's XML writer keeps 6, so the
#: in-memory model is built from the same rounded numbers: an exported MJCF then reproduces an
#: in-memory run exactly (1 µm at 1 m; far below any physical tolerance).
SIGNIFICANT_DIGITS = 6


def _q(value):
    """``value`` (a number or a sequence of numbers) rounded to SIGNIFICANT_DIGITS."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [float(f"{float(v):.{SIGNIFICANT_DIGITS}g}") for v in value]
    return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")


class CompileError(PhysforgeError, ValueError):
    """MuJoCo refused the world; the message carries MuJoCo's reason and the element."""


@dataclass(frozen=True)
class CompiledWorld:
    """A MuJoCo model plus the maps between it and the world's bodies.

    body_ids: (n_bodies,) int, MuJoCo body id of ``world.bodies[i]``.
    geom_body_index: (ngeom,) int, index into ``world.bodies`` of each MuJoCo geom's body, -1
        for the ground and other world geoms.
    contact_pairs: (n_pairs, 2) int world-body indices (-1 = the world, smaller first) of the
        body pairs that can touch.
    has_contact_sensors: whether each pair has a MuJoCo contact sensor (found, net force)
        starting at ``contact_sensor_address`` in sensordata, 4 values per pair (worlds with at
        most MAX_CONTACT_SENSOR_PAIRS pairs).
    """

    world: World
    model: mujoco.MjModel
    spec: mujoco.MjSpec
    body_ids: np.ndarray
    geom_body_index: np.ndarray
    contact_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    has_contact_sensors: bool = False
    contact_sensor_address: int = 0

    def body_id(self, name: str) -> int:
        return int(self.body_ids[self.world.body_index(name)])


def restitution_solref(restitution: float, timestep: float) -> tuple[float, float]:
    """MuJoCo direct-mode ``solref = (-stiffness, -damping)`` for a coefficient of restitution.

    The contact is a mass-normalised spring-damper x'' = -k x - b x'. For damping ratio
    zeta the bounce speed ratio is e = exp(-pi zeta / sqrt(1 - zeta^2)), so
    zeta = -ln e / sqrt(pi^2 + ln^2 e); e = 0 is critical damping. The spring's half period is
    CONTACT_DURATION_STEPS physics steps (6 keeps e within 0.01 of the
    target at 2 ms steps, measured by dropping a ball).
    """
    omega = math.pi / (CONTACT_DURATION_STEPS * timestep)
    if restitution <= 0.0:
        zeta = 1.0
    else:
        log_e = math.log(restitution)
        zeta = -log_e / math.sqrt(math.pi**2 + log_e**2)
    # The damped frequency sets the contact duration; the undamped one is what MuJoCo wants.
    omega_n = omega / math.sqrt(max(1.0 - zeta**2, 1e-12)) if zeta < 1.0 else omega
    return (-(omega_n**2), -(2.0 * zeta * omega_n))


def compile_world(world: World, *, mesh_dir: Path | None = None) -> CompiledWorld:
    """Build the MuJoCo model of ``world``.

    mesh_dir: when given, mesh geometry is written there as OBJ files and referenced by
        file name (for a standalone MJCF export); otherwise it is passed in memory.
    Raises CompileError when MuJoCo refuses the model, InputFileError for unreadable meshes.
    """
    spec = build_spec(world, mesh_dir=mesh_dir)
    pairs = touchable_pairs(world)
    sensor_names = []
    if len(pairs) <= MAX_CONTACT_SENSOR_PAIRS:
        for a, b in pairs:
            name_a = "world" if a < 0 else world.bodies[a].name
            name_b = world.bodies[b].name
            sensor_names.append(f"contact/{name_a}/{name_b}")
            spec.add_sensor(name=sensor_names[-1], type=mujoco.mjtSensor.mjSENS_CONTACT,
                            objtype=mujoco.mjtObj.mjOBJ_BODY, objname=name_a, reftype=mujoco.mjtObj.mjOBJ_BODY,
                            refname=name_b, intprm=[_CONTACT_SENSOR_FIELDS, _REDUCE_NETFORCE, 1])
    try:
        model = spec.compile()
    except ValueError as err:
        raise CompileError(f"MuJoCo could not compile world '{world.name}': {err}") from None
    body_ids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b.name) for b in world.bodies],
                        dtype=np.int64)
    index_of_mj_body = np.full(model.nbody, -1, dtype=np.int64)
    index_of_mj_body[body_ids] = np.arange(len(body_ids))
    geom_body_index = index_of_mj_body[model.geom_bodyid]
    address = int(model.sensor(sensor_names[0]).adr[0]) if sensor_names else 0
    return CompiledWorld(world=world, model=model, spec=spec, body_ids=body_ids, geom_body_index=geom_body_index,
                         contact_pairs=np.array(pairs, dtype=np.int64).reshape(-1, 2),
                         has_contact_sensors=bool(sensor_names), contact_sensor_address=address)


def touchable_pairs(world: World) -> list[tuple[int, int]]:
    """Body pairs (world-body indices, -1 = the world, smaller first) whose geoms can touch:
    both have colliding geoms, at least one can move, and they are not jointed neighbours."""
    colliding = [any(g.collide for g in body.geoms) for body in world.bodies]
    static = []
    for body in world.bodies:
        current, fixed = body, True
        while fixed:
            fixed = current.joint.type == "fixed"
            if current.parent is None:
                break
            current = world.body(current.parent)
        static.append(fixed)
    groups = ([-1] if world.ground is not None else []) + [i for i, c in enumerate(colliding) if c]
    pairs = []
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            a_static = a < 0 or static[a]
            if a_static and static[b]:
                continue
            if a >= 0 and (world.bodies[b].parent == world.bodies[a].name
                           or world.bodies[a].parent == world.bodies[b].name):
                continue
            pairs.append((a, b))
    return pairs


def initial_state(compiled: CompiledWorld) -> tuple[np.ndarray, np.ndarray]:
    """``(qpos (nq,), qvel (nv,))`` of the world's initial state: body poses, free-body
    velocities (world frame in the World, body frame in MuJoCo) and joint initial values."""
    model = compiled.model
    qpos, qvel = model.qpos0.copy(), np.zeros(model.nv)
    for body in compiled.world.bodies:
        if body.joint.type == "fixed":
            continue
        joint = model.joint(body.name)
        position, velocity = int(joint.qposadr[0]), int(joint.dofadr[0])
        if body.joint.type == "free":
            qvel[velocity:velocity + 3] = body.velocity
            rotation = np.zeros(9)
            mujoco.mju_quat2Mat(rotation, np.array(body.pose.quaternion))
            qvel[velocity + 3:velocity + 6] = rotation.reshape(3, 3).T @ np.array(body.angular_velocity)
        elif body.joint.type in ("revolute", "prismatic", "revolute_prismatic"):
            qpos[position] = body.joint.initial_position
            qvel[velocity] = body.joint.initial_velocity
    return np.array(_q(qpos)), np.array(_q(qvel))


def build_spec(world: World, *, mesh_dir: Path | None = None) -> mujoco.MjSpec:
    spec = mujoco.MjSpec()
    spec.modelname = world.name
    spec.compiler.degree = False
    spec.compiler.autolimits = True
    spec.option.timestep = _q(world.timestep)
    spec.option.gravity = _q(world.gravity)
    spec.option.integrator = {
        "Euler": mujoco.mjtIntegrator.mjINT_EULER,
        "RK4": mujoco.mjtIntegrator.mjINT_RK4,
        "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
        "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
    }[world.integrator]
    # Elliptic cones give Coulomb friction without pyramid anisotropy and expose the normal
    # force directly (for contact impulses); impratio 10 removes most soft-contact creep.
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.option.enableflags |= int(mujoco.mjtEnableBit.mjENBL_ENERGY)
    spec.visual.quality.shadowsize = 1024
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.45, 0.45, 0.45]
    spec.visual.map.znear = 0.005
    if mesh_dir is not None:
        mesh_dir.mkdir(parents=True, exist_ok=True)
        spec.meshdir = str(mesh_dir)

    sky = spec.add_texture(name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                           builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, width=64, height=64)
    sky.rgb1, sky.rgb2 = [0.55, 0.65, 0.78], [0.12, 0.14, 0.18]
    if world.ground is not None:
        ground = world.ground
        # A checker pattern makes motion along the floor visible in renders.
        checker = spec.add_texture(name="ground_checker", type=mujoco.mjtTexture.mjTEXTURE_2D,
                                   builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=256, height=256)
        checker.rgb1 = list(ground.rgba[:3])
        checker.rgb2 = [ground.checker_shade * c for c in ground.rgba[:3]]
        # with texuniform on a plane, one square of the builtin checker spans 1 / texrepeat m
        # (measured: tests/test_assets_image_ground_checker.py); the default 0.25 m gives the old 4
        repeat = 1.0 / ground.checker_square
        material = spec.add_material(name="ground_material", texrepeat=[repeat, repeat], texuniform=True)
        material.textures[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] = "ground_checker"
        geom = spec.worldbody.add_geom(name=GROUND_GEOM_NAME, type=mujoco.mjtGeom.mjGEOM_PLANE,
                                       size=_q([ground.half_size[0], ground.half_size[1], GROUND_RENDER_GRID]),
                                       rgba=_q(ground.rgba), material="ground_material")
        _apply_material(geom, ground.material, world.timestep)
        geom.condim = 6 if (ground.material.friction[1] or ground.material.friction[2]) else 3

    for light in world.lights:
        spec_light = spec.worldbody.add_light(name=light.name, pos=_q(light.position), dir=_q(light.direction),
                                              diffuse=_q(light.diffuse), castshadow=light.cast_shadow)
        spec_light.type = (mujoco.mjtLightType.mjLIGHT_DIRECTIONAL if light.directional
                           else mujoco.mjtLightType.mjLIGHT_SPOT)
    for camera in world.cameras:
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, camera.rotation_matrix().reshape(-1))
        spec.worldbody.add_camera(name=camera.name, pos=_q(camera.position), quat=_q(quat),
                                  fovy=_q(math.degrees(camera.fovy)))

    added: dict[str, mujoco.MjsBody] = {}
    pending = list(world.bodies)
    while pending:  # parents first, whatever the order in the world
        progressed = False
        for body in list(pending):
            if body.parent is None or body.parent in added:
                parent = spec.worldbody if body.parent is None else added[body.parent]
                added[body.name] = _add_body(spec, parent, body, world, mesh_dir)
                pending.remove(body)
                progressed = True
        if not progressed:  # World validation rules this out; kept as a guard
            raise WorldValidationError("bodies", "parents could not be resolved", [b.name for b in pending])
    for actuator in world.actuators:
        body_name, _, part = actuator.joint.partition("/")
        joint_name = f"{body_name}/slide" if (part == "slide" or world.body(body_name).joint.type
                                                == "revolute_prismatic" and part) else body_name
        mj_actuator = spec.add_actuator(name=actuator.name, target=joint_name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        if actuator.kind == "position":
            mj_actuator.set_to_position(kp=_q(actuator.gain), kv=_q(actuator.damping))
        elif actuator.kind == "velocity":
            mj_actuator.set_to_velocity(kv=_q(actuator.gain))
        else:
            mj_actuator.set_to_motor()
            mj_actuator.gear[0] = _q(actuator.gain)
        if actuator.control_range is not None:
            mj_actuator.ctrlrange = _q(actuator.control_range)
            mj_actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        if actuator.force_range is not None:
            mj_actuator.forcerange = _q(actuator.force_range)
            mj_actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    # Jointed neighbours overlap at their pivot by design (as in URDF, adjacent links never
    # collide). MuJoCo's own parent filter skips parents welded to the world, so say it.
    for body in world.bodies:
        if body.parent is not None:
            spec.add_exclude(bodyname1=body.parent, bodyname2=body.name)
    return spec


def _add_body(spec: mujoco.MjSpec, parent, body: Body, world: World, mesh_dir: Path | None):
    mj_body = parent.add_body(name=body.name, pos=_q(body.pose.position), quat=_q(body.pose.quaternion))
    joint = body.joint
    stiction = dict(solref_friction=_q([max(STICTION_TIMECONST, STICTION_MIN_STEPS * world.timestep), 1.0]),
                    solimp_friction=list(STICTION_SOLIMP))
    if joint.type == "free":
        mj_body.add_freejoint(name=body.name)
    elif joint.type != "fixed":
        common = dict(pos=_q(joint.pivot), damping=_q(joint.damping), frictionloss=_q(joint.frictionloss),
                      armature=_q(joint.armature), stiffness=_q(joint.stiffness), springref=_q(joint.spring_reference),
                      **stiction)
        if joint.type == "ball":
            j = mj_body.add_joint(name=body.name, type=mujoco.mjtJoint.mjJNT_BALL, **common)
            if joint.range is not None:
                j.range = _q(joint.range)
                j.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        else:
            rotates = joint.type in ("revolute", "revolute_prismatic")
            j = mj_body.add_joint(name=body.name, axis=_q(joint.axis), ref=0.0, **common,
                                  type=mujoco.mjtJoint.mjJNT_HINGE if rotates else mujoco.mjtJoint.mjJNT_SLIDE)
            if joint.range is not None:
                j.range = _q(joint.range)
                j.limited = mujoco.mjtLimited.mjLIMITED_TRUE
            if joint.type == "revolute_prismatic":
                slide = mj_body.add_joint(name=f"{body.name}/slide", type=mujoco.mjtJoint.mjJNT_SLIDE,
                                          axis=_q(joint.axis), **common)
                if joint.slide_range is not None:
                    slide.range = _q(joint.slide_range)
                    slide.limited = mujoco.mjtLimited.mjLIMITED_TRUE
    if body.inertial is not None:
        inertial = body.inertial
        mj_body.explicitinertial = True
        mj_body.mass = _q(inertial.mass)
        mj_body.ipos = _q(inertial.center_of_mass)
        mj_body.fullinertia = _q(inertial.inertia)
    for index, geom in enumerate(body.geoms):
        _add_geom(spec, mj_body, body, index, geom, world, mesh_dir)
    return mj_body


def _add_geom(spec, mj_body, body: Body, index: int, geom: Geom, world: World, mesh_dir: Path | None) -> None:
    name = geom.name or f"{body.name}/{index}"
    shape = geom.shape
    common = dict(rgba=_q(geom.rgba))
    if isinstance(shape, Voxels):
        # Exact collision for a voxel solid: the cuboids that tile it.
        for part, (start, size) in enumerate(shape.boxes()):
            half = 0.5 * shape.voxel_size * np.array(size, dtype=float)
            centre = np.array(shape.origin) + shape.voxel_size * np.array(start, dtype=float) + half
            world_centre = _transform_point(geom.pose, centre)
            g = mj_body.add_geom(name=f"{name}/{part}", type=mujoco.mjtGeom.mjGEOM_BOX, size=_q(half),
                                 pos=_q(world_centre), quat=_q(geom.pose.quaternion), **common)
            _finish_geom(g, geom, world, body)
        return
    g = mj_body.add_geom(name=name, pos=_q(geom.pose.position), quat=_q(geom.pose.quaternion), **common)
    if isinstance(shape, Box):
        g.type, g.size = mujoco.mjtGeom.mjGEOM_BOX, _q(shape.half_extents)
    elif isinstance(shape, Sphere):
        g.type, g.size = mujoco.mjtGeom.mjGEOM_SPHERE, _q([shape.radius, 0.0, 0.0])
    elif isinstance(shape, Capsule):
        g.type, g.size = mujoco.mjtGeom.mjGEOM_CAPSULE, _q([shape.radius, shape.half_length, 0.0])
    elif isinstance(shape, Cylinder):
        g.type, g.size = mujoco.mjtGeom.mjGEOM_CYLINDER, _q([shape.radius, shape.half_length, 0.0])
    elif isinstance(shape, Mesh):
        mesh_name = f"{name}/mesh"
        vertices, faces = _mesh_arrays(shape, world, body)
        vertices = vertices * np.array(shape.scale)
        mesh = spec.add_mesh(name=mesh_name)
        mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_EXACT
        if geom.collide and not body.is_static and body.inertial is None:
            # Mass comes from this mesh's volume: an open, non-manifold or self-intersecting mesh
            # would give a wrong one silently (MuJoCo integrates whatever it gets).
            ready = prepare_for_mass(vertices, faces)
            vertices, faces = ready.vertices, ready.faces
            if ready.convex_inertia:
                mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_CONVEX
            if ready.repair:
                logger.warning("body '%s' geom '%s': mesh has %s; %s", body.name, name,
                               ready.defects.describe(), ready.repair)
        if mesh_dir is not None:
            file_name = mesh_name.replace("/", "_") + ".obj"
            write_obj(mesh_dir / file_name, vertices, faces)
            mesh.file = file_name
        else:
            mesh.uservert = vertices.reshape(-1).tolist()
            mesh.userface = faces.reshape(-1).tolist()
        g.type, g.meshname = mujoco.mjtGeom.mjGEOM_MESH, mesh_name
    _finish_geom(g, geom, world, body)


def _finish_geom(g, geom: Geom, world: World, body: Body) -> None:
    _apply_material(g, geom.material, world.timestep)
    friction = geom.material.friction
    g.condim = 6 if (friction[1] > 0 or friction[2] > 0) else 3
    if not geom.collide:
        g.contype, g.conaffinity, g.density = 0, 0, 0.0
        g.group = 1
    if body.is_static or body.inertial is not None:
        return
    g.density = _q(geom.material.density) if geom.collide else 0.0


def _apply_material(g, material, timestep: float) -> None:
    g.friction = _q(material.friction)
    g.solref = _q(restitution_solref(material.restitution, timestep))
    g.solimp = list(CONTACT_SOLIMP)
    g.density = _q(material.density)


def _mesh_arrays(shape: Mesh, world: World, body: Body) -> tuple[np.ndarray, np.ndarray]:
    if shape.path is None:
        return np.asarray(shape.vertices, dtype=np.float64), np.asarray(shape.faces, dtype=np.int64)
    if world.asset_dir is None:
        raise InputFileError(shape.path, f"body '{body.name}' uses a mesh file but the world has no asset_dir; "
                             "load it with load_world() or set World.asset_dir")
    return load_mesh_arrays(resolve_inside(world.asset_dir, shape.path))


def _transform_point(pose, point: np.ndarray) -> np.ndarray:
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, np.array(pose.quaternion, dtype=float))
    return rotation.reshape(3, 3) @ point + np.array(pose.position)
