"""The two-material tool (pick_tool): reconstruction splits it by colour into a steel and a wooden
part, the simulator's centre of mass matches the true one (trimesh on the true boxes), one-colour
objects stay one hull, and grasp validation in the twin finds the grasp that the geometry-only
ranking misses."""

import mujoco
import numpy as np
import pytest

from physforge.robot.env import PhysWorldEnv, Randomisation
from physforge.robot.reconstruct import reconstruct, split_by_colour
from physforge.robot.tasks import ground_truth_scene, prepare_task, render_demo
from physforge.sim import Simulator
from physforge.world import World

#: How far (m) the reconstructed centre of mass may lie from the true one.
COM_TOLERANCE = 0.015


def _simulated_centre_of_mass(body) -> tuple[np.ndarray, float]:
    sim = Simulator(World(bodies=(body,)))
    mujoco.mj_forward(sim.model, sim.data)
    body_id = sim.compiled.body_id(body.name)
    return sim.data.xipos[body_id].copy(), float(sim.model.body_mass[body_id])


def test_the_tool_is_reconstructed_as_a_steel_and_a_wooden_part_with_the_true_centre_of_mass(boxes_centre_of_mass):
    context = prepare_task("pick_tool")
    (tool,) = [b for b in context.scene_bodies if b.name == "tool"]
    assert sorted(g.material.name for g in tool.geoms) == ["steel", "wood"]
    (truth,), _ = ground_truth_scene("pick_tool")
    true_com, true_mass = boxes_centre_of_mass(truth)
    com, mass = _simulated_centre_of_mass(tool)
    geometric_centre = np.array(truth.pose.position)
    assert np.linalg.norm(true_com - geometric_centre) > 0.08  # the test object: mass far off the middle
    assert np.linalg.norm(com - true_com) < COM_TOLERANCE
    assert 0.7 * true_mass < mass < 1.3 * true_mass
    # the steel part is the one at the heavy (+y) end
    steel = next(g for g in tool.geoms if g.material.name == "steel")
    assert np.asarray(steel.shape.vertices)[:, 1].mean() > 0.08


@pytest.mark.parametrize("task, name", [("pick_place", "cube"), ("pick_wedge", "wedge")])
def test_a_one_colour_object_stays_one_hull_exactly(task, name):
    demo = render_demo(task, rgb_frames=1)
    mask = demo.segmentation[0] == demo.body_index[name]
    assert split_by_colour(demo.rgb[0], mask) is None
    common = dict(camera_rotation=demo.camera_rotation, camera_position=demo.camera_position)
    plain = reconstruct(demo.depth[0], demo.intrinsics, {name: mask}, np.random.default_rng(0), **common)
    coloured = reconstruct(demo.depth[0], demo.intrinsics, {name: mask}, np.random.default_rng(0), rgb=demo.rgb[0],
                           **common)
    assert len(coloured.objects[name].body.geoms) == 1 and coloured.objects[name].parts == ()
    assert np.array_equal(plain.objects[name].body.geoms[0].shape.vertices,
                          coloured.objects[name].body.geoms[0].shape.vertices)
    assert plain.objects[name].body.pose == coloured.objects[name].body.pose


def test_a_two_colour_mask_is_split_where_the_colour_changes():
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :28] = (160, 110, 50)   # wood
    rgb[:, 28:] = (115, 117, 127)  # steel
    rgb[3, 5] = (118, 118, 125)    # a grey speck on the wood joins the wood (its part's largest region)
    mask = np.zeros((20, 40), bool)
    mask[2:18, 2:38] = True
    first, second = split_by_colour(rgb, mask)
    assert first.sum() > second.sum() and (first | second).sum() == mask.sum() and not (first & second).any()
    assert second[:, 28:].sum() == mask[:, 28:].sum() and second[:, :28].sum() == 0


def test_the_twin_rejects_the_geometric_grasp_and_its_choice_carries_the_tool(boxes_centre_of_mass):
    # the twin as the evaluation has it (the heaviest, most slippery tool of the default ranges)
    env = PhysWorldEnv("pick_tool", mode="residual")
    (truth,), _ = ground_truth_scene("pick_tool")
    true_com, _ = boxes_centre_of_mass(truth)
    perceived = env.context.demo_initial
    top = (perceived @ env.proposals[0])[:3, 3]
    assert abs(top[1] - truth.pose.position[1]) < 0.005  # ranked by geometry: the middle of the bar first
    env.reset(seed=0)
    chosen, validated = env._grasp_choice
    assert validated and chosen is not env.proposals[0]
    assert abs((perceived @ chosen)[1, 3] - true_com[1]) < abs(top[1] - true_com[1]) - 0.04
    movable, ranges = env._movable_and_friction_ranges()
    env._to_start()
    assert [t.held for t in env._twin_trials([env.proposals[0]], movable, ranges)] == [False]
    # then episodes with nominal physics, a correctly perceived start and no noise: the twin's choice
    # carries the tool to the goal; the grasp at the geometric centroid (the ranking's first, what
    # direct retargeting takes) lets it tilt out of the fingers
    env.randomisation = Randomisation(position_jitter=0.0, yaw_jitter=0.0, mass_scale=(1.0, 1.0),
                                      friction=(0.8, 0.8), actuation_noise=0.0, latency_steps=(0, 0),
                                      tracking_noise=0.0)
    outcomes = {}
    for mode in ("residual", "retarget"):
        env.mode = mode
        env.reset(seed=0)
        done = False
        while not done:
            _, _, done, _, info = env.step(np.zeros(4, np.float32))
        outcomes[mode] = info["summary"]
    assert outcomes["residual"]["success"] and not outcomes["residual"]["grasp_failure"]
    assert outcomes["retarget"]["grasp_failure"]
    # the same holds for the true tool (its boxes at their true densities, perception off): the
    # grasp at the middle of the bar tilts it out of the fingers
    true_env = PhysWorldEnv("pick_tool", mode="retarget", perception=False, randomisation=env.randomisation)
    assert abs(true_env.proposals[0][1, 3]) < 1e-9
    true_env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, info = true_env.step(np.zeros(4, np.float32))
    assert info["summary"]["grasp_failure"]


def test_the_colour_material_table_is_the_callers_to_override():
    from physforge.robot.reconstruct import COLOUR_MATERIALS, ColourMaterial, MaterialPrior

    demo = render_demo("pick_tool", rgb_frames=1)
    masks = {"tool": demo.segmentation[0] == demo.body_index["tool"]}
    common = dict(camera_rotation=demo.camera_rotation, camera_position=demo.camera_position, rgb=demo.rgb[0])
    default = reconstruct(demo.depth[0], demo.intrinsics, masks, np.random.default_rng(0), **common).objects["tool"]
    assert sorted(p.material for p in default.parts) == ["steel", "wood"]
    # mass range from the parts: the steel head's volume times 7000-8000 plus the handle's times 400-900
    low, high = default.mass_range()
    assert low == pytest.approx(sum(p.volume * p.prior.density[0] for p in default.parts))
    assert 0.4 < low < high < 1.0
    table = {"wood": COLOUR_MATERIALS["wood"],
             "lead": ColourMaterial((0.45, 0.46, 0.5), MaterialPrior("lead", (11000.0, 11600.0), (0.4, 0.8)))}
    custom = reconstruct(demo.depth[0], demo.intrinsics, masks, np.random.default_rng(0), colour_materials=table,
                         **common).objects["tool"]
    assert sorted(g.material.name for g in custom.body.geoms) == ["lead", "wood"]
    assert max(g.material.density for g in custom.body.geoms) == 11300.0


def test_float_colours_outside_0_1_are_a_named_error():
    from physforge.robot.reconstruct import ReconstructionError

    depth, mask = np.ones((8, 8)), np.ones((8, 8), bool)
    rgb = np.full((8, 8, 3), 200.0)  # 0-255 values as floats: matched to the table they would all clip to white
    with pytest.raises(ReconstructionError, match=r"rgb as floats must lie in \[0, 1\], got 200..200"):
        reconstruct(depth, np.eye(3), {"a": mask}, np.random.default_rng(0), rgb=rgb)


def test_one_flat_colour_is_not_split_and_raises_no_warning():
    import warnings

    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:] = (120, 50, 40)  # a synthetic, unshaded object: every pixel the same colour
    mask = np.zeros((20, 40), bool)
    mask[2:18, 2:38] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert split_by_colour(rgb, mask) is None
