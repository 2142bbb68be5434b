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


def _boxes_centre_of_mass(body):
    """(world centre of mass (3,) m, mass kg) of a body made of boxes, from trimesh at each geom's
    density: an oracle independent of MuJoCo's inertia and of physforge's reconstruction."""
    import numpy as np
    import trimesh

    from physforge.robot.tasks import matrix_of

    frame = matrix_of(body.pose.position, body.pose.quaternion)
    masses, centres = [], []
    for geom in body.geoms:
        box = trimesh.creation.box(extents=2 * np.array(geom.shape.half_extents),
                                   transform=frame @ matrix_of(geom.pose.position, geom.pose.quaternion))
        box.density = geom.material.density
        masses.append(box.mass)
        centres.append(box.center_mass)
    masses = np.array(masses)
    return (masses[:, None] * np.array(centres)).sum(0) / masses.sum(), float(masses.sum())


@pytest.fixture
def boxes_centre_of_mass():
    """The function (body of boxes -> (world centre of mass, mass)), by trimesh."""
    return _boxes_centre_of_mass
