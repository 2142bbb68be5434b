"""Render the example input images of ``physforge asset from-image`` (objects of run seed 77,
which no training split uses). Run from the repository root:

    python examples/images/build_images.py
"""

from pathlib import Path

import numpy as np

from physforge.assets.image_data import ObjectSpec, ViewRenderer, library_object, random_joint_state, scene_world
from physforge.sim import write_png

HERE = Path(__file__).parent
#: name -> (category, object index); laptop is a category the built-in model never saw.
EXAMPLES = {"cabinet": ("cabinet", 0), "drawer_chest": ("drawer_chest", 1), "chair": ("chair", 2),
            "laptop_unseen_category": ("laptop", 3)}


def main(size: int = 256, seed: int = 77) -> None:
    renderer = ViewRenderer(size)
    try:
        for name, (category, index) in EXAMPLES.items():
            _, asset = library_object(ObjectSpec("example", category, index, seed))
            rng = np.random.default_rng(np.random.SeedSequence([seed, index, 1]))
            world, _ = scene_world(asset, random_joint_state(asset.annotation, rng), rng)
            write_png(renderer.render(world), HERE / f"{name}.png")
    finally:
        renderer.close()


if __name__ == "__main__":
    main()
