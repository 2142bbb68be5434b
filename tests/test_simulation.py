"""Events, snapshots, interventions and the stability guard."""

import numpy as np
import pytest

from physforge.errors import SimulationUnstable
from physforge.sim import Simulator
from physforge.world import Body, Box, Geom, Joint, Material, Pose, Sphere, World


def onsets(events, pair):
    return [e for e in events if e["type"] == "contact_start" and set(e["bodies"]) == set(pair)]


def test_one_collision_gives_exactly_one_onset_event(two_balls):
    rollout = Simulator(two_balls).run(duration=2.0, fps=30)
    starts = onsets(rollout.events, ("left", "right"))
    assert len(starts) == 1
    ends = [e for e in rollout.events if e["type"] == "contact_end"]
    assert len(ends) == 1
    # the balls' surfaces meet when the centres are 0.2 m apart: after 0.8 s at 1 m/s
    assert starts[0]["time"] == pytest.approx(0.8, abs=0.004)
    assert starts[0]["relative_speed"] == pytest.approx(1.0, rel=0.01)
    assert starts[0]["position"][0] == pytest.approx(0.4, abs=0.005)


def test_contact_impulse_equals_momentum_change(two_balls):
    sim = Simulator(two_balls)
    rollout = sim.run(duration=2.0, fps=30)
    velocity = rollout.trajectory.body("left")["linear_velocity"][:, 0]
    impulse = onsets(rollout.events, ("left", "right"))[0]["impulse"]
    assert impulse == pytest.approx(sim.body_mass("left") * (velocity[0] - velocity[-1]), rel=0.01)


def test_ball_resting_on_ground_has_one_contact_and_no_spurious_events():
    world = World(bodies=(Body("ball", (Geom(Sphere(0.05)),), Pose((0, 0, 0.05))),))
    events = Simulator(world).run(duration=2.0, fps=30).events
    assert [e["type"] for e in events] == ["contact_start"]


def test_dropped_box_comes_to_rest_once():
    world = World(bodies=(Body("box", (Geom(Box((0.05, 0.05, 0.05))),), Pose((0, 0, 0.3))),))
    events = Simulator(world).run(duration=2.0, fps=60).events
    rests = [e for e in events if e["type"] == "rest"]
    assert len(rests) == 1 and 0.2 < rests[0]["time"] < 1.0


def test_snapshot_restore_reproduces_the_run_exactly():
    world = World(bodies=tuple(Body(f"b{i}", (Geom(Box((0.04, 0.04, 0.04))),), Pose((0.03 * i, 0, 0.1 + 0.1 * i)))
                               for i in range(4)))
    sim = Simulator(world)
    sim.step(50)
    snapshot = sim.snapshot()
    first = sim.run(duration=0.5, fps=30)
    sim.restore(snapshot)
    second = sim.run(duration=0.5, fps=30)
    assert np.array_equal(first.trajectory.position, second.trajectory.position)
    assert first.events == second.events


def test_counterfactual_removal_means_the_other_ball_is_never_hit(two_balls):
    sim = Simulator(two_balls)
    snapshot = sim.snapshot()
    factual = sim.run(duration=2.0, fps=30)
    assert onsets(factual.events, ("left", "right"))
    sim.restore(snapshot)
    sim.remove_body("left")
    counterfactual = sim.run(duration=2.0, fps=30)
    assert not onsets(counterfactual.events, ("left", "right"))
    right = counterfactual.trajectory.body("right")["position"]
    assert np.allclose(right, right[0])
    assert counterfactual.removed_bodies == ["left"]
    # restoring the snapshot undoes the removal
    sim.restore(snapshot)
    assert onsets(sim.run(duration=2.0, fps=30).events, ("left", "right"))


def test_removed_body_under_gravity_stays_put_and_does_not_trip_the_guard():
    world = World(bodies=(Body("a", (Geom(Sphere(0.05)),), Pose((0, 0, 1.0))),
                          Body("b", (Geom(Sphere(0.05)),), Pose((1, 0, 1.0)))))
    sim = Simulator(world)
    sim.remove_body("a")
    trajectory = sim.run(duration=1.0, fps=30).trajectory
    assert np.allclose(trajectory.body("a")["position"], [0, 0, 1.0], atol=1e-6)
    assert trajectory.body("b")["position"][-1, 2] < 0.1


def test_impulse_changes_velocity_by_impulse_over_mass():
    world = World(gravity=(0, 0, 0), ground=None, bodies=(Body("ball", (Geom(Sphere(0.1)),)),))
    sim = Simulator(world)
    sim.apply_impulse("ball", (0.5, 0.0, -1.0))
    velocity = sim.run(duration=0.1, fps=30).trajectory.body("ball")["linear_velocity"][-1]
    assert velocity == pytest.approx(np.array([0.5, 0.0, -1.0]) / sim.body_mass("ball"), rel=1e-6)


def test_off_centre_impulse_spins_the_body():
    world = World(gravity=(0, 0, 0), ground=None, bodies=(Body("ball", (Geom(Sphere(0.1)),)),))
    sim = Simulator(world)
    sim.apply_impulse("ball", (0.0, 1.0, 0.0), point=(0.1, 0.0, 0.0))
    spin = sim.run(duration=0.05, fps=30).trajectory.body("ball")["angular_velocity"][-1]
    inertia = 0.4 * sim.body_mass("ball") * 0.1**2
    assert spin == pytest.approx([0.0, 0.0, 0.1 * 1.0 / inertia], rel=1e-6)


def test_heavier_ball_changes_the_collision_outcome(two_balls):
    sim = Simulator(two_balls)
    sim.set_mass("left", sim.body_mass("right"))
    final = sim.run(duration=2.0, fps=30).trajectory
    # equal masses exchange velocities
    assert final.body("left")["linear_velocity"][-1, 0] == pytest.approx(0.0, abs=0.02)
    assert final.body("right")["linear_velocity"][-1, 0] == pytest.approx(1.0, abs=0.02)


def test_gravity_and_friction_interventions():
    world = World(bodies=(Body("ball", (Geom(Sphere(0.05)),), Pose((0, 0, 2.0))),), ground=None)
    sim = Simulator(world)
    sim.set_gravity((0, 0, -1.62))
    z = sim.run(duration=1.0, fps=50).trajectory.body("ball")["position"][-1, 2]
    assert z == pytest.approx(2.0 - 0.5 * 1.62, abs=0.01)
    sim.reset()
    assert sim.model.opt.gravity[2] == pytest.approx(-9.81)


def test_friction_intervention_lets_a_pushed_block_slide_further():
    surface = Material("s", friction=(0.8, 0.0, 0.0))
    world = World(bodies=(Body("block", (Geom(Box((0.05, 0.05, 0.05)), material=surface),), Pose((0, 0, 0.05)),
                               velocity=(1.5, 0, 0)),))
    world = world.replace(ground=world.ground.__class__(material=Material("floor", friction=(0.05, 0, 0))))
    sim = Simulator(world)
    snapshot = sim.snapshot()
    rough = sim.run(duration=1.5, fps=30).trajectory.body("block")["position"][-1, 0]
    sim.restore(snapshot)
    sim.set_friction("block", 0.1)
    smooth = sim.run(duration=1.5, fps=30).trajectory.body("block")["position"][-1, 0]
    # sliding distance v^2 / (2 mu g)
    assert rough == pytest.approx(1.5**2 / (2 * 0.8 * 9.81), rel=0.05)
    assert smooth == pytest.approx(1.5**2 / (2 * 0.1 * 9.81), rel=0.05)


def test_overlapping_bodies_raise_simulation_unstable():
    # two heavy boxes created inside each other explode apart
    world = World(bodies=(Body("a", (Geom(Box((0.2, 0.2, 0.2))),), Pose((0, 0, 0.2))),
                          Body("b", (Geom(Box((0.2, 0.2, 0.2))),), Pose((0.05, 0, 0.25)))))
    with pytest.raises(SimulationUnstable, match="overlap|energy"):
        Simulator(world).run(duration=1.0, fps=30)


def test_energy_created_from_nothing_is_caught():
    # an explicit Euler integrator on a very stiff undamped spring gains energy every step
    anchor = Body("anchor", (Geom(Box((0.02, 0.02, 0.02))),), joint=Joint("fixed"))
    bob = Body("bob", (Geom(Sphere(0.05)),), Pose((0, 0, -0.2)),
               Joint("prismatic", axis=(1, 0, 0), stiffness=5e6, initial_position=0.01), parent="anchor")
    world = World(ground=None, integrator="Euler", timestep=0.005, bodies=(anchor, bob))
    with pytest.raises(SimulationUnstable, match="energy|NaN|non-finite"):
        Simulator(world).run(duration=1.0, fps=30)


def test_guard_can_be_switched_off_for_inspection():
    world = World(bodies=(Body("a", (Geom(Box((0.2, 0.2, 0.2))),), Pose((0, 0, 0.2))),
                          Body("b", (Geom(Box((0.2, 0.2, 0.2))),), Pose((0.05, 0, 0.25)))))
    Simulator(world, check_stability=False).run(duration=0.2, fps=30)


def test_bad_run_arguments_are_named():
    sim = Simulator(World(bodies=(Body("a", (Geom(Sphere(0.1)),)),)))
    with pytest.raises(ValueError, match="duration"):
        sim.run(duration=-1)
    with pytest.raises(ValueError, match="fps"):
        sim.run(duration=1, fps=0)
    with pytest.raises(ValueError, match="mass"):
        sim.set_mass("a", -2.0)
    with pytest.raises(KeyError, match="no body named 'zz'"):
        sim.set_mass("zz", 2.0)


def _assert_same_events(fast, naive):
    assert np.array_equal(fast.trajectory.position, naive.trajectory.position)
    assert len(fast.events) == len(naive.events) > 2
    for a, b in zip(fast.events, naive.events):
        assert a["type"] == b["type"] and a["bodies"] == b["bodies"] and a["time"] == pytest.approx(b["time"])
        for key in ("impulse", "relative_speed"):
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), (key, a, b)


@pytest.mark.parametrize("tracking", ["sensors", "batched"])
@pytest.mark.parametrize("example", ["collision", "ramp", "pendulum"])
def test_fast_contact_tracking_matches_the_naive_step_loop(example, tracking):
    from physforge.world import load_world

    world = load_world(f"examples/{example}.json")
    sim = Simulator(world)
    start = sim.snapshot()
    fast = sim.run(duration=2.0, fps=30, contact_tracking=tracking)
    sim.restore(start)
    naive = sim.run(duration=2.0, fps=30, contact_tracking="steps")
    _assert_same_events(fast, naive)


def test_many_body_pile_tracks_contacts_without_sensors_and_matches_the_naive_loop():
    from physforge.sim.compile import MAX_CONTACT_SENSOR_PAIRS

    rng = np.random.default_rng(3)
    bodies = []
    for i in range(12):  # 78 touchable pairs with the ground: above the sensor limit
        shape = Sphere(0.04) if i % 2 else Box((0.04, 0.04, 0.04))
        x, y = rng.uniform(-0.15, 0.15, 2)
        bodies.append(Body(f"b{i}", (Geom(shape),), Pose((float(x), float(y), 0.05 + 0.1 * i))))
    sim = Simulator(World(name="pile", bodies=tuple(bodies)))
    assert len(sim.compiled.contact_pairs) > MAX_CONTACT_SENSOR_PAIRS and not sim.compiled.has_contact_sensors
    with pytest.raises(ValueError, match="batched"):
        sim.run(duration=0.1, contact_tracking="sensors")
    start = sim.snapshot()
    fast = sim.run(duration=1.5, fps=30)
    sim.restore(start)
    naive = sim.run(duration=1.5, fps=30, contact_tracking="steps")
    _assert_same_events(fast, naive)
    assert sum(e["type"] == "contact_start" and "ground" not in e["bodies"] for e in fast.events) >= 3


def test_position_actuator_servos_a_hinge_to_its_target():
    from physforge.world import Actuator

    base = Body("base", (Geom(Box((0.05, 0.05, 0.05))),), Pose((0, 0, 0.5)), Joint("fixed"))
    arm = Body("arm", (Geom(Box((0.2, 0.02, 0.02)), Pose((0.2, 0, 0))),), parent="base",
               joint=Joint("revolute", axis=(0, 0, 1), damping=0.1))
    world = World(ground=None, bodies=(base, arm),
                  actuators=(Actuator("motor", "arm", "position", gain=50.0, damping=2.0, control_range=(-3, 3)),))
    sim = Simulator(world)
    sim.set_control("motor", 1.2)
    sim.run(duration=3.0, fps=30)
    assert sim.joint_position("arm") == pytest.approx(1.2, abs=1e-3)
    with pytest.raises(KeyError, match="no actuator named 'grip'"):
        sim.set_control("grip", 0.0)


def test_actuator_on_a_free_body_is_refused():
    from physforge.errors import WorldValidationError
    from physforge.world import Actuator

    with pytest.raises(WorldValidationError, match=r"actuators\[0\]\.joint.*free joint"):
        World(bodies=(Body("ball", (Geom(Sphere(0.1)),)),), actuators=(Actuator("m", "ball"),))


def test_set_body_pose_places_a_free_body_at_rest():
    world = World(bodies=(Body("ball", (Geom(Sphere(0.1)),), Pose((0, 0, 1))),))
    sim = Simulator(world)
    sim.set_body_pose("ball", (0.3, -0.2, 0.5), (0.0, 1.0, 0.0, 0.0))
    assert sim.body_position("ball") == pytest.approx([0.3, -0.2, 0.5])


def test_set_mass_mid_swing_keeps_the_state():
    pivot = Body("pivot", (Geom(Box((0.02, 0.02, 0.02))),), Pose((0, 0, 1)), Joint("fixed"))
    bob = Body("bob", (Geom(Sphere(0.05), Pose((0, 0, -0.5))),), parent="pivot",
               joint=Joint("revolute", axis=(0, 1, 0), initial_position=0.7))
    sim = Simulator(World(ground=None, bodies=(pivot, bob)))
    sim.step(100)
    angle, speed, time = sim.joint_position("bob"), sim.joint_velocity("bob"), sim.time
    sim.set_mass("bob", 3.0)
    assert (sim.joint_position("bob"), sim.joint_velocity("bob"), sim.time) == (angle, speed, time)
    assert sim.body_mass("bob") == 3.0


def test_frames_read_back_from_a_grouped_rollout_equal_frames_recorded_live():
    from physforge.world import load_world

    sim = Simulator(load_world("examples/collision.json"))
    start = sim.snapshot()
    grouped = sim.run(duration=2.0, fps=30)  # no callback: many frames per C rollout
    sim.restore(start)
    live = sim.run(duration=2.0, fps=30, on_frame=lambda sim, frame: None)  # one rollout a frame
    for name in ("time", "position", "quaternion", "linear_velocity", "angular_velocity", "kinetic_energy",
                 "potential_energy"):
        assert np.array_equal(getattr(grouped.trajectory, name), getattr(live.trajectory, name)), name
    assert grouped.events == live.events
