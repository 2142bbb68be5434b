"""The asset eval's paired bootstrap (``image_eval_paired``) against independent oracles: exact
cases (identical methods, a constant difference), scipy.stats.bootstrap on random data, and
hand-counted failure handling."""

import numpy as np
import pytest
from scipy import stats

from physforge.assets.image_eval_paired import (difference_array, mean_interval, paired_methods, paired_result,
                                                 verdict_lines)

RESAMPLES = 4000


def _rows(method, split, values, **extra):
    return [{"object_id": f"o{i}", "split": split, "method": method, "parsed": True, **v, **extra}
            for i, v in enumerate(values)]


def _random_objects(rng, n):
    return [{"voxel_iou": float(rng.random()), "fscore": float(rng.random()), "scale_error_m": float(rng.random()),
             "category_accuracy": float(rng.integers(0, 2)), "gate_pass": float(rng.integers(0, 2))}
            for _ in range(n)]


def test_identical_methods_give_a_zero_interval():
    objects = _random_objects(np.random.default_rng(1), 25)
    out = paired_methods({"vlm": _rows("vlm", "s", objects), "nearest_neighbour": _rows("nn", "s", objects)},
                         np.random.default_rng(0), resamples=RESAMPLES)
    for metric in ("voxel_iou", "fscore", "scale_error_m", "category_accuracy", "gate_pass"):
        cell = out["nearest_neighbour"][metric]
        assert cell["n"] == 25 and cell["mean"] == 0.0 and cell["ci95"] == [0.0, 0.0] and cell["verdict"] == "tie"


def test_a_constant_difference_gives_that_difference_as_both_ends():
    rng = np.random.default_rng(2)
    base = _random_objects(rng, 30)
    shifted = [{**o, "voxel_iou": o["voxel_iou"] + 0.125, "scale_error_m": o["scale_error_m"] - 0.0625} for o in base]
    out = paired_methods({"vlm": _rows("vlm", "s", shifted), "nn": _rows("nn", "s", base)},
                         np.random.default_rng(0), resamples=RESAMPLES)["nn"]
    assert out["voxel_iou"]["mean"] == 0.125 and out["voxel_iou"]["ci95"] == [0.125, 0.125]
    assert out["voxel_iou"]["verdict"] == "win"
    # lower scale error is better: a constant -0.0625 is a win too
    assert out["scale_error_m"]["ci95"] == [-0.0625, -0.0625] and out["scale_error_m"]["verdict"] == "win"


@pytest.mark.parametrize("seed", [0, 1])
def test_interval_agrees_with_scipy_bootstrap_percentile(seed):
    rng = np.random.default_rng(100 + seed)
    n = 40
    a, b = rng.normal(0.5, 0.2, n), rng.normal(0.45, 0.2, n)  # paired through the object index
    out = paired_methods({"vlm": _rows("vlm", "s", [{"fscore": float(x)} for x in a]),
                          "nn": _rows("nn", "s", [{"fscore": float(x)} for x in b])},
                         np.random.default_rng(seed), resamples=20_000, metrics=("fscore",))["nn"]["fscore"]
    reference = stats.bootstrap((a - b,), np.mean, n_resamples=20_000, method="percentile",
                                random_state=np.random.default_rng(seed + 7)).confidence_interval
    se = float(np.std(a - b, ddof=1) / np.sqrt(n))  # ~0.045 here
    # two independent Monte-Carlo estimates of the same 2.5/97.5 percentiles: their spread at
    # 20k resamples is ~0.03 standard errors; 0.1 standard errors leaves room and still fails
    # if the resample were unpaired (its interval is ~1.4x as wide) or the mean were wrong
    assert out["mean"] == pytest.approx(np.mean(a - b), abs=1e-4)
    assert out["ci95"][0] == pytest.approx(reference.low, abs=0.1 * se)
    assert out["ci95"][1] == pytest.approx(reference.high, abs=0.1 * se)


def test_an_unpaired_bootstrap_would_fail_the_scipy_check():
    # the oracle check above has teeth: resampling the two methods independently widens the
    # interval far beyond the tolerance when the methods are correlated across objects
    rng = np.random.default_rng(5)
    common = rng.normal(0.5, 0.3, 40)
    a, b = common + rng.normal(0.02, 0.02, 40), common
    paired = mean_interval(a - b, np.random.default_rng(0).integers(0, 40, (20_000, 40)))
    g = np.random.default_rng(1)
    unpaired = np.percentile(a[g.integers(0, 40, (20_000, 40))].mean(1) - b[g.integers(0, 40, (20_000, 40))].mean(1),
                             [2.5, 97.5])
    assert (unpaired[1] - unpaired[0]) > 5 * (paired[2] - paired[1])


def test_failed_generations_score_as_the_eval_failure_rows_and_undefined_objects_drop_out():
    ok = {"parsed": True, "scale_error_m": 0.1, "voxel_iou": 0.5, "joint_type_accuracy": None}
    failed = {"parsed": False, "error": "unparseable", "scale_error_m": None, "voxel_iou": 0.0,
              "joint_type_accuracy": 0.0}
    vlm = [dict(ok), dict(failed), dict(ok)]
    base = [dict(ok, scale_error_m=0.3), dict(ok, scale_error_m=0.2), dict(ok, scale_error_m=0.1)]
    diff, counts = difference_array(vlm, base, "scale_error_m")
    # the failure takes the worst scale error on the split (0.3), not a free pass
    assert diff.tolist() == pytest.approx([-0.2, 0.1, 0.0]) and counts == {"penalised": 1, "unmatched": 0}
    diff, _ = difference_array(vlm, base, "voxel_iou")
    assert diff.tolist() == pytest.approx([0.0, -0.5, 0.0])
    # no moving joint: undefined for both methods, so out of the mean (as in the eval's table); the
    # failure row's 0 against a baseline's None is an unmatched object
    diff, counts = difference_array(vlm, base, "joint_type_accuracy")
    assert np.isnan(diff).all() and counts == {"penalised": 0, "unmatched": 1}
    with pytest.raises(ValueError, match="same objects in the same order"):
        difference_array(vlm, base[:2], "voxel_iou")


def test_result_section_pairs_each_split_and_the_verdict_line():
    rng = np.random.default_rng(3)
    objects = []
    for split in ("test_objects", "test_categories"):
        truth = _random_objects(rng, 12)
        objects += _rows("vlm", split, [{**o, "fscore": o["fscore"] + 0.5} for o in truth])
        objects += _rows("nearest_neighbour", split, truth)
        objects += _rows("category_mean_predicted", split, truth)
    other = {"objects": _rows("vlm", "test_objects", _random_objects(rng, 12))}
    paired = paired_result({"objects": objects}, np.random.default_rng(0), resamples=2000,
                           extra={"other_vlm": other})
    assert set(paired["splits"]) == {"test_objects", "test_categories"}
    assert set(paired["splits"]["test_objects"]) == {"nearest_neighbour", "category_mean_predicted", "other_vlm"}
    lines = verdict_lines(paired)
    line = next(x for x in lines if x.startswith("test_objects VLM vs nearest_neighbour"))
    assert "F +0.500 [+0.500, +0.500] win" in line and "IoU +0.000 [+0.000, +0.000] tie" in line
    # the same seed gives the same intervals
    again = paired_result({"objects": objects}, np.random.default_rng(0), resamples=2000,
                          extra={"other_vlm": other})
    assert again == paired
    with pytest.raises(TypeError, match="rng"):
        paired_result({"objects": objects}, 0, resamples=2000)


def test_a_failure_scores_the_worst_value_of_any_method_on_the_split():
    # the module's rule: a failed generation with no value takes the worst value any method
    # reached, so its penalty is the same whichever baseline it is paired with (here 0.9, reached
    # only by the third method)
    ok = {"parsed": True}
    failed = {"parsed": False, "error": "unparseable", "scale_error_m": None}
    vlm = _rows("vlm", "s", [dict(ok, scale_error_m=0.1), failed])
    oracle = _rows("category_mean_oracle", "s", [dict(ok, scale_error_m=0.1), dict(ok, scale_error_m=0.2)])
    nn = _rows("nearest_neighbour", "s", [dict(ok, scale_error_m=0.9), dict(ok, scale_error_m=0.2)])
    out = paired_methods({"vlm": vlm, "category_mean_oracle": oracle, "nearest_neighbour": nn},
                         np.random.default_rng(0), resamples=RESAMPLES, metrics=("scale_error_m",))
    # vs the oracle: differences (0.0, 0.9 - 0.2) -> mean 0.35
    assert out["category_mean_oracle"]["scale_error_m"]["mean"] == pytest.approx(0.35)
    assert out["category_mean_oracle"]["scale_error_m"]["penalised"] == 1


def test_a_penalised_failure_that_drops_out_is_not_counted_as_penalised():
    # the baseline has no axis error for this object (its structure lacks the hinge): the pair is
    # unmatched, so no penalty entered the mean
    failed = {"parsed": False, "error": "unparseable", "axis_error_deg": None}
    vlm = [{"parsed": True, "axis_error_deg": 10.0}, failed]
    base = [{"parsed": True, "axis_error_deg": 30.0}, {"parsed": True, "axis_error_deg": None}]
    diff, counts = difference_array(vlm, base, "axis_error_deg")
    assert diff[0] == pytest.approx(-20.0) and np.isnan(diff[1])
    assert counts == {"penalised": 0, "unmatched": 1}


def test_one_object_gives_a_mean_but_no_interval_or_verdict():
    # every resample of one object is that object: a zero-width interval is no evidence of a win
    out = paired_methods({"vlm": _rows("vlm", "s", [{"voxel_iou": 0.9}]),
                          "nn": _rows("nn", "s", [{"voxel_iou": 0.4}])},
                         np.random.default_rng(0), resamples=RESAMPLES, metrics=("voxel_iou",))["nn"]["voxel_iou"]
    assert out["n"] == 1 and out["mean"] == 0.5 and out["ci95"] is None and out["verdict"] is None
    paired = {"resamples": RESAMPLES, "splits": {"s": {"nn": {"voxel_iou": out}}}}
    assert verdict_lines(paired, metrics=("voxel_iou",)) == [
        "s VLM vs nn (1 objects): IoU +0.500 (n=1, no interval)"]


def test_verdict_knows_each_metrics_direction_and_refuses_an_unknown_one():
    from physforge.assets.image_eval_paired import verdict

    assert verdict("fscore", 0.01, 0.05) == "win" and verdict("scale_error_m", 0.01, 0.05) == "loss"
    assert verdict("scale_error_m", -0.05, -0.01) == "win" and verdict("voxel_iou", -0.1, 0.1) == "tie"
    with pytest.raises(ValueError, match="f_score"):
        verdict("f_score", 0.01, 0.05)
