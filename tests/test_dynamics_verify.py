"""The physics verifier against oracles: the simulator's own rollout, closed-form free fall, and
hand-made violations (wrong gravity, created energy, interpenetration)."""

import numpy as np
import pytest

from physforge.dynamics.config import ScoreConfig
from physforge.dynamics.errors import DynamicsConfigError, DynamicsDataError
from physforge.dynamics.verify import Verifier, chamfer, reference_rollout
from physforge.world import Body, Camera, Geom, Pose, Sphere, World

G = 9.81
DT = 0.1
HORIZON = 8
RADIUS = 0.05


def drop_world(gravity: float = G) -> World:
    """A ball thrown sideways from 4 m: 0.8 s of free flight, clear of the floor."""
    ball = Body("ball", (Geom(Sphere(RADIUS)),), Pose((0.0, 0.0, 4.0)), velocity=(0.5, 0.0, 0.0))
    camera = Camera("main", position=(0.2, -6.0, 2.5), look_at=(0.2, 0.0, 2.5))
    return World(bodies=(ball,), gravity=(0.0, 0.0, -gravity), timestep=0.004, cameras=(camera,))


@pytest.fixture(scope="module")
def verifier():
    return Verifier(drop_world(), ("ball",), HORIZON, DT)


def closed_form(gravity: float) -> np.ndarray:
    t = np.arange(HORIZON + 1) * DT
    return np.stack([0.5 * t, 0 * t, 4.0 - 0.5 * gravity * t ** 2], -1)[:, None, :]


def test_simulator_rollout_scores_zero(verifier):
    report = verifier.score(verifier.reference, quaternions=verifier.reference_quaternion, iou=True)
    assert report["l2"] == 0.0 and report["chamfer"] == 0.0
    assert report["iou"] == pytest.approx(1.0)
    assert report["flight_frames"] >= 5
    assert report["gravity_residual"] < 1e-6
    assert report["penetration"] == 0.0 and report["energy_created"] < 1e-6
    assert report["violations"] == []


def test_reference_is_closed_form_free_fall(verifier):
    # MuJoCo's semi-implicit Euler at h = 4 ms falls g h^2 n (n + 1) / 2 after n steps
    n = np.round(np.arange(HORIZON + 1) * DT / 0.004)
    assert verifier.reference[:, 0, 2] == pytest.approx(4.0 - G * 0.004 ** 2 * n * (n + 1) / 2, abs=1e-9)
    assert verifier.reference[:, 0, 0] == pytest.approx(0.5 * n * 0.004, abs=1e-9)
    report = verifier.score(closed_form(G))
    assert report["gravity_residual"] < 1e-6 and report["violations"] == []


def test_wrong_gravity_is_flagged(verifier):
    report = verifier.score(closed_form(1.5 * G))
    assert report["gravity_residual"] == pytest.approx(0.5 * G, rel=1e-6)
    assert "gravity" in report["violations"]
    assert report["l2"] > 0.1


def test_wrong_gravity_from_the_simulator_is_flagged():
    horizon = 6  # the heavier fall reaches the floor after 0.73 s
    heavy, _ = reference_rollout(drop_world(1.5 * G), ("ball",), horizon, DT)
    report = Verifier(drop_world(), ("ball",), horizon, DT).score(heavy)
    assert report["gravity_residual"] == pytest.approx(0.5 * G, rel=0.01)
    assert "gravity" in report["violations"]


def test_gravity_is_checked_where_the_simulator_flies():
    """A prediction that lands the ball early (on the floor from 0.3 s on) has no free flight of its
    own after that, yet the truth flies there: those frames are checked too."""
    verifier = Verifier(drop_world(), ("ball",), HORIZON, DT)
    grounded = verifier.reference.copy()
    grounded[3:, 0, 2] = RADIUS
    from physforge.dynamics.verify import free_flight

    own = free_flight(grounded, verifier.probe.clearance(grounded), verifier.config.flight_margin)
    assert own.sum() <= 2  # on its own, the grounded motion barely flies
    report = verifier.score(grounded, iou=False)
    assert report["flight_frames"] == 7  # every interior frame: the reference flies throughout
    assert report["gravity_residual"] > 3.0 and "gravity" in report["violations"]


def test_created_energy_is_flagged(verifier):
    boosted = verifier.reference.copy()
    t = np.arange(HORIZON + 1) * DT
    boosted[4:, 0, 0] += (t[4:] - t[3]) * 2.0  # a 2 m/s sideways kick out of nowhere at frame 3
    report = verifier.score(boosted)
    assert report["energy_created"] > 1.0
    assert "energy_created" in report["violations"]


def test_interpenetration_is_flagged(verifier):
    sunk = verifier.reference.copy()
    sunk[-1, 0, 2] = 0.0  # centre on the floor: half the ball under it
    report = verifier.score(sunk)
    assert report["penetration"] == pytest.approx(RADIUS, abs=1e-3)
    assert "interpenetration" in report["violations"]


def test_cost_ranks_the_truth_first(verifier):
    truth = verifier.score(verifier.reference)["cost"]
    assert truth < verifier.score(closed_form(1.5 * G))["cost"]
    shifted = verifier.reference + np.array([0.1, 0.0, 0.0])
    assert verifier.score(shifted)["l2"] == pytest.approx(np.linalg.norm([0.1, 0, 0]) * 1.0, rel=1e-6)


def test_chamfer_hand_value():
    a = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    b = np.array([[0.0, 0, 0.5]])
    # a -> b: (0.5 + sqrt(1.25)) / 2; b -> a: 0.5
    assert chamfer(a, b) == pytest.approx(0.5 * ((0.5 + np.sqrt(1.25)) / 2 + 0.5))


def test_bad_input_says_what_is_wrong(verifier):
    with pytest.raises(DynamicsDataError, match=r"expected shape \(9, 1, 3\)"):
        verifier.score(np.zeros((3, 1, 3)))
    with pytest.raises(DynamicsDataError, match="NaN"):
        verifier.score(np.full((9, 1, 3), np.nan))
    with pytest.raises(DynamicsConfigError, match="gravity_tolerance"):
        ScoreConfig(gravity_tolerance=-1.0)


def test_pose_probe_clearance_is_the_signed_gap_to_the_floor():
    from physforge.sim.poses import BodyPoseProbe
    from physforge.world import Box, Joint

    shelf = Body("shelf", (Geom(Box((0.1, 0.1, 0.1))),), Pose((2.0, 0.0, 0.1)), joint=Joint("fixed"))
    world = World(bodies=drop_world().bodies + (shelf,), gravity=(0.0, 0.0, -G), timestep=0.004)
    probe = BodyPoseProbe(world, ("ball",))
    heights = np.array([1.0, 0.3, RADIUS, 0.02])
    gap = probe.clearance(np.stack([np.zeros(4), np.zeros(4), heights], -1)[:, None], max_distance=0.5)
    assert gap[:, 0] == pytest.approx([0.5, 0.3 - RADIUS, 0.0, 0.02 - RADIUS], abs=1e-6)  # capped at 0.5
    beside = probe.clearance(np.array([[[2.0 - 0.1 - RADIUS - 0.03, 0.0, 0.1]]]))
    assert beside[0, 0] == pytest.approx(0.03, abs=1e-6)  # 3 cm from the shelf's side
    with pytest.raises(ValueError, match="only free bodies can be placed"):
        BodyPoseProbe(world, ("shelf",))
    with pytest.raises(ValueError, match="no body named 'cup'"):
        BodyPoseProbe(world, ("cup",))
    with pytest.raises(ValueError, match=r"expected shape \(n_frames, 1, 3\)"):
        probe.clearance(np.zeros((2, 3)))


def test_gravity_violation_ranks_below_a_correct_motion_at_equal_l2(verifier):
    # correct: the true fall, shifted 0.1 m sideways (residual 0); wrong: the same mean error put into
    # the vertical as a constant extra acceleration (residual |a|, the motion of a heavier planet)
    t = np.arange(HORIZON + 1) * DT
    shifted = verifier.reference + np.array([0.1, 0.0, 0.0])
    extra = 0.1 / np.mean(t[1:] ** 2)  # mean |extra t^2| over frames 1..T = 0.1 m
    heavier = verifier.reference.copy()
    heavier[:, 0, 2] -= extra * t ** 2
    correct, wrong = verifier.score(shifted), verifier.score(heavier)
    assert correct["l2"] == pytest.approx(wrong["l2"], rel=1e-9)
    assert correct["gravity_residual"] < 1e-6
    assert wrong["gravity_residual"] == pytest.approx(2 * extra, rel=1e-6)
    assert wrong["chamfer"] <= correct["chamfer"] and wrong["iou"] >= correct["iou"] - 0.05  # no help from these
    assert wrong["cost"] > correct["cost"]
    # the gravity term decides: without it the wrong motion would rank at least as well
    plain = Verifier(drop_world(), ("ball",), HORIZON, DT, ScoreConfig(w_gravity=0.0),
                     reference=verifier.reference, reference_quaternion=verifier.reference_quaternion)
    assert plain.score(heavier)["cost"] <= plain.score(shifted)["cost"] + 1e-9


def test_cost_terms_are_normalised_by_the_scene(verifier):
    report = verifier.score(verifier.reference)
    assert report["cost"] == pytest.approx(0.0, abs=1e-9) and report["terms"]["iou"] == pytest.approx(0.0)
    # predicting that nothing moves costs 1 on L2 (by definition of the scale) and 1 on gravity
    # (standing still in free flight has a residual of exactly |g|)
    still = np.repeat(verifier.reference[:1], HORIZON + 1, 0)
    terms = verifier.score(still)["terms"]
    assert terms["l2"] == pytest.approx(1.0) and terms["gravity"] == pytest.approx(1.0, rel=1e-6)
    c = verifier.config
    report = verifier.score(still)
    assert report["cost"] == pytest.approx(sum(getattr(c, f"w_{k}") * v for k, v in report["terms"].items()))
    no_iou = verifier.score(still, iou=False)
    assert np.isnan(no_iou["iou"]) and np.isnan(no_iou["cost"])
    with pytest.raises(DynamicsConfigError, match="every cost weight"):
        ScoreConfig(w_l2=0, w_chamfer=0, w_iou=0, w_gravity=0, w_penetration=0, w_energy=0)


def test_pose_probe_support_is_the_surface_below():
    """A crate on the floor rests on it (normal straight up, the larger friction of the two); a ball
    in the air rests on nothing (zero normal) and gets the friction it will meet on the ground."""
    from physforge.sim.poses import BodyPoseProbe
    from physforge.world import Box, Ground, Material

    crate = Body("crate", (Geom(Box((0.1, 0.1, 0.1)), material=Material("wood", friction=(0.7, 0.005, 0.0001))),),
                 Pose((1.0, 0.0, 0.1)))
    world = World(bodies=drop_world().bodies + (crate,), gravity=(0.0, 0.0, -G), timestep=0.004,
                  ground=Ground(material=Material("floor", friction=(0.9, 0.005, 0.0001))))
    normals, friction = BodyPoseProbe(world, ("ball", "crate")).support()
    assert normals[0] == pytest.approx([0.0, 0.0, 0.0]) and normals[1] == pytest.approx([0.0, 0.0, 1.0])
    assert friction == pytest.approx([1.0, 0.9])  # the ball's default material has mu 1: the larger wins
