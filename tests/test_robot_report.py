"""`robot eval`'s report.html from a hand-made results.json: the grasp-failure column and table,
and per task a learning curve of (b) and (c) against (a)'s success, each checked against the
numbers put in."""

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from physforge.report.builders import robot_eval_report, robot_learning_curve


class _Tables(HTMLParser):
    """Every <table> as a list of rows of cell texts, and every <img>'s alt text."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(dict(attrs)["alt"])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None


def _row(task, method, success, grasp_failure, steps=0, held=None):
    row = {"task": task, "method": method, "episodes": 50, "success_rate": success, "success_ci95": [0.1, 0.9],
           "tracking_error_m": 0.0234, "grasp_failure_rate": grasp_failure, "train_steps": steps}
    if held is not None:  # results written before the held-success metric have no such field
        row["held_success_rate"] = held
    return row


def _history(values, every=2048):
    # a validation point every `every` steps between rollout entries that carry only training success
    history = []
    for k, value in enumerate(values):
        history.append({"steps": k * every, "wall_s": 3.0 * k, "episodes": 6 * k, "success_rate": None if k == 0
                        else 0.5, "validation_success": value, "validation_tracking_error_m": 0.05})
        history.append({"steps": k * every + 256, "wall_s": 3.0 * k + 1, "episodes": 6 * k + 2, "success_rate": 0.25})
    return history


def _results():
    rows = [_row("push", "retarget", 0.72, None), _row("push", "scratch", 0.02, None, 4096),
            _row("push", "residual", 0.80, None, 4096),
            _row("pick_wedge", "retarget", 0.28, 0.86, held=0.12), _row("pick_wedge", "scratch", 0.06, 1.0, 4096),
            _row("pick_wedge", "residual", 0.98, 0.10, 4096)]
    speed = {"push": {"retarget_success": 0.5, "steps_to_target_measured_by": "validation_success",
                      "scratch_steps_to_retarget_success": None, "residual_steps_to_retarget_success": 0,
                      "scratch_train_wall_s": 20.0, "residual_train_wall_s": 21.0,
                      "scratch_history": _history([0.0, 0.1, 0.3]), "residual_history": _history([0.6, 0.7, 0.9])},
             "pick_wedge": {"retarget_success": 0.2, "steps_to_target_measured_by": "validation_success",
                            "scratch_steps_to_retarget_success": 4096, "residual_steps_to_retarget_success": 0,
                            "scratch_train_wall_s": 20.0, "residual_train_wall_s": 21.0,
                            "scratch_history": _history([0.0, 0.1, 0.2]),
                            "residual_history": _history([0.8, 0.9, 1.0])}}
    return {"results": rows, "speed": speed,
            "mean_success": {"retarget": 0.5, "scratch": 0.04, "residual": 0.89},
            "residual_minus_retarget_points": 39.0, "episodes": []}


def test_learning_curve_plots_the_validation_points_against_retargeting():
    speed = _results()["speed"]["push"]
    figure = robot_learning_curve("push", speed)
    axis = figure.axes[0]
    lines = {line.get_label(): line for line in axis.get_lines()}
    assert set(lines) == {"(b) scratch", "(c) base + residual", "(a) retarget"}
    # only the validated entries, not the rollouts in between
    assert list(lines["(b) scratch"].get_xdata()) == [0, 2048, 4096]
    assert np.allclose(lines["(b) scratch"].get_ydata(), [0, 10, 30])
    assert np.allclose(lines["(c) base + residual"].get_ydata(), [60, 70, 90])
    assert np.allclose(lines["(a) retarget"].get_ydata(), [50, 50])  # horizontal at (a)'s validation success
    assert axis.get_ylabel() == "validation success (%)"
    # without --curve-every the curve is the exploring policy's training success, labelled so
    plain = dict(speed, steps_to_target_measured_by="success_rate")
    axis = robot_learning_curve("push", plain).axes[0]
    scratch = next(line for line in axis.get_lines() if line.get_label() == "(b) scratch")
    assert list(scratch.get_xdata()) == [256, 2048, 2304, 4096, 4352] and "training success" in axis.get_ylabel()
    empty = dict(speed, scratch_history=[], residual_history=[])
    assert robot_learning_curve("push", empty) is None
    import matplotlib.pyplot as plt

    plt.close("all")


def test_robot_report_has_grasp_failures_and_a_learning_curve_per_task(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    page = robot_eval_report(tmp_path, command="physforge robot eval --curve-every 2048").read_text()
    parsed = _Tables()
    parsed.feed(page)
    assert parsed.images == ["success rate per method", "learning curve: pick_wedge", "learning curve: push"]
    main = parsed.tables[0]
    column = main[0].index("grasp failures (%)")
    cells = {(row[0], row[1]): row[column] for row in main[1:]}
    assert cells[("pick_wedge", "(a) retarget")] == "86" and cells[("pick_wedge", "(c) base + residual")] == "10"
    assert cells[("push", "(a) retarget")] == "–"  # push has no grasp
    held = main[0].index("success, held (%)")
    assert main[1 + 3][held] == "12" and main[1][held] == "–"  # an older row without the field shows –
    failures = next(t for t in parsed.tables if t[0][0] == "method" and "mean" in t[0])
    assert failures[0] == ["method", "pick_wedge", "mean"]  # only the tasks with a grasp
    assert {row[0]: row[1:] for row in failures[1:]}["(b) scratch"] == ["100", "100"]
    steps = next(t for t in parsed.tables if "(b) steps to it" in t[0])
    by_task = {row[0]: dict(zip(steps[0], row)) for row in steps[1:]}
    assert by_task["pick_wedge"]["(b) steps to it"] == "4096" and by_task["push"]["(b) steps to it"] == "–"
    assert by_task["push"]["(a)'s success (%)"] == "50"


def test_robot_report_without_curves_or_results_says_what_is_missing(tmp_path):
    results = _results()
    for entry in results["speed"].values():
        entry["scratch_history"] = entry["residual_history"] = []
    (tmp_path / "results.json").write_text(json.dumps(results))
    page = robot_eval_report(tmp_path, command="x").read_text()
    assert "Learning curves" not in page and "grasp failure rate per method" in page
    with pytest.raises(FileNotFoundError, match="results.json is missing"):
        robot_eval_report(tmp_path / "nothing")
