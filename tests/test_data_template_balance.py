"""Templates whose families almost always gave one answer (a ball always pushed the door open,
objects never ended up on one another) now get both answers often, and "resting on" means on
top of, checked against the geometry of a stack."""

from collections import Counter

import numpy as np
import pytest

from physforge.data import DataConfig, DataConfigError
from physforge.data.families import articulated, collisions, containment
from physforge.data.programs import ExecutionContext, RolloutProvider, execute
from physforge.data.questions import (Scene, articulated_templates, containment_templates, counterfactual_heavier,
                                     will_collide)
from physforge.errors import SimulationUnstable
from physforge.sim import Simulator
from physforge.world import Body, Box, Geom, Ground, Pose, World

CONFIG = DataConfig(seed=0, width=32, height=32)


def _answers(module, templates, params, n, names):
    counts: Counter = Counter()
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([11, i]))
        spec = module.build(rng, params, "iid")
        sim = Simulator(spec.world)
        context = ExecutionContext(RolloutProvider(sim, sim.snapshot(), CONFIG.duration, CONFIG.state_fps),
                                   CONFIG.clip_duration, spec.latent, spec.facts)
        try:
            scene = Scene(spec, context, [k / CONFIG.fps for k in range(CONFIG.num_frames)])
        except SimulationUnstable:
            continue
        seen = set()
        for candidate in templates(scene, rng):
            if candidate.template in names:
                seen.add((candidate.template, candidate.evaluate(context)))
        counts.update(seen)  # per scene: could the balancer find this answer here?
    return counts


@pytest.mark.parametrize("kind", ["door", "drawer"])
def test_doors_and_drawers_give_both_answers_often(kind):
    import dataclasses

    params = dataclasses.replace(articulated.Params(), door_probability=1.0 if kind == "door" else 0.0)
    names = {"door": ("door_opens", "ball_mass_door"), "drawer": ("drawer_opens_fully", "heavier_drawer")}[kind]
    n = 24
    counts = _answers(articulated, articulated_templates, params, n, names)
    for name in names:
        # before: 60/60 door scenes "yes" for both door templates, drawers ~80-90 % "yes"
        assert counts[(name, "yes")] >= 0.15 * n and counts[(name, "no")] >= 0.15 * n, counts


def test_collision_predictions_and_mass_counterfactuals_give_both_answers():
    """will_collide asked after the whole clip and "three times heavier, still collide?" had no
    minority answer in 300 scenes (0 kept after balancing); now both answers occur often."""
    n = 30

    def both(scene, rng):
        return will_collide(scene, rng) + counterfactual_heavier(scene, rng)

    counts = _answers(collisions, both, collisions.Params(), n, {"will_collide", "mass_still_collide"})
    assert counts[("will_collide", "yes")] >= 0.15 * n and counts[("will_collide", "no")] >= 0.15 * n, counts
    assert counts[("mass_still_collide", "yes")] >= 0.15 * n and counts[("mass_still_collide", "no")] >= 2, counts


def test_will_collide_shows_a_prefix_and_asks_about_contacts_after_it():
    answers = Counter()
    for i in range(12):
        rng = np.random.default_rng(np.random.SeedSequence([12, i]))
        spec = collisions.build(rng, collisions.Params(), "iid")
        sim = Simulator(spec.world)
        context = ExecutionContext(RolloutProvider(sim, sim.snapshot(), CONFIG.duration, CONFIG.state_fps),
                                   CONFIG.clip_duration, spec.latent, spec.facts)
        scene = Scene(spec, context, [k / CONFIG.fps for k in range(CONFIG.num_frames)])
        first = {}
        for e in context.provider.get().events:
            if e["type"] == "contact_start" and "ground" not in e["bodies"]:
                first.setdefault(tuple(sorted(e["bodies"])), e["time"])
        for candidate in will_collide(scene, rng):
            cut = scene.frame_times[candidate.frames[-1]]
            assert candidate.frames == list(range(len(candidate.frames))) and 1 <= len(candidate.frames) <= 3
            pair = tuple(sorted((candidate.program[1]["a"], candidate.program[1]["b"])))
            assert first.get(pair, np.inf) > cut  # not touched in the frames shown
            answers[candidate.evaluate(context)] += 1
            assert candidate.answer == ("yes" if pair in first else "no")
    assert answers["yes"] >= 3 and answers["no"] >= 3, answers


def test_containment_scenes_often_end_with_one_object_resting_on_another():
    n = 30
    counts = _answers(containment, containment_templates, containment.Params(), n, {"supported_by"})
    # before: 1 scene in 40 had a "yes"
    assert counts[("supported_by", "yes")] >= n / 6 and counts[("supported_by", "no")] >= n / 3, counts


def test_stacked_objects_start_on_a_cube_just_clear_of_it():
    params = containment.Params(stack_probability=1.0)
    for seed in range(6):
        spec = containment.build(np.random.default_rng(seed), params, "iid")
        bodies = spec.world.bodies[1:]
        for lower, upper, obj in zip(bodies, bodies[1:], spec.objects):
            assert obj.shape == "cube"  # the lower one of every stacked pair
            gap = upper.pose.position[2] - lower.pose.position[2] - obj.size - spec.obj(upper.name).size
            assert abs(gap - containment.STACK_GAP) < 2e-5
            offset = np.hypot(upper.pose.position[0] - lower.pose.position[0],
                              upper.pose.position[1] - lower.pose.position[1])
            assert offset <= params.stack_offset.high * obj.size + 2e-5
    with pytest.raises(DataConfigError, match="stack_probability"):
        containment.Params(stack_probability=1.5)


def test_resting_on_is_true_only_for_the_object_on_top():
    half = 0.05
    world = World(ground=Ground(), bodies=(
        Body("bottom", (Geom(Box((half, half, half))),), Pose((0.0, 0.0, half))),
        Body("top", (Geom(Box((half, half, half))),), Pose((0.0, 0.0, 3 * half + 0.001))),
        Body("apart", (Geom(Box((half, half, half))),), Pose((0.5, 0.0, half))),
    ))
    sim = Simulator(world)
    context = ExecutionContext(RolloutProvider(sim, sim.snapshot(), 1.0, 20.0), 1.0, {}, {})

    def resting(body, support):
        return execute([{"op": "predicate", "name": "resting_on", "body": body, "support": support}], context)

    assert resting("top", "bottom") is True
    touching = execute([{"op": "predicate", "name": "touching_at_end", "a": "bottom", "b": "top"}], context)
    assert touching and resting("bottom", "top") is False  # touching, but underneath
    assert resting("apart", "bottom") is False
