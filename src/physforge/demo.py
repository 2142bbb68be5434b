"""``make demo`` / ``physforge demo``: every capability end to end on tiny settings (about ten
minutes on 2 CPU cores), each step writing its own report.html, then one index report.

    from physforge.demo import DemoConfig, run_demo
    index = run_demo(DemoConfig(out="runs/demo"))      # -> runs/demo/report.html

Steps: an asset generated from one image and gated (``_asset_step``), a small physics dataset with questions, a
PhysEncoder trained and evaluated against majority/blind/untrained baselines, a dynamics
generator sampled before and after DPO with verifier scores, and a robot grounding run (direct
retargeting vs scratch PPO vs grounded residual PPO) on one task. The index is written last: a
folder with ``report.html`` at its top is a finished demo.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from physforge.configs import ConfigError, JsonConfig, check_int
from physforge.outputs import OutputExistsError, write_json


class DemoConfigError(ConfigError):
    """A DemoConfig field holds a bad value."""


@dataclass(frozen=True)
class DemoConfig(JsonConfig):
    """out: demo folder. scenes: dataset scenes (64 px, 4 frames each). workers: generation
    processes. reason_steps / blind_steps: PhysEncoder and blind-baseline optimiser steps.
    sft_steps / dpo_steps: dynamics generator steps before and during DPO; dpo_images: training
    images DPO samples pairs from. robot_task: push, pick_place, stack, open_drawer, pick_wedge or pick_tool;
    robot_episodes: evaluation episodes per method; robot_train_steps: PPO env steps for scratch
    and residual each. asset_category: the library category of the object whose rendered image
    the asset step turns into an asset. threads: torch
    intra-op threads while the demo runs (restored after). seed: every step's seed. overwrite:
    replace an existing demo folder."""

    error_type = DemoConfigError

    out: str = "runs/demo"
    scenes: int = 120
    workers: int = 2
    reason_steps: int = 200
    blind_steps: int = 80
    sft_steps: int = 200
    dpo_steps: int = 40
    dpo_images: int = 48
    robot_task: str = "push"
    robot_episodes: int = 10
    robot_train_steps: int = 2048
    # a cabinet: several articulated parts; the built-in model's asset from this view (the view of
    # examples/images/cabinet.png) passes the gate (held-out drawer chests still fail, README)
    asset_category: str = "cabinet"
    # measured on the shared 2-core machine: 20 PhysEncoder steps took 22 s wall / 5.5 s CPU with one
    # thread and 79 s / 22.6 s with two (the models are too small to gain from a second thread)
    threads: int = 1
    seed: int = 0
    overwrite: bool = False

    def __post_init__(self):
        check_int("scenes", self.scenes, 12, 100_000, DemoConfigError)
        check_int("workers", self.workers, 1, 256, DemoConfigError)
        for name in ("reason_steps", "sft_steps", "dpo_steps", "robot_episodes", "robot_train_steps"):
            check_int(name, getattr(self, name), 1, 10_000_000, DemoConfigError)
        check_int("blind_steps", self.blind_steps, 0, 10_000_000, DemoConfigError)
        check_int("dpo_images", self.dpo_images, 2, 100_000, DemoConfigError)
        check_int("threads", self.threads, 1, 1024, DemoConfigError)
        from physforge.robot.tasks import TASKS

        if self.robot_task not in TASKS:
            raise DemoConfigError("robot_task", f"expected one of {', '.join(TASKS)}, got {self.robot_task!r}")

    @classmethod
    def tiny(cls, out: str, **overrides) -> "DemoConfig":
        """Settings for a smoke test (a minute or two): every step runs, nothing is learnt."""
        values = dict(out=out, scenes=16, workers=1, reason_steps=2, blind_steps=2, sft_steps=4, dpo_steps=2,
                      dpo_images=4, robot_episodes=1, robot_train_steps=64)
        values.update(overrides)
        return cls(**values)


#: The dynamics generator of the demo: small enough to train in a minute on one core.
DYNAMICS_MODEL = {"image_size": 32, "channels": [16, 16], "encoder_channels": [8, 16], "encoder_dim": 16,
                  "hidden": 64, "components": 2, "horizon": 8, "dt": 0.1}


def _data_config(config: DemoConfig):
    from physforge.data import DataConfig

    # the families the dynamics generator handles (free objects), ramps held out as the OOD family
    return DataConfig(seed=config.seed, width=64, height=64, num_frames=4, fps=4.0, state_fps=20.0,
                      families={"projectiles": 1, "collisions": 1, "ramps": 1, "containment": 1},
                      heldout_families=("ramps",), plausibility_fraction=0.0, perturbation_trials=0,
                      shard_size=max(4, config.scenes // 8))


# -- steps: each returns {"summary": one line, "folder": relative, "image": optional (H, W, 3)} ------
def _asset_step(config: DemoConfig, out: Path, console) -> dict[str, Any]:
    """One rendered image of an unseen library object (``asset_category``, a seed no training
    split uses) turned into a sim-ready asset by the built-in image-to-asset VLM
    (`physforge asset from-image`), gated in simulation."""
    from physforge.assets.from_image import asset_from_image
    from physforge.assets.image_data import ObjectSpec, ViewRenderer, library_object, random_joint_state, scene_world
    from physforge.errors import PhysforgeError
    from physforge.report import asset_report
    from physforge.sim import write_png

    # the same view the example images use (examples/images/build_images.py): seed 77
    _, source = library_object(ObjectSpec("demo", config.asset_category, 0, 77))
    rng = np.random.default_rng(np.random.SeedSequence([77, 0, 1]))
    world, _ = scene_world(source, random_joint_state(source.annotation, rng), rng)
    renderer = ViewRenderer(256)
    try:
        image = renderer.render(world)
    finally:
        renderer.close()
    image_path = out / "asset_input.png"
    write_png(image, image_path)
    folder = out / "asset"
    with console.status(f"generating an asset from an image of a {config.asset_category} with the built-in VLM, "
                        "gating it in simulation, rendering its previews"):
        try:
            result = asset_from_image(image_path, folder, overwrite=True)
        except PhysforgeError as err:  # a generation that cannot be built is a result, not a crash
            return {"folder": "asset_input.png", "image": image, "passed": False,
                    "summary": f"image of a {config.asset_category}: no buildable asset generated ({err})"}
        asset_report(folder, command=_command(config))
    report, generation = result["report"], result["generation"]
    status = "passed the gate" if report["passed"] else f"FAILED the gate ({', '.join(report['failed'])})"
    from physforge.sim.preview import joint_sweep
    from physforge.world import load_world

    sweep, _ = joint_sweep(load_world(folder / "world.json"), frames_per_joint=4, size=256)
    picture = np.concatenate([image, sweep[len(sweep) // 4]], axis=1) if len(sweep) else image
    confidence = ", low confidence" if result["low_confidence"] else ""
    return {"folder": "asset", "image": picture, "passed": report["passed"],
            "summary": f"image of a {config.asset_category} -> generated {report.get('asset', 'asset')} "
                       f"({len(report.get('parts', []))} parts, {generation['tokens']} tokens{confidence}), {status}"}


def _data_step(config: DemoConfig, out: Path, console) -> dict[str, Any]:
    from physforge.data.generate import generate_dataset
    from physforge.report import dataset_report

    info = generate_dataset(_data_config(config), out / "data", config.scenes, workers=config.workers, progress=True)
    dataset_report(out / "data", command=_command(config))
    import pyarrow.parquet as pq

    from physforge.report.builders import decode_frames

    splits = ", ".join(f"{s} {v['scenes']}" for s, v in info["splits"].items())
    first = sorted((out / "data" / "scenes").glob("*/*.parquet"))[0]
    frames = decode_frames(pq.ParquetFile(first).read_row_group(0, columns=["frames"]).column(0)[0].as_py())
    return {"folder": "data", "image": np.concatenate(list(frames), axis=1),
            "summary": f"{info['num_scenes']} scenes ({splits}), {info['num_questions']} questions",
            "num_questions": info["num_questions"]}


def _reason_step(config: DemoConfig, out: Path, console) -> dict[str, Any]:
    from physforge.reason import TrainConfig, train_encoder
    from physforge.reason.config import EncoderConfig
    from physforge.reason.harness import EvalConfig, evaluate
    from physforge.report import reason_eval_report

    run = out / "reason" / "encoder"
    train_encoder(TrainConfig(data=str(out / "data"), out=str(run), steps=config.reason_steps, batch_size=16,
                              seed=config.seed, val_split="", model=EncoderConfig(image_size=64, clip_frames=4)),
                  progress=True)
    folder = out / "reason" / "eval"
    with console.status("evaluating the encoder and the majority, blind (trained here) and untrained baselines"):
        result = evaluate(EvalConfig(data=str(out / "data"), out=str(folder), model=str(run), max_questions=200,
                                     blind_steps=config.blind_steps, seed=config.seed))
        reason_eval_report(folder, command=_command(config))
    overall = {m["name"].split(":")[0]: m["grade"]["overall"]["accuracy"] for m in result["models"]}
    shown = ", ".join(f"{name} {100 * acc:.1f}%" for name, acc in overall.items())
    plots = sorted(folder.glob("accuracy_*.png"))
    return {"folder": "reason/eval", "image": plots[0] if plots else None,
            "summary": f"accuracy on held-out and OOD questions: {shown}",
            "accuracy": overall}


def _dynamics_step(config: DemoConfig, out: Path, console) -> dict[str, Any]:
    import imageio.v3 as iio
    import pyarrow.parquet as pq

    from physforge.dynamics.config import DPOConfig, TrainConfig
    from physforge.dynamics.recipe import train_dpo, train_sft
    from physforge.dynamics.sample import sample_scene
    from physforge.report import dpo_report
    from physforge.world.io import world_from_dict

    data = out / "data"
    sft = train_sft(TrainConfig(dataset=str(data), steps=config.sft_steps, batch_size=16, seed=config.seed,
                                threads=config.threads, model=DYNAMICS_MODEL), out / "dynamics" / "sft", progress=True)
    dpo = train_dpo(DPOConfig(checkpoint=str(sft), dataset=str(data), train="generator", seed=config.seed,
                              rounds=1, threads=config.threads,
                              steps=config.dpo_steps, batch_size=16, max_images=config.dpo_images,
                              pairs={"samples_per_image": 4, "pairs_per_image": 2, "margin": 0.0,
                                     "relative_margin": 0.0}),
                    out / "dynamics" / "dpo", progress=True)
    # a held-out scene: its first frame is the condition, its world the verifier's reference
    files = sorted((data / "scenes" / "test").glob("*.parquet")) or sorted((data / "scenes").glob("*/*.parquet"))
    row = pq.read_table(files[0], columns=["scene_id", "frames", "world"]).slice(0, 1).to_pylist()[0]
    image = iio.imread(row["frames"][0]["bytes"], extension=".png")[..., :3]
    world = world_from_dict(json.loads(row["world"]))
    means = {}
    samples = {}
    for name, checkpoint in (("before DPO (SFT)", sft), ("after DPO", dpo)):
        console.print(f"sampling {name} and scoring with the verifier")
        folder = out / "dynamics" / "samples" / ("before" if name.startswith("before") else "after")
        payload = sample_scene(checkpoint, image, world, folder, num=2, seed=config.seed, video_size=128, score=True)
        samples[name] = folder
        means[name] = sum(s["cost"] for s in payload["scores"]) / len(payload["scores"])
    dpo_report(out / "dynamics" / "dpo", command=_command(config), samples=samples)
    shown = ", ".join(f"{name} {cost:.3f}" for name, cost in means.items())
    return {"folder": "dynamics/dpo", "image": image,
            "summary": f"scene {row['scene_id']}: mean verifier cost (lower is more physical) {shown}", "cost": means}


def _robot_step(config: DemoConfig, out: Path, console) -> dict[str, Any]:
    from physforge.report import robot_eval_report
    from physforge.robot.experiment import CompareConfig, run_comparison

    status = console.status(f"{config.robot_task}: reconstructing, retargeting, PPO from scratch and residual PPO "
                            f"({config.robot_train_steps} steps each), {config.robot_episodes} episodes per method")
    with status:
        compare = CompareConfig(tasks=(config.robot_task,), episodes=config.robot_episodes,
                                train_steps=config.robot_train_steps, n_steps=min(256, config.robot_train_steps),
                                batch_size=min(64, config.robot_train_steps), seed=config.seed)
        result = run_comparison(compare, out / "robot")
    robot_eval_report(out / "robot", command=_command(config))
    rates = ", ".join(f"{m} {100 * r:.0f}%" for m, r in result["mean_success"].items())
    return {"folder": "robot",
            "summary": f"{config.robot_task}, {config.robot_episodes} episodes per method: success {rates}",
            "success": result["mean_success"]}


STEPS: tuple[tuple[str, Callable[[DemoConfig, Path, Any], dict]], ...] = (
    ("asset", _asset_step), ("data", _data_step), ("reason", _reason_step), ("dynamics", _dynamics_step),
    ("robot", _robot_step))


def _is_demo_folder(folder: Path) -> bool:
    try:
        # fields only a demo's config.json has (new DemoConfig fields must not orphan old demos)
        return {"scenes", "robot_task", "asset_category"} <= set(json.loads((folder / "config.json").read_text()))
    except (OSError, ValueError):
        return False


def _command(config: DemoConfig) -> str:
    """The `physforge demo` command line that reproduces ``config`` (non-default fields only)."""
    import shlex

    default = DemoConfig()
    words = ["physforge", "demo"]
    for key, value in config.to_dict().items():
        if value != getattr(default, key) or key == "out":
            flag = "--" + key.replace("_", "-")
            words += [flag] if value is True else [flag, str(value)]
    return shlex.join(words)


def run_demo(config: DemoConfig, *, console=None) -> Path:
    """Run every step into ``config.out`` and return the index report's path."""
    from rich.console import Console

    from physforge.report import index_report
    from physforge.threads import torch_threads

    console = console or Console(stderr=True)
    out = Path(config.out)
    if out.exists():
        if not config.overwrite:
            raise OutputExistsError(f"{out} already exists; choose another --out or pass --overwrite")
        if any(out.iterdir()) and not _is_demo_folder(out):
            raise OutputExistsError(f"{out} is not a demo folder (no demo config.json); --overwrite only replaces "
                                    "an earlier demo, choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_json(out / "config.json", config.to_dict())
    # every step at the demo's thread count (steps without a setting of their own included)
    with torch_threads(config.threads):
        done = []
        started = time.perf_counter()
        for k, (name, step) in enumerate(STEPS):
            console.rule(f"[bold]{k + 1}/{len(STEPS)} {name}")
            begin = time.perf_counter()
            result = step(config, out, console)
            result.update(name=name, seconds=time.perf_counter() - begin)
            console.print(f"[green]{name}[/green] ({result['seconds']:.0f} s): {result['summary']}")
            done.append(result)
        write_json(out / "summary.json", {"seconds": time.perf_counter() - started,
                                          "steps": [{k: v for k, v in s.items() if k != "image"} for s in done]})
    return index_report(out, done, command=_command(config))
