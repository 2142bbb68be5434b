"""Rendering (metric depth, instance ids) and MJCF export checked by plain MuJoCo."""

import math

import mujoco
import numpy as np
import pytest

from physforge.sim import RenderConfig, SceneRenderer, Simulator, compile_world, export_mjcf, write_video
from physforge.world import Body, Box, Camera, Geom, Mesh, Pose, Sphere, World, load_world, save_world


def scene() -> World:
    return World(bodies=(
        Body("ball", (Geom(Sphere(0.1)),), Pose((0, 0, 0.1))),
        Body("box", (Geom(Box((0.1, 0.1, 0.1))),), Pose((0.6, 0, 0.1))),
    ), cameras=(Camera("top", position=(0, 0, 2.0), look_at=(0, 0, 0), fovy=math.radians(60)),))


def test_depth_is_metres_along_the_view_axis():
    sim = Simulator(scene())
    with SceneRenderer(sim.compiled, RenderConfig(64, 64)) as renderer:
        depth = renderer.depth(sim.data, "top")
    assert depth.shape == (64, 64) and depth.dtype == np.float32
    # the top of the ball is 0.2 m high, straight below the camera at 2 m
    assert depth[32, 32] == pytest.approx(1.8, abs=0.01)
    # bare floor near the image corner: z-depth is the camera height
    assert depth[2, 2] == pytest.approx(2.0, abs=0.01)


def test_segmentation_ids_are_world_body_indices_plus_one():
    sim = Simulator(scene())
    with SceneRenderer(sim.compiled, RenderConfig(64, 64)) as renderer:
        ids = renderer.segmentation(sim.data, "top")
        rgb = renderer.rgb(sim.data, "top")
    assert ids[32, 32] == 1  # the ball
    assert ids[2, 2] == 0  # the ground counts as background
    assert set(np.unique(ids)) == {0, 1, 2}
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8 and rgb.std() > 5


def test_free_camera_and_removed_bodies_are_hidden():
    sim = Simulator(scene())
    sim.remove_body("ball")
    camera = Camera("free", position=(0.0, -2.0, 1.0), look_at=(0.3, 0, 0.1))
    with SceneRenderer(sim.compiled, RenderConfig(width=64, height=48)) as renderer:
        ids = renderer.segmentation(sim.data, camera)
    assert ids.shape == (48, 64)
    assert 1 not in np.unique(ids) and 2 in np.unique(ids)


def test_unknown_camera_is_named():
    sim = Simulator(scene())
    with SceneRenderer(sim.compiled, RenderConfig(16, 16)) as renderer:
        with pytest.raises(ValueError, match="no camera named 'side'.*'top'"):
            renderer.rgb(sim.data, "side")


def test_video_writers(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 33, 47, 3), dtype=np.uint8)
    mp4 = write_video(frames, tmp_path / "clip.mp4", fps=10)
    gif = write_video(frames, tmp_path / "clip.gif", fps=10)
    import imageio.v3 as iio

    assert iio.imread(mp4, index=None).shape[0] == 5
    assert iio.imread(gif, index=None).shape[:3] == (5, 33, 47)
    assert not list(tmp_path.glob(".*"))


def test_exported_mjcf_reproduces_the_in_memory_run(tmp_path):
    world = load_world("examples/collision.json")
    path = export_mjcf(world, tmp_path / "collision.xml")
    sim = Simulator(world)
    ours = sim.run(duration=1.0, fps=50).trajectory

    model = mujoco.MjModel.from_xml_path(str(path))  # an independent consumer: plain MuJoCo
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    positions = []
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name) for name in ours.body_names]
    for frame in range(ours.num_frames):
        mujoco.mj_kinematics(model, data)
        positions.append(data.xpos[ids].copy())
        if frame < ours.num_frames - 1:
            mujoco.mj_step(model, data, nstep=10)
    assert np.abs(np.array(positions) - ours.position).max() < 1e-6


def test_mesh_world_exports_meshes_beside_the_file(tmp_path):
    source = tmp_path / "src"
    (source / "meshes").mkdir(parents=True)
    import trimesh

    trimesh.creation.box((0.2, 0.2, 0.2)).export(source / "meshes" / "crate.stl")
    world = World(bodies=(Body("crate", (Geom(Mesh(path="meshes/crate.stl")),), Pose((0, 0, 0.3))),
                          Body("ref", (Geom(Box((0.1, 0.1, 0.1))),), Pose((1, 0, 0.3)))),
                  asset_dir=source)
    save_world(world, source / "w.json")
    world = load_world(source / "w.json")
    compiled = compile_world(world)
    # a mesh box and a primitive box of the same size have the same mass and inertia
    mesh_body, box_body = compiled.body_id("crate"), compiled.body_id("ref")
    assert compiled.model.body_mass[mesh_body] == pytest.approx(compiled.model.body_mass[box_body], rel=1e-6)
    assert compiled.model.body_inertia[mesh_body] == pytest.approx(compiled.model.body_inertia[box_body], rel=1e-5)
    out = export_mjcf(world, tmp_path / "out" / "w.xml")
    assert (tmp_path / "out" / "meshes").is_dir()
    model = mujoco.MjModel.from_xml_path(str(out))
    assert model.nmesh == 1


def _two_object_world(offset: float) -> World:
    return World(cameras=(Camera("c", (0.2, -1.5, 0.8), look_at=(0.1, 0, 0.05)),), bodies=(
        Body("ball", (Geom(Sphere(0.08), rgba=(1, 0, 0, 1)),), Pose((offset, 0, 0.08))),
        Body("box", (Geom(Box((0.06, 0.06, 0.06)), rgba=(0, 0, 1, 1)),), Pose((0.25, 0.1, 0.06))),
    ))


def test_bare_floor_depth_matches_the_ray_plane_intersection_at_every_pixel():
    world = World(ground=scene().ground, cameras=(Camera("tilted", (0.3, -1.2, 0.9), look_at=(0, 0, 0)),),
                  bodies=(Body("far", (Geom(Sphere(0.05)),), Pose((30, 30, 0.05))),))
    sim = Simulator(world)
    camera = world.cameras[0]
    width, height = 40, 30
    with SceneRenderer(sim.compiled, RenderConfig(width, height)) as renderer:
        depth, ids = renderer.depth_segmentation(sim.data, "tilted")
    k, rotation = camera.intrinsics(width, height), camera.rotation_matrix()
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    # camera looks along -z with +y up (OpenGL); image rows grow downwards
    rays_camera = np.stack([(u - k[0, 2]) / k[0, 0], -(v - k[1, 2]) / k[1, 1], -np.ones_like(u)], axis=-1)
    rays_world = rays_camera @ rotation.T
    hits = rays_world[..., 2] < 0
    scale = -camera.position[2] / np.where(hits, rays_world[..., 2], -1.0)  # distance along the ray per unit z-depth
    expected = np.where(hits, scale, np.nan)  # z-depth equals the ray parameter because the ray's camera z is -1
    floor = hits & (ids == 0) & (expected < 5.0)
    assert floor.sum() > 0.5 * width * height
    assert np.max(np.abs(depth[floor] - expected[floor])) < 5e-3


def test_one_renderer_rebinds_across_worlds_and_keeps_colours_and_ids():
    renderer = SceneRenderer(config=RenderConfig(48, 40))
    for offset in (-0.2, 0.0):
        sim = Simulator(_two_object_world(offset))
        renderer.bind(sim.compiled)
        depth, ids = renderer.depth_segmentation(sim.data, "c")
        rgb = renderer.rgb(sim.data, "c")
        assert set(np.unique(ids)) == {0, 1, 2}
        red = rgb[ids == 1].mean(axis=0)
        blue = rgb[ids == 2].mean(axis=0)
        assert red[0] > red[2] and blue[2] > blue[0]
        # the ball is nearer the camera than the floor behind it
        assert depth[ids == 1].min() < depth[ids == 0].max()
    renderer.close()
    with pytest.raises(RuntimeError, match="bind"):
        SceneRenderer(config=RenderConfig(16, 16)).rgb(None, Camera("x", (1, 1, 1)))
    with pytest.raises(ValueError, match="width"):
        RenderConfig(0, 10)
