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
