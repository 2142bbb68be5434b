"""Synthetic physics supervision: procedurally generated scenes simulated and rendered through
``physforge.sim``, with exact states, event logs, latent properties and question/answer pairs
whose answers come from the simulator (counterfactuals by re-simulation).

    from physforge.data import DataConfig, generate_dataset
    generate_dataset(DataConfig(seed=0, width=128, height=128), "runs/data", num_scenes=100, workers=2)
"""

from physforge.data.config import SPLITS, DataConfig
from physforge.data.errors import DataConfigError, DatasetValidationError, PredictionsError
from physforge.data.families import FAMILIES

__all__ = ["DataConfig", "DataConfigError", "DatasetValidationError", "PredictionsError", "FAMILIES", "SPLITS",
           "generate_dataset", "validate_dataset", "grade", "physics_reward"]


def __getattr__(name):  # heavy parts load on first use
    if name == "generate_dataset":
        from physforge.data.generate import generate_dataset
        return generate_dataset
    if name == "validate_dataset":
        from physforge.data.validate import validate_dataset
        return validate_dataset
    if name in ("grade", "physics_reward"):
        from physforge.data import grade as module
        return getattr(module, name)
    raise AttributeError(name)
