"""The Gymnasium environments: check_env, reward = sum of its terms, seeding, bounded residual,
physically tried grasps, and executable joint-space trajectories."""

import numpy as np
import pytest

from physforge.robot.env import (APPROACH_STEPS, DESCEND_STEPS, ENV_IDS, OBSERVATION_SIZE, PhysWorldEnv, Randomisation,
                                 observation_slices)
from physforge.robot.panda import ARM_JOINTS, FINGER_JOINTS, HOME
from physforge.robot.tasks import TASKS


@pytest.fixture(scope="module")
def envs():
    return {}


def _env(envs, task, mode="residual"):
    key = (task, mode)
    if key not in envs:
        envs[key] = PhysWorldEnv(task, mode=mode)
    return envs[key]


@pytest.mark.parametrize("task", TASKS)
def test_check_env_and_reward_is_the_sum_of_its_terms(envs, task):
    from stable_baselines3.common.env_checker import check_env

    env = _env(envs, task)
    check_env(env, warn=True, skip_render_check=True)
    observation, info = env.reset(seed=3)
    assert observation.shape == (OBSERVATION_SIZE,)
    rng = np.random.default_rng(0)
    done = False
    while not done:
        observation, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
        assert set(info["reward_terms"]) == {"tracking", "approach", "orientation", "success", "action"}
        done = terminated or truncated
    assert "summary" in info and info["summary"]["tracking_error_m"] > 0


def test_registered_ids_make_the_env_with_keyword_tunables():
    import gymnasium as gym

    env = gym.make(ENV_IDS["push"], mode="scratch", residual_scale=0.02)
    assert env.unwrapped.mode == "scratch" and env.unwrapped.task == "push"
    with pytest.raises(ValueError, match="mode must be one of"):
        PhysWorldEnv("push", mode="teleport")


def test_same_seed_same_episode(envs):
    env = _env(envs, "pick_place")
    runs = []
    for _ in range(2):
        observation, _ = env.reset(seed=7)
        trace = [observation.tobytes()]
        for _ in range(20):
            observation, *_ = env.step(np.full(4, 0.3, np.float32))
            trace.append(observation.tobytes())
        runs.append(trace)
    assert runs[0] == runs[1]
    other, _ = env.reset(seed=8)
    assert other.tobytes() != runs[0][0]


def test_residual_is_bounded_around_the_base_action(envs):
    env = _env(envs, "push")
    env.reset(seed=1)
    slices = observation_slices()
    base_target, _, _ = env._base_action()
    env.step(np.array([5.0, -5.0, 5.0, 0.0], np.float32))  # clipped to [-1, 1]
    commanded = env.ik.forward(env._q_target)[0]
    offset = commanded - base_target
    assert np.all(np.abs(offset) <= env.residual_scale + 2e-3)
    assert np.abs(offset).max() > 0.5 * env.residual_scale
    assert slices["base_action"].stop - slices["base_action"].start == 4


@pytest.mark.parametrize("task", ["pick_place", "open_drawer"])
def test_base_policy_grasps_are_tried_physically_and_succeed(task):
    # a correctly perceived start: the open-loop base alone must then do the task
    env = PhysWorldEnv(task, randomisation=Randomisation(position_jitter=0.0, yaw_jitter=0.0, drawer_start=(0.06, 0.06)))
    outcomes = []
    for seed in range(3):
        _, info = env.reset(seed=seed)
        assert info["grasp_validated"]  # a proposal passed close-lift-check in simulation
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
            done = terminated or truncated
        outcomes.append(info["summary"])
    assert all(o["success"] for o in outcomes)
    assert not any(o["grasp_failure"] for o in outcomes)
    # the oracle for "success": the object really moved by the demonstrated amount
    assert np.linalg.norm(env.object_pose()[:3, 3] - env.start_pose[:3, 3]) > 0.1


def test_scratch_with_zero_action_fails_the_task(envs):
    env = _env(envs, "pick_place", "scratch")
    env.reset(seed=0)
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
        done = terminated or truncated
    assert not info["summary"]["success"] and info["summary"]["grasp_failure"]


def test_joint_space_trajectory_replays_to_the_same_outcome(envs):
    from physforge.robot.dataset import replay_joint_trajectory

    env = _env(envs, "stack")
    env.reset(seed=4)
    commands, done = [], False
    while not done:
        _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
        commands.append(env.last_command.copy())
        done = terminated or truncated
    final = env.object_pose()[:3, 3].copy()
    replayed = replay_joint_trajectory(env, 4, np.array(commands))
    assert replayed["success"] == info["summary"]["success"] is True
    np.testing.assert_allclose(env.object_pose()[:3, 3], final, atol=1e-6)


def test_every_method_sees_the_same_world_and_plans_from_the_perceived_frame(envs):
    """The comparison is fair: for one seed, direct retargeting and the base policy face the same
    drawn physics, and both plan their grasp on the perceived first frame, not the true start."""
    retarget, residual = _env(envs, "pick_place", "retarget"), _env(envs, "pick_place")
    _, info_a = retarget.reset(seed=5)
    start_a = retarget.start_pose.copy()
    _, info_c = residual.reset(seed=5)
    assert info_a["physics"] == info_c["physics"]
    np.testing.assert_allclose(residual.start_pose, start_a, atol=1e-9)
    perceived = residual.context.demo_initial
    offset = np.array(info_c["physics"]["start_offset_m"])
    np.testing.assert_allclose(residual.start_pose[:2, 3] - perceived[:2, 3], offset, atol=2e-3)
    for env in (retarget, residual):
        grasp = (perceived @ env.object_from_grasp)[:3, 3]
        descended = env.base[0][APPROACH_STEPS + DESCEND_STEPS - 1]
        np.testing.assert_allclose(descended, grasp, atol=1e-9)


def test_grasp_selection_never_sees_the_episode_physics():
    """Grasps are tried in the reconstructed world with the worst-case properties, then the
    episode's own physics is applied: an ice-slick episode gets the same grasp and keeps its
    drawn friction and mass."""
    slick = PhysWorldEnv("stack", randomisation=Randomisation(friction=(0.05, 0.06)))
    normal = PhysWorldEnv("stack")
    _, info = slick.reset(seed=2)
    normal.reset(seed=2)
    assert info["grasp_validated"]
    np.testing.assert_array_equal(slick.object_from_grasp, normal.object_from_grasp)
    assert 0.05 <= slick.physics["cube"]["friction"] <= 0.06
    geom = slick.sim.model.body_geomadr[slick.sim.compiled.body_id("cube")]
    assert slick.sim.model.geom_friction[geom, 0] == pytest.approx(slick.physics["cube"]["friction"])
    assert slick.sim.body_mass("cube") == pytest.approx(slick.physics["cube"]["mass_kg"])


def test_latency_delays_the_whole_command_by_whole_control_periods():
    env = PhysWorldEnv("push", randomisation=Randomisation(latency_steps=(2, 2), actuation_noise=0.0))
    env.reset(seed=0)
    ctrl = lambda: np.array([env.sim.data.ctrl[env.sim.model.actuator(j).id] for j in ARM_JOINTS])  # noqa: E731
    held = ctrl()
    commands = [np.concatenate([np.array(HOME) + 0.05 * (k + 1), [0.01 * k]]) for k in range(3)]
    env.apply_joint_command(commands[0])
    np.testing.assert_array_equal(ctrl(), held)
    env.apply_joint_command(commands[1])
    np.testing.assert_array_equal(ctrl(), held)
    env.apply_joint_command(commands[2])
    np.testing.assert_allclose(ctrl(), commands[0][:7])
    assert env.sim.data.ctrl[env.sim.model.actuator(FINGER_JOINTS[0]).id] == pytest.approx(commands[0][7])


def test_observed_object_position_has_the_tracking_noise(envs):
    exact = PhysWorldEnv("push", randomisation=Randomisation(tracking_noise=0.0))
    observation, _ = exact.reset(seed=1)
    slices = observation_slices()
    np.testing.assert_allclose(observation[slices["object_position"]], exact.object_pose()[:3, 3], atol=1e-6)
    noisy = _env(envs, "push")
    noisy.reset(seed=1)
    deviations = np.array([noisy._observation()[slices["object_position"]] - noisy.object_pose()[:3, 3]
                           for _ in range(400)])
    assert np.std(deviations) == pytest.approx(noisy.randomisation.tracking_noise, rel=0.1)


def test_randomisation_errors_name_the_field():
    with pytest.raises(ValueError, match="Randomisation.drawer_friction_scale must be a range"):
        Randomisation(drawer_friction_scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="latency_steps"):
        Randomisation(latency_steps=(1, 0))


def test_reference_error_is_split_by_phase_and_the_horizon_terminates():
    """Before the demonstrated motion the observation carries (object - reference) as the
    approach error, after it (reference - object) as the tracking error, each zero in the other
    phase (oracle: the simulator's true pose with the tracker noise off); the last step is a
    termination, not a truncation (the horizon is the task's end)."""
    env = PhysWorldEnv("pick_place", randomisation=Randomisation(tracking_noise=0.0))
    slices = observation_slices()
    observation, _ = env.reset(seed=2)
    contact = env.spec_task.contact_step
    rng = np.random.default_rng(0)
    for t in range(env.horizon):
        expected = (env.object_pose()[:3, 3] - env.reference[t, :3, 3]) / env.residual_scale
        if t < contact:
            np.testing.assert_allclose(observation[slices["approach_error"]], expected, atol=1e-5)
            assert not observation[slices["tracking_error"]].any()
        else:
            np.testing.assert_allclose(observation[slices["tracking_error"]], -expected, atol=1e-5)
            assert not observation[slices["approach_error"]].any()
        assert t < contact or np.abs(expected).max() > 0  # the cube starts off its perceived pose
        observation, _, terminated, truncated, _ = env.step(rng.uniform(-0.2, 0.2, 4).astype(np.float32))
        assert not truncated and terminated == (t == env.horizon - 1)


def test_gripper_component_acts_only_with_residual_gripper():
    traces = {}
    for residual_gripper in (False, True):
        env = PhysWorldEnv("pick_place", residual_gripper=residual_gripper)
        for grip in (-1.0, 1.0):
            env.reset(seed=5)
            for _ in range(APPROACH_STEPS):  # the base holds the hand open while it approaches
                observation, *_ = env.step(np.array([0.0, 0.0, 0.0, grip], np.float32))
            traces[residual_gripper, grip] = observation
    np.testing.assert_array_equal(traces[False, -1.0], traces[False, 1.0])  # the base's schedule
    slices = observation_slices()
    opening = {grip: traces[True, grip][slices["finger_opening"]][0] for grip in (-1.0, 1.0)}
    assert opening[-1.0] > opening[1.0] + 0.02  # +1 added to the base's "open" half closes the hand
