"""Generation at scale: resuming after SIGKILL of a real CLI run, and Ray giving the pool's bytes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from physforge.data import DataConfig
from physforge.data.generate import generate_dataset

CONFIG = DataConfig(seed=9, width=32, height=32, num_frames=4, fps=4.0, state_fps=20.0, shard_size=1,
                    plausibility_fraction=0.3)
NUM_SCENES = 6


def _data_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for kind in ("scenes", "questions") for p in sorted((folder / kind).glob("*/*.parquet"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ref") / "ds"
    return folder, generate_dataset(CONFIG, folder, NUM_SCENES, workers=1)


def _command(config_path: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "from physforge.cli import main; main()", "data", "generate", "--config", str(config_path), "--out", str(out),
            "--num-scenes", str(NUM_SCENES), "--workers", "1", "--no-progress"]


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_result(reference, tmp_path):
    folder, info = reference
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(CONFIG.to_dict()))
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    process = subprocess.Popen(_command(config_path, out), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "shards").glob("*.json"))) < 2:
        assert process.poll() is None, "the generate command stopped before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and anything it started
    process.wait()
    done = len(list((out / "shards").glob("*.json")))
    assert 2 <= done < NUM_SCENES, "the run must be killed part way"
    assert not (out / "meta" / "info.json").exists()
    # whatever is visible under a final name is complete Parquet
    for path in (out / "scenes").glob("*/*.parquet"):
        assert path.read_bytes()[-4:] == b"PAR1"
    result = subprocess.run(_command(config_path, out), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    resumed = json.loads((out / "meta" / "info.json").read_text())
    assert resumed["content_hash"] == info["content_hash"]
    assert _data_files(out) == _data_files(folder)
    assert not [p for p in out.rglob(".*tmp*")]


@pytest.mark.slow
def test_ray_local_cluster_gives_the_same_dataset_as_the_pool(reference, tmp_path):
    import ray
    folder, info = reference
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        result = generate_dataset(CONFIG, out, NUM_SCENES, use_ray=True)
    finally:
        ray.shutdown()
    assert result["content_hash"] == info["content_hash"]
    assert _data_files(out) == _data_files(folder)
