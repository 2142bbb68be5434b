"""Scene families: one module each, with its own ``Params`` ranges and ``build``."""

from physforge.data.families import (articulated, collisions, containment, dominoes, pendulums, projectiles, ramps,
                                     towers)
from physforge.data.families.base import VARIANTS, Range, SceneObject, SceneSpec

#: family name -> module (with ``Params`` and ``build(rng, params, variant)``)
FAMILIES = {module.NAME: module for module in (collisions, ramps, towers, dominoes, projectiles, containment,
                                                pendulums, articulated)}

__all__ = ["FAMILIES", "VARIANTS", "Range", "SceneObject", "SceneSpec"]
