"""``SourceAsset``: an annotation plus its part meshes, before physics is attached.

Every input (a library object, a PhysXNet folder, a URDF, a single mesh) becomes one of these;
``physforge.assets.build`` turns it into a sim-ready asset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physforge.assets.geometry import CollisionPiece
from physforge.assets.schema import AssetAnnotation
from physforge.errors import WorldValidationError


@dataclass(frozen=True)
class SourceAsset:
    """annotation: the physical annotation. meshes: part label -> (vertices (n, 3) float64 m,
    faces (m, 3) int64), object frame, rest pose. collision: part label -> exact convex pieces
    when the source knows them (library objects are built from boxes and cylinders); parts
    without an entry are decomposed with CoACD."""

    annotation: AssetAnnotation
    meshes: dict[int, tuple[np.ndarray, np.ndarray]]
    collision: dict[int, tuple[CollisionPiece, ...]] = field(default_factory=dict)

    def __post_init__(self):
        labels = {p.label for p in self.annotation.parts}
        missing = sorted(labels - set(self.meshes))
        if missing:
            names = [self.annotation.part(m).name for m in missing]
            raise WorldValidationError("meshes", f"parts {missing} ({', '.join(names)}) have no mesh; "
                                       "give every annotated part a mesh file")
        extra = sorted(set(self.meshes) - labels)
        if extra:
            raise WorldValidationError("meshes", f"meshes for labels {extra} match no annotated part")
