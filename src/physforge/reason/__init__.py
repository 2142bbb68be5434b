"""Physical reasoning on synthetic supervision: a PhysEncoder (clip -> physical representation,
with state, property, stability, contact and question-answering heads), a small transformers VLM
trained with TRL on the conversational export, and an evaluation harness for any VLM (physforge
checkpoints, local transformers models, OpenAI-compatible endpoints) scored with the data
engine's grader against majority, blind and untrained baselines.

    from physforge.reason import load_encoder
    encoder = load_encoder("runs/reason/checkpoint")

torch, transformers and trl load on first use (extra ``physforge[ml]``).
"""

from physforge.reason.config import EncoderConfig, TrainConfig, VLMTrainConfig
from physforge.reason.errors import CheckpointError, EndpointError, ReasonConfigError, ReasonDataError

__all__ = ["EncoderConfig", "TrainConfig", "VLMTrainConfig", "CheckpointError", "EndpointError", "ReasonConfigError",
           "ReasonDataError", "PhysEncoder", "load_encoder", "save_encoder", "build_encoder", "train_encoder",
           "train_vlm", "EvalConfig", "evaluate"]

_LAZY = {"PhysEncoder": "encoder", "load_encoder": "encoder", "save_encoder": "encoder", "build_encoder": "encoder",
         "train_encoder": "recipe_encoder", "train_vlm": "recipe_vlm", "EvalConfig": "harness", "evaluate": "harness"}


def __getattr__(name):  # heavy parts (torch, transformers) load on first use
    if name in _LAZY:
        import importlib

        try:
            module = importlib.import_module(f"physforge.reason.{_LAZY[name]}")
        except ImportError as err:
            if err.name and err.name.split(".")[0] in ("torch", "transformers", "trl", "peft", "safetensors"):
                from physforge.errors import MissingDependencyError

                raise MissingDependencyError(err.name.split(".")[0], "ml") from None
            raise
        return getattr(module, name)
    raise AttributeError(name)
