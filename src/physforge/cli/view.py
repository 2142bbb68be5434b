"""``physforge view DIR`` (the browser viewer) and ``physforge demo`` (every capability end to end)."""

from __future__ import annotations

from pathlib import Path

import typer

from physforge.cli.common import cli_errors, console


def view_command(
    folder: Path = typer.Argument(..., help="A dataset, asset or run folder (anything with a report.html)."),
    port: int = typer.Option(8765, help="Port on 127.0.0.1 (0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser; just print the URL."),
) -> None:
    """Open a local web viewer on 127.0.0.1 for a dataset, an asset or a run; Ctrl-C stops it."""
    from physforge.viewer import ViewConfig, serve

    with cli_errors():
        config = ViewConfig(folder=str(folder), port=port, open_browser=not no_browser)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder; pass a dataset, asset or run folder")
        console.print(f"opening {folder} (an asset's previews are rendered first)")
        serve(config, on_ready=lambda url: console.print(f"[green]viewing[/green] {folder} at {url}  (Ctrl-C to stop)"))


def demo_command(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Demo folder."),
    scenes: int = typer.Option(120, help="Dataset scenes."),
    workers: int = typer.Option(2, help="Dataset generation processes."),
    robot_task: str = typer.Option("push", help="push, pick_place, stack, open_drawer, pick_wedge or pick_tool."),
    robot_episodes: int = typer.Option(10, help="Evaluation episodes per method."),
    robot_train_steps: int = typer.Option(2048, help="PPO environment steps for scratch and residual each."),
    reason_steps: int = typer.Option(200, help="PhysEncoder optimiser steps."),
    blind_steps: int = typer.Option(80, help="Blind (text-only) baseline optimiser steps."),
    sft_steps: int = typer.Option(200, help="Dynamics generator steps before DPO."),
    dpo_steps: int = typer.Option(40, help="DPO optimiser steps."),
    dpo_images: int = typer.Option(48, help="Training images DPO samples pairs from."),
    asset_category: str = typer.Option("cabinet", help="Library object of the asset step."),
    threads: int = typer.Option(1, help="torch threads (1 is fastest for these small models on a busy machine)."),
    seed: int = typer.Option(0, help="Seed of every step."),
    overwrite: bool = typer.Option(False, help="Replace an earlier demo folder."),
) -> None:
    """Every capability end to end on tiny settings (~10 min on 2 cores), one HTML report per step and an index."""
    from physforge.demo import DemoConfig, run_demo

    with cli_errors():
        config = DemoConfig(out=str(out), scenes=scenes, workers=workers, robot_task=robot_task,
                            robot_episodes=robot_episodes, robot_train_steps=robot_train_steps, seed=seed,
                            reason_steps=reason_steps, blind_steps=blind_steps, sft_steps=sft_steps,
                            dpo_steps=dpo_steps, dpo_images=dpo_images, asset_category=asset_category, threads=threads,
                            overwrite=overwrite)
        index = run_demo(config, console=console)
        console.rule("[bold green]done")
        console.print(f"report: {index.resolve()}")
        console.print(f"viewer: physforge view {out}")
