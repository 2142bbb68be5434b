"""Crashes and resumption: a training run and an asset batch killed with SIGKILL at a random
point in a real subprocess, then resumed, end with the bytes of an uninterrupted run; a full
disk during a write leaves the previous state intact; a scene that really blows up in
simulation is reported and never written as data. (Data generation killed with SIGKILL:
tests/test_data_scale.py.)"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from reason_fixtures import tiny_dataset  # noqa: F401  (session fixture, shared with the reason tests)

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = dict(os.environ, PYTHONPATH=SRC)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _kill_when(process: subprocess.Popen, ready, timeout: float = 240.0) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, "the run finished before it could be killed"
        assert time.time() < deadline, "the run never reached the kill point"
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# -- training -----------------------------------------------------------------------------------

TRAIN = dict(steps=16, batch_size=4, save_every=2, seed=0, max_val_questions=4)  # steps to spare after the kill


def _train_files(out: Path) -> dict[str, str]:
    return {name: _sha(out / name) for name in ("init/model.safetensors", "checkpoint/model.safetensors",
                                                "metrics.jsonl")}


@pytest.mark.slow
def test_training_killed_at_a_random_step_resumes_to_identical_weights(tiny_dataset, tmp_path):
    pytest.importorskip("torch")
    from physforge.reason.config import EncoderConfig, TrainConfig
    from physforge.reason.recipe_encoder import train_encoder

    model = EncoderConfig(image_size=32, clip_frames=2)
    reference = train_encoder(TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "ref"), model=model, **TRAIN))
    rng = np.random.default_rng(int(time.time()))  # a different kill point each run; printed on failure
    kill_at = int(rng.choice([3, 5]))  # a saved state's next step, leaving steps to do after the kill
    out = tmp_path / "killed"
    config = TrainConfig(data=str(tiny_dataset), out=str(out), model=model, **TRAIN)
    (tmp_path / "train.json").write_text(json.dumps(config.to_dict()))
    command = [sys.executable, "-c", "from physforge.cli import main; main()", "reason", "train", "--data",
               str(tiny_dataset), "--out", str(out), "--config", str(tmp_path / "train.json")]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)

    def reached() -> bool:
        try:
            return json.loads((out / "resume" / "state.json").read_text())["next_step"] >= kill_at
        except (OSError, ValueError, KeyError):
            return False

    _kill_when(process, reached)
    # The poll may lag the run by a step or two on a busy machine; the state is still mid-run.
    assert (out / "resume" / "state.json").exists() or list(out.glob(".resume.old-*")), f"kill_at={kill_at}"
    assert not (out / "summary.json").exists(), f"kill_at={kill_at}"
    resumed = train_encoder(config, resume=True)
    assert _train_files(out) == _train_files(tmp_path / "ref"), f"kill_at={kill_at}"
    assert resumed["final_loss"] == reference["final_loss"]
    assert not (out / "resume").exists() and not list(out.glob(".resume*"))
    lines = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == sorted(set(lines)), "a logged step appears twice"


def test_resume_refuses_another_config(tiny_dataset, tmp_path):
    pytest.importorskip("torch")
    from physforge.reason.config import TrainConfig
    from physforge.reason.errors import ReasonConfigError
    from physforge.reason.recipe_encoder import train_encoder

    train_encoder(TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), steps=1, batch_size=4,
                              max_val_questions=4))
    with pytest.raises(ReasonConfigError, match="holds a run with another config"):
        train_encoder(TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), steps=2, batch_size=4,
                                  max_val_questions=4), resume=True)


# -- asset batch ----------------------------------------------------------------------------------

BATCH = dict(category="box_with_lid", num=4, seed=0, collision="auto")


@pytest.mark.slow
def test_asset_batch_killed_at_a_random_point_resumes_to_identical_files(tmp_path):
    pytest.importorskip("coacd")
    from physforge.assets.batch import LibraryBatchConfig, build_library

    config = LibraryBatchConfig(**BATCH)
    reference = build_library(config, tmp_path / "ref", cache_dir=tmp_path / "cache")
    # after the first object, mid-object or between objects; well inside the ~1 s the three
    # remaining objects take with a warm decomposition cache, so the run is always still going
    delay = float(np.random.default_rng(7).uniform(0.0, 0.2))
    out = tmp_path / "killed"
    script = ("import sys; from physforge.assets.batch import LibraryBatchConfig, build_library; "
              f"build_library(LibraryBatchConfig(**{BATCH!r}), sys.argv[1], cache_dir=sys.argv[2])")
    process = subprocess.Popen([sys.executable, "-c", script, str(out), str(tmp_path / "cache")], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / config.names()[0][1] / "report.json"
    _kill_when(process, lambda: first.is_file() and time.sleep(delay) is None)
    assert not (out / "summary.json").exists(), f"delay={delay}"
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    for folder in visible:  # whatever is visible under a final name is a finished asset
        assert folder.name == "batch.json" or (folder / "report.json").is_file(), folder
    resumed = build_library(config, out, cache_dir=tmp_path / "cache")
    assert resumed["content_hash"] == reference["content_hash"], f"delay={delay}"
    assert [r["sha256"] for r in resumed["objects"]] == [r["sha256"] for r in reference["objects"]]
    assert sorted(p.name for p in out.iterdir()) == sorted(["batch.json", "summary.json",
                                                           *(name for _, name in config.names())])


def test_asset_batch_refuses_another_config(tmp_path):
    from physforge.assets.batch import BatchConfigError, LibraryBatchConfig, _check_or_write_config

    _check_or_write_config(tmp_path / "b", LibraryBatchConfig(**BATCH))
    with pytest.raises(BatchConfigError, match="holds a batch with another config"):
        _check_or_write_config(tmp_path / "b", LibraryBatchConfig(**{**BATCH, "num": 3}))
    with pytest.raises(BatchConfigError, match="num: expected an integer"):
        LibraryBatchConfig(num=0)


# -- full disk ----------------------------------------------------------------------------------------

def _disk_full_after(fraction: float):
    """A writer that puts part of the bytes on disk and then fails as a full disk does."""
    def write(path, data: bytes):
        with open(path, "wb") as handle:
            handle.write(data[: int(len(data) * fraction)])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return write


def test_disk_full_during_write_json_keeps_the_previous_file(tmp_path, monkeypatch):
    from physforge.outputs import write_json

    path = write_json(tmp_path / "summary.json", {"version": 1})
    before = path.read_bytes()
    full = _disk_full_after(0.5)
    monkeypatch.setattr(Path, "write_text", lambda self, text, *a, **k: full(self, text.encode()))
    with pytest.raises(OSError, match="No space left"):
        write_json(path, {"version": 2, "padding": "x" * 1000})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_disk_full_during_checkpoint_save_keeps_the_previous_weights(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    from physforge.checkpoints import load_weights, save_checkpoint

    model = torch.nn.Linear(3, 2)
    save_checkpoint(model, tmp_path / "ckpt", {"kind": "test", "step": 1})
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    full = _disk_full_after(0.3)

    def save_file(tensors, filename, metadata=None):
        full(filename, safetensors.torch.save(tensors, metadata=metadata))

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(model, tmp_path / "ckpt", {"kind": "test", "step": 2})
    fresh = torch.nn.Linear(3, 2)
    load_weights(fresh, tmp_path / "ckpt")
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())["step"] == 1
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["checkpoint.json", "model.safetensors"]


DATA = dict(seed=3, width=32, height=32, num_frames=2, fps=4.0, state_fps=20.0, shard_size=1,
            plausibility_fraction=0.0)


@pytest.mark.slow
def test_disk_full_during_data_generation_then_rerun_gives_the_uninterrupted_dataset(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from physforge.data import DataConfig
    from physforge.data.generate import generate_dataset

    config = DataConfig(**DATA)
    reference = generate_dataset(config, tmp_path / "ref", 2, workers=1)
    real_write = pq.write_table

    def write_table(table, where, **kwargs):
        if "shard-00001" in str(where):  # the disk fills up while shard 1 is being written
            buffer = __import__("io").BytesIO()
            real_write(table, buffer, **kwargs)
            _disk_full_after(0.5)(where, buffer.getvalue())
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_table)
    out = tmp_path / "full"
    with pytest.raises(OSError, match="No space left"):
        generate_dataset(config, out, 2, workers=1)
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["shard-00000.json"]
    assert not (out / "meta" / "info.json").exists()
    for path in out.rglob("*.parquet"):
        if not path.name.startswith("."):
            assert path.read_bytes()[-4:] == b"PAR1", path
    monkeypatch.setattr(pq, "write_table", real_write)  # space freed
    resumed = generate_dataset(config, out, 2, workers=1)
    assert resumed["content_hash"] == reference["content_hash"]
    assert not [p for p in out.rglob(".*tmp*")]


# -- simulation blow-ups ----------------------------------------------------------------------------

def test_exploding_scenes_are_reported_and_never_written(tmp_path, monkeypatch, caplog):
    """Every free body of each scene starts at the same point: MuJoCo would fling them apart with
    energy from nothing. The simulator's checks must catch it and the scene must not be data."""
    import dataclasses
    import logging

    from physforge.data import DataConfig
    from physforge.data.families import FAMILIES
    from physforge.data.generate import generate_dataset

    def exploding(build):
        def wrapped(rng, params, variant):
            spec = build(rng, params, variant)
            free = [b for b in spec.world.bodies if b.joint.type == "free" and b.parent is None]
            if len(free) < 2:  # one object cannot overlap another: drop it into the floor instead
                target = dataclasses.replace(free[0].pose, position=(0.0, 0.0, -0.5))
            else:
                target = free[0].pose
            bodies = tuple(dataclasses.replace(b, pose=target) if b in free else b for b in spec.world.bodies)
            return dataclasses.replace(spec, world=dataclasses.replace(spec.world, bodies=bodies))
        return wrapped

    for module in FAMILIES.values():
        monkeypatch.setattr(module, "build", exploding(module.build))
    with caplog.at_level(logging.WARNING, logger="physforge.data.generate"):
        info = generate_dataset(DataConfig(**DATA), tmp_path / "ds", 3, workers=1)
    assert info["rejected_unstable"] == 3 and info["num_scenes"] == 0
    assert not list((tmp_path / "ds" / "scenes").glob("*/*.parquet"))
    assert caplog.text.count("rejected, not written: unstable:") == 3
    assert "overlap by" in caplog.text or "energy grew" in caplog.text
