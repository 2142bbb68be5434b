"""The command line: the example worlds run end to end; bad input is one clear line, no output."""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from physforge.cli import app
from physforge.sim import Trajectory

runner = CliRunner()


@pytest.mark.parametrize("example", ["ramp", "collision", "pendulum"])
def test_sim_run_writes_clip_trajectory_events_and_mjcf(tmp_path, example):
    out = tmp_path / example
    result = runner.invoke(app, ["sim", "run", f"examples/{example}.json", "--out", str(out), "--duration", "1.0",
                                 "--width", "64", "--height", "48"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"video.mp4", "trajectory.parquet", "events.json", "world.xml", "world.json", "config.json"} <= names
    trajectory = Trajectory.read_parquet(out / "trajectory.parquet")
    assert trajectory.num_frames == 31
    assert pq.read_table(out / "trajectory.parquet").num_rows == 31 * len(trajectory.body_names)
    events = json.loads((out / "events.json").read_text())["events"]
    assert all({"type", "time", "bodies"} <= set(e) for e in events)
    assert not list(tmp_path.glob(".*"))  # no staging leftovers


def test_trajectory_parquet_round_trip(tmp_path):
    from physforge.sim import Simulator
    from physforge.world import load_world

    trajectory = Simulator(load_world("examples/collision.json")).run(0.5, 20).trajectory
    again = Trajectory.read_parquet(trajectory.write_parquet(tmp_path / "t.parquet"))
    assert again.body_names == trajectory.body_names
    for name in ("time", "position", "quaternion", "linear_velocity", "angular_velocity", "kinetic_energy",
                 "potential_energy"):
        assert (getattr(again, name) == getattr(trajectory, name)).all(), name


@pytest.mark.parametrize("content, message", [
    ("{broken", "not valid JSON"),
    ('{"bodies": [{"name": "a", "geoms": [{"shape": {"type": "sphere", "radius": -1}}]}]}',
     r"bodies\[0\]\.geoms\[0\]\.shape\.radius"),
    ('{"bodies": [{"name": "a", "geoms": [{"shape": {"type": "mesh", "path": "../../etc/passwd"}}]}]}',
     "not allowed"),
])
def test_bad_world_is_one_line_and_leaves_no_output(tmp_path, content, message):
    world = tmp_path / "bad.json"
    world.write_text(content)
    out = tmp_path / "out"
    result = runner.invoke(app, ["sim", "run", str(world), "--out", str(out)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "error:" in result.output
    import re

    assert re.search(message, result.output.replace("\n", "")), result.output
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_unstable_world_leaves_no_output(tmp_path):
    world = tmp_path / "overlap.json"
    world.write_text(json.dumps({"bodies": [
        {"name": "a", "geoms": [{"shape": {"type": "box", "half_extents": [0.2, 0.2, 0.2]}}],
         "pose": {"position": [0, 0, 0.2]}},
        {"name": "b", "geoms": [{"shape": {"type": "box", "half_extents": [0.2, 0.2, 0.2]}}],
         "pose": {"position": [0.05, 0, 0.25]}}]}))
    result = runner.invoke(app, ["sim", "run", str(world), "--out", str(tmp_path / "out"), "--width", "0",
                                 "--height", "0"])
    assert result.exit_code == 2 and "unstable" in result.output
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["sim", "run", "examples/ramp.json", "--out", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_console_script_prints_version():
    completed = subprocess.run([sys.executable, "-m", "physforge.cli.main", "--version"], capture_output=True,
                               text=True, check=True)
    assert completed.stdout.startswith("physforge 0.1.0 (mujoco ")
