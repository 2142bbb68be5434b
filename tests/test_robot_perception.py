"""Reconstruction and tracking against the simulator's ground truth on rendered scenes."""

import math

import numpy as np
import pytest

from physforge.robot.reconstruct import (ReconstructionError, back_project, fit_plane, gravity_alignment,
                                         reconstruct, to_world)
from physforge.robot.tasks import prepare_task, render_demo
from physforge.robot.tracking import TrackingConfig, kabsch, rotation_angle, smooth_poses
from physforge.sim import RenderConfig, SceneRenderer, Simulator
from physforge.world import Body, Box, Camera, Geom, Mesh, Pose, World

SIZE = 160
#: Tolerances (m, rad) of the perception pipeline on 160-192 px renders.
POSE_TOLERANCE = 0.005
SIZE_TOLERANCE = 0.006
TRACK_TOLERANCE = 0.02
TRACK_MEAN_TOLERANCE = 0.008


def _scene():
    camera = Camera("cam", position=(0.9, -0.3, 0.7), look_at=(0.45, 0.0, 0.0), fovy=math.radians(45))
    boxes = (Body("a", (Geom(Box((0.03, 0.02, 0.025))),), Pose.from_axis_angle((0.45, -0.08, 0.025), (0, 0, 1), 0.4)),
             Body("b", (Geom(Box((0.04, 0.04, 0.04))),), Pose((0.5, 0.1, 0.04))))
    world = World(bodies=boxes, cameras=(camera,))
    sim = Simulator(world)
    with SceneRenderer(sim.compiled, RenderConfig(SIZE, SIZE)) as renderer:
        depth, seg = renderer.depth(sim.data, "cam"), renderer.segmentation(sim.data, "cam")
    return world, camera, depth, seg


def test_back_projection_lands_on_the_rendered_boxes():
    world, camera, depth, seg = _scene()
    for index, body in enumerate(world.bodies):
        points = to_world(back_project(depth, camera.intrinsics(SIZE, SIZE), seg == index + 1),
                          camera.rotation_matrix(), camera.position)
        # oracle: every back-projected point lies on the box's surface (box frame, |coordinate| <= half extent)
        w, x, y, z = body.pose.quaternion
        yaw = 2 * math.atan2(z, w)
        c, s = math.cos(yaw), math.sin(yaw)
        local = (points - body.pose.position) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        half = np.array(body.geoms[0].shape.half_extents)
        outside = np.max(np.abs(local) - half, axis=1)
        assert np.percentile(outside, 95) < 0.003
        on_face = np.min(np.abs(np.abs(local) - half), axis=1)
        assert np.percentile(on_face, 95) < 0.003


def test_plane_fit_and_gravity_alignment_on_a_tilted_noisy_plane():
    rng = np.random.default_rng(0)
    normal = np.array([0.2, -0.1, 1.0])
    normal /= np.linalg.norm(normal)
    u = np.cross(normal, [1.0, 0, 0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    points = 0.5 * normal + rng.uniform(-1, 1, (2000, 1)) * u + rng.uniform(-1, 1, (2000, 1)) * v
    points += rng.normal(0, 0.001, points.shape)
    clutter = rng.uniform(-1, 1, (300, 3))
    plane, inliers = fit_plane(np.concatenate([points, clutter]), rng)
    assert math.acos(min(1.0, abs(plane[:3] @ normal))) < 0.01
    assert inliers > 0.8
    align = gravity_alignment(plane, towards=normal * 2.0)
    aligned = points @ align[:3, :3].T + align[:3, 3]
    assert np.abs(aligned[:, 2]).max() < 0.006
    with pytest.raises(ReconstructionError, match="fewer than 3"):
        fit_plane(points[:2], rng)


def test_reconstruction_recovers_pose_and_size_of_rendered_boxes():
    world, camera, depth, seg = _scene()
    masks = {b.name: seg == i + 1 for i, b in enumerate(world.bodies)}
    rng = np.random.default_rng(0)
    recon = reconstruct(depth, camera.intrinsics(SIZE, SIZE), masks, rng, camera_rotation=camera.rotation_matrix(),
                        camera_position=camera.position)
    truth_b = world.body("b")
    b = recon.objects["b"]
    assert np.linalg.norm(np.array(b.body.pose.position) - truth_b.pose.position) < POSE_TOLERANCE
    np.testing.assert_allclose(b.size, 2 * np.array(truth_b.geoms[0].shape.half_extents), atol=SIZE_TOLERANCE)
    a = recon.objects["a"]
    assert np.linalg.norm(np.array(a.body.pose.position)[:2] - world.body("a").pose.position[:2]) < POSE_TOLERANCE
    assert a.size[2] == pytest.approx(0.05, abs=SIZE_TOLERANCE)
    assert a.mass_range()[0] < a.mass_range()[1]
    # without extrinsics: the plane fit alone levels the scene; heights above it are recovered
    camera_frame = reconstruct(depth, camera.intrinsics(SIZE, SIZE), masks, rng)
    assert camera_frame.objects["b"].size[2] == pytest.approx(0.08, abs=SIZE_TOLERANCE)
    gap = np.linalg.norm(np.subtract(camera_frame.objects["a"].body.pose.position,
                                     camera_frame.objects["b"].body.pose.position))
    truth_gap = np.linalg.norm(np.subtract(a.body.pose.position, b.body.pose.position))
    assert gap == pytest.approx(truth_gap, abs=2 * POSE_TOLERANCE)
    from physforge.sim import Simulator as Sim

    Sim(recon.world).step(200)  # the reconstructed scene simulates (no initial overlap)


def test_empty_mask_is_refused():
    world, camera, depth, seg = _scene()
    with pytest.raises(ReconstructionError, match="mask 'ghost'"):
        reconstruct(depth, camera.intrinsics(SIZE, SIZE), {"ghost": np.zeros_like(seg, bool)},
                    np.random.default_rng(0))


def test_kabsch_recovers_a_known_transform():
    rng = np.random.default_rng(2)
    source = rng.normal(size=(50, 3))
    angle = 0.7
    rotation = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    target = source @ rotation.T + np.array([0.1, -0.2, 0.3])
    transform = kabsch(source, target)
    np.testing.assert_allclose(transform[:3, :3], rotation, atol=1e-10)
    np.testing.assert_allclose(transform[:3, 3], [0.1, -0.2, 0.3], atol=1e-10)


def test_smoothing_reduces_noise_and_skips_unconfident_frames():
    rng = np.random.default_rng(3)
    n = 40
    truth = np.repeat(np.eye(4)[None], n, axis=0)
    truth[:, 0, 3] = np.linspace(0, 0.2, n)
    noisy = truth.copy()
    noisy[:, :3, 3] += rng.normal(0, 0.003, (n, 3))
    confidence = np.ones(n)
    noisy[20, :3, 3] += 0.5  # an outlier the tracker flagged
    confidence[20] = 0.0
    smoothed = smooth_poses(noisy, confidence, TrackingConfig(smoothing_window=5))
    error_raw = np.linalg.norm(np.delete(noisy - truth, 20, axis=0)[:, :3, 3], axis=1).mean()
    error_smooth = np.linalg.norm((smoothed - truth)[:, :3, 3], axis=1).mean()
    assert error_smooth < 0.7 * error_raw
    assert np.linalg.norm(smoothed[20, :3, 3] - truth[20, :3, 3]) < 0.01


@pytest.mark.parametrize("task", ["pick_place", "open_drawer"])
def test_tracking_matches_simulated_demo_poses(task):
    context = prepare_task(task, True)
    demo = render_demo(task, rgb=False)
    truth = demo.true_poses @ np.linalg.inv(demo.true_poses[0])
    errors = np.linalg.norm(context.reference[:, :3, 3] - truth[:, :3, 3], axis=1)
    assert errors.max() < TRACK_TOLERANCE and errors.mean() < TRACK_MEAN_TOLERANCE
    assert max(rotation_angle(a[:3, :3], b[:3, :3]) for a, b in zip(context.reference, truth)) < 0.05
    assert context.confidence.mean() > 0.8
    moved = np.linalg.norm(demo.true_poses[-1, :3, 3] - demo.true_poses[0, :3, 3])
    assert moved > 0.1  # the demo really moves the object: a constant track would fail


@pytest.mark.parametrize("symmetric", [False, True])
def test_registration_of_one_frame_against_simulator_pose(symmetric):
    from scipy.spatial import cKDTree

    from physforge.robot.tasks import ground_truth_scene, model_points
    from physforge.robot.tracking import register

    demo = render_demo("push", rgb=False)
    cube = ground_truth_scene("push")[0][0]
    points, normals = model_points(cube, np.random.default_rng(0))
    frame = 24  # mid-push: 5 cm from the start pose used as the initial guess
    observed = to_world(back_project(demo.depth[frame], demo.intrinsics, demo.segmentation[frame] == 1),
                        demo.camera_rotation, demo.camera_position)
    pose, inliers = register(observed, cKDTree(points), points, demo.true_poses[0], TrackingConfig(),
                             normals if symmetric else None, demo.camera_position)
    assert np.linalg.norm(pose[:3, 3] - demo.true_poses[frame][:3, 3]) < POSE_TOLERANCE
    assert rotation_angle(pose[:3, :3], demo.true_poses[frame][:3, :3]) < 0.03
    assert inliers > 0.9


def test_overlapping_reconstructions_are_pushed_apart():
    from physforge.robot.reconstruct import MaterialPrior, ReconstructedObject, place_without_overlap, solid_from_points

    rng = np.random.default_rng(5)
    objects = {}
    for name, centre in (("left", (0.0, 0.0)), ("right", (0.03, 0.01))):  # 5 cm cubes, 3 cm apart: overlapping
        points = rng.uniform(-0.025, 0.025, (400, 3)) + np.array([centre[0], centre[1], 0.025])
        vertices, faces = solid_from_points(points)
        body = Body(name, (Geom(Mesh(vertices=vertices - vertices.mean(0),
                                         faces=faces)),),
                    Pose(tuple(vertices.mean(0))))
        objects[name] = ReconstructedObject(name, body, points, np.ptp(vertices, axis=0), 1.25e-4, MaterialPrior())
    placed = place_without_overlap(objects)
    a, b = (np.array(placed[n].body.pose.position) for n in ("left", "right"))
    gap = np.abs(a - b)[:2] - 0.5 * (placed["left"].size + placed["right"].size)[:2]
    assert gap.max() >= 0.0  # separated along at least one axis
    assert np.linalg.norm((a + b) / 2 - (np.array(objects["left"].body.pose.position)
                                         + np.array(objects["right"].body.pose.position)) / 2) < 1e-9
    sim = Simulator(World(bodies=tuple(o.body for o in placed.values())))
    sim.step(100)  # no deep initial penetration
