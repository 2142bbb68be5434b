"""Named kinematic reads and writes on a ``Simulator``, and damped-least-squares inverse kinematics.

Additive helpers for robot control (the Simulator itself is untouched): body poses and
velocities by name, joint positions written by name, and IK for a point fixed in a body.
IK runs on a scratch ``MjData`` so the simulation state is never disturbed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from physforge.sim.simulator import Simulator

#: IK stops when the position error (m) and rotation error (rad) are both below these.
IK_POSITION_TOLERANCE = 1e-4
IK_ROTATION_TOLERANCE = 1e-3


def body_pose(sim: Simulator, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(position (3,) m, rotation (3, 3))`` of body ``name``'s frame, world, current state."""
    mujoco.mj_kinematics(sim.model, sim.data)
    body_id = sim.compiled.body_id(name)
    return sim.data.xpos[body_id].copy(), sim.data.xmat[body_id].reshape(3, 3).copy()


def body_quaternion(sim: Simulator, name: str) -> np.ndarray:
    """(4,) (w, x, y, z) of body ``name``, world frame."""
    mujoco.mj_kinematics(sim.model, sim.data)
    return sim.data.xquat[sim.compiled.body_id(name)].copy()


def body_velocity(sim: Simulator, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(linear (3,) m/s of the body origin, angular (3,) rad/s)``, world frame."""
    velocity = np.zeros(6)
    mujoco.mj_forward(sim.model, sim.data)
    mujoco.mj_objectVelocity(sim.model, sim.data, mujoco.mjtObj.mjOBJ_BODY, sim.compiled.body_id(name), velocity, 0)
    return velocity[3:].copy(), velocity[:3].copy()


def joint_positions(sim: Simulator, joints: tuple[str, ...] | list[str]) -> np.ndarray:
    """(len(joints),) rad or m of the named 1-DoF joints."""
    return np.array([sim.joint_position(j) for j in joints])


def set_joint_positions(sim: Simulator, values: dict[str, float]) -> None:
    """Write 1-DoF joint positions (rad or m) by name, zero their velocities, update kinematics."""
    for joint, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"joint position of {joint!r} must be finite, got {value}")
        j = sim.model.joint(joint)
        sim.data.qpos[j.qposadr[0]] = value
        sim.data.qvel[j.dofadr[0]] = 0.0
    mujoco.mj_forward(sim.model, sim.data)


def point_position(sim: Simulator, body: str, offset=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(3,) m, world: the point at ``offset`` (m, body frame) of ``body``."""
    position, rotation = body_pose(sim, body)
    return position + rotation @ np.asarray(offset, dtype=float)


@dataclass(frozen=True)
class IkResult:
    """joint_positions: (n_joints,) rad/m solving the target; position_error: m; rotation_error:
    rad; converged: both below the IK tolerances."""

    joint_positions: np.ndarray
    position_error: float
    rotation_error: float
    iterations: int

    @property
    def converged(self) -> bool:
        return self.position_error < IK_POSITION_TOLERANCE and self.rotation_error < IK_ROTATION_TOLERANCE


class InverseKinematics:
    """Damped least-squares IK for a point fixed in one body of ``sim``, over named 1-DoF joints.

        ik = InverseKinematics(sim, joints=arm, body="panda_link7", offset=(0, 0, 0.2))
        result = ik.solve(target_position, target_rotation, initial=current_q)

    Joint limits of the compiled model are respected by clipping each iteration.
    """

    def __init__(self, sim: Simulator, joints, body: str, offset=(0.0, 0.0, 0.0), *, damping: float = 1e-3):
        if not damping > 0:
            raise ValueError(f"damping must be > 0, got {damping}")
        self.model = sim.model
        self.data = mujoco.MjData(sim.model)
        self.body_id = sim.compiled.body_id(body)
        self.offset = np.asarray(offset, dtype=float)
        self.joints = tuple(joints)
        self.qpos_index = np.array([self.model.joint(j).qposadr[0] for j in self.joints])
        self.dof_index = np.array([self.model.joint(j).dofadr[0] for j in self.joints])
        limited = np.array([bool(self.model.jnt_limited[self.model.joint(j).id]) for j in self.joints])
        ranges = np.array([self.model.jnt_range[self.model.joint(j).id] for j in self.joints])
        self.low = np.where(limited, ranges[:, 0], -np.inf)
        self.high = np.where(limited, ranges[:, 1], np.inf)
        self.damping = damping
        self._sim = sim
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,) m, rotation (3, 3)) of the IK point for joint positions ``q``, the
        rest of the state as in the simulator now."""
        self.data.qpos[:] = self._sim.data.qpos
        self.data.qpos[self.qpos_index] = q
        mujoco.mj_kinematics(self.model, self.data)
        rotation = self.data.xmat[self.body_id].reshape(3, 3)
        return self.data.xpos[self.body_id] + rotation @ self.offset, rotation.copy()

    def solve(self, position, rotation=None, *, initial=None, iterations: int = 50,
              rotation_weight: float = 0.5, max_step: float = 0.2) -> IkResult:
        """Joint positions putting the IK point at ``position`` (3,) m (and the body's axes at
        ``rotation`` (3, 3), world, if given). ``initial``: start (default: current state)."""
        target = np.asarray(position, dtype=float)
        q = (np.array([self._sim.data.qpos[i] for i in self.qpos_index]) if initial is None
             else np.asarray(initial, dtype=float).copy())
        pos_err = rot_err = math.inf
        for iteration in range(1, iterations + 1):
            point, current = self.forward(q)
            error_p = target - point
            pos_err = float(np.linalg.norm(error_p))
            if rotation is not None:
                error_r = rotation_error_vector(current, rotation)
                rot_err = float(np.linalg.norm(error_r))
            else:
                error_r, rot_err = np.zeros(3), 0.0
            if pos_err < IK_POSITION_TOLERANCE and rot_err < IK_ROTATION_TOLERANCE:
                return IkResult(q, pos_err, rot_err, iteration)
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jac(self.model, self.data, self._jacp, self._jacr, point, self.body_id)
            jp = self._jacp[:, self.dof_index]
            if rotation is not None:
                jacobian = np.vstack([jp, rotation_weight * self._jacr[:, self.dof_index]])
                error = np.concatenate([error_p, rotation_weight * error_r])
            else:
                jacobian, error = jp, error_p
            lam = self.damping
            step = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + lam * np.eye(len(error)), error)
            norm = np.linalg.norm(step)
            if norm > max_step:
                step *= max_step / norm
            q = np.clip(q + step, self.low, self.high)
        point, current = self.forward(q)
        pos_err = float(np.linalg.norm(target - point))
        if rotation is not None:
            rot_err = float(np.linalg.norm(rotation_error_vector(current, rotation)))
        return IkResult(q, pos_err, rot_err, iterations)


def rotation_error_vector(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3,) rad, world frame: the rotation vector turning ``current`` (3, 3) into ``target`` (3, 3)
    along the shortest path (its norm is the angle, up to pi; exact at any angle)."""
    quaternion = np.zeros(4)
    mujoco.mju_mat2Quat(quaternion, np.ascontiguousarray(target @ current.T).reshape(-1))
    if quaternion[0] < 0:
        quaternion = -quaternion
    velocity = np.zeros(3)
    mujoco.mju_quat2Vel(velocity, quaternion, 1.0)
    return velocity
