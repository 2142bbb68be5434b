"""The robot URDF importer: the Panda from pybullet_data against pybullet's own forward
kinematics (an independent loader), inertials kept, actuators, and unsafe paths refused."""

import numpy as np
import pytest

from physforge.assets.robot_urdf import RobotUrdfConfig, import_robot_urdf
from physforge.errors import InputFileError
from physforge.robot import panda
from physforge.sim import Simulator
from physforge.sim.kinematics import point_position, set_joint_positions

#: Agreement (m) between our compiled Panda and pybullet's link frames.
FK_TOLERANCE = 1e-5


def test_panda_keeps_urdf_inertials_limits_and_actuators():
    fragment = panda.load_panda().fragment
    names = [b.name for b in fragment.bodies]
    assert names[0] == "panda_link0" and set(panda.ARM_JOINTS + panda.FINGER_JOINTS) <= set(names)
    assert fragment.joints == panda.ARM_JOINTS + panda.FINGER_JOINTS
    by_name = {b.name: b for b in fragment.bodies}
    assert by_name["panda_link1"].inertial.mass == pytest.approx(2.7)
    # link7 (0.2 kg), the massless link8 and the hand (0.81 kg) are one body
    assert by_name["panda_link7"].inertial.mass == pytest.approx(1.01)
    assert by_name["panda_link4"].joint.range == pytest.approx((-3.1416, 0.0))
    assert by_name["panda_leftfinger"].joint.type == "prismatic"
    actuators = {a.name: a for a in fragment.actuators}
    assert actuators["panda_link1"].force_range == (-87.0, 87.0)
    assert actuators["panda_leftfinger"].control_range == (0.0, 0.04)
    assert not any(g.collide for g in by_name["panda_link3"].geoms)
    assert all(g.collide for g in by_name["panda_leftfinger"].geoms)


def test_panda_forward_kinematics_matches_pybullet():
    pybullet = pytest.importorskip("pybullet")
    client = pybullet.connect(pybullet.DIRECT)
    try:
        robot = pybullet.loadURDF(str(panda.panda_urdf_path()), useFixedBase=True, physicsClientId=client)
        link_index = {pybullet.getJointInfo(robot, j, physicsClientId=client)[12].decode(): j
                      for j in range(pybullet.getNumJoints(robot, physicsClientId=client))}
        joint_index = {pybullet.getJointInfo(robot, j, physicsClientId=client)[1].decode(): j
                       for j in range(pybullet.getNumJoints(robot, physicsClientId=client))}
        model = panda.load_panda()
        sim = Simulator(model.fragment.world(), check_stability=False)
        rng = np.random.default_rng(0)
        for _ in range(5):
            q = rng.uniform(-1.5, 0.0, size=7)
            set_joint_positions(sim, dict(zip(panda.ARM_JOINTS, q)))
            for k, value in enumerate(q):
                pybullet.resetJointState(robot, joint_index[f"panda_joint{k + 1}"], value, physicsClientId=client)
            for link in ("panda_link4", "panda_hand", panda.GRASP_LINK):
                body, transform = model.fragment.link_frames[link]
                ours = point_position(sim, body, transform[:3, 3])
                theirs = np.array(pybullet.getLinkState(robot, link_index[link], computeForwardKinematics=True,
                                                        physicsClientId=client)[4])
                np.testing.assert_allclose(ours, theirs, atol=FK_TOLERANCE)
    finally:
        pybullet.disconnect(client)


def test_panda_holds_its_home_pose_under_gravity():
    model = panda.load_panda()
    sim = Simulator(model.fragment.world())
    home = dict(zip(panda.ARM_JOINTS, panda.HOME))
    set_joint_positions(sim, home)
    for joint, value in home.items():
        sim.set_control(joint, value)
    start = point_position(sim, panda.HAND_BODY, model.grasp_offset)
    sim.step(500)
    assert np.linalg.norm(point_position(sim, panda.HAND_BODY, model.grasp_offset) - start) < 0.005


def test_mesh_paths_outside_the_package_are_refused(tmp_path):
    (tmp_path / "robot").mkdir()
    urdf = tmp_path / "robot" / "bad.urdf"
    (tmp_path / "secret.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
    urdf.write_text('<robot name="r"><link name="base"><collision><geometry><mesh filename="package://../secret.obj"/>'
                    '</geometry></collision></link></robot>')
    with pytest.raises(InputFileError, match="not allowed"):
        import_robot_urdf(urdf)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="revolute_gain"):
        RobotUrdfConfig(revolute_gain=0.0)
    with pytest.raises(InputFileError, match="collision_links"):
        import_robot_urdf(panda.panda_urdf_path(), RobotUrdfConfig(collision_links=("no_such_link",)))
