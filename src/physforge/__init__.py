"""physforge: physics-grounded data, assets and models on one world description.

The layers import only downwards: ``world`` (pure data) <- ``sim`` (the only MuJoCo user)
<- capabilities <- ``cli``.
"""

__version__ = "0.1.0"

from physforge.errors import (  # noqa: E402
    InputFileError,
    MissingDependencyError,
    PhysforgeError,
    SimulationUnstable,
    WorldValidationError,
)

__all__ = [
    "__version__",
    "PhysforgeError",
    "WorldValidationError",
    "InputFileError",
    "SimulationUnstable",
    "MissingDependencyError",
]
