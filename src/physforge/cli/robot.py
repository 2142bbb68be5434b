"""``physforge robot ...``: reconstruct a task's scene from its demonstration, learn a residual
(or from-scratch) policy with PPO, and evaluate direct retargeting vs scratch vs residual."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from physforge.cli.common import cli_errors, console

app = typer.Typer(help="Robot learning from a physical world model (PhysWorld).", no_args_is_help=True)


@app.command("reconstruct")
def reconstruct_command(
    task: str = typer.Argument(..., help="push, pick_place, stack, open_drawer, pick_wedge or pick_tool."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist unless --overwrite)."),
    overwrite: bool = typer.Option(False, help="Replace the output folder if it exists."),
) -> None:
    """Render TASK's demonstration, reconstruct the first RGB-D frame and track the object."""
    from physforge.robot.tasks import reconstruct_to_folder

    with cli_errors():
        errors = reconstruct_to_folder(task, out, overwrite=overwrite)
        console.print(f"[green]wrote[/green] {out}")
        typer.echo(json.dumps(errors, indent=1))


@app.command("learn")
def learn_command(
    task: str = typer.Argument(..., help="push, pick_place, stack, open_drawer, pick_wedge or pick_tool."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, policy.zip, history.json."),
    method: str = typer.Option("residual", help="residual (on the grounded base) or scratch."),
    steps: int = typer.Option(8192, help="PPO environment steps."),
    n_steps: int = typer.Option(128, help="PPO rollout steps per environment."),
    batch_size: int = typer.Option(64, help="PPO minibatch size."),
    eval_every: int = typer.Option(0, help="Validate the deterministic policy every this many steps (0: never)."),
    seed: int = typer.Option(0, help="Training seed."),
    threads: int = typer.Option(1, help="torch CPU threads (0: torch's default); a small MLP is fastest on one."),
) -> None:
    """Train a PPO policy for TASK and save its checkpoint."""
    from physforge.robot.learn import LearnConfig, train

    with cli_errors():
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"{out} is not empty; choose another run folder")
        config = LearnConfig(task=task, method=method, total_steps=steps, n_steps=n_steps, batch_size=batch_size,
                             seed=seed, eval_every=eval_every, threads=threads)
        result = train(config, out)
        last = result.history[-1] if result.history else {}
        console.print(f"[green]wrote[/green] {out}/policy.zip: {result.env_steps} steps in {result.wall_s:.0f} s, "
                      f"training success rate {last.get('success_rate')}")


@app.command("eval")
def eval_command(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: results.md/json, runs/, trajectories/, dataset/."),
    tasks: List[str] = typer.Option(["push", "pick_place", "stack", "open_drawer", "pick_wedge", "pick_tool"], "--task",
                                    help="Tasks (repeat)."),
    episodes: int = typer.Option(50, help="Seeded evaluation episodes per task and method."),
    train_steps: int = typer.Option(8192, help="PPO steps for scratch and residual each."),
    policy: Optional[Path] = typer.Option(None, help="Evaluate only this checkpoint (with --method) instead."),
    method: str = typer.Option("residual", help="With --policy: residual or scratch."),
    no_video: bool = typer.Option(False, help="Dataset without MP4 videos."),
    curve_every: int = typer.Option(0, help="Learning curves: validate (b) and (c) every this many steps (0: none)."),
    seed: int = typer.Option(0, help="Training seed."),
) -> None:
    """Compare (a) direct retargeting, (b) PPO from scratch and (c) base + residual PPO per task."""
    from physforge.cli.reporting import write_report
    from physforge.report import robot_eval_report
    from physforge.robot.experiment import CompareConfig, run_comparison
    from physforge.robot.learn import evaluate_checkpoint

    with cli_errors():
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"{out} is not empty; choose another output folder")
        if policy is not None:
            # an existing --out is empty here (checked above), so it may be replaced
            typer.echo(evaluate_checkpoint(policy, tuple(tasks), method, episodes, out, overwrite=out.exists())["table"])
            write_report(robot_eval_report, out)
            return
        config = CompareConfig(tasks=tuple(tasks), episodes=episodes, train_steps=train_steps, seed=seed,
                               video=not no_video, curve_every=curve_every)
        result = run_comparison(config, out)
        typer.echo(result["table"])
        typer.echo(f"mean success: {json.dumps(result['mean_success'])}; residual - retarget: "
                   f"{result['residual_minus_retarget_points']:+.1f} points")
        typer.echo(f"mean success with the object held mid-motion: {json.dumps(result['mean_held_success'])}; "
                   f"residual - retarget: {result['held_residual_minus_retarget_points']:+.1f} points")
        write_report(robot_eval_report, out)
