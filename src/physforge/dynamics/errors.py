"""Error types of ``physforge.dynamics`` (each also a ValueError, so ``except ValueError`` keeps
working). Every message names what is wrong and what to do."""

from __future__ import annotations

from physforge.checkpoints import CheckpointError
from physforge.configs import ConfigError
from physforge.errors import PhysforgeError


class DynamicsConfigError(ConfigError):
    """A dynamics config holds a bad value; ``path`` names the field."""


class DynamicsDataError(PhysforgeError, ValueError):
    """A dataset, trajectory or pairs file cannot be used (missing split, wrong shape, too few frames)."""


class DynamicsCheckpointError(CheckpointError):
    """A generator checkpoint folder cannot be loaded: missing files, wrong kind, mismatched shapes."""
