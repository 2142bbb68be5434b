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
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# -- training -----------------------------------------------------------------------------------

TRAIN = dict(steps=8, batch_size=4, save_every=2, seed=0, max_val_questions=4)


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
    kill_at = int(rng.choice([3, 5, 7]))  # a saved state's next step
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
    assert not (out / "checkpoint").exists() and not (out / "summary.json").exists(), f"kill_at={kill_at}"
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
