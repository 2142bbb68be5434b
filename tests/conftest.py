import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402

from physforge.world import Body, Geom, Material, Pose, Sphere, World  # noqa: E402


@pytest.fixture
def two_balls() -> World:
    """Two frictionless elastic balls in zero gravity, the left one moving right at 1 m/s."""
    elastic = Material("elastic", density=1000, friction=(0.0, 0.0, 0.0), restitution=1.0)
    heavy = Material("heavy_elastic", density=3000, friction=(0.0, 0.0, 0.0), restitution=1.0)
    return World(name="two_balls", gravity=(0, 0, 0), ground=None, bodies=(
        Body("left", (Geom(Sphere(0.1), material=elastic),), Pose((-0.5, 0, 0)), velocity=(1.0, 0, 0)),
        Body("right", (Geom(Sphere(0.1), material=heavy),), Pose((0.5, 0, 0))),
    ))
