"""Error types of ``physforge.reason`` (each also a ValueError or RuntimeError, so ``except`` on
the builtin keeps working). Every message names what is wrong and what to do."""

from __future__ import annotations

from physforge.checkpoints import CheckpointError as BaseCheckpointError
from physforge.configs import ConfigError
from physforge.errors import PhysforgeError


class ReasonConfigError(ConfigError):
    """A training or evaluation config holds a bad value; ``path`` names the field."""


class CheckpointError(BaseCheckpointError):
    """A PhysEncoder checkpoint folder cannot be loaded: missing files, wrong kind, or mismatched shapes."""


class ReasonDataError(PhysforgeError, ValueError):
    """A dataset folder cannot be used for training or evaluation (missing split, no questions)."""


class EndpointError(PhysforgeError, RuntimeError):
    """An OpenAI-compatible endpoint did not answer usably (HTTP error, timeout, bad JSON)."""
