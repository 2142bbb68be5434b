"""Mass properties against closed forms, joint dynamics that hold parts, and a gate that can fail."""

import math
import time
from dataclasses import replace

import numpy as np
import pytest
import trimesh

from physforge.assets import geometry as geo
from physforge.assets.build import BuildConfig, build_asset
from physforge.assets.gate import GateConfig, run_gate
from physforge.assets.geometry import CollisionPiece
from physforge.assets.library import generate, object_rng
from physforge.assets.schema import AssetAnnotation, KinematicGroup, PartAnnotation
from physforge.assets.source import SourceAsset
from physforge.sim import compile_world
from physforge.sim.articulation import JointPoseProbe, joint_table, load_model_file
from physforge.world import Body, Box, Geom, Joint, Pose, World

G = 9.81


def _part(label, name, density=1000.0, rank=5):
    return PartAnnotation(label=label, name=name, material="plastic", density=density, youngs_modulus=2e9,
                          poisson_ratio=0.38, affordance_rank=rank)


def _box_mesh(size, center):
    mesh = trimesh.creation.box(extents=size)
    mesh.apply_translation(center)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)


def _box_source(boxes, groups, base="free", name="blocks"):
    """boxes: list of (name, size, center, density). groups: KinematicGroup list."""
    parts = tuple(_part(i, n, density=d) for i, (n, _, _, d) in enumerate(boxes))
    meshes = {i: _box_mesh(s, c) for i, (_, s, c, _) in enumerate(boxes)}
    collision = {i: (CollisionPiece(Box(tuple(0.5 * np.array(s))), Pose(tuple(c))),)
                 for i, (_, s, c, _) in enumerate(boxes)}
    points = np.concatenate([v for v, _ in meshes.values()])
    annotation = AssetAnnotation(name=name, category="test", dimensions=tuple(np.ptp(points, 0)), parts=parts,
                                 groups=tuple(groups), base=base)
    return SourceAsset(annotation=annotation, meshes=meshes, collision=collision)


def test_box_part_mass_and_inertia_match_the_closed_form():
    a, b, c, rho = 0.3, 0.2, 0.1, 700.0
    source = _box_source([("slab", (a, b, c), (0.0, 0.0, c / 2), rho)], [KinematicGroup(0, (0,))])
    body = build_asset(source).world.bodies[0]
    m = rho * a * b * c
    assert body.inertial.mass == pytest.approx(m, rel=1e-9)
    assert body.inertial.center_of_mass == pytest.approx((0, 0, c / 2), abs=1e-12)
    expected = (m / 12 * (b * b + c * c), m / 12 * (a * a + c * c), m / 12 * (a * a + b * b), 0, 0, 0)
    assert body.inertial.inertia == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_polygonal_cylinder_mass_matches_the_prism_formula():
    source = generate("bottle", object_rng(4, 0), seed=4)
    asset = build_asset(source)
    cap = asset.world.body("cap")
    piece = source.collision[1][0].shape
    n = 40  # segments of the library's cylinders
    area = 0.5 * n * piece.radius**2 * math.sin(2 * math.pi / n)
    density = source.annotation.part(1).density
    assert cap.inertial.mass == pytest.approx(density * area * 2 * piece.half_length, rel=1e-9)
    # about its own axis a polygonal disc is within 1 % of the round one
    assert cap.inertial.inertia[2] == pytest.approx(0.5 * cap.inertial.mass * piece.radius**2, rel=0.01)


def test_parts_of_one_body_combine_by_the_parallel_axis_theorem():
    boxes = [("a", (0.2, 0.1, 0.1), (-0.2, 0, 0.05), 1000.0), ("b", (0.1, 0.1, 0.3), (0.3, 0, 0.15), 500.0)]
    asset = build_asset(_box_source(boxes, [KinematicGroup(0, (0, 1))]))
    body = asset.world.bodies[0]
    masses = [1000 * 0.2 * 0.1 * 0.1, 500 * 0.1 * 0.1 * 0.3]
    centres = [np.array([-0.2, 0, 0.05]), np.array([0.3, 0, 0.15])]
    total = sum(masses)
    com = (masses[0] * centres[0] + masses[1] * centres[1]) / total
    sizes = [(0.2, 0.1, 0.1), (0.1, 0.1, 0.3)]
    iyy = sum(m / 12 * (s[0] ** 2 + s[2] ** 2) + m * ((c - com)[0] ** 2 + (c - com)[2] ** 2)
              for m, s, c in zip(masses, sizes, centres))
    ixz = sum(-m * (c - com)[0] * (c - com)[2] for m, c in zip(masses, centres))
    assert body.inertial.mass == pytest.approx(total)
    assert body.inertial.center_of_mass == pytest.approx(tuple(com))
    assert body.inertial.inertia[1] == pytest.approx(iyy, rel=1e-9)
    assert body.inertial.inertia[4] == pytest.approx(ixz, rel=1e-9)


def test_friction_loss_exceeds_the_largest_gravity_torque():
    asset = build_asset(generate("laptop", object_rng(5, 0), seed=5))
    lid = asset.world.body("lid")
    # independent estimate: the lid's own weight at its centre of mass, lever = distance to the axis
    com = np.array(lid.inertial.center_of_mass)
    axis = np.array(lid.joint.axis)
    lever = np.linalg.norm(com - (com @ axis) * axis)
    assert lid.joint.frictionloss >= lid.inertial.mass * G * lever
    assert lid.joint.damping > 0


def _rest_turn(world):
    report = run_gate(world, config=GateConfig(rest_duration=1.0))
    return report["checks"]["rest"]


def test_a_lid_without_friction_falls_and_the_gate_says_so():
    asset = build_asset(generate("laptop", object_rng(5, 0), seed=5))
    assert _rest_turn(asset.world)["passed"]
    floppy = asset.world.with_body(replace(asset.world.body("lid"),
                                           joint=replace(asset.world.body("lid").joint, frictionloss=0.0,
                                                         damping=0.001)))
    rest = _rest_turn(floppy)
    assert not rest["passed"]
    assert rest["poses"]["mid_range"]["bodies"]["lid"]["turn_deg"] > 5.0


def _crossing_source():
    """Two flaps hinged on a post: sweeping flap 'a' through 180 degrees passes through flap 'b'."""
    boxes = [("post", (0.04, 0.04, 0.3), (0, 0, 0.15), 1000.0),
             ("a", (0.2, 0.01, 0.1), (0.12, 0, 0.1), 500.0),
             ("b", (0.2, 0.01, 0.1), (-0.12, 0, 0.1), 500.0)]
    groups = [KinematicGroup(0, (0,)), KinematicGroup(1, (1,), 0, "revolute", (0, 0, 1), (0, 0, 0.1), (0.0, 3.1)),
              KinematicGroup(2, (2,), 0, "revolute", (0, 0, 1), (0, 0, 0.1), (0.0, 0.5))]
    return _box_source(boxes, groups, base="fixed")


def test_the_sweep_finds_non_adjacent_parts_passing_through_each_other():
    report = run_gate(build_asset(_crossing_source()).world)
    sweep = report["checks"]["sweep"]
    assert not sweep["passed"] and "sweep" in report["failed"]
    assert sweep["joints"]["a"]["overlaps"][0]["bodies"] == ["a", "b"]
    assert sweep["max_overlap_m"] > 0.005


def test_pose_probe_reports_only_non_adjacent_overlaps():
    world = World(bodies=(
        Body("base", (Geom(Box((0.1, 0.1, 0.1))),), Pose((0, 0, 0.1)), Joint("fixed")),
        Body("child", (Geom(Box((0.1, 0.1, 0.1))),), Pose((0.15, 0, 0)), Joint("revolute", range=(0, 1)),
             parent="base"),
        Body("other", (Geom(Box((0.05, 0.05, 0.05))),), Pose((0.0, 0.14, 0.1))),  # free
    ), ground=None)
    probe = JointPoseProbe(world)
    pairs = {(o.body_a, o.body_b): o.depth for o in probe.overlaps()}
    assert ("child", "base") not in pairs and ("base", "child") not in pairs  # adjacent: overlap allowed
    assert pairs[("base", "other")] == pytest.approx(0.01, abs=1e-6)  # 0.1 + 0.05 - 0.14
    names = {j.name: j for j in joint_table(probe.compiled)}
    assert names["child"].kind == "hinge" and names["child"].range == (0.0, 1.0)
    probe.set({"child": 0.5})
    assert probe.position("child") == pytest.approx(0.5)
    with pytest.raises(KeyError, match="no joint named 'door'"):
        probe.set({"door": 1.0})


def test_stiction_compile_keeps_the_world_and_sets_joint_friction_parameters():
    world = build_asset(generate("cabinet", object_rng(1, 0), seed=1)).world
    compiled = compile_world(world)
    model = compiled.model
    assert model.nbody == len(world.bodies) + 1
    assert np.all(model.dof_solref[:, 0] >= 0.005)


def test_inertia_check_catches_an_impossible_tensor():
    from physforge.assets.gate import inertia_problems

    assert inertia_problems(1.0, (1.0, 1.0, 3.0, 0, 0, 0)).startswith("triangle inequality")
    assert inertia_problems(1.0, (1.0, -1.0, 1.0, 0, 0, 0)).startswith("not positive definite")
    assert inertia_problems(1.0, (1.0, 1.0, 1.5, 0, 0, 0)) is None


def test_coacd_results_are_cached_by_content(tmp_path):
    # an L-shaped block: concave, so CoACD needs more than one hull
    mesh = trimesh.boolean.union([trimesh.creation.box((0.2, 0.05, 0.05)),
                                  trimesh.creation.box((0.05, 0.05, 0.2)).apply_translation((-0.075, 0, 0.075))],
                                 engine="manifold")
    config = geo.CoacdConfig(max_convex_hull=4, mcts_iterations=20, resolution=500)
    start = time.perf_counter()
    hulls, hit = geo.convex_decomposition(mesh, config, tmp_path)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    again, hit_again = geo.convex_decomposition(mesh, config, tmp_path)
    warm = time.perf_counter() - start
    assert (hit, hit_again) == (False, True)
    assert len(hulls) >= 2 and len(again) == len(hulls)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(hulls, again))
    assert warm < cold
    # hulls cover the part: their volume is at least the part's, and not hugely more
    volume = sum(trimesh.Trimesh(v, f).convex_hull.volume for v, f in hulls)
    assert mesh.volume * 0.99 <= volume <= mesh.volume * 1.5
    changed = geo.CoacdConfig(max_convex_hull=4, mcts_iterations=20, resolution=500, threshold=0.1)
    assert geo.content_hash(mesh.vertices, mesh.faces, changed) != geo.content_hash(mesh.vertices, mesh.faces,
                                                                                     config)


def test_mujoco_model_file_summary(tmp_path):
    from physforge.sim import export_mjcf

    world = build_asset(generate("drawer_chest", object_rng(2, 0), seed=2)).world
    summary = load_model_file(export_mjcf(world, tmp_path / "m.xml"))
    for body in world.bodies:
        assert summary.bodies[body.name] == pytest.approx(body.inertial.mass, rel=1e-5)
    assert summary.joints["drawer_0"][0] == "slide"
    assert summary.joints["drawer_0"][1] == pytest.approx(world.body("drawer_0").joint.range)


def test_a_free_part_rests_on_its_object_and_the_package_api_is_lazy():
    import physforge.assets as assets

    boxes = [("shelf", (0.4, 0.3, 0.1), (0, 0, 0.05), 700.0), ("block", (0.05, 0.05, 0.05), (0.1, 0, 0.125), 500.0)]
    groups = [KinematicGroup(0, (0,)), KinematicGroup(1, (1,), None, "free", pivot=(0.1, 0, 0.125))]
    asset = assets.build_asset(_box_source(boxes, groups, base="fixed"))
    block = asset.world.body("block")
    assert block.joint.type == "free" and block.parent is None
    assert block.inertial.mass == pytest.approx(500 * 0.05**3)
    report = assets.run_gate(asset.world)
    assert report["passed"], report["failed"]
    assert report["checks"]["rest"]["poses"]["rest"]["bodies"]["block"]["drift_m"] < 0.002
