"""``physforge dynamics sample``: one image of a known scene -> sampled motions, written as
``trajectory.json`` (positions per sample, frame, object) and one MP4 per sample rendered by
placing the predicted poses in the scene through ``physforge.sim`` ("the generated video").

This module imports torch at the top; ``physforge.dynamics`` loads it on first use only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from physforge.dynamics.data import example_from_world
from physforge.dynamics.model import load_generator
from physforge.dynamics.recipe import sample_motions


def sample_scene(checkpoint: str | Path, image: np.ndarray, world, out_dir: str | Path, *, num: int = 1,
                 seed: int = 0, video_size: int = 128, video: bool = True, score: bool = False) -> dict[str, Any]:
    """Sample ``num`` motions of ``world``'s free bodies from ``image``; writes into ``out_dir``:
    ``trajectory.json`` (positions (num, T + 1, n, 3) m, world frame, bodies, dt s, seed),
    ``sample{i}.mp4`` when ``video``, and the verifier's report per sample when ``score``
    (simulating the world for the reference). Returns trajectory.json's content."""
    from physforge.outputs import finite_or_null, write_json
    from physforge.sim import write_video
    from physforge.sim.poses import BodyPoseProbe

    model = load_generator(checkpoint)
    config = model.config
    example = example_from_world(world, image, max_objects=config.max_objects, image_size=config.image_size,
                                 horizon=config.horizon)
    n = len(example.bodies)
    motions = sample_motions(model, [example], num, torch.Generator().manual_seed(seed))[0][:, :, :n]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"bodies": list(example.bodies), "dt": config.dt, "horizon": config.horizon,
                               "seed": seed, "checkpoint": str(checkpoint), "units": "m, world frame, body origin",
                               "positions": motions.tolist()}
    if video:
        probe = BodyPoseProbe(world, example.bodies)
        payload["videos"] = []
        for i, motion in enumerate(motions):
            frames = probe.render(motion, width=video_size, height=video_size, kind="rgb")
            path = write_video(frames, out / f"sample{i}.mp4", fps=1.0 / config.dt)
            payload["videos"].append(path.name)
    if score:
        from physforge.dynamics.verify import Verifier

        verifier = Verifier(world, example.bodies, config.horizon, config.dt)
        payload["scores"] = [finite_or_null(verifier.score(m)) for m in motions]
    write_json(out / "trajectory.json", payload)
    return payload
