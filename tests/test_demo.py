"""`physforge demo` on tiny settings: every step runs and writes its report, the index links
them, the dataset passes the independent validator, and the numbers in the summary are the
ones in each step's own result files."""

from __future__ import annotations

import json

import pytest

from physforge.demo import STEPS, DemoConfig, DemoConfigError, run_demo


@pytest.mark.slow
def test_tiny_demo_runs_every_step_and_links_their_reports(tmp_path):
    from physforge.data.validate import validate_dataset
    from physforge.viewer import open_folder

    out = tmp_path / "demo"
    index = run_demo(DemoConfig.tiny(str(out)))
    assert index == out / "report.html"
    summary = json.loads((out / "summary.json").read_text())
    assert [s["name"] for s in summary["steps"]] == [name for name, _ in STEPS]
    text = index.read_text()
    for step in summary["steps"]:
        report = out / step["folder"] / "report.html"
        assert report.is_file() and f"href='{step['folder']}/report.html'" in text
        assert "physforge demo --out" in report.read_text()
    steps = {s["name"]: s for s in summary["steps"]}
    gate = json.loads((out / "asset" / "report.json").read_text())
    assert steps["asset"]["passed"] == gate["passed"]
    info = validate_dataset(out / "data")
    assert steps["data"]["num_questions"] == info["num_questions"]
    result = json.loads((out / "reason" / "eval" / "result.json").read_text())
    assert {m["name"].split(":")[0] for m in result["models"]} == {"physencoder", "majority", "blind", "untrained"}
    for name, folder in (("before DPO (SFT)", "before"), ("after DPO", "after")):
        scores = json.loads((out / "dynamics" / "samples" / folder / "trajectory.json").read_text())["scores"]
        assert steps["dynamics"]["cost"][name] == pytest.approx(sum(s["cost"] for s in scores) / len(scores))
    robot = json.loads((out / "robot" / "results.json").read_text())
    assert steps["robot"]["success"] == robot["mean_success"]
    assert open_folder(out).summary()["sub_reports"] == [
        "asset/report.html", "data/report.html", "dynamics/dpo/report.html", "reason/eval/report.html",
        "robot/report.html"]


def test_demo_refuses_to_replace_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a demo folder"):
        run_demo(DemoConfig.tiny(str(tmp_path / "mine"), overwrite=True))
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    with pytest.raises(DemoConfigError, match="robot_task"):
        DemoConfig(robot_task="juggle")
    with pytest.raises(DemoConfigError, match="scenes"):
        DemoConfig(scenes=3)
