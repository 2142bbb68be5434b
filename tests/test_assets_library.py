"""Every library category passes the gate; the CLI builds, checks, counts tokens and fails cleanly."""

import json

import pytest
import trimesh
from typer.testing import CliRunner

from physforge.assets.build import build_asset
from physforge.assets.gate import run_gate
from physforge.assets.library import CATEGORIES, generate, object_rng
from physforge.cli import app
from physforge.world.mesh_io import write_obj

runner = CliRunner()


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_library_objects_pass_the_gate(category):
    for index in range(2):
        world = build_asset(generate(category, object_rng(100, index), seed=100)).world
        report = run_gate(world)
        assert report["passed"], (category, index, {k: report["checks"][k] for k in report["failed"]})


def test_unknown_category_and_bad_rng_are_refused():
    with pytest.raises(ValueError, match="unknown category 'sofa'; choose one of"):
        generate("sofa", object_rng(0, 0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        generate("chair", 3)


def test_cli_library_check_and_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSFORGE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "lib"
    result = runner.invoke(app, ["asset", "library", "--num", "2", "--out", str(out), "--seed", "5"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass_rate"] == 1.0 and len(summary["objects"]) == 2
    first = out / summary["objects"][0]["name"]
    result = runner.invoke(app, ["asset", "check", str(first)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["passed"] is True
    result = runner.invoke(app, ["asset", "tokens", str(first), "--vocab-size", "512"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["parts"] and report["ratio_baseline_over_ours"] > 1


def test_cli_builds_a_single_mesh_and_refuses_bad_input_without_output(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSFORGE_CACHE_DIR", str(tmp_path / "cache"))
    mesh = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    write_obj(tmp_path / "cube.obj", mesh.vertices, mesh.faces)
    result = runner.invoke(app, ["asset", "build", str(tmp_path / "cube.obj"), "--out", str(tmp_path / "cube"),
                                 "--collision", "hull", "--material", "wood"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cube" / "model.urdf").is_file()
    # a URDF with an entity: one clear line, exit code 2, nothing written
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "m.urdf").write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><robot name="&e;"/>')
    result = runner.invoke(app, ["asset", "build", str(tmp_path / "bad" / "m.urdf"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "DTD or entities" in result.output
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))
    result = runner.invoke(app, ["asset", "library", "--category", "sofa", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "unknown category" in result.output
