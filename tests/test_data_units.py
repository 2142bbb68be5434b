"""Data engine units: the reusable renderer, configs, families, programs, balancing, grading."""

import json
import math

import numpy as np
import pytest

from physforge.data import DataConfig, DataConfigError
from physforge.data.families import FAMILIES, Range
from physforge.data.grade import answers_match, grade, grade_one, physics_reward
from physforge.data.programs import execute
from physforge.data.questions import Balancer, Candidate, select
from physforge.errors import SimulationUnstable


def test_config_round_trips_and_names_bad_fields(tmp_path):
    config = DataConfig(seed=4, families={"ramps": 2.0, "towers": 1.0}, heldout_families=("towers",))
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()))
    assert DataConfig.load(path) == config
    with pytest.raises(DataConfigError, match=r"families\.planets: unknown family"):
        DataConfig(families={"planets": 1.0})
    with pytest.raises(DataConfigError, match="state_fps: must be a whole multiple of fps"):
        DataConfig(fps=3.0, state_fps=20.0)
    with pytest.raises(DataConfigError, match=r"params\.ramps\.angle.*low 40.0 is above high 10.0"):
        DataConfig(params={"ramps": {"angle": {"low": 40.0, "high": 10.0}}})
    with pytest.raises(DataConfigError, match=r"params\.towers\.height_of_tower: unknown parameter"):
        DataConfig(params={"towers": {"height_of_tower": 3}})
    with pytest.raises(DataConfigError, match="every generated family is held out"):
        DataConfig(families={"towers": 1.0}, heldout_families=("towers",))
    path.write_text("{not json")
    with pytest.raises(DataConfigError, match="not valid JSON"):
        DataConfig.load(path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_is_deterministic_and_records_its_latents(family):
    module = FAMILIES[family]
    specs = [module.build(np.random.default_rng(7), module.Params(), variant) for variant in ("iid", "iid")]
    assert specs[0].world == specs[1].world
    assert specs[0].latent == specs[1].latent and "gravity" in specs[0].latent
    for o in specs[0].objects:
        assert specs[0].latent[f"{o.name}.mass"] > 0
        specs[0].world.body(o.name)
    other = module.build(np.random.default_rng(8), module.Params(), "iid")
    assert other.world != specs[0].world


def test_ood_variants_leave_the_training_ranges():
    module = FAMILIES["collisions"]
    params = module.Params()
    for seed in range(5):
        iid = module.build(np.random.default_rng(seed), params, "iid")
        ood = module.build(np.random.default_rng(seed), params, "params")
        comp = module.build(np.random.default_rng(seed), params, "compositional")
        assert params.gravity.low <= iid.latent["gravity"] <= params.gravity.high
        assert ood.latent["gravity"] >= params.ood_gravity.low > params.gravity.high
        assert len(comp.objects) >= params.ood_count.low > params.count.high


def test_range_validation():
    with pytest.raises(DataConfigError, match="finite"):
        Range(0.0, math.nan)
    assert Range(2, 2).sample_int(np.random.default_rng(0)) == 2


class _Context:
    provider = None


def test_balancer_steers_boolean_answers_and_option_letters():
    balancer = Balancer()
    answers = []
    for k in range(6):
        yes = Candidate("stability", "t", "q?", "bool", [{"op": "constant", "value": True}])
        no = Candidate("stability", "t", "q?", "bool", [{"op": "constant", "value": False}])
        chosen = select([yes, no], _Context(), balancer, np.random.default_rng(k), errors={})
        balancer.record(chosen)
        answers.append(chosen.answer)
    assert answers.count("yes") == answers.count("no") == 3
    letters = []
    for k in range(4):
        c = Candidate("property", "m", "which?", "choice", options=[
            {"text": "x", "program": [{"op": "constant", "value": True}]},
            {"text": "y", "program": [{"op": "constant", "value": False}]}])
        c.evaluate(_Context())
        balancer.place_correct(c, np.random.default_rng(k))
        letters.append(c.answer)
        assert c.options[c.option_correct.index(True)]["text"] == "x"
    assert sorted(letters) == ["A", "A", "B", "B"]


def test_select_skips_candidates_whose_simulation_blows_up():
    class Boom(Candidate):
        def evaluate(self, context):
            raise SimulationUnstable("test", 0.1)
    errors = {}
    from collections import Counter
    errors = Counter()
    good = Candidate("counterfactual", "t", "q?", "bool", [{"op": "constant", "value": True}])
    chosen = select([Boom("counterfactual", "t", "q?", "bool"), good], _Context(), Balancer(),
                    np.random.default_rng(0), errors)
    assert chosen is good and errors["counterfactual_unstable"] == 1


def test_program_errors_name_the_node():
    with pytest.raises(ValueError, match="node 0: unknown op 'fly'"):
        execute([{"op": "fly"}], _Context())


@pytest.mark.parametrize("predicted, answer, kind, tolerance, right", [
    ("yes", "yes", "bool", (0, 0), True), ("True.", "yes", "bool", (0, 0), True), ("no", "yes", "bool", (0, 0), False),
    ("<answer>3</answer>", "3", "count", (0, 0), True), ("4 objects", "3", "count", (0, 0), False),
    ("0.52 s", "0.500", "number", (0.05, 0.05), True), ("0.56", "0.500", "number", (0.05, 0.05), False),
    ("B", "B", "choice", (0, 0), True), ("a", "B", "choice", (0, 0), False),
    ("C, A", "A,C", "multi", (0, 0), True), ("A", "A,C", "multi", (0, 0), False), ("none", "none", "multi", (0, 0), True),
    ("Red", "red", "name", (0, 0), True),
])
def test_answers_match(predicted, answer, kind, tolerance, right):
    assert answers_match(predicted, answer, kind, tolerance) == right


def test_grading_per_option_per_question_and_as_a_reward():
    question = {"question_id": "q1", "question_type": "causal", "split": "train", "family": "collisions",
                "answer": "A,C", "answer_type": "multi", "tolerance_abs": 0.0, "tolerance_rel": 0.0,
                "options": [{"label": "A", "correct": True}, {"label": "B", "correct": False},
                            {"label": "C", "correct": True}]}
    assert grade_one("A", question) == {"correct": False, "option_correct": [True, True, False]}
    number = dict(question, question_id="q2", question_type="quantitative", answer="2.000", answer_type="number",
                  tolerance_abs=0.1, tolerance_rel=0.0, options=[])
    report = grade({"q1": "A", "q2": "2.05"}, [question, number, dict(number, question_id="q3")])
    assert report["overall"]["questions"] == 3 and report["overall"]["accuracy"] == pytest.approx(1 / 3)
    assert report["missing_predictions"] == 1
    causal = next(g for g in report["groups"] if g["question_type"] == "causal")
    assert causal["accuracy"] == 0.0 and causal["option_accuracy"] == pytest.approx(2 / 3)
    rewards = physics_reward(["<answer>A,C</answer>", "A", "1.5"], answer=["A,C", "A,C", "2.000"],
                             answer_type=["multi", "multi", "number"], tolerance_abs=[0, 0, 0.1],
                             tolerance_rel=[0, 0, 0], options=[question["options"]] * 2 + [[]])
    assert rewards == [1.0, pytest.approx(2 / 3), 0.0]


def _scene(family: str, size: int = 32):
    from physforge.data.scene import assign, scene_rng

    config = DataConfig(seed=3, families={family: 1.0}, heldout_families=(), width=size, height=size)
    rng = scene_rng(config.seed, 0)
    _, _, variant = assign(config, rng)
    return config, FAMILIES[family].build(rng, config.params[family], variant)


@pytest.mark.parametrize("shape, dtype", [((37, 53, 3), np.uint8), ((37, 53), np.uint8), ((37, 53), np.uint16)])
def test_png_frames_decode_to_the_same_pixels(shape, dtype):
    import io

    from PIL import Image

    from physforge.data.scene import _png

    image = np.zeros(shape, dtype)  # flat regions, as in a render, and a band of noise
    image[5:20] = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, size=image[5:20].shape, endpoint=True,
                                                    dtype=dtype)
    decoded = np.asarray(Image.open(io.BytesIO(_png(image))))
    assert decoded.dtype == dtype and np.array_equal(decoded, image)
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) uint8.*got \(4, 4, 4\) uint8"):
        _png(np.zeros((4, 4, 4), np.uint8))


def test_rollouts_skip_contact_tracking_only_where_no_program_reads_events():
    from physforge.data.programs import RolloutProvider, event_rollouts, rollout_key
    from physforge.sim import Simulator

    _, spec = _scene("collisions")
    sim = Simulator(spec.world)
    snapshot = sim.snapshot()
    key = {"mass_scale": [spec.objects[0].name, 3.0]}
    reference = RolloutProvider(sim, snapshot, 1.0, 20.0).get(key)
    assert reference.events, "objects resting on the table touch it"
    lean = RolloutProvider(sim, snapshot, 1.0, 20.0, event_rollouts=set())
    trajectory_only = lean.get(key, events=False)
    assert trajectory_only.events == []
    for name in ("time", "position", "quaternion", "linear_velocity", "angular_velocity"):
        np.testing.assert_array_equal(getattr(trajectory_only.trajectory, name), getattr(reference.trajectory, name))
    # a program that reads the events of that rollout gets them: simulated again, with tracking
    again = lean.get(key, events=True)
    assert again.events == reference.events and lean.simulations == 2
    assert lean.get(key) is again and lean.simulations == 2
    # keys named in event_rollouts are tracked from the first run
    hinted = RolloutProvider(sim, snapshot, 1.0, 20.0, event_rollouts={rollout_key(key)})
    assert hinted.get(key, events=False).events == reference.events and hinted.simulations == 1
    a, b = spec.objects[0].name, spec.objects[1].name
    assert event_rollouts([{"op": "state", "body": a, "field": "z", "time": 0.1, "rollout": key}]) == set()
    assert event_rollouts([{"op": "predicate", "name": "inside", "body": a, "bounds": [0, 1, 0, 1, 1]}]) == set()
    assert event_rollouts([{"op": "predicate", "name": "toppled", "body": a, "rollout": key}]) == {rollout_key(key)}
    assert event_rollouts([{"op": "events", "type": "contact_start"}, {"op": "pair", "inputs": [0], "a": a, "b": b},
                           {"op": "exists", "inputs": [1]}]) == {"factual"}


def test_impossible_twin_from_the_mid_clip_snapshot_matches_a_rerun_from_the_start():
    import io

    from PIL import Image

    from physforge.data.scene import VIOLATION_KICK_SPEED, _image, _impossible_clip
    from physforge.sim import RenderConfig, SceneRenderer, Simulator

    config, spec = _scene("collisions", size=48)
    sim = Simulator(spec.world)
    start = sim.snapshot()
    renderer = SceneRenderer(config=RenderConfig(48, 48))
    renderer.bind(sim.compiled)
    stride, n, half = config.frame_stride, config.num_frames, config.num_frames // 2
    factual, middle = [], []

    def on_frame(simulator, frame):
        if frame == half * stride:
            middle.append(simulator.snapshot())
        if frame % stride == 0 and frame // stride < n:
            factual.append(renderer.rgb(simulator.data, spec.camera))

    sim.run(config.duration, config.state_fps, on_frame=on_frame)
    kinds = set()
    for seed in range(12):
        twin: list[dict] = []
        violation = _impossible_clip(sim, middle[0], [_image(f) for f in factual], spec, config, renderer,
                                     np.random.default_rng(seed), twin)
        if violation is None or violation["kind"] in kinds:
            continue
        kinds.add(violation["kind"])
        # the reference: re-simulate the first half from t = 0, then break physics there
        expected = []

        def record(simulator, frame, skip_first):
            if frame % stride == 0 and not (skip_first and frame == 0):
                expected.append(renderer.rgb(simulator.data, spec.camera))

        sim.restore(start)
        sim.run(half / config.fps, config.state_fps, events=False, on_frame=lambda s, f: record(s, f, False))
        if violation["kind"] == "gravity_reversal":
            sim.set_gravity([-g for g in spec.world.gravity])
        else:
            sim.apply_impulse(violation["body"], [0.0, 0.0, sim.body_mass(violation["body"]) * VIOLATION_KICK_SPEED])
        sim.run((n - 1 - half) / config.fps, config.state_fps, events=False, on_frame=lambda s, f: record(s, f, True))
        decoded = [np.asarray(Image.open(io.BytesIO(image["bytes"]))) for image in twin]
        assert len(decoded) == len(expected) == n
        assert all(np.array_equal(a, b) for a, b in zip(decoded, expected))
        assert all(np.array_equal(a, b) for a, b in zip(decoded[:half + 1], factual[:half + 1]))
        assert any(not np.array_equal(a, b) for a, b in zip(decoded[half + 1:], factual[half + 1:])), \
            "the violation shows after frame n // 2"
        if len(kinds) == 2:
            break
    renderer.close()
    assert kinds == {"gravity_reversal", "spontaneous_kick"}


def test_balance_rows_trims_the_latest_surplus_of_each_yes_no_template():
    from physforge.data.questions import balance_rows

    rows = [{"template": t, "answer_type": kind, "answer": a, "i": i} for i, (t, kind, a) in enumerate([
        ("door", "bool", "yes"), ("door", "bool", "yes"), ("tower", "bool", "no"), ("door", "bool", "no"),
        ("door", "bool", "yes"), ("tower", "bool", "yes"), ("count", "count", "3"), ("count", "count", "3"),
        ("wall", "bool", "no")])]
    kept, dropped = balance_rows(rows)
    assert [r["i"] for r in dropped] == [1, 4, 8]  # door: 3 yes to 1 no, the two latest yes go; wall: no "yes"
    assert [r["i"] for r in kept] == [0, 2, 3, 5, 6, 7]
    for template in ("door", "tower", "wall"):
        answers = [r["answer"] for r in kept if r["template"] == template]
        assert answers.count("yes") == answers.count("no")


def test_multiple_answer_options_are_shuffled_with_their_labels():
    balancer = Balancer()
    first_correct = []
    for k in range(300):
        c = Candidate("causal", "responsible", "which?", "multi", options=[
            {"text": text, "program": [{"op": "constant", "value": text == "early"}]}
            for text in ("early", "middle", "late")])
        c.evaluate(_Context())
        assert c.answer == "A"
        balancer.place_correct(c, np.random.default_rng(k))
        assert [o["text"] == "early" for o in c.options] == c.option_correct
        assert c.answer == "ABC"[c.option_correct.index(True)]
        first_correct.append(c.answer)
    # each letter ~100 times: a binomial(300, 1/3) lies within 100 +- 30 with probability > 0.999
    assert all(70 <= first_correct.count(letter) <= 130 for letter in "ABC")
