"""Named joint access, pose-by-pose contact checks and model-file summaries for articulated worlds.

Used by the asset gate: drive a joint through its range kinematically and list the bodies that
overlap, and load an exported MJCF or URDF with plain MuJoCo to compare masses and limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from physforge.errors import InputFileError
from physforge.world.xmlsafe import check_model_file
from physforge.sim.compile import CompiledWorld, compile_world, initial_state
from physforge.world import World

#: Overlaps shallower than this (m) count as touching, not interpenetrating.
PENETRATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class JointInfo:
    """One MuJoCo joint of a compiled world: ``kind`` is hinge, slide, ball or free; ``range`` in
    rad (hinge, ball max angle) or m (slide), None when unlimited; ``qpos_address`` into qpos."""

    name: str
    body: str
    kind: str
    range: tuple[float, float] | None
    qpos_address: int


@dataclass(frozen=True)
class Overlap:
    """Two bodies whose collision geometry overlaps by ``depth`` m (> 0) at one pose."""

    body_a: str
    body_b: str
    depth: float


_KINDS = {int(mujoco.mjtJoint.mjJNT_HINGE): "hinge", int(mujoco.mjtJoint.mjJNT_SLIDE): "slide",
          int(mujoco.mjtJoint.mjJNT_BALL): "ball", int(mujoco.mjtJoint.mjJNT_FREE): "free"}


def joint_table(compiled: CompiledWorld) -> list[JointInfo]:
    """Every joint of the compiled world, in model order, with its body's world name."""
    model = compiled.model
    out = []
    for j in range(model.njnt):
        body_id = int(model.jnt_bodyid[j])
        limited = bool(model.jnt_limited[j])
        out.append(JointInfo(name=model.joint(j).name, body=model.body(body_id).name,
                             kind=_KINDS[int(model.jnt_type[j])],
                             range=(float(model.jnt_range[j, 0]), float(model.jnt_range[j, 1])) if limited else None,
                             qpos_address=int(model.jnt_qposadr[j])))
    return out


class JointPoseProbe:
    """Poses an articulated world joint by joint (no dynamics) and reports overlapping bodies.

        probe = JointPoseProbe(world)
        probe.set({"door": 1.2, "drawer_1": 0.1})      # rad or m, by joint name
        probe.overlaps()                                 # [Overlap(...)] between non-adjacent bodies
    """

    def __init__(self, world: World | CompiledWorld):
        self.compiled = world if isinstance(world, CompiledWorld) else compile_world(world)
        self.model = self.compiled.model
        self.data = mujoco.MjData(self.model)
        self.joints = {j.name: j for j in joint_table(self.compiled)}
        self._initial = initial_state(self.compiled)[0]
        self._names = [b.name for b in self.compiled.world.bodies]
        adjacent = set()
        for body in self.compiled.world.bodies:
            if body.parent is not None:
                adjacent.add(frozenset((body.name, body.parent)))
        self._adjacent = adjacent
        self.reset()

    def reset(self) -> None:
        """Back to the world's initial joint positions."""
        self.data.qpos[:] = self._initial
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def set(self, positions: dict[str, float | np.ndarray]) -> None:
        """Set joints by name: a number (rad or m) for hinge/slide, a (w, x, y, z) quaternion for a ball."""
        for name, value in positions.items():
            if name not in self.joints:
                raise KeyError(f"no joint named {name!r}; joints are {sorted(self.joints)}")
            joint = self.joints[name]
            address = joint.qpos_address
            if joint.kind == "ball":
                quat = np.asarray(value, dtype=float)
                self.data.qpos[address:address + 4] = quat / np.linalg.norm(quat)
            elif joint.kind == "free":
                raise ValueError(f"joint {name!r} is free; pose its body instead")
            else:
                self.data.qpos[address] = float(value)
        mujoco.mj_forward(self.model, self.data)

    def position(self, name: str) -> float:
        joint = self.joints[name]
        return float(self.data.qpos[joint.qpos_address])

    def overlaps(self, *, tolerance: float = PENETRATION_TOLERANCE, include_ground: bool = False) -> list[Overlap]:
        """Pairs of non-adjacent bodies (not parent and child) overlapping deeper than ``tolerance`` m.

        include_ground: also report moving bodies that sink into the floor (as body ``ground``);
        bodies welded to the world are never reported against the ground.
        """
        deepest: dict[tuple[str, str], float] = {}
        index = self.compiled.geom_body_index
        for contact in _contacts(self.data):
            depth = -float(contact[2])
            if depth <= tolerance:
                continue
            a, b = int(index[contact[0]]), int(index[contact[1]])
            if a < 0 or b < 0:
                if not include_ground:
                    continue
                body = self._names[max(a, b)]
                pair = (body, "ground")
            else:
                pair = tuple(sorted((self._names[a], self._names[b])))  # type: ignore[assignment]
                if a == b or frozenset(pair) in self._adjacent:
                    continue
            deepest[pair] = max(deepest.get(pair, 0.0), depth)
        return [Overlap(a, b, d) for (a, b), d in sorted(deepest.items())]

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(position (3,) m, quaternion (4,) w x y z)`` of body ``name`` in the world frame."""
        body_id = self.compiled.body_id(name)
        return self.data.xpos[body_id].copy(), self.data.xquat[body_id].copy()


def _contacts(data) -> list[tuple[int, int, float]]:
    n = data.ncon
    if n == 0:
        return []
    geom = data.contact.geom[:n]
    dist = data.contact.dist[:n]
    return [(int(g[0]), int(g[1]), float(d)) for g, d in zip(geom, dist)]


def sweep_values(info: JointInfo, num_samples: int) -> list[float]:
    """Evenly spaced positions covering a hinge or slide joint's range (both ends included);
    an unlimited hinge sweeps one full turn."""
    if info.kind not in ("hinge", "slide"):
        raise ValueError(f"joint {info.name!r} is {info.kind}; only hinge and slide joints sweep a range")
    low, high = info.range if info.range is not None else (-math.pi, math.pi)
    return np.linspace(low, high, max(2, num_samples)).tolist()


@dataclass(frozen=True)
class ModelSummary:
    """What plain MuJoCo made of a model file: bodies (name -> mass kg), joints (name -> kind and
    range), the sum of body masses (kg) and the count of degrees of freedom."""

    bodies: dict[str, float]
    joints: dict[str, tuple[str, tuple[float, float] | None]]
    total_mass: float
    nv: int


def load_model_file(path: str | Path) -> ModelSummary:
    """Compile an MJCF or URDF file with plain ``mujoco.MjModel.from_xml_path``.

    The file (and every file it includes) is first parsed with defusedxml and its file
    references checked to stay in its folder (world.xmlsafe.check_model_file): MuJoCo's own
    reader would follow them anywhere. Raises InputFileError with the reason when it does not load.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "model file not found")
    check_model_file(path)
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except ValueError as err:
        raise InputFileError(path, f"MuJoCo cannot load it: {err}") from None
    bodies = {model.body(i).name: float(model.body_mass[i]) for i in range(1, model.nbody)}
    joints = {}
    for j in range(model.njnt):
        limited = bool(model.jnt_limited[j])
        joints[model.joint(j).name] = (_KINDS[int(model.jnt_type[j])],
                                       (float(model.jnt_range[j, 0]), float(model.jnt_range[j, 1])) if limited
                                       else None)
    return ModelSummary(bodies=bodies, joints=joints, total_mass=float(model.body_mass[1:].sum()), nv=int(model.nv))
