"""``physforge data ...``: generate, validate, export and grade synthetic physics datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from physforge.cli.common import cli_errors, console

app = typer.Typer(help="Synthetic physics supervision: scenes, questions, datasets.", no_args_is_help=True)


@app.command("config")
def config_command(out: Path = typer.Argument(..., help="Where to write the default config JSON."),
                   seed: int = typer.Option(0, help="Run seed.")) -> None:
    """Write the default generation config (every family, its parameter ranges) to edit."""
    from physforge.data.config import DataConfig
    from physforge.outputs import write_json

    with cli_errors():
        write_json(out, DataConfig(seed=seed).to_dict())
        console.print(f"[green]wrote[/green] {out}")


@app.command("generate")
def generate_command(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config JSON (default: built-in defaults)."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder; rerun the same command to resume."),
    num_scenes: int = typer.Option(..., "--num-scenes", "-n", help="Number of scenes."),
    workers: int = typer.Option(1, "--workers", "-w", help="Local worker processes."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Run on Ray ('auto' or host:port)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with ETA."),
) -> None:
    """Generate (or resume) a dataset: sharded Parquet, meta/info.json and a dataset card."""
    from physforge.data.config import DataConfig
    from physforge.data.generate import generate_dataset

    with cli_errors():
        cfg = DataConfig.load(config) if config is not None else DataConfig()
        info = generate_dataset(cfg, out, num_scenes, workers=workers, ray_address=ray_address, progress=progress)
        console.print(f"[green]wrote[/green] {out}: {info['num_scenes']} scenes, {info['num_questions']} questions, "
                      f"{info['rejected_unstable']} unstable scenes rejected, {info['near_threshold_dropped']} "
                      f"near-threshold questions dropped; content hash {info['content_hash'][:16]}")
        from physforge.cli.reporting import write_report
        from physforge.report import dataset_report

        write_report(dataset_report, out)


@app.command("validate")
def validate_command(dataset: Path = typer.Argument(..., help="Dataset folder.")) -> None:
    """Check a dataset folder: schema, counts, answers vs options, frame references, hash."""
    from physforge.data.validate import validate_dataset

    with cli_errors():
        info = validate_dataset(dataset)
        console.print(f"[green]valid[/green] {dataset}: {info['num_scenes']} scenes, {info['num_questions']} questions")


@app.command("export")
def export_command(dataset: Path = typer.Argument(..., help="Dataset folder."),
                   fmt: str = typer.Option(..., "--format", "-f", help="trl, llava or webdataset."),
                   out: Optional[Path] = typer.Option(None, "--out", "-o", help="Default: DATASET/export/FORMAT.")) -> None:
    """Export for training: TRL conversational Parquet, LLaVA JSON or WebDataset tar shards."""
    from physforge.data.export import export_dataset

    with cli_errors():
        console.print(f"[green]wrote[/green] {export_dataset(dataset, fmt, out)}")


@app.command("grade")
def grade_command(predictions: Path = typer.Argument(..., help="JSONL: {\"question_id\", \"prediction\"} per line."),
                  dataset: Path = typer.Option(..., "--dataset", "-d", help="Dataset folder."),
                  out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the report as JSON.")) -> None:
    """Score predictions per question type x split x family (per option and per question)."""
    import pyarrow.parquet as pq

    from physforge.data.grade import grade, read_predictions

    with cli_errors():
        preds = read_predictions(predictions)
        files = sorted((dataset / "questions").glob("*/*.parquet"))
        if not files:
            raise FileNotFoundError(f"{dataset}: no questions/*/*.parquet; is it a dataset folder?")

        def questions():
            for path in files:
                yield from pq.read_table(path).to_pylist()

        report = grade(preds, questions())
        text = json.dumps(report, indent=1)
        if out is not None:
            out.write_text(text + "\n")
        typer.echo(text)
