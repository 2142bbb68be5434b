"""``physforge dynamics ...``: train an image-to-dynamics generator, sample motions (with MP4s),
run DPO with the simulator as judge, score motions with the physics verifier, and evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from physforge.cli.common import cli_errors, console

app = typer.Typer(help="Image-to-dynamics generation with simulator-verified preference optimisation.",
                  no_args_is_help=True)


def _model_options(image_size: int, hidden: int, components: int, horizon: int, dt: float) -> dict:
    return {"image_size": image_size, "hidden": hidden, "components": components, "horizon": horizon, "dt": dt}


@app.command("train")
def train_command(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Dataset folder (physforge data generate)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, log.jsonl, checkpoint/."),
    steps: int = typer.Option(1500, help="Optimiser steps."),
    batch_size: int = typer.Option(32, help="Scenes per step."),
    lr: float = typer.Option(2e-3, help="AdamW peak learning rate (one-cycle)."),
    seed: int = typer.Option(0, help="Seed of initialisation and batch order."),
    encoder_checkpoint: Optional[Path] = typer.Option(None, help="Start the PhysEncoder from a reason checkpoint."),
    image_size: int = typer.Option(64, help="Conditioning frame size, px (multiple of 16)."),
    hidden: int = typer.Option(256, help="Width of the fused MLP."),
    components: int = typer.Option(4, help="Mixture components."),
    horizon: int = typer.Option(16, help="Predicted steps."),
    dt: float = typer.Option(0.1, help="Seconds between predicted steps."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TrainConfig JSON (replaces the options)."),
) -> None:
    """Stage 1: supervised training of the generator and its PhysEncoder."""
    from physforge.dynamics.config import TrainConfig
    from physforge.dynamics.recipe import train_sft

    with cli_errors():
        cfg = TrainConfig.load(config) if config is not None else TrainConfig(
            dataset=str(dataset), seed=seed, steps=steps, batch_size=batch_size, lr=lr,
            encoder_checkpoint=str(encoder_checkpoint or ""),
            model=_model_options(image_size, hidden, components, horizon, dt))
        folder = train_sft(cfg, out, progress=True)
        console.print(f"[green]wrote[/green] {folder}")


@app.command("dpo")
def dpo_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Starting and reference generator checkpoint."),
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Dataset folder (its train split gives the images)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, pairs-round*.parquet, checkpoint/."),
    train: str = typer.Option("generator", help="generator (stage 2) or encoder (stage 3: PhysEncoder alone)."),
    beta: float = typer.Option(0.01, help="DPO temperature."),
    rounds: int = typer.Option(2, help="On-policy rounds (sample pairs, then train)."),
    steps: int = typer.Option(150, help="Optimiser steps per round."),
    lr: float = typer.Option(1e-4, help="Adam learning rate."),
    samples_per_image: int = typer.Option(8, help="K motions sampled per image."),
    pairs_per_image: int = typer.Option(2, help="At most this many pairs per image (best vs worst inwards)."),
    margin: float = typer.Option(0.01, help="Minimum verifier cost gap of a pair; closer pairs are ties, dropped."),
    max_images: int = typer.Option(400, help="Training images per round."),
    seed: int = typer.Option(0, help="Seed of sampling and batch order."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="DPOConfig JSON (replaces the options)."),
) -> None:
    """Stage 2 or 3: DPO with verifier-ranked pairs against the frozen starting checkpoint."""
    from physforge.dynamics.config import DPOConfig
    from physforge.dynamics.recipe import train_dpo

    with cli_errors():
        cfg = DPOConfig.load(config) if config is not None else DPOConfig(
            checkpoint=str(checkpoint), dataset=str(dataset), train=train, seed=seed, rounds=rounds, steps=steps,
            beta=beta, lr=lr, max_images=max_images,
            pairs={"samples_per_image": samples_per_image, "pairs_per_image": pairs_per_image, "margin": margin})
        folder = train_dpo(cfg, out, progress=True)
        console.print(f"[green]wrote[/green] {folder}")
        from physforge.cli.reporting import write_report
        from physforge.report import dpo_report

        write_report(dpo_report, out)


@app.command("sample")
def sample_command(
    image: Path = typer.Argument(..., help="Conditioning image (PNG/JPEG) of the scene."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for trajectory.json and sample*.mp4."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Generator checkpoint folder."),
    world: Path = typer.Option(..., "--world", help="The known scene (World JSON); its free bodies are the objects."),
    samples: int = typer.Option(1, help="Motions to sample."),
    seed: int = typer.Option(0, help="Sampling seed."),
    video_size: int = typer.Option(128, help="MP4 frame size, px."),
    score: bool = typer.Option(False, help="Also score each sample against the simulator."),
) -> None:
    """Sample motions from one image; write the trajectories and an MP4 per sample."""
    from physforge.images import load_image
    from physforge.world import load_world

    with cli_errors():
        picture = load_image(image)  # before torch is imported: a bad image fails in a blink
        from physforge.dynamics.sample import sample_scene

        payload = sample_scene(checkpoint, picture, load_world(world), out, num=samples, seed=seed,
                               video_size=video_size, score=score)
        console.print(f"[green]wrote[/green] {out}/trajectory.json and {len(payload.get('videos', []))} MP4(s)")


@app.command("score")
def score_command(
    trajectory: Path = typer.Argument(..., help="trajectory.json from `sample` (or the same keys: bodies, dt, "
                                                "horizon, positions (samples, T + 1, n, 3) m)."),
    world: Path = typer.Option(..., "--world", help="The known scene (World JSON)."),
    iou: Optional[bool] = typer.Option(None, "--iou/--no-iou", help="Render masks for IoU (default: when the cost "
                                       "weighs it, w_iou > 0; without IoU the cost is null)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="ScoreConfig JSON."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the reports here (JSON)."),
) -> None:
    """Score motions of a known scene against the simulator and analytic laws (prints JSON)."""
    import numpy as np

    from physforge.dynamics.config import ScoreConfig
    from physforge.dynamics.errors import DynamicsDataError
    from physforge.dynamics.verify import Verifier
    from physforge.outputs import finite_or_null, write_json
    from physforge.world import load_world

    with cli_errors():
        try:
            data = json.loads(trajectory.read_text())
        except json.JSONDecodeError as err:
            raise DynamicsDataError(f"{trajectory}: not valid JSON ({err.msg})") from None
        missing = [k for k in ("bodies", "dt", "horizon", "positions") if k not in data]
        if missing:
            raise DynamicsDataError(f"{trajectory}: missing keys {missing}; write it with `physforge dynamics sample`")
        cfg = ScoreConfig.load(config) if config is not None else ScoreConfig()
        verifier = Verifier(load_world(world), tuple(data["bodies"]), int(data["horizon"]), float(data["dt"]), cfg)
        positions = np.asarray(data["positions"], dtype=float)
        if positions.ndim == 3:
            positions = positions[None]
        reports = [finite_or_null(verifier.score(p, iou=iou)) for p in positions]  # NaN (IoU not rendered) -> null
        text = json.dumps({"reports": reports}, indent=1)
        if out is not None:
            write_json(out, {"reports": reports})
        typer.echo(text)


@app.command("export-scene")
def export_scene_command(
    dataset: Path = typer.Argument(..., help="Dataset folder (physforge data generate)."),
    scene_id: str = typer.Argument(..., help="Scene id (e.g. s1-00000003)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for image.png and world.json."),
) -> None:
    """Write a dataset scene's first frame and World JSON (the inputs of `sample` and `score`)."""
    import pyarrow.parquet as pq

    from physforge.dynamics.errors import DynamicsDataError
    from physforge.outputs import write_json

    with cli_errors():
        for path in sorted((dataset / "scenes").glob("*/*.parquet")):
            table = pq.read_table(path, columns=["scene_id", "frames", "world"])
            ids = table.column("scene_id").to_pylist()
            if scene_id in ids:
                row = table.slice(ids.index(scene_id), 1).to_pylist()[0]
                out.mkdir(parents=True, exist_ok=True)
                (out / "image.png").write_bytes(row["frames"][0]["bytes"])
                write_json(out / "world.json", json.loads(row["world"]))
                console.print(f"[green]wrote[/green] {out}/image.png, {out}/world.json")
                return
        raise DynamicsDataError(f"{dataset}: no scene {scene_id!r}")


@app.command("eval")
def eval_command(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Dataset folder."),
    checkpoints: List[str] = typer.Option(..., "--checkpoint", help="NAME=FOLDER, repeatable."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for config.json and metrics.json."),
    samples: int = typer.Option(8, help="Motions per image."),
    max_scenes: int = typer.Option(200, help="Scenes per split."),
    iou: bool = typer.Option(True, help="Render masks for IoU."),
    seed: int = typer.Option(0, help="Sampling seed (shared by every model)."),
) -> None:
    """Evaluate checkpoints on held-out and OOD splits with the verifier."""
    from physforge.dynamics.config import EvalConfig
    from physforge.dynamics.recipe import evaluate

    with cli_errors():
        named = {}
        for item in checkpoints:
            if "=" not in item:
                raise ValueError(f"--checkpoint expects NAME=FOLDER, got {item!r}")
            name, folder = item.split("=", 1)
            named[name] = folder
        results = evaluate(named, EvalConfig(dataset=str(dataset), seed=seed, samples=samples,
                                             max_scenes=max_scenes, iou=iou), out)
        typer.echo(json.dumps(results["models"], indent=1))


@app.command("experiment")
def experiment_command(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Dataset folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for seed*/ runs, config.json, results.json."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    train_config: Optional[Path] = typer.Option(None, help="TrainConfig JSON (its dataset is replaced)."),
    dpo_config: Optional[Path] = typer.Option(None, help="DPOConfig JSON (checkpoint/train/seed are set per run)."),
    eval_config: Optional[Path] = typer.Option(None, help="EvalConfig JSON."),
) -> None:
    """SFT -> +DPO(generator) -> +DPO(encoder) over seeds, evaluated on held-out and OOD splits."""
    from dataclasses import replace

    from physforge.dynamics.config import DPOConfig, EvalConfig, TrainConfig
    from physforge.dynamics.experiment import run_experiment, table

    with cli_errors():
        train = replace(TrainConfig.load(train_config), dataset=str(dataset)) if train_config else \
            TrainConfig(dataset=str(dataset))
        dpo = replace(DPOConfig.load(dpo_config), dataset=str(dataset)) if dpo_config else \
            DPOConfig(checkpoint="-", dataset=str(dataset))
        evaluation = replace(EvalConfig.load(eval_config), dataset=str(dataset)) if eval_config else \
            EvalConfig(dataset=str(dataset))
        summary = run_experiment(train, dpo, evaluation, [int(s) for s in seeds.split(",")], out, progress=True)
        typer.echo(table(summary))
