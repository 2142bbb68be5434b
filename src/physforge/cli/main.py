"""Entry point: ``physforge [--version] COMMAND ...``. Each subcommand builds a typed config and
calls the Python API; physforge's own errors become one red line and exit code 2."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

import physforge
from physforge.cli.asset import asset_app
from physforge.cli.common import cli_errors, console
from physforge.cli.data import app as data_app
from physforge.cli.dynamics import app as dynamics_app
from physforge.cli.reason import app as reason_app
from physforge.cli.robot import app as robot_app
from physforge.cli.view import demo_command, view_command

app = typer.Typer(name="physforge", help="Physics-grounded data, assets and models on one world description.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
sim_app = typer.Typer(help="Simulate and render worlds.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")
app.add_typer(asset_app, name="asset")
app.add_typer(data_app, name="data")
app.add_typer(reason_app, name="reason")
app.add_typer(dynamics_app, name="dynamics")
app.add_typer(robot_app, name="robot")
app.command("view")(view_command)
app.command("demo")(demo_command)


def _version(value: bool) -> None:
    if value:
        from physforge.sim import MUJOCO_VERSION

        typer.echo(f"physforge {physforge.__version__} (mujoco {MUJOCO_VERSION}, python "
                   f"{sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit."),
         verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@sim_app.command("run")
def sim_run(
    world_file: Path = typer.Argument(..., help="World JSON file (see examples/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist unless --overwrite)."),
    duration: float = typer.Option(3.0, help="Simulated time, s."),
    fps: float = typer.Option(30.0, help="Recorded and rendered frames per second."),
    width: int = typer.Option(320, help="Video width in pixels; 0 for no video."),
    height: int = typer.Option(240, help="Video height in pixels; 0 for no video."),
    camera: Optional[str] = typer.Option(None, help="Camera name in the world; default: its first or an automatic one."),
    gif: bool = typer.Option(False, help="Write video.gif instead of video.mp4."),
    shadows: bool = typer.Option(False, help="Render shadows (slower in software GL)."),
    overwrite: bool = typer.Option(False, help="Replace the output folder if it exists."),
) -> None:
    """Simulate WORLD_FILE; write video, trajectory.parquet, events.json, world.xml (MJCF) and config.json."""
    from physforge.sim.runner import SimRunConfig, run_to_folder
    from physforge.world import load_world

    with cli_errors():
        config = SimRunConfig(duration=duration, fps=fps, width=width, height=height, camera=camera,
                              video_format="gif" if gif else "mp4", shadows=shadows)
        world = load_world(world_file)
        with console.status(f"simulating {world.name} for {duration:g} s"):
            result = run_to_folder(world, out, config, overwrite=overwrite)
        counts: dict[str, int] = {}
        for event in result.rollout.events:
            counts[event["type"]] = counts.get(event["type"], 0) + 1
        console.print(f"[green]wrote[/green] {result.out_dir}: {result.rollout.trajectory.num_frames} frames, "
                      f"events {counts or 'none'}")
        for kind, path in result.files.items():
            console.print(f"  {kind:<10} {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
