"""Smoke tests of every stage on a tiny generated dataset (64 px frames, a handful of scenes):
SFT, DPO on the generator (PhysEncoder untouched), DPO on the PhysEncoder alone (rest untouched),
the pairs dataset, evaluation, seeded reproducibility, and the CLI (export-scene, sample, score)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from physforge.cli.main import app
from physforge.dynamics.config import DPOConfig, EvalConfig, TrainConfig
from physforge.dynamics.errors import DynamicsConfigError, DynamicsDataError

MODEL = {"image_size": 32, "channels": [8, 8], "encoder_channels": [8, 8], "encoder_dim": 8, "hidden": 32,
         "components": 2, "horizon": 8, "dt": 0.1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from physforge.data import DataConfig, generate_dataset

    out = tmp_path_factory.mktemp("dyn") / "data"
    config = DataConfig(seed=3, width=64, height=64, families={"projectiles": 1, "containment": 1, "ramps": 1},
                        heldout_families=("ramps",), num_frames=2, fps=4.0, state_fps=20.0, predict_horizon=0.6,
                        plausibility_fraction=0.0, perturbation_trials=0, shard_size=16)
    generate_dataset(config, out, 20)
    return out


@pytest.fixture(scope="module")
def sft(dataset, tmp_path_factory):
    from physforge.dynamics.recipe import train_sft

    return train_sft(TrainConfig(dataset=str(dataset), steps=6, batch_size=4, eval_every=2, model=MODEL),
                     tmp_path_factory.mktemp("sft") / "run")


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_sft_writes_a_run_folder_and_is_seeded(dataset, sft, tmp_path):
    from physforge.dynamics.recipe import train_sft

    run = sft.parent
    assert json.loads((run / "config.json").read_text())["model"]["horizon"] == 8
    meta = json.loads((sft / "checkpoint.json").read_text())
    assert meta["step"] in (2, 4, 6) and meta["stage"] == "sft" and meta["model"]["components"] == 2
    assert np.isfinite(json.loads((run / "log.jsonl").read_text().splitlines()[-2])["nll_per_dim"])
    again = train_sft(TrainConfig(dataset=str(dataset), steps=6, batch_size=4, eval_every=2, model=MODEL),
                      tmp_path / "again")
    a, b = _weights(sft), _weights(again)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    with pytest.raises(DynamicsConfigError, match="already holds a finished run"):
        train_sft(TrainConfig(dataset=str(dataset), steps=1, model=MODEL), tmp_path / "again")


@pytest.mark.slow
def test_dpo_stages_train_only_their_part(dataset, sft, tmp_path):
    from physforge.dynamics.recipe import train_dpo

    common = dict(dataset=str(dataset), rounds=1, steps=4, batch_size=4, max_images=8, lr=1e-2,
                  pairs={"samples_per_image": 4, "pairs_per_image": 2, "margin": 0.0, "relative_margin": 0.0})
    generator = train_dpo(DPOConfig(checkpoint=str(sft), train="generator", **common), tmp_path / "gen")
    encoder = train_dpo(DPOConfig(checkpoint=str(generator), train="encoder", **common), tmp_path / "enc")
    w0, w1, w2 = _weights(sft), _weights(generator), _weights(encoder)

    def changed(a, b, prefix_encoder):
        return [k for k in a if k.startswith("encoder.") == prefix_encoder and not np.array_equal(a[k], b[k])]

    assert changed(w0, w1, False) and not changed(w0, w1, True)  # stage 2: generator moves, encoder frozen
    assert changed(w1, w2, True) and not changed(w1, w2, False)  # stage 3: encoder alone moves
    assert json.loads((encoder / "checkpoint.json").read_text())["stage"] == "dpo_encoder"
    pairs = pq.read_table(tmp_path / "gen" / "pairs-round0.parquet")
    assert {"scene_id", "image", "chosen", "rejected", "chosen_cost", "rejected_cost", "shape"} <= set(pairs.column_names)
    assert pairs.num_rows > 0
    assert all(c < r for c, r in zip(pairs.column("chosen_cost").to_pylist(), pairs.column("rejected_cost").to_pylist()))
    shape = pairs.column("shape")[0].as_py()
    assert shape == [9, 4, 3] and len(pairs.column("chosen")[0].as_py()) == 9 * 4 * 3
    log = [json.loads(line) for line in (tmp_path / "gen" / "log.jsonl").read_text().splitlines()]
    assert log[0]["pairs"] == pairs.num_rows


def test_margin_drops_ties(dataset, sft, tmp_path):
    from physforge.dynamics.recipe import train_dpo

    with pytest.raises(DynamicsDataError, match="every candidate pair was a tie"):
        train_dpo(DPOConfig(checkpoint=str(sft), dataset=str(dataset), rounds=1, steps=1, max_images=2,
                            pairs={"samples_per_image": 2, "pairs_per_image": 1, "margin": 1e5}), tmp_path / "tie")


def test_evaluate_is_seeded_with_baselines_in_the_same_table(dataset, sft, tmp_path):
    from physforge.dynamics.data import load_examples
    from physforge.dynamics.recipe import evaluate

    config = EvalConfig(dataset=str(dataset), samples=2, max_scenes=3, splits=("train", "test_ood_family"), iou=True)
    a = evaluate({"sft": sft}, config, tmp_path / "eval")
    b = evaluate({"sft": sft}, config)
    assert a["models"] == b["models"]
    assert list(a["models"]) == ["baseline_static", "baseline_ballistic", "baseline_physics", "sft"]
    row = a["models"]["sft"]["test_ood_family"]
    assert row["l2"] > 0 and 0 <= row["iou"] <= 1 and row["gravity_residual"] >= 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["scenes"]["train"] == 3
    # oracle: "nothing moves" is off by exactly how far the simulator moves each object
    examples = load_examples(dataset, "train", horizon=MODEL["horizon"], dt=MODEL["dt"], max_objects=4,
                             image_size=MODEL["image_size"], limit=3)
    moved = [np.linalg.norm(e.target[1:, :len(e.bodies)] - e.target[:1, :len(e.bodies)], axis=-1).mean()
             for e in examples]
    assert a["models"]["baseline_static"]["train"]["l2"] == pytest.approx(np.mean(moved), rel=1e-6)  # float32 start
    static = a["models"]["baseline_static"]["train"]
    assert static["penetration"] == pytest.approx(0.0, abs=0.011) and static["energy_created"] == 0.0


def test_recipes_restore_the_callers_torch_threads(dataset, sft, tmp_path):
    import torch

    from physforge.dynamics.recipe import evaluate, train_dpo, train_sft

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_sft(TrainConfig(dataset=str(dataset), steps=1, batch_size=4, eval_every=1, threads=1, model=MODEL),
                  tmp_path / "t")
        assert torch.get_num_threads() == 2
        evaluate({"sft": sft}, EvalConfig(dataset=str(dataset), samples=1, max_scenes=1, splits=("train",),
                                          iou=False, threads=1))
        assert torch.get_num_threads() == 2
        with pytest.raises(DynamicsDataError, match="tie"):  # restored when the run fails as well
            train_dpo(DPOConfig(checkpoint=str(sft), dataset=str(dataset), rounds=1, steps=1, max_images=2, threads=1,
                                pairs={"samples_per_image": 2, "pairs_per_image": 1, "margin": 1e5}), tmp_path / "d")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_sft_keeps_the_step_with_the_best_val_l2(sft):
    records = [json.loads(line) for line in (sft.parent / "log.jsonl").read_text().splitlines()]
    scored = [r for r in records if "val_l2" in r and "step" in r]
    assert len(scored) == 3 and all(np.isfinite(r["val_mean_l2"]) and r["val_l2"] > 0 for r in scored)
    best = min(scored, key=lambda r: r["val_l2"])
    assert records[-1]["kept_step"] == best["step"]
    assert json.loads((sft / "checkpoint.json").read_text())["step"] == best["step"]


def test_cli_export_sample_score(dataset, sft, tmp_path):
    import pyarrow.parquet as pq

    scene_id = pq.read_table(sorted((dataset / "scenes" / "train").glob("*.parquet"))[0]).column("scene_id")[0].as_py()
    runner = CliRunner()
    result = runner.invoke(app, ["dynamics", "export-scene", str(dataset), scene_id, "--out", str(tmp_path / "scene")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["dynamics", "sample", str(tmp_path / "scene" / "image.png"), "--out",
                                 str(tmp_path / "sample"), "--checkpoint", str(sft), "--world",
                                 str(tmp_path / "scene" / "world.json"), "--samples", "2", "--video-size", "32"])
    assert result.exit_code == 0, result.output
    trajectory = json.loads((tmp_path / "sample" / "trajectory.json").read_text())
    assert np.asarray(trajectory["positions"]).shape[:2] == (2, 9)
    assert (tmp_path / "sample" / "sample1.mp4").stat().st_size > 0
    result = runner.invoke(app, ["dynamics", "score", str(tmp_path / "sample" / "trajectory.json"), "--world",
                                 str(tmp_path / "scene" / "world.json"), "--no-iou"])
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)["reports"]
    assert len(reports) == 2 and all(r["l2"] >= 0 and "violations" in r and r["iou"] is None for r in reports)
    assert all(r["cost"] is None and r["terms"]["iou"] is None for r in reports)  # the cost weighs IoU
    result = runner.invoke(app, ["dynamics", "score", str(tmp_path / "sample" / "trajectory.json"), "--world",
                                 str(tmp_path / "scene" / "world.json"), "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "s.json").read_text())["reports"]
    assert all(0 <= r["iou"] <= 1 and r["cost"] >= 0 for r in saved)
    result = runner.invoke(app, ["dynamics", "score", str(tmp_path / "scene" / "world.json"), "--world",
                                 str(tmp_path / "scene" / "world.json")])
    assert result.exit_code == 2 and "missing keys" in result.output
