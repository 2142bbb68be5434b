"""The gate every exported asset must pass, and its JSON report card.

Checks:
- ``mjcf``: plain MuJoCo loads the exported MJCF; body masses match the asset.
- ``urdf_mujoco``: plain MuJoCo loads the exported URDF; masses of the asset's links match.
- ``urdf_yourdfpy`` / ``urdf_pybullet``: independent URDF consumers load it; link masses and
  joint limits match.
- ``inertia``: every body's inertia (ours and MuJoCo's compiled one) is positive definite and
  satisfies the triangle inequality.
- ``rest``: simulated for ``rest_duration`` s from the rest pose and from the middle of every
  joint range, no body moves more than ``max_drift`` m or turns more than ``max_turn`` rad.
- ``sweep``: every joint is driven through its full range (the others at rest, then all at
  their lower and all at their upper limits); no two non-adjacent bodies overlap by more
  than ``penetration_tolerance`` m, nor does a moving body sink into the floor.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from physforge.errors import PhysforgeError
from physforge.world import World

#: Relative mass difference tolerated between our numbers and a consumer's (MJCF keeps 6 digits).
MASS_TOLERANCE = 1e-4


@dataclass(frozen=True)
class GateConfig:
    """rest_duration s; max_drift m; max_turn rad; sweep_samples per joint; penetration_tolerance m."""

    rest_duration: float = 2.0
    max_drift: float = 0.01
    max_turn: float = math.radians(5.0)
    sweep_samples: int = 16
    penetration_tolerance: float = 1e-3

    def __post_init__(self):
        if not self.rest_duration > 0:
            raise ValueError(f"rest_duration must be > 0 s, got {self.rest_duration}")
        if not (self.max_drift > 0 and self.max_turn > 0 and self.penetration_tolerance >= 0):
            raise ValueError("max_drift, max_turn must be > 0 and penetration_tolerance >= 0")
        if self.sweep_samples < 2:
            raise ValueError(f"sweep_samples must be >= 2, got {self.sweep_samples}")


def _check(passed: bool, **detail) -> dict:
    return {"passed": bool(passed), **detail}


def _guard(function, *args) -> dict:
    try:
        return function(*args)
    except (PhysforgeError, ValueError, RuntimeError, OSError, KeyError) as err:
        return _check(False, error=f"{type(err).__name__}: {err}")


def run_gate(world: World, *, mjcf: Path | None = None, urdf: Path | None = None,
             config: GateConfig = GateConfig()) -> dict:
    """The report card of an asset's world and its exported files (a JSON-ready dict)."""
    started = time.perf_counter()
    checks: dict[str, dict] = {}
    masses = {b.name: b.inertial.mass for b in world.bodies if b.inertial is not None}
    if mjcf is not None:
        checks["mjcf"] = _guard(_mujoco_file, mjcf, masses)
    if urdf is not None:
        checks["urdf_mujoco"] = _guard(_mujoco_file, urdf, masses)
        checks["urdf_yourdfpy"] = _guard(_yourdfpy, urdf, world)
        checks["urdf_pybullet"] = _guard(_pybullet, urdf, world)
    checks["inertia"] = _guard(_inertia, world)
    checks["rest"] = _guard(_rest, world, config)
    checks["sweep"] = _guard(_sweep, world, config)
    passed = all(c["passed"] for c in checks.values())
    return {"asset": world.name, "passed": passed, "failed": sorted(k for k, c in checks.items() if not c["passed"]),
            "checks": checks, "config": asdict(config), "seconds": round(time.perf_counter() - started, 3)}


def _mujoco_file(path: Path, masses: dict[str, float]) -> dict:
    from physforge.sim.articulation import load_model_file

    summary = load_model_file(path)
    mismatched = {}
    for name, mass in masses.items():
        got = summary.bodies.get(name)
        if got is None or abs(got - mass) > MASS_TOLERANCE * max(mass, 1e-3):
            mismatched[name] = {"expected": mass, "got": got}
    return _check(not mismatched, bodies=len(summary.bodies), joints=len(summary.joints),
                  total_mass=summary.total_mass, mismatched_masses=mismatched)


def _expected_limits(world: World) -> dict[str, tuple[float, float]]:
    limits = {}
    for body in world.bodies:
        joint = body.joint
        if joint.type in ("revolute", "prismatic", "revolute_prismatic") and joint.range is not None:
            limits[body.name] = joint.range
    return limits


def _yourdfpy(path: Path, world: World) -> dict:
    import yourdfpy

    robot = yourdfpy.URDF.load(str(path), build_scene_graph=False, build_collision_scene_graph=False,
                               load_meshes=False, load_collision_meshes=False)
    valid = bool(robot.validate()) if hasattr(robot, "validate") else True
    problems = {}
    for body in world.bodies:
        link = robot.link_map.get(body.name)
        if link is None or link.inertial is None:
            problems[body.name] = "missing link or inertial"
            continue
        if abs(link.inertial.mass - body.inertial.mass) > MASS_TOLERANCE * body.inertial.mass:
            problems[body.name] = f"mass {link.inertial.mass} != {body.inertial.mass}"
        if not any(c.geometry is not None for c in link.collisions):
            problems[body.name] = "no collision geometry"
    for name, (low, high) in _expected_limits(world).items():
        joint = robot.joint_map.get(name)
        if joint is None or joint.limit is None or abs(joint.limit.lower - low) > 1e-6 \
                or abs(joint.limit.upper - high) > 1e-6:
            problems[f"joint {name}"] = "limits differ"
    missing_files = []
    for link in robot.link_map.values():
        for element in list(link.visuals) + list(link.collisions):
            if element.geometry is not None and element.geometry.mesh is not None:
                if not (path.parent / element.geometry.mesh.filename).is_file():
                    missing_files.append(element.geometry.mesh.filename)
    ok = valid and not problems and not missing_files
    return _check(ok, links=len(robot.link_map), joints=len(robot.joint_map), validate=valid, problems=problems,
                  missing_mesh_files=missing_files[:5])


def _pybullet(path: Path, world: World) -> dict:
    import pybullet

    with _quiet():
        client = pybullet.connect(pybullet.DIRECT)
    try:
        with _quiet():
            uid = pybullet.loadURDF(str(path), useFixedBase=False, flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
                                    physicsClientId=client)
        names = {pybullet.getBodyInfo(uid, physicsClientId=client)[0].decode(): -1}
        limits = {}
        for j in range(pybullet.getNumJoints(uid, physicsClientId=client)):
            info = pybullet.getJointInfo(uid, j, physicsClientId=client)
            names[info[12].decode()] = j
            limits[info[1].decode()] = (info[8], info[9])
        problems = {}
        for body in world.bodies:
            if body.name not in names:
                problems[body.name] = "link missing"
                continue
            mass = pybullet.getDynamicsInfo(uid, names[body.name], physicsClientId=client)[0]
            if abs(mass - body.inertial.mass) > MASS_TOLERANCE * body.inertial.mass:
                problems[body.name] = f"mass {mass} != {body.inertial.mass}"
        for name, (low, high) in _expected_limits(world).items():
            got = limits.get(name)
            if got is None or abs(got[0] - low) > 1e-6 or abs(got[1] - high) > 1e-6:
                problems[f"joint {name}"] = f"limits {got} != {(low, high)}"
        return _check(not problems, links=len(names), problems=problems)
    finally:
        pybullet.disconnect(physicsClientId=client)


@contextlib.contextmanager
def _quiet():
    """Silence pybullet's C-level stdout chatter."""
    try:
        fd = os.dup(1)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(fd, 1)
            os.close(fd)


def inertia_problems(mass: float, inertia6) -> str | None:
    ixx, iyy, izz, ixy, ixz, iyz = inertia6
    tensor = np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]])
    principal = np.linalg.eigvalsh(tensor)
    if not mass > 0:
        return f"mass {mass} is not positive"
    if principal[0] <= 0:
        return f"not positive definite (principal moments {principal.tolist()})"
    a, b, c = principal
    if a + b < c * (1 - 1e-6):
        return f"triangle inequality violated ({a:.4g} + {b:.4g} < {c:.4g})"
    return None


def _inertia(world: World) -> dict:
    from physforge.sim import compile_world

    problems = {}
    for body in world.bodies:
        issue = inertia_problems(body.inertial.mass, body.inertial.inertia)
        if issue:
            problems[body.name] = issue
    compiled = compile_world(world)
    model = compiled.model
    for body in world.bodies:
        i = compiled.body_id(body.name)
        diag = model.body_inertia[i]
        issue = inertia_problems(float(model.body_mass[i]), (*diag, 0.0, 0.0, 0.0))
        if issue:
            problems[f"{body.name} (mujoco)"] = issue
    return _check(not problems, bodies=len(world.bodies), problems=problems)


def _at(world: World, positions: dict[str, float]) -> World:
    bodies = []
    for body in world.bodies:
        if body.name in positions:
            body = replace(body, joint=replace(body.joint, initial_position=positions[body.name]))
        bodies.append(body)
    return world.replace(bodies=tuple(bodies))


def _mid_positions(world: World) -> dict[str, float]:
    out = {}
    for body in world.bodies:
        joint = body.joint
        if joint.type in ("revolute", "prismatic", "revolute_prismatic") and joint.range is not None:
            out[body.name] = 0.5 * (joint.range[0] + joint.range[1])
    return out


def _rest(world: World, config: GateConfig) -> dict:
    from physforge.sim import Simulator
    from physforge.sim import compile_world

    poses = {"rest": {}, "mid_range": _mid_positions(world)}
    results, worst = {}, {"drift_m": 0.0, "turn_deg": 0.0}
    passed = True
    for label, positions in poses.items():
        if label == "mid_range" and not positions:
            continue
        sim = Simulator(compile_world(_at(world, positions)))
        trajectory = sim.run(config.rest_duration, fps=20.0, events=False).trajectory
        drift = np.linalg.norm(trajectory.position - trajectory.position[:1], axis=-1).max(axis=0)
        dots = np.abs((trajectory.quaternion * trajectory.quaternion[:1]).sum(-1)).clip(0, 1)
        turn = (2 * np.arccos(dots)).max(axis=0)
        bodies = {name: {"drift_m": round(float(d), 6), "turn_deg": round(math.degrees(float(t)), 4)}
                  for name, d, t in zip(trajectory.body_names, drift, turn)}
        ok = bool(drift.max() <= config.max_drift and turn.max() <= config.max_turn)
        passed &= ok
        worst["drift_m"] = max(worst["drift_m"], round(float(drift.max()), 6))
        worst["turn_deg"] = max(worst["turn_deg"], round(math.degrees(float(turn.max())), 4))
        results[label] = {"passed": ok, "positions": positions, "bodies": bodies}
    return _check(passed, worst=worst, poses=results)


def _sweep(world: World, config: GateConfig) -> dict:
    from physforge.sim import compile_world
    from physforge.sim.articulation import JointPoseProbe, sweep_values

    probe = JointPoseProbe(compile_world(world))
    bodies = {b.name: b for b in world.bodies}
    moving_free = {b.name for b in world.bodies if b.joint.type == "free"}

    def overlaps() -> list:
        found = probe.overlaps(tolerance=config.penetration_tolerance, include_ground=True)
        # the free base resting on the floor touches it by design
        return [o for o in found if not (o.body_b == "ground" and o.body_a in moving_free
                                         and bodies[o.body_a].parent is None)]

    joints = {}
    worst = 0.0
    passed = True
    at_rest = overlaps()
    if at_rest:
        passed = False
    scalar = [j for j in probe.joints.values() if j.kind in ("hinge", "slide") and j.body in bodies]
    for info in scalar:
        probe.reset()
        deepest, bad = 0.0, []
        for value in sweep_values(info, config.sweep_samples):
            probe.set({info.name: value})
            for o in overlaps():
                deepest = max(deepest, o.depth)
                bad.append({"position": round(value, 5), "bodies": [o.body_a, o.body_b], "depth_m": round(o.depth, 5)})
        joints[info.name] = {"kind": info.kind, "range": info.range, "max_overlap_m": round(deepest, 6),
                             "passed": not bad, "overlaps": bad[:5]}
        passed &= not bad
        worst = max(worst, deepest)
    for info in (j for j in probe.joints.values() if j.kind == "ball"):
        probe.reset()
        bad = []
        limit = bodies[info.body].joint.range[1] if bodies[info.body].joint.range else math.pi / 2
        for axis in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
            for angle in np.linspace(-limit, limit, config.sweep_samples):
                half = 0.5 * angle
                probe.set({info.name: np.array([math.cos(half), *(math.sin(half) * np.array(axis))])})
                for o in overlaps():
                    worst = max(worst, o.depth)
                    bad.append({"axis": axis, "angle": round(float(angle), 5), "bodies": [o.body_a, o.body_b],
                                "depth_m": round(o.depth, 5)})
        joints[info.name] = {"kind": "ball", "range": [0.0, limit], "passed": not bad, "overlaps": bad[:5]}
        passed &= not bad
    extremes = {}
    for end in (0, 1):
        probe.reset()
        probe.set({j.name: (j.range[end] if j.range is not None else 0.0) for j in scalar})
        found = overlaps()
        extremes["lower" if end == 0 else "upper"] = [[o.body_a, o.body_b, round(o.depth, 5)] for o in found]
        passed &= not found
    return _check(passed, max_overlap_m=round(worst, 6), at_rest=[[o.body_a, o.body_b, o.depth] for o in at_rest],
                  joints=joints, all_at_limits=extremes)
