"""Robot (PhysWorld) speed benchmark; prints JSON.

    .venv/bin/python bench/robot_speed.py [--tasks push pick_place] [--env-steps 400]
        [--ppo-steps 2048] [--max-steps 16384] [--eval-episodes 10]

env_steps_per_s: control steps/s of each environment (25 physics steps + IK per step) with a
zero residual, after reset. ppo_steps_per_s: PPO (SB3, 2 DummyVecEnv envs) environment steps
per second of wall time including updates. time_to_target: for each task, wall time and
environment steps until the residual (c) and scratch (b) policies reach the ``--target``
method's success rate on ``--eval-episodes`` seeded episodes, checked after every PPO
rollout-chunk of ``--ppo-steps`` up to ``--max-steps`` (null: not reached). With the default
target, (a) direct retargeting, (c) starts from its base (validated grasp, zero residual), which
is at or above (a) on most tasks, so it is usually there at step 0; ``--target feedback`` (the hand-written closed-loop residual) times
how long PPO takes to learn the correction. All times are wall clock (time.perf_counter), so on
a shared machine they depend on the load; the 1-minute load average before and after is in
``machine``. One process, one torch thread; no timed asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def env_speed(task: str, mode: str, steps: int) -> float:
    from physforge.robot.env import PhysWorldEnv

    env = PhysWorldEnv(task, mode=mode)
    env.reset(seed=0)
    done_steps, elapsed = 0, 0.0
    while done_steps < steps:
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(np.zeros(4, np.float32))
        elapsed += time.perf_counter() - start
        done_steps += 1
        if terminated or truncated:
            env.reset(seed=done_steps)
    return done_steps / elapsed


def time_to_target(task: str, method: str, target: float, chunk: int, max_steps: int, episodes: int) -> dict:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from physforge.robot.learn import LearnConfig, build_model, evaluate, make_env

    mode = "residual" if method == "residual" else "scratch"
    config = LearnConfig(task=task, method=method, total_steps=max_steps)
    env = DummyVecEnv([lambda: Monitor(make_env(task, mode))] * config.n_envs)
    model = build_model(config, env)
    start, trained, curve = time.perf_counter(), 0, []
    while True:
        success = evaluate(task, method, episodes, policy=model).success_rate
        curve.append({"steps": trained, "wall_s": round(time.perf_counter() - start, 2), "success": success})
        if success >= target or trained >= max_steps:
            break
        model.learn(total_timesteps=chunk, reset_num_timesteps=False)
        trained = int(model.num_timesteps)
    reached = curve[-1]["success"] >= target
    return {"reached": reached, "steps": curve[-1]["steps"] if reached else None,
            "wall_s": curve[-1]["wall_s"] if reached else None, "curve": curve}


def main() -> None:
    from physforge.robot.learn import _sb3
    from physforge.robot.tasks import TASKS
    from physforge.threads import torch_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--env-steps", type=int, default=400)
    parser.add_argument("--ppo-steps", type=int, default=2048)
    parser.add_argument("--max-steps", type=int, default=16384)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--target", choices=("retarget", "feedback"), default="retarget",
                        help="whose success rate (c) and (b) must reach")
    args = parser.parse_args()
    _sb3()  # names the pip extra if stable-baselines3 is missing
    # one torch thread, as LearnConfig's default: time_to_target calls PPO's learn outside train
    with torch_threads(1):
        out = measure(args)
    out["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out, indent=1))


def measure(args: argparse.Namespace) -> dict:
    from physforge.robot.learn import LearnConfig, evaluate, train

    # every figure below is wall time: on a shared machine it depends on the load recorded here
    out: dict = {"machine": {"python": platform.python_version(), "processor": platform.processor(),
                             "load_average_before": [round(v, 2) for v in os.getloadavg()]},
                 "env_steps_per_s": {}, "ppo_steps_per_s": {}, "time_to_target": {}}
    for task in args.tasks:
        out["env_steps_per_s"][task] = {mode: round(env_speed(task, mode, args.env_steps), 1)
                                        for mode in ("retarget", "residual", "scratch")}
    for task in args.tasks[:1]:
        result = train(LearnConfig(task=task, method="residual", total_steps=args.ppo_steps))
        out["ppo_steps_per_s"][task] = round(result.env_steps / result.wall_s, 1)
    for task in args.tasks:
        target = evaluate(task, args.target, args.eval_episodes).success_rate
        out["time_to_target"][task] = {"target": args.target, "target_success": target}
        for method in ("residual", "scratch"):
            out["time_to_target"][task][method] = time_to_target(task, method, target, args.ppo_steps,
                                                                 args.max_steps, args.eval_episodes)
    return out


if __name__ == "__main__":
    main()
