"""Answer balance per split, per-family clip timing and question texts that do not give the
answer away (issue #6: out-of-distribution evaluation needs each split's majority at 50 %)."""

from collections import Counter

import numpy as np
import pytest

from physforge.data.config import DataConfig
from physforge.data.errors import DataConfigError
from physforge.data.questions import Balancer, Candidate, balance_rows
from physforge.data.scene import generate_scene
from physforge.sim.render import RenderConfig, SceneRenderer


def test_balance_rows_balances_each_split_separately():
    # Over both splits "yes" and "no" are even (3 each), but the OOD split is all "yes": that
    # skew must go, or a majority baseline learns the split rather than the training data.
    rows = [{"split": s, "template": "t", "answer_type": "bool", "answer": a, "i": i} for i, (s, a) in enumerate([
        ("train", "no"), ("test_ood_params", "yes"), ("train", "no"), ("test_ood_params", "yes"), ("train", "no"),
        ("train", "yes")])]
    kept, dropped = balance_rows(rows)
    assert [r["i"] for r in dropped] == [1, 2, 3, 4]  # OOD: both "yes" (no "no" to pair); train: the 2 latest "no"
    per_split = Counter((r["split"], r["answer"]) for r in kept)
    assert per_split == Counter({("train", "no"): 1, ("train", "yes"): 1})


def test_balancer_steers_each_split_towards_its_own_minority_answer():
    balancer = Balancer()
    balancer.split = "train"
    for _ in range(3):
        balancer.record(Candidate("counterfactual", "t", "q?", "bool", answer="yes"))
    assert balancer.target("t", "bool") == "no"
    assert not balancer.admit(Candidate("counterfactual", "t", "q?", "bool", answer="yes"))
    balancer.split = "test_ood_params"  # a fresh split has seen nothing: any answer is admitted
    assert balancer.admit(Candidate("counterfactual", "t", "q?", "bool", answer="yes"))


def test_family_fps_is_validated_with_the_field_named():
    with pytest.raises(DataConfigError, match=r"family_fps\.ramps.*whole multiple"):
        DataConfig(family_fps={"ramps": 3.0})  # 20 Hz states are not a multiple of 3 fps
    with pytest.raises(DataConfigError, match=r"family_fps\.boats.*unknown family"):
        DataConfig(family_fps={"boats": 2.0})
    with pytest.raises(DataConfigError, match=r"family_fps\.ramps.*positive rate"):
        DataConfig(family_fps={"ramps": -2.0})
    config = DataConfig(family_fps={"ramps": 2.0})
    assert DataConfig.from_dict(config.to_dict()) == config
    assert config.for_family("ramps").clip_duration == pytest.approx(3.5)
    assert config.for_family("towers") is config


def _first_scene(config: DataConfig, renderer, family: str):
    for index in range(40):
        result = generate_scene(config, index, renderer, Balancer())
        if result.family == family and result.scene is not None:
            return result
    raise AssertionError(f"no {family} scene in 40")


def test_family_fps_changes_the_clip_timing_and_nothing_else():
    base = DataConfig(seed=5, width=32, height=32, families={"ramps": 1.0, "dominoes": 1.0}, heldout_families=(),
                      plausibility_fraction=0.0, perturbation_trials=0)
    slow = DataConfig.from_dict({**base.to_dict(), "family_fps": {"ramps": 2.0}})
    renderer = SceneRenderer(config=RenderConfig(32, 32))
    try:
        fast, long = _first_scene(base, renderer, "ramps"), _first_scene(slow, renderer, "ramps")
    finally:
        renderer.close()
    assert fast.index == long.index
    a, b = fast.scene, long.scene
    assert a["world"] == b["world"] and a["latent"] == b["latent"]  # the same sampled scene
    assert (a["fps"], a["clip_duration"]) == (4.0, 1.75) and (b["fps"], b["clip_duration"]) == (2.0, 3.5)
    assert len(b["frames"]) == len(a["frames"]) == base.num_frames
    assert b["duration"] == pytest.approx(3.5 + base.predict_horizon)
    # frames 0 and 2 of the 2 fps clip are frames 0 and 4 of the 4 fps clip (t = 0 s and 1 s): same pictures
    assert b["frames"][0]["bytes"] == a["frames"][0]["bytes"] and b["frames"][2]["bytes"] == a["frames"][4]["bytes"]
    # states up to the shorter run's end are the same physics
    n = len(a["states"]["time"])
    assert np.allclose(np.asarray(b["states"]["position"])[:n], np.asarray(a["states"]["position"]), atol=1e-9)


def test_counterfactual_questions_show_the_clip_and_heavier_period_does_not_name_the_oscillator():
    config = DataConfig(seed=2, width=32, height=32, families={"pendulums": 1.0, "dominoes": 1.0},
                        heldout_families=(), plausibility_fraction=0.0, perturbation_trials=0)
    renderer = SceneRenderer(config=RenderConfig(32, 32))
    seen = Counter()
    try:
        for index in range(12):
            for q in generate_scene(config, index, renderer, Balancer()).questions:
                if q["template"] == "heavier_period":
                    # "slider" (a spring: yes) or "pendulum" (no) in the text was the answer itself
                    assert "slider" not in q["question"] and "pendulum" not in q["question"]
                    seen[q["template"]] += 1
                if q["template"] == "domino_removed":
                    assert q["frame_indices"] == list(range(config.num_frames))
                    seen[q["template"]] += 1
    finally:
        renderer.close()
    assert seen["heavier_period"] and seen["domino_removed"], seen
