"""PPO training (residual on the base policy, or from scratch) and seeded evaluation.

config -> environments -> PPO -> loop with a success-rate log -> run folder with config.json,
the SB3 checkpoint (policy.zip) and history.json. stable-baselines3 is imported lazily.

Methods compared (the issue's a/b/c):
- ``retarget``  (a) direct retargeting, zero action (no learning);
- ``scratch``   (b) PPO from scratch on the same environment without a base;
- ``residual``  (c) PPO on a bounded, zero-initialised residual over the physically grounded
  base (its zero-residual policy is also reported as ``base``).
- ``feedback``  a hand-written residual over the same base (``TrackedFeedback``, not learned): a
  reference for how much closing the loop on the tracked object can add.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from physforge.errors import InputFileError, MissingDependencyError
from physforge.robot.tasks import TASKS
from physforge.threads import torch_threads, with_config_threads

log = logging.getLogger(__name__)

METHODS = ("retarget", "base", "scratch", "residual", "feedback")
#: First seed of the validation episodes of learning curves (test episodes start at 10,000).
VALIDATION_SEED = 20_000


class TrackedFeedback:
    """A hand-written closed-loop residual that sees only the policy's observations: until the
    demonstrated motion starts, move the gripper target by the tracked object's offset from its
    reference (action = -reference error, in units of the residual's reach), then add nothing
    (a grasped object is carried by the base; a pushed one is pushed from where the fingers met
    it). Same ``predict`` as an SB3 model."""

    def predict(self, observation, deterministic: bool = True):
        from physforge.robot.env import observation_slices

        slices = observation_slices()
        observation = np.asarray(observation, dtype=np.float32)
        action = np.zeros(observation.shape[:-1] + (4,), dtype=np.float32)
        # the approach error is zero once the demonstrated motion has started
        action[..., :3] = np.clip(observation[..., slices["approach_error"]], -1, 1)
        return action, None


def _sb3():
    try:
        import stable_baselines3
        import torch
    except ImportError:
        raise MissingDependencyError("stable-baselines3 and torch", "rl") from None
    del torch  # imported only to name it in the same error: SB3 needs it
    return stable_baselines3


@dataclass(frozen=True)
class LearnConfig:
    """task: one of TASKS. method: residual or scratch. total_steps: environment steps of PPO.
    n_envs: environments stepped in turn (DummyVecEnv). n_steps: steps per environment per PPO
    rollout. batch_size, epochs, learning_rate, gamma, gae_lambda: PPO's. log_std_init: initial
    log standard deviation of the Gaussian policy (the residual starts near zero). seed: PPO and
    episode seeds. perception: ground the task through reconstruction + tracking (else simulator
    truth). eval_every: every this many steps (rounded up to whole rollouts; 0: never) evaluate
    the deterministic policy on ``eval_episodes`` validation episodes (seeds from
    ``VALIDATION_SEED``, disjoint from the test seeds of ``evaluate``) for the learning curve.
    threads: torch CPU threads while training, the caller's count restored after (0: leave it);
    a 128x128 MLP is far too small for intra-op threads, which on a shared 2-core machine make
    every forward pass ~100x slower.

    The defaults were chosen on the stack task's validation seeds (issue #8): short rollouts,
    10 epochs and lr 1e-3 give ~8x the gradient steps of SB3's defaults in a few thousand env
    steps; gamma 0.9 / lambda 0.8 keep credit local, where the dense object-centric terms
    carry the signal (the end-of-episode success bonus depends mostly on unobserved physics)."""

    task: str = "pick_place"
    method: str = "residual"
    total_steps: int = 4096
    n_envs: int = 2
    n_steps: int = 128
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 1e-3
    gamma: float = 0.9
    gae_lambda: float = 0.8
    log_std_init: float | None = None
    seed: int = 0
    perception: bool = True
    eval_every: int = 0
    eval_episodes: int = 10
    threads: int = 1

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.method not in ("residual", "scratch"):
            raise ValueError(f"method must be 'residual' or 'scratch' (retarget and base need no training), "
                             f"got {self.method!r}")
        for name in ("total_steps", "n_envs", "n_steps", "batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"LearnConfig.{name} must be >= 1, got {getattr(self, name)}")
        if (self.n_envs * self.n_steps) % self.batch_size:
            raise ValueError(f"n_envs x n_steps ({self.n_envs * self.n_steps}) must be a multiple of batch_size "
                             f"({self.batch_size})")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("gamma", "gae_lambda"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"LearnConfig.{name} must be in (0, 1], got {getattr(self, name)}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int):
            raise ValueError(f"LearnConfig.threads must be an integer (0: leave torch's thread count), got {self.threads!r}")
        if self.threads < 0:
            raise ValueError(f"LearnConfig.threads must be >= 0 (0: leave torch's thread count), got {self.threads}")
        if self.eval_every < 0 or self.eval_episodes < 1:
            raise ValueError(f"LearnConfig.eval_every must be >= 0 and eval_episodes >= 1, got "
                             f"{self.eval_every}, {self.eval_episodes}")

    def initial_log_std(self) -> float:
        if self.log_std_init is not None:
            return self.log_std_init
        return -1.5 if self.method == "residual" else 0.0


def make_env(task: str, mode: str, perception: bool = True, **kwargs):
    from physforge.robot.env import PhysWorldEnv

    return PhysWorldEnv(task, mode=mode, perception=perception, **kwargs)


@dataclass
class TrainResult:
    model: object
    history: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    env_steps: int = 0


@with_config_threads
def train(config: LearnConfig, run_dir: str | Path | None = None) -> TrainResult:
    """Train PPO; returns the model and a history per rollout of (steps, wall_s, training success
    rate of the last 20 exploring episodes, and every ``eval_every`` steps the deterministic
    policy's validation success and tracking error). Writes config.json, policy.zip and
    history.json to ``run_dir`` when given."""
    _sb3()  # names the pip extra if stable-baselines3 is missing
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    mode = "residual" if config.method == "residual" else "scratch"

    def factory(index: int):
        return lambda: Monitor(make_env(config.task, mode, config.perception))

    env = DummyVecEnv([factory(i) for i in range(config.n_envs)])
    env.seed(config.seed)
    history: list[dict] = []
    start = time.perf_counter()

    class SuccessLog(BaseCallback):
        def __init__(self):
            super().__init__()
            self.outcomes: list[bool] = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "summary" in info:
                    self.outcomes.append(bool(info["summary"]["success"]))
            return True

        def _on_rollout_end(self) -> None:
            recent = self.outcomes[-20:]
            entry = {"steps": int(self.num_timesteps), "wall_s": time.perf_counter() - start,
                     "episodes": len(self.outcomes), "success_rate": float(np.mean(recent)) if recent else math.nan}
            if config.eval_every and self.num_timesteps >= self.next_eval:
                entry.update(_validate(self.model))
                # the next multiple of eval_every after now: rollouts need not end on one
                self.next_eval = (self.num_timesteps // config.eval_every + 1) * config.eval_every
            history.append(entry)

        def _on_training_start(self) -> None:
            self.next_eval = config.eval_every
            if config.eval_every:  # the curve's first point: the untrained policy
                history.append({"steps": 0, "wall_s": 0.0, "episodes": 0, "success_rate": math.nan,
                                **_validate(self.model)})

    def _validate(model) -> dict:
        result = evaluate(config.task, config.method, config.eval_episodes, policy=model, seed=VALIDATION_SEED,
                          perception=config.perception)
        return {"validation_success": result.success_rate, "validation_tracking_error_m": result.tracking_error_m}

    model = build_model(config, env)
    model.learn(total_timesteps=config.total_steps, callback=SuccessLog())
    result = TrainResult(model=model, history=history, wall_s=time.perf_counter() - start,
                         env_steps=int(model.num_timesteps))
    env.close()
    if run_dir is not None:
        from physforge.outputs import finite_or_null, write_json

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", asdict(config))
        model.save(run_dir / "policy.zip")
        write_json(run_dir / "history.json", {"history": finite_or_null(history), "wall_s": result.wall_s,
                                              "env_steps": result.env_steps})
    return result


def build_model(config: LearnConfig, env):
    """The PPO model; for the residual method its mean action is exactly zero at the start
    (zero-initialised output layer), so training begins at the base policy."""
    sb3 = _sb3()
    model = sb3.PPO("MlpPolicy", env, n_steps=config.n_steps, batch_size=config.batch_size, n_epochs=config.epochs,
                    learning_rate=config.learning_rate, gamma=config.gamma, gae_lambda=config.gae_lambda,
                    seed=config.seed, verbose=0,
                    policy_kwargs={"log_std_init": config.initial_log_std(), "net_arch": [128, 128]}, device="cpu")
    if config.method == "residual":
        model.policy.action_net.weight.data.zero_()
        model.policy.action_net.bias.data.zero_()
    # Without a logger of its own, SB3's learn() configures the default one, which makes an empty
    # SB3-<date> folder in the temporary directory on every run; this one writes nowhere.
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


#: Largest uncompressed policy.zip accepted, bytes (a 2x128 MLP policy is well under 1 MB).
MAX_POLICY_BYTES = 256 * 1024 * 1024


def load_policy(path: str | Path):
    """A PPO checkpoint written by ``train``: its weights from ``policy.zip`` loaded into a model
    rebuilt from the ``config.json`` beside it.

    SB3's own ``PPO.load`` is not used: it un-pickles (cloudpickle) the objects stored in the
    zip's ``data`` entry, so a crafted policy.zip would run code. Here only the ``.pth`` weight
    entries are read, by SB3 with ``torch.load(weights_only=True)``.
    """
    import zipfile

    _sb3()
    from stable_baselines3.common.save_util import load_from_zip_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train one with `physforge robot learn`")
    config_path = path.with_name("config.json")
    if not config_path.is_file():
        raise InputFileError(path, "no config.json beside it; a policy is loaded only from the run folder "
                             "that `physforge robot learn` wrote")
    try:
        config = LearnConfig(**json.loads(config_path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise InputFileError(config_path, f"not a LearnConfig: {err}") from None
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise InputFileError(path, "not a zip file (SB3 policy.zip expected)") from None
    if unpacked > MAX_POLICY_BYTES:
        raise InputFileError(path, f"unpacks to {unpacked} bytes, more than {MAX_POLICY_BYTES}; refused")
    try:
        _, params, _ = load_from_zip_file(path, load_data=False, device="cpu")
    except Exception as err:  # torch's weights-only unpickler raises UnpicklingError, RuntimeError, ...
        raise InputFileError(path, f"weights refused or unreadable ({type(err).__name__}: {err})") from None
    mode = "residual" if config.method == "residual" else "scratch"
    model = build_model(config, make_env(config.task, mode, config.perception))
    try:
        model.set_parameters(params, exact_match=True, device="cpu")
    except (ValueError, RuntimeError, KeyError) as err:
        raise InputFileError(path, f"weights do not fit the policy its config.json describes: {err}") from None
    return model


@dataclass
class EvalResult:
    """Per-method metrics over seeded episodes: success rate, mean tracking error (m), grasp failure
    rate (None for push), and the 95 % Wilson interval of the success rate. ``held_success_rate``
    counts a success only if the object (or drawer handle) was also in the gripper at the middle of
    the motion: the task's final-pose check alone accepts an object dragged or pushed to its goal
    after the grasp slipped, which is not a pick-and-place. For push it equals ``success_rate``."""

    task: str
    method: str
    episodes: int
    success_rate: float
    success_ci95: tuple[float, float]
    tracking_error_m: float
    grasp_failure_rate: float | None
    held_success_rate: float
    held_success_ci95: tuple[float, float]
    train_steps: int = 0
    records: list[dict] = field(default_factory=list)

    def row(self) -> dict:
        out = asdict(self)
        out.pop("records")
        return out


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def evaluate(task: str, method: str, episodes: int = 50, *, policy=None, seed: int = 10_000, perception: bool = True,
             recorder=None, train_steps: int = 0, env_kwargs: dict | None = None, threads: int = 1) -> EvalResult:
    """Run ``episodes`` seeded episodes (seeds seed, seed + 1, ...; the same physics for every
    method). ``policy``: an SB3 model (deterministic actions) for scratch/residual; None = zero
    action (retarget, base). ``recorder(env, episode_index, seed, steps, summary, frames)`` sees each
    episode (frames: (H, W, 3) uint8 per step when the env renders, else None). ``threads``: torch
    CPU threads while a policy acts, the caller's count restored after (0: leave it)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    mode = {"retarget": "retarget", "base": "residual", "residual": "residual", "scratch": "scratch",
            "feedback": "residual"}[method]
    if method in ("scratch", "residual") and policy is None:
        raise ValueError(f"method {method!r} needs a trained policy; train one with robot.learn.train")
    if method == "feedback" and policy is None:
        policy = TrackedFeedback()
    env = make_env(task, mode, perception, **(env_kwargs or {}))
    records = []
    # only a learned policy runs torch; a zero action or the numpy feedback must not pay for importing it
    learned = policy is not None and not isinstance(policy, TrackedFeedback)
    with torch_threads(threads if learned else 0):
        for index in range(episodes):
            observation, _ = env.reset(seed=seed + index)
            steps, done = [], False
            frames = [] if env.render_mode == "rgb_array" else None
            while not done:
                if frames is not None:
                    frames.append(env.render())
                if policy is None:
                    action = np.zeros(env.action_space.shape, dtype=np.float32)
                else:
                    action, _ = policy.predict(observation, deterministic=True)
                next_observation, reward, terminated, truncated, info = env.step(action)
                steps.append({"observation": observation, "action": np.asarray(action, dtype=np.float32),
                              "joint_command": env.last_command.astype(np.float32), "reward": reward,
                              "done": terminated or truncated})
                observation, done = next_observation, terminated or truncated
            summary = info["summary"]
            records.append({"seed": seed + index, **{k: v for k, v in summary.items() if k != "physics"},
                            "physics": summary["physics"]})
            if recorder is not None:
                recorder(env, index, seed + index, steps, summary, frames)
    env.close()
    return eval_result(task, method, records, train_steps)


def eval_result(task: str, method: str, records: list[dict], train_steps: int = 0) -> EvalResult:
    """The metrics of ``records`` (one episode summary each: success, grasp_failure (None without
    a grasp), tracking_error_m)."""
    episodes = len(records)
    successes = sum(r["success"] for r in records)
    held_successes = sum(r["success"] and not r["grasp_failure"] for r in records)
    failures = [r["grasp_failure"] for r in records if r["grasp_failure"] is not None]
    return EvalResult(task=task, method=method, episodes=episodes, success_rate=successes / episodes,
                      success_ci95=wilson(successes, episodes), held_success_rate=held_successes / episodes,
                      held_success_ci95=wilson(held_successes, episodes),
                      tracking_error_m=float(np.mean([r["tracking_error_m"] for r in records])),
                      grasp_failure_rate=float(np.mean(failures)) if failures else None, train_steps=train_steps,
                      records=records)


def steps_to_reach(history: list[dict], target: float, key: str = "success_rate") -> int | None:
    """Training steps at the first history entry whose ``key`` (the exploring policy's recent
    success rate, or ``validation_success``) reaches ``target`` (None: never)."""
    for entry in history:
        value = entry.get(key)
        if value is not None and not math.isnan(value) and value >= target:
            return entry["steps"]
    return None


def write_table(results: list[EvalResult], path: Path) -> str:
    """A markdown table of ``results``, also written to ``path``."""
    lines = ["| task | method | episodes | train steps | success | 95% CI | success, held mid-motion | "
             "tracking error (cm) | grasp failures |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        failures = "n/a" if r.grasp_failure_rate is None else f"{100 * r.grasp_failure_rate:.0f}%"
        lines.append(f"| {r.task} | {r.method} | {r.episodes} | {r.train_steps} | {100 * r.success_rate:.0f}% | "
                     f"{100 * r.success_ci95[0]:.0f}-{100 * r.success_ci95[1]:.0f}% | {100 * r.held_success_rate:.0f}% | "
                     f"{100 * r.tracking_error_m:.2f} | {failures} |")
    text = "\n".join(lines) + "\n"
    Path(path).write_text(text)
    return text


def summary_json(results: list[EvalResult]) -> str:
    return json.dumps([r.row() for r in results], indent=1)


def evaluate_checkpoint(policy_path: str | Path, tasks: tuple[str, ...], method: str, episodes: int,
                        out_dir: str | Path, seed: int = 10_000, overwrite: bool = False) -> dict:
    """Evaluate a saved checkpoint (``load_policy``) on ``episodes`` seeded episodes per task and
    write results.md and results.json (rows, per-episode records, the checkpoint's path and
    config) to ``out_dir`` atomically (an existing ``out_dir`` is refused unless ``overwrite``).
    Returns the payload with the markdown ``table``."""
    from physforge.outputs import finite_or_null, staged_directory, write_json

    if method not in ("residual", "scratch"):
        raise ValueError(f"method must be 'residual' or 'scratch' for a checkpoint, got {method!r}")
    model = load_policy(policy_path)
    results = [evaluate(task, method, episodes, policy=model, seed=seed) for task in tasks]
    payload = {"policy": str(policy_path),
               "policy_config": json.loads(Path(policy_path).with_name("config.json").read_text()),
               "results": [r.row() for r in results],
               "episodes": [{"task": r.task, "method": r.method, "records": r.records} for r in results]}
    with staged_directory(out_dir, overwrite=overwrite) as staging:
        table = write_table(results, staging / "results.md")
        write_json(staging / "results.json", finite_or_null(payload))
    return {"table": table, **payload}

