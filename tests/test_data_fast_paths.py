"""Fast paths of the data engine give the same results as the plain ones they replace."""

import numpy as np

from physforge.sim import Simulator
from physforge.sim.render import RenderConfig, SceneRenderer
from physforge.world import Body, Box, Camera, Geom, Ground, Pose, Sphere, World


def _world() -> World:
    return World(ground=Ground(), cameras=(Camera("c", (0.2, -1.5, 0.8), look_at=(0.1, 0, 0.05)),), bodies=(
        Body("ball", (Geom(Sphere(0.08), rgba=(1, 0, 0, 1)),), Pose((0.0, 0, 0.3))),
        Body("box", (Geom(Box((0.06, 0.06, 0.06)), rgba=(0, 0, 1, 1)),), Pose((0.25, 0.1, 0.06))),
    ))


def test_one_scene_for_rgb_and_segmentation_gives_the_pixels_of_two_separate_renders():
    sim = Simulator(_world())
    with SceneRenderer(sim.compiled, RenderConfig(48, 40)) as renderer:
        for _ in range(3):
            rgb, depth, ids = renderer.rgb_depth_segmentation(sim.data, "c")
            reference_rgb = renderer.rgb(sim.data, "c")
            reference_depth, reference_ids = renderer.depth_segmentation(sim.data, "c")
            np.testing.assert_array_equal(rgb, reference_rgb)
            np.testing.assert_array_equal(depth, reference_depth)
            np.testing.assert_array_equal(ids, reference_ids)
            assert ids.dtype == np.int32 and ids.flags.c_contiguous and set(np.unique(ids)) == {0, 1, 2}
            # independent decoding of the id colours: plain int64 arithmetic per pixel
            raw = np.flipud(renderer._rgb).astype(np.int64)
            code = raw[..., 0] + 256 * raw[..., 1] + 65536 * raw[..., 2]
            assert (ids[code == 0] == 0).all() and (ids[code > 0] > 0).any()
            sim.step(40)
