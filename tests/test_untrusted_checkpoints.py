"""Checkpoints are weights, never code: a pickle planted where weights belong is refused and
never executed, and no loader in the source un-pickles untrusted files."""

from __future__ import annotations

import base64
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "physforge"


class _Payload:
    """Un-pickling this creates ``marker``: proof that the pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _evil_pickle(marker: Path) -> bytes:
    return pickle.dumps({"weight": _Payload(marker)})


def _evil_torch_file(marker: Path) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"weight": _Payload(marker)}, buffer)
    return buffer.getvalue()


def test_no_unsafe_deserialisation_in_the_source():
    """Every loader in src/ must be safetensors, torch.load(weights_only=True) or JSON/Parquet."""
    unsafe = re.compile(r"pickle\.loads?\(|cloudpickle\.loads?\(|dill\.|joblib\.load|allow_pickle\s*=\s*True|"
                        r"PPO\.load\(|\.load_from_zip_file\((?![^)]*load_data=False)|marshal\.loads|"
                        r"yaml\.load\((?![^)]*SafeLoader)|yaml\.unsafe_load|(?<![.\w])eval\(|(?<![.\w])exec\(")
    torch_load = re.compile(r"torch\.load\((?P<args>[^)]*)\)")
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.split("#", 1)[0]
            if unsafe.search(stripped):
                found.append(f"{path.relative_to(SOURCE)}:{number}: {line.strip()}")
        for match in torch_load.finditer(text):
            if "weights_only=True" not in match.group("args"):
                found.append(f"{path.relative_to(SOURCE)}: {match.group(0)}")
    assert not found, "unsafe deserialisation:\n" + "\n".join(found)


@pytest.mark.parametrize("make", [_evil_pickle, _evil_torch_file])
def test_checkpoint_loader_refuses_a_pickle_in_place_of_safetensors(tmp_path, make):
    pytest.importorskip("safetensors")
    import torch

    from physforge.checkpoints import CheckpointError, WEIGHTS_FILE, load_weights

    marker = tmp_path / "pwned"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / WEIGHTS_FILE).write_bytes(make(marker))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: cannot read the weights"):
        load_weights(torch.nn.Linear(2, 2), folder)
    assert not marker.exists()


def test_torch_weights_only_refuses_the_same_file(tmp_path):
    """The oracle for the test above: the file really is a working exploit for plain unpickling."""
    import torch

    marker = tmp_path / "pwned"
    data = _evil_torch_file(marker)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(io.BytesIO(data), weights_only=True)
    assert not marker.exists()
    torch.load(io.BytesIO(data), weights_only=False)  # what an unsafe loader would do
    assert marker.exists()


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory):
    pytest.importorskip("stable_baselines3")
    from physforge.robot.learn import LearnConfig, build_model, make_env
    from dataclasses import asdict

    config = LearnConfig(task="push", method="scratch", perception=False, n_envs=1, n_steps=64, batch_size=32)
    run = tmp_path_factory.mktemp("policy")
    model = build_model(config, make_env(config.task, "scratch", perception=False))
    model.save(run / "policy.zip")
    (run / "config.json").write_text(json.dumps(asdict(config)))
    return run, model


def _rewrite_zip(source: Path, target: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            new.writestr(item, replace.get(item.filename, old.read(item.filename)))


def test_policy_zip_with_pickled_data_loads_weights_without_running_it(policy_run, tmp_path):
    import torch

    from physforge.robot.learn import load_policy

    run, model = policy_run
    marker = tmp_path / "pwned"
    data = json.loads(zipfile.ZipFile(run / "policy.zip").read("data"))
    # SB3 stores some objects cloudpickled under ":serialized:"; PPO.load would un-pickle them.
    data["observation_space"] = {":type:": "x", ":serialized:": base64.b64encode(_evil_pickle(marker)).decode()}
    evil = run / "evil.zip"
    _rewrite_zip(run / "policy.zip", evil, {"data": json.dumps(data).encode()})
    loaded = load_policy(evil)
    assert not marker.exists()
    for (name, mine), theirs in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values()):
        assert torch.equal(mine, theirs), name


def test_policy_zip_with_a_pickle_in_its_weights_is_refused(policy_run, tmp_path):
    from physforge.errors import InputFileError
    from physforge.robot.learn import load_policy

    run, _ = policy_run
    marker = tmp_path / "pwned"
    evil = run / "evil_weights.zip"
    _rewrite_zip(run / "policy.zip", evil, {"policy.pth": _evil_torch_file(marker)})
    with pytest.raises(InputFileError, match=r"evil_weights\.zip: weights refused or unreadable"):
        load_policy(evil)
    assert not marker.exists()
    (run / "not_a.zip").write_bytes(b"PK but not really")
    with pytest.raises(InputFileError, match="not a zip file"):
        load_policy(run / "not_a.zip")
