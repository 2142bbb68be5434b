"""The ground's checker pattern as a metric scale cue for the image-to-asset data (#5):
the world field round-trips, the default is the pattern every world had before, and the
configured square size is metric (checked through the pinhole camera, not our own formula)."""

import math

import numpy as np
import pytest

from physforge.errors import WorldValidationError
from physforge.world import Camera, Ground, World, world_from_dict, world_to_dict


def test_checker_fields_round_trip_and_default_json_is_unchanged():
    world = World(ground=Ground(rgba=(0.5, 0.6, 0.7, 1.0), checker_square=0.1, checker_shade=0.3))
    data = world_to_dict(world)
    assert data["ground"]["checker_square"] == 0.1 and data["ground"]["checker_shade"] == 0.3
    assert world_from_dict(data) == world
    # a default ground writes exactly the keys it wrote before the fields existed (dataset hashes)
    assert set(world_to_dict(World())["ground"]) == {"half_size", "material", "rgba"}
    assert world_from_dict(world_to_dict(World())).ground == Ground()


@pytest.mark.parametrize("field, value", [("checker_square", 0.0), ("checker_square", -1.0),
                                          ("checker_shade", 1.5), ("checker_shade", "dark")])
def test_bad_checker_values_name_the_field(field, value):
    with pytest.raises(WorldValidationError, match=field):
        Ground(**{field: value})


def test_default_ground_compiles_to_the_legacy_pattern():
    """Before the fields, compile.py set texrepeat (4, 4) and a second colour of 0.85 x rgba:
    the default must give exactly that, so every existing render keeps its bytes."""
    from physforge.sim import compile_world

    rgba = (0.6, 0.4, 0.8, 1.0)
    model = compile_world(World(ground=Ground(rgba=rgba))).model
    material = model.material("ground_material")
    assert tuple(material.texrepeat) == (4.0, 4.0)
    texture = model.texture("ground_checker")
    pixels = model.tex_data[texture.adr[0]:texture.adr[0] + texture.width[0] * texture.height[0] * 3]
    colours = {tuple(p) for p in np.asarray(pixels).reshape(-1, 3)}
    expected = {tuple(round(255 * c) for c in rgba[:3]), tuple(round(255 * 0.85 * c) for c in rgba[:3])}
    assert all(min(np.abs(np.subtract(c, e)).max() for e in expected) <= 1 for c in colours)
    assert len(colours) == 2


def test_checker_square_is_metric_in_a_top_down_render():
    """A pinhole camera h m above the plane sees 2 h tan(fovy / 2) m across its image, so the
    squares' pixel period gives their size in metres independently of the texture settings."""
    from physforge.sim import RenderConfig, SceneRenderer, Simulator

    size, height, fovy = 128, 2.0, math.radians(60.0)
    metres_per_px = 2 * height * math.tan(fovy / 2) / size
    for square in (0.1, 0.2, 0.3):
        world = World(ground=Ground(rgba=(0.9, 0.9, 0.9, 1.0), checker_square=square, checker_shade=0.0),
                      cameras=(Camera("top", position=(0.0, 0.0, height), fovy=fovy),))
        sim = Simulator(world, check_stability=False)
        renderer = SceneRenderer(sim.compiled, RenderConfig(size, size))
        try:
            row = renderer.rgb(sim.data, "top")[size // 2, :, 0].astype(float)
        finally:
            renderer.close()
        bright = row > 0.5 * (row.max() + row.min())
        edges = np.flatnonzero(bright[1:] != bright[:-1]) + 0.5
        period_m = float(edges[-1] - edges[0]) / (len(edges) - 1) * metres_per_px  # mean over the row
        assert period_m == pytest.approx(square, rel=0.04), (square, edges)
        # squares start at the plane's -x edge (x = -5 m): every edge lies on that grid, within 1 px
        x = (edges + 0.5 - size / 2) * metres_per_px + Ground().half_size[0]
        assert np.abs(x / square - np.round(x / square)).max() * square <= metres_per_px


def test_image_data_cue_changes_only_the_ground_pattern():
    from physforge.assets.image_data import ImageDataConfig, ImageDataConfigError, ObjectSpec, library_object, scene_world

    _, asset = library_object(ObjectSpec("train", "bottle", 0, 0))
    state = {}
    plain, plain_camera = scene_world(asset, state, np.random.default_rng(3))
    cued, cued_camera = scene_world(asset, state, np.random.default_rng(3), ground_checker_m=0.1,
                                    ground_checker_shade=0.4)
    assert cued_camera == plain_camera and cued.bodies == plain.bodies and cued.lights == plain.lights
    assert plain.ground == Ground(rgba=plain.ground.rgba)
    assert (cued.ground.rgba, cued.ground.checker_square, cued.ground.checker_shade) == (plain.ground.rgba, 0.1, 0.4)
    with pytest.raises(ImageDataConfigError, match="ground_checker_m"):
        ImageDataConfig(out="x", ground_checker_m=0.0)
    with pytest.raises(ImageDataConfigError, match="ground_checker_shade"):
        ImageDataConfig(out="x", ground_checker_m=0.1, ground_checker_shade=2.0)
