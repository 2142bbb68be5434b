"""``physforge reason ...``: train a PhysEncoder or a small VLM on a physforge dataset, and
evaluate any model (physforge checkpoint, local transformers folder, OpenAI-compatible endpoint)
against majority, blind and untrained baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from physforge.cli.common import cli_errors, console

app = typer.Typer(help="Physical reasoning models and the evaluation harness.", no_args_is_help=True)


@app.command("train")
def train_command(
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Dataset folder (physforge data generate); "
                                        "with --config, overrides the file's."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder: config.json, init/, checkpoint/, "
                                       "metrics.jsonl; with --config, overrides the file's."),
    steps: int = typer.Option(300, help="Optimiser steps."),
    batch_size: int = typer.Option(32, help="Questions per step."),
    lr: float = typer.Option(2e-3, help="AdamW learning rate."),
    aux_weight: float = typer.Option(1.0, help="Weight of the state/property/stability/contact losses (0: QA only)."),
    image_size: int = typer.Option(64, help="Frames are resized to this many px (multiple of 16)."),
    clip_frames: int = typer.Option(4, help="Frames per clip given to the encoder."),
    blind: bool = typer.Option(False, help="Train a text-only model (images ignored)."),
    track_weight: float = typer.Option(0.0, help="Weight of the object-tracking loss (0: off; > 0 adds the tracking "
                                       "heads, trained on the dataset's states projected through its camera)."),
    seed: int = typer.Option(0, help="Seed of initialisation and batch order."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TrainConfig JSON (replaces the other "
                                          "training options; --data and --out still override its folders)."),
    overwrite: bool = typer.Option(False, help="Replace a non-empty run folder."),
    save_every: int = typer.Option(0, help="Steps between resumable states in OUT/resume/ (0: none)."),
    resume: bool = typer.Option(False, help="Continue the run in OUT from its last saved state."),
) -> None:
    """Train a PhysEncoder (multi-task heads + question answering) on a dataset."""
    from physforge.reason.config import EncoderConfig, TrainConfig
    from physforge.reason.errors import ReasonConfigError
    from physforge.reason.recipe_encoder import train_encoder

    with cli_errors():
        if config is not None:
            cfg = TrainConfig.load(config, **{k: str(v) for k, v in (("data", data), ("out", out)) if v is not None})
        else:
            if data is None or out is None:
                raise ReasonConfigError("--data" if data is None else "--out",
                                        "required without --config (a TrainConfig JSON that names both)")
            cfg = TrainConfig(data=str(data), out=str(out), steps=steps, batch_size=batch_size, lr=lr,
                              aux_weight=aux_weight, seed=seed, save_every=save_every, track_weight=track_weight,
                              model=EncoderConfig(image_size=image_size, clip_frames=clip_frames, blind=blind))
        summary = train_encoder(cfg, overwrite=overwrite, resume=resume, progress=True)
        console.print(f"[green]wrote[/green] {cfg.out}: {summary['steps']} steps, "
                      f"{summary['train_images_per_second']} images/s, final loss {summary['final_loss']}")
        if "val" in summary:
            console.print(f"  validation accuracy {summary['val']['accuracy']} on {summary['val']['questions']} "
                          "questions")


@app.command("train-vlm")
def train_vlm_command(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder (physforge data generate)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, model/ (and init/ from scratch)."),
    base_model: Optional[Path] = typer.Option(None, "--base-model", help="Local transformers VLM to fine-tune with "
                                              "LoRA; default: a tiny Idefics3 trained from scratch."),
    steps: int = typer.Option(60, help="Optimiser steps."),
    batch_size: int = typer.Option(8, help="Examples per step."),
    lr: float = typer.Option(1e-3, help="Learning rate."),
    max_train_examples: int = typer.Option(2000, help="Cap on training examples."),
    seed: int = typer.Option(0, help="Seed."),
    overwrite: bool = typer.Option(False, help="Replace a non-empty run folder."),
) -> None:
    """Supervised fine-tuning (TRL SFTTrainer) of a small VLM on the conversational export."""
    from physforge.reason.config import VLMTrainConfig
    from physforge.reason.recipe_vlm import train_vlm

    with cli_errors():
        cfg = VLMTrainConfig(data=str(data), out=str(out), base_model=str(base_model) if base_model else None,
                             steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                             max_train_examples=max_train_examples)
        summary = train_vlm(cfg, overwrite=overwrite)
        console.print(f"[green]wrote[/green] {summary['model']}: {summary['steps']} steps, "
                      f"{summary['train_images_per_second']} images/s, final loss {summary['final_loss']}")


@app.command("eval")
def eval_command(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder to evaluate on."),
    out: Path = typer.Option(..., "--out", "-o", help="Result folder: result.json, report.md/.html, plots."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="PhysEncoder run/checkpoint folder or local "
                                        "transformers model folder."),
    endpoint_url: Optional[str] = typer.Option(None, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."),
    endpoint_model: Optional[str] = typer.Option(None, help="Model name to ask the endpoint for."),
    api_key_env: Optional[str] = typer.Option(None, help="Environment variable holding the endpoint's API key."),
    predictions: Optional[Path] = typer.Option(None, help="JSONL predictions file to score instead of a model."),
    split: Optional[List[str]] = typer.Option(None, "--split", help="Split to score (repeatable); default: all "
                                              "held-out and OOD splits."),
    max_questions: int = typer.Option(500, help="Per split, score a random sample of at most this many."),
    blind: Optional[Path] = typer.Option(None, help="Blind (text-only) PhysEncoder checkpoint; default: train one."),
    blind_steps: int = typer.Option(200, help="Steps for the blind baseline trained here (0: none)."),
    untrained: Optional[Path] = typer.Option(None, help="The model before physics training (default: found "
                                             "automatically where possible)."),
    timeout_s: float = typer.Option(60.0, help="Seconds per endpoint request."),
    seed: int = typer.Option(0, help="Sampling seed."),
    overwrite: bool = typer.Option(False, help="Replace a non-empty result folder."),
) -> None:
    """Score a model and the majority, blind and untrained baselines per question type x split x family."""
    from physforge.reason.harness import EvalConfig, evaluate
    from physforge.reason.report import table_rows

    with cli_errors():
        cfg = EvalConfig(data=str(data), out=str(out), model=model, endpoint_url=endpoint_url,
                         endpoint_model=endpoint_model, api_key_env=api_key_env,
                         predictions=str(predictions) if predictions else None, splits=tuple(split or ()),
                         max_questions=max_questions, blind=str(blind) if blind else None, blind_steps=blind_steps,
                         untrained=str(untrained) if untrained else None, timeout_s=timeout_s, seed=seed)
        result = evaluate(cfg, overwrite=overwrite)
        for s in result["splits"]:
            types, names, cells = table_rows(result, s)
            if "all" in types:
                shown = ", ".join(f"{n} {100 * cells[('all', n)]['accuracy']:.1f}%" for n in names if ("all", n) in cells)
                console.print(f"{s}: {shown}")
        console.print(f"[green]wrote[/green] {out}/result.json, report.md, report.html")
        from physforge.cli.reporting import write_report
        from physforge.report import reason_eval_report

        write_report(reason_eval_report, out)
        typer.echo(json.dumps({m["name"]: m["grade"]["overall"] for m in result["models"]}))
