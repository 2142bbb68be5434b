"""IK checked by forward kinematics, and the rotation error at large angles."""

import math

import numpy as np
import pytest

from physforge.robot import panda
from physforge.sim import Simulator
from physforge.sim.kinematics import (InverseKinematics, body_velocity, joint_positions, rotation_error_vector,
                                      set_joint_positions)


@pytest.fixture(scope="module")
def arm():
    model = panda.load_panda()
    sim = Simulator(model.fragment.world(), check_stability=False)
    set_joint_positions(sim, dict(zip(panda.ARM_JOINTS, panda.HOME)))
    return sim, InverseKinematics(sim, panda.ARM_JOINTS, panda.HAND_BODY, model.grasp_offset)


def test_ik_reaches_targets_produced_by_forward_kinematics(arm):
    sim, ik = arm
    rng = np.random.default_rng(1)
    for _ in range(8):
        q_true = np.array(panda.HOME) + rng.uniform(-0.3, 0.3, size=7)
        position, rotation = ik.forward(q_true)
        result = ik.solve(position, rotation, initial=np.array(panda.HOME), iterations=200)
        reached, reached_rotation = ik.forward(result.joint_positions)  # the oracle: forward kinematics
        assert np.linalg.norm(reached - position) < 1e-3
        assert np.linalg.norm(rotation_error_vector(reached_rotation, rotation)) < 1e-2
        assert result.converged or result.position_error < 1e-3


def test_ik_respects_joint_limits(arm):
    sim, ik = arm
    result = ik.solve(np.array([2.0, 0.0, 0.3]), iterations=50)  # out of reach
    assert np.all(result.joint_positions >= ik.low - 1e-12) and np.all(result.joint_positions <= ik.high + 1e-12)
    assert not result.converged


def test_rotation_error_is_exact_up_to_half_a_turn():
    for angle in (0.1, 1.0, 3.0, math.pi - 1e-6):
        c, s = math.cos(angle), math.sin(angle)
        target = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        vector = rotation_error_vector(np.eye(3), target)
        assert np.linalg.norm(vector) == pytest.approx(angle, abs=1e-5)
        assert abs(vector[2]) == pytest.approx(angle, abs=1e-5)


def test_set_joint_positions_and_velocity_reads(arm):
    sim, _ = arm
    set_joint_positions(sim, {"panda_link1": 0.3})
    assert joint_positions(sim, ["panda_link1"])[0] == pytest.approx(0.3)
    linear, angular = body_velocity(sim, "panda_link1")
    assert np.allclose(linear, 0) and np.allclose(angular, 0)
    with pytest.raises(ValueError, match="finite"):
        set_joint_positions(sim, {"panda_link1": float("nan")})
