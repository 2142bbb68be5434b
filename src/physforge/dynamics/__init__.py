"""Physics-aware dynamics generation: from one rendered frame of a known scene, sample how its
objects will move; a simulator-backed verifier scores motions (L2, Chamfer, mask IoU against the
rollout, analytic-law residuals) and serves as reward and preference oracle for DPO on the
generator (stage 2) and on the PhysEncoder alone (stage 3) — PhysMaster's loop, in the open.

    from physforge.dynamics import Verifier, TrainConfig, train_sft
    report = Verifier(world, ("red_ball",), horizon=16, dt=0.1).score(predicted)

torch loads on first use (extra ``physforge[ml]``).
"""

from physforge.dynamics.config import DPOConfig, EvalConfig, GeneratorConfig, PairConfig, ScoreConfig, TrainConfig
from physforge.dynamics.errors import DynamicsCheckpointError, DynamicsConfigError, DynamicsDataError

__all__ = ["DPOConfig", "EvalConfig", "GeneratorConfig", "PairConfig", "ScoreConfig", "TrainConfig",
           "DynamicsCheckpointError", "DynamicsConfigError", "DynamicsDataError", "Verifier", "reference_rollout",
           "load_examples", "TrajectoryGenerator", "build_generator", "load_generator", "save_generator",
           "train_sft", "train_dpo", "build_pairs", "write_pairs", "evaluate", "dpo_loss", "run_experiment"]

_LAZY = {"Verifier": "verify", "reference_rollout": "verify", "load_examples": "data",
         "TrajectoryGenerator": "model", "build_generator": "model", "load_generator": "model",
         "save_generator": "model", "train_sft": "recipe", "train_dpo": "recipe", "build_pairs": "recipe",
         "write_pairs": "recipe", "evaluate": "recipe", "dpo_loss": "recipe", "run_experiment": "experiment"}


def __getattr__(name):  # heavy parts (torch, mujoco) load on first use
    if name in _LAZY:
        import importlib

        try:
            module = importlib.import_module(f"physforge.dynamics.{_LAZY[name]}")
        except ImportError as err:
            if err.name and err.name.split(".")[0] in ("torch", "safetensors"):
                from physforge.errors import MissingDependencyError

                raise MissingDependencyError(err.name.split(".")[0], "ml") from None
            raise
        return getattr(module, name)
    raise AttributeError(name)
