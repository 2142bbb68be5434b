"""``physforge sim run``: simulate a world, render it, and write everything to one folder."""

from __future__ import annotations

import dataclasses
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

import physforge
from physforge.outputs import OutputExistsError, staged_directory, write_json
from physforge.sim.export import export_mjcf
from physforge.sim.render import RenderConfig, SceneRenderer, default_camera, write_video
from physforge.sim.simulator import Rollout, Simulator
from physforge.world import Mesh, World, resolve_inside, save_world


@dataclass(frozen=True)
class SimRunConfig:
    """duration: simulated seconds. fps: recorded and rendered frames per second.
    width, height: video size in pixels (0 disables rendering). camera: a camera name of the
    world; None uses its first camera or an automatic one. video_format: mp4 or gif."""

    duration: float = 3.0
    fps: float = 30.0
    width: int = 320
    height: int = 240
    camera: str | None = None
    video_format: str = "mp4"
    shadows: bool = False

    def __post_init__(self):
        if not (self.duration > 0 and math.isfinite(self.duration)) or self.duration > 3600:
            raise ValueError(f"duration must be in (0, 3600] s, got {self.duration}")
        if not (0 < self.fps <= 1000):
            raise ValueError(f"fps must be in (0, 1000], got {self.fps}")
        if self.video_format not in ("mp4", "gif"):
            raise ValueError(f"video_format must be mp4 or gif, got {self.video_format!r}")
        if (self.width == 0) != (self.height == 0):
            raise ValueError("width and height must both be 0 (no video) or both positive")


@dataclass(frozen=True)
class SimRunResult:
    out_dir: Path
    rollout: Rollout
    files: dict[str, Path]


def run_to_folder(world: World, out_dir: str | Path, config: SimRunConfig = SimRunConfig(), *,
                  overwrite: bool = False) -> SimRunResult:
    """Simulate ``world`` and write video, trajectory (Parquet), events (JSON), MJCF, the world
    JSON and config.json into ``out_dir``, atomically: a failed run leaves no folder behind."""
    if Path(out_dir).exists() and not overwrite:  # say so before minutes of simulation, not after
        raise OutputExistsError(f"{out_dir} already exists; choose another folder or pass --overwrite")
    sim = Simulator(world)
    frames: list[np.ndarray] = []
    renderer = None
    if config.width:
        renderer = SceneRenderer(sim.compiled, RenderConfig(config.width, config.height, shadows=config.shadows))
        camera = config.camera or (world.cameras[0].name if world.cameras else default_camera(world))

        def on_frame(simulator: Simulator, frame: int) -> None:
            frames.append(renderer.rgb(simulator.data, camera))
    else:
        on_frame = None
    try:
        rollout = sim.run(config.duration, config.fps, on_frame=on_frame)
    finally:
        if renderer is not None:
            renderer.close()
    with staged_directory(out_dir, overwrite=overwrite) as staging:
        files = {}
        if frames:
            files["video"] = write_video(frames, staging / f"video.{config.video_format}", fps=config.fps)
        files["trajectory"] = rollout.trajectory.write_parquet(staging / "trajectory.parquet")
        files["events"] = write_json(staging / "events.json", {"events": rollout.events})
        files["mjcf"] = export_mjcf(world, staging / "world.xml")
        files["world"] = save_world(world, staging / "world.json")
        _copy_mesh_files(world, staging)
        files["config"] = write_json(staging / "config.json", {
            "config": dataclasses.asdict(config),
            "versions": {"physforge": physforge.__version__, "mujoco": mujoco.__version__},
        })
    out_dir = Path(out_dir)
    return SimRunResult(out_dir=out_dir, rollout=rollout,
                        files={k: out_dir / v.relative_to(staging) for k, v in files.items()})


def _copy_mesh_files(world: World, staging: Path) -> None:
    """Mesh files the world refers to, copied so the saved world.json loads from the folder."""
    for _, geom in world.iter_geoms():
        if isinstance(geom.shape, Mesh) and geom.shape.path is not None and world.asset_dir is not None:
            source = resolve_inside(world.asset_dir, geom.shape.path)
            target = resolve_inside(staging, geom.shape.path, must_exist=False)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
