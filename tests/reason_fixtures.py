"""A tiny dataset for the reason tests, generated once per test session (64 px, 4 frames, 12
scenes: every split the harness scores has questions) and shared by every test_reason_* module."""

from __future__ import annotations

from pathlib import Path

import pytest

from physforge.data import DataConfig

CONFIG = DataConfig(seed=1, width=64, height=64, num_frames=4, fps=4.0, state_fps=20.0, shard_size=8,
                    plausibility_fraction=0.25, ood_params_fraction=0.15, ood_compositional_fraction=0.15)
NUM_SCENES = 12
_CACHE: dict[str, Path] = {}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    from physforge.data.generate import generate_dataset

    if "folder" not in _CACHE:
        folder = tmp_path_factory.getbasetemp() / "reason_tiny_dataset"
        if not (folder / "meta" / "info.json").is_file():
            generate_dataset(CONFIG, folder, NUM_SCENES, workers=1)
        _CACHE["folder"] = folder
    return _CACHE["folder"]
