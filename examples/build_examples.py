"""Builds the example worlds in this folder with the Python API (the JSON files are its output).

    python examples/build_examples.py        # rewrites ramp.json, collision.json, pendulum.json

Edit either the JSON files directly or this script; `physforge sim run examples/ramp.json --out runs/ramp`
simulates one.
"""

import math
from pathlib import Path

from physforge.world import (Body, Box, Camera, Capsule, Cylinder, Geom, Joint, Material, Pose, Sphere, World,
                             save_world)

HERE = Path(__file__).parent
STATIC = Joint("fixed")


def ramp() -> World:
    """Two blocks on a polished 25 degree incline: the slippery one (mu 0.2 < tan 25° = 0.47)
    slides, the grippy one (mu 0.8) stays where it is. (A pair of surfaces uses the larger
    friction coefficient, so the ramp itself is the most slippery of the three.)"""
    angle = math.radians(25.0)
    ramp_pose = Pose.from_axis_angle((0.0, 0.0, 0.5), (0, 1, 0), angle)
    along = (math.cos(angle), 0.0, -math.sin(angle))  # down the slope
    normal = (math.sin(angle), 0.0, math.cos(angle))

    def on_slope(distance: float, lateral: float, half: float):
        x = 0.0 - along[0] * distance + normal[0] * (0.02 + half)
        z = 0.5 - along[2] * distance + normal[2] * (0.02 + half)
        return Pose.from_axis_angle((x, lateral, z), (0, 1, 0), angle)

    wood = Material("wood", density=600, friction=(0.8, 0.005, 0.0001))
    ice = Material("ice", density=900, friction=(0.2, 0.005, 0.0001))
    return World(name="ramp", bodies=(
        Body("ramp", (Geom(Box((0.8, 0.3, 0.02)), material=Material("polished_steel", 7800, (0.1, 0.005, 0.0001)), rgba=(0.55, 0.4, 0.25, 1)),), ramp_pose, STATIC),
        Body("slippery_block", (Geom(Box((0.05, 0.05, 0.05)), material=ice, rgba=(0.3, 0.6, 0.9, 1)),),
             on_slope(0.5, -0.12, 0.05)),
        Body("grippy_block", (Geom(Box((0.05, 0.05, 0.05)), material=wood, rgba=(0.9, 0.4, 0.2, 1)),),
             on_slope(0.5, 0.12, 0.05)),
    ), cameras=(Camera("side", position=(0.3, -2.4, 0.9), look_at=(0.0, 0.0, 0.35)),))


def collision() -> World:
    """CLEVRER-style: objects slide in across a table and collide."""
    rubber = Material("rubber", density=1100, friction=(0.5, 0.005, 0.0001), restitution=0.6)
    metal = Material("metal", density=7800, friction=(0.3, 0.005, 0.0001), restitution=0.3)
    return World(name="collision", bodies=(
        Body("red_sphere", (Geom(Sphere(0.06), material=rubber, rgba=(0.85, 0.15, 0.15, 1)),),
             Pose((-0.8, 0.02, 0.06)), velocity=(2.2, 0.0, 0.0)),
        Body("green_cube", (Geom(Box((0.06, 0.06, 0.06)), material=rubber, rgba=(0.2, 0.7, 0.3, 1)),),
             Pose((0.0, 0.0, 0.06))),
        Body("blue_cylinder", (Geom(Cylinder(0.06, 0.06), material=metal, rgba=(0.2, 0.35, 0.85, 1)),),
             Pose((0.45, -0.6, 0.06)), velocity=(0.0, 1.6, 0.0)),
        Body("yellow_sphere", (Geom(Sphere(0.05), material=metal, rgba=(0.95, 0.8, 0.1, 1)),),
             Pose((0.45, 0.35, 0.05))),
        Body("purple_capsule", (Geom(Capsule(0.04, 0.08), Pose.from_axis_angle((0, 0, 0), (1, 0, 0), math.pi / 2),
                                     material=rubber, rgba=(0.6, 0.3, 0.8, 1)),),
             Pose((-0.4, 0.5, 0.04)), velocity=(0.6, -1.2, 0.0)),
    ), cameras=(Camera("front", position=(0.0, -2.2, 1.6), look_at=(0.0, 0.0, 0.0)),))


def pendulum() -> World:
    """A 0.8 m pendulum released at 0.6 rad swings down and knocks a block over."""
    steel = Material("steel", density=7800, friction=(0.4, 0.005, 0.0001), restitution=0.4)
    return World(name="pendulum", bodies=(
        Body("support", (Geom(Box((0.2, 0.03, 0.03)), rgba=(0.3, 0.3, 0.3, 1)),), Pose((0.0, 0.0, 0.9)), STATIC),
        Body("pendulum", (
            Geom(Capsule(0.01, 0.37), Pose((0.0, 0.0, -0.4)), rgba=(0.7, 0.7, 0.7, 1)),
            Geom(Sphere(0.06), Pose((0.0, 0.0, -0.8)), material=steel, rgba=(0.8, 0.2, 0.2, 1)),
        ), Pose((0.0, 0.0, 0.0)), Joint("revolute", axis=(0, 1, 0), initial_position=0.6, damping=0.001),
            parent="support"),
        Body("block", (Geom(Box((0.03, 0.06, 0.08)), material=Material("wood", density=500), rgba=(0.9, 0.7, 0.3, 1)),),
             Pose((0.12, 0.0, 0.08))),
    ), cameras=(Camera("front", position=(0.0, -2.0, 0.6), look_at=(0.0, 0.0, 0.45)),))


if __name__ == "__main__":
    for build in (ramp, collision, pendulum):
        world = build()
        print("wrote", save_world(world, HERE / f"{world.name}.json"))
