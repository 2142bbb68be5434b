"""The a/b/c comparison of the issue, per task: (a) direct retargeting, (b) PPO from scratch and
(c) PPO residual on the grounded base, with the same step budget for (b) and (c), evaluated on
the same seeded episodes with randomised physics. Writes results.json, results.md, the run
folders (checkpoints), executable joint-space trajectories and a LeRobot-style dataset of the
successful (c) rollouts."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from physforge.robot.learn import (VALIDATION_SEED, EvalResult, LearnConfig, evaluate, steps_to_reach, summary_json,
                                   train, write_table)
from physforge.robot.tasks import TASKS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompareConfig:
    """tasks: subset of TASKS. episodes: evaluation episodes per task and method (seeds
    eval_seed, eval_seed + 1, ...). train_steps: PPO environment steps for (b) and (c) each.
    n_steps / batch_size: PPO rollout length per env and minibatch. seed: training seed.
    curve_every / curve_episodes: the learning curves' validation evaluation (LearnConfig's
    eval_every / eval_episodes; 0: none, then steps-to-target come from the exploring
    policy's training success). dataset: write the LeRobot-style dataset; video: with MP4s
    (renders each step)."""

    tasks: tuple[str, ...] = TASKS
    episodes: int = 50
    train_steps: int = 8192
    n_steps: int = 128
    batch_size: int = 64
    curve_every: int = 0
    curve_episodes: int = 10
    seed: int = 0
    eval_seed: int = 10_000
    perception: bool = True
    dataset: bool = True
    video: bool = True

    def __post_init__(self):
        object.__setattr__(self, "tasks", tuple(self.tasks))
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {self.tasks}")
        if self.episodes < 1 or self.train_steps < 1:
            raise ValueError(f"episodes and train_steps must be >= 1, got {self.episodes}, {self.train_steps}")


def run_comparison(config: CompareConfig, out_dir: str | Path) -> dict:
    from physforge.outputs import finite_or_null, write_json
    from physforge.robot.dataset import DatasetWriter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "config.json", asdict(config))
    writer = DatasetWriter(out_dir / "dataset", video=config.video) if config.dataset else None
    (out_dir / "trajectories").mkdir(exist_ok=True)
    results: list[EvalResult] = []
    speed: dict[str, dict] = {}
    for task in config.tasks:
        started = time.perf_counter()
        retarget = evaluate(task, "retarget", config.episodes, seed=config.eval_seed, perception=config.perception)
        base = evaluate(task, "base", config.episodes, seed=config.eval_seed, perception=config.perception)
        feedback = evaluate(task, "feedback", config.episodes, seed=config.eval_seed, perception=config.perception)
        trained = {}
        for method in ("scratch", "residual"):
            learn = LearnConfig(task=task, method=method, total_steps=config.train_steps, n_steps=config.n_steps,
                                batch_size=config.batch_size, seed=config.seed, perception=config.perception,
                                eval_every=config.curve_every, eval_episodes=config.curve_episodes)
            trained[method] = train(learn, out_dir / "runs" / f"{task}_{method}")
        scratch = evaluate(task, "scratch", config.episodes, policy=trained["scratch"].model, seed=config.eval_seed,
                           perception=config.perception, train_steps=trained["scratch"].env_steps)
        commands: list[np.ndarray] = []
        seeds: list[int] = []

        def record(env, index, seed, steps, summary, frames):
            if not summary["success"]:
                return
            trajectory = np.array([s["joint_command"] for s in steps], dtype=np.float32)
            commands.append(trajectory)
            seeds.append(seed)
            if writer is not None:
                writer.add(task, seed, steps, summary, frames)

        residual = evaluate(task, "residual", config.episodes, policy=trained["residual"].model, seed=config.eval_seed,
                            perception=config.perception, recorder=record, train_steps=trained["residual"].env_steps,
                            env_kwargs={"render_mode": "rgb_array"} if (writer is not None and config.video) else None)
        if commands:
            np.savez_compressed(out_dir / "trajectories" / f"{task}.npz", seeds=np.array(seeds),
                                joint_commands=np.stack(commands))
        results += [retarget, base, scratch, residual, feedback]
        if config.curve_every:
            # the curves are measured on validation seeds, so (a)'s success there is the bar
            target = evaluate(task, "retarget", config.curve_episodes, seed=VALIDATION_SEED,
                              perception=config.perception).success_rate
            key = "validation_success"
        else:
            target, key = retarget.success_rate, "success_rate"
        speed[task] = {
            "retarget_success": target, "steps_to_target_measured_by": key,
            "scratch_steps_to_retarget_success": steps_to_reach(trained["scratch"].history, target, key),
            "residual_steps_to_retarget_success": steps_to_reach(trained["residual"].history, target, key),
            "scratch_train_wall_s": trained["scratch"].wall_s, "residual_train_wall_s": trained["residual"].wall_s,
            "scratch_history": trained["scratch"].history, "residual_history": trained["residual"].history,
            "task_wall_s": time.perf_counter() - started}
        log.info("%s done in %.0f s", task, time.perf_counter() - started)
    if writer is not None:
        writer.finish()
    table = write_table(results, out_dir / "results.md")
    methods = ("retarget", "base", "scratch", "residual", "feedback")
    rates = {m: float(np.mean([r.success_rate for r in results if r.method == m])) for m in methods}
    held = {m: float(np.mean([r.held_success_rate for r in results if r.method == m])) for m in methods}
    payload = {"results": [r.row() for r in results], "speed": finite_or_null(speed), "mean_success": rates,
               "residual_minus_retarget_points": 100 * (rates["residual"] - rates["retarget"]),
               "mean_held_success": held,
               "held_residual_minus_retarget_points": 100 * (held["residual"] - held["retarget"]),
               "episodes": [{"task": r.task, "method": r.method, "records": r.records} for r in results]}
    write_json(out_dir / "results.json", finite_or_null(payload))
    return {"table": table, **payload}



__all__ = ["CompareConfig", "run_comparison", "summary_json"]
