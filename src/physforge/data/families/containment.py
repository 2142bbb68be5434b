"""Drop, contain, support (Physion-style): objects dropped over an open box land in it, on its
rim or beside it, or on each other."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from physforge.data.families.base import (COLORS, Range, SceneObject, SceneSpec, check_params, gravity_of, material,
                                          pick_colors, random_camera, world_of)
from physforge.data.errors import DataConfigError
from physforge.world import Body, Box, Geom, Joint, Pose, Sphere

NAME = "containment"
WALL = 0.02  # m, half thickness of the container walls
STACK_GAP = 0.002  # m, between an object set on top of another and that object


@dataclass(frozen=True)
class Params:
    """count: dropped objects (ood_count: compositional). container: inner half width, m.
    wall_height: half height of the walls, m. size: object half size, m. drop_height: m above
    the rim. spread: horizontal drop offset from the container centre, m (ood_spread:
    extrapolation). stack_probability: chance that an object after the first is set on top of the
    one before it (off centre by up to stack_offset times that one's half size; that one is then a
    cube) and falls with it: dropped independently, objects almost never ended up on one another.
    density: kg/m^3. restitution, friction: coefficients. gravity: m/s^2."""

    count: Range = Range(1, 3)
    ood_count: Range = Range(4, 5)
    container: Range = Range(0.1, 0.16)
    wall_height: Range = Range(0.04, 0.07)
    size: Range = Range(0.025, 0.045)
    drop_height: Range = Range(0.05, 0.3)
    spread: Range = Range(0.0, 0.3)
    ood_spread: Range = Range(0.35, 0.45)
    stack_probability: float = 0.75
    stack_offset: Range = Range(0.0, 0.6)
    density: Range = Range(300.0, 3000.0)
    restitution: Range = Range(0.0, 0.6)
    friction: Range = Range(0.3, 0.8)
    gravity: Range = Range(9.3, 10.3)
    ood_gravity: Range = Range(12.0, 15.0)

    def __post_init__(self):
        check_params(self)
        if isinstance(self.stack_probability, bool) or not isinstance(self.stack_probability, (int, float)) \
                or not 0.0 <= self.stack_probability <= 1.0:
            raise DataConfigError("stack_probability",
                                  f"expected a probability in [0, 1], got {self.stack_probability!r}")


def build(rng: np.random.Generator, params: Params, variant: str) -> SceneSpec:
    count = (params.ood_count if variant == "compositional" else params.count).sample_int(rng)
    gravity = gravity_of(rng, params, variant)
    colors = pick_colors(rng, count + 1)
    inner, wall_h = params.container.sample(rng), params.wall_height.sample(rng)
    box_material = material("container", 1000.0, 0.6, 0.0)
    rgba = COLORS[colors[0]]
    walls = [Geom(Box((inner + WALL, inner + WALL, WALL)), Pose((0, 0, WALL)), box_material, rgba)]
    for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        half = (WALL, inner + 2 * WALL, wall_h) if sx else (inner + 2 * WALL, WALL, wall_h)
        centre = (sx * (inner + WALL), sy * (inner + WALL), 2 * WALL + wall_h)
        walls.append(Geom(Box(half), Pose(centre), box_material, rgba))
    bodies = [Body("container", tuple(walls), Pose((0.0, 0.0, 0.0)), Joint("fixed"))]
    rim = 2 * WALL + 2 * wall_h
    objects = []
    spread = params.ood_spread if variant == "params" else params.spread
    z = rim
    stacked = [False] + [bool(rng.random() < params.stack_probability) for _ in range(count - 1)]
    below = None  # (x, y, half size, z) of the object before
    for i in range(count):
        color = colors[i + 1]
        # an object that another is set on is a cube: a ball holds nothing up
        is_ball = bool(rng.random() < 0.5) and not (i + 1 < count and stacked[i + 1])
        shape = "ball" if is_ball else "cube"
        size, density = params.size.sample(rng), params.density.sample(rng)
        restitution, friction = params.restitution.sample(rng), params.friction.sample(rng)
        angle, radius = rng.uniform(0, 2 * math.pi), spread.sample(rng)
        z = max(z, rim) + params.drop_height.sample(rng) + size
        x, y = radius * math.cos(angle), radius * math.sin(angle)
        if stacked[i]:
            # set on top of the one before (just clear of it), so that the two fall together
            offset, direction = params.stack_offset.sample(rng) * below[2], rng.uniform(0, 2 * math.pi)
            x, y = below[0] + offset * math.cos(direction), below[1] + offset * math.sin(direction)
            z = below[3] + below[2] + size + STACK_GAP
        below = (x, y, size, z)
        position = (round(x, 5), round(y, 5), round(z, 5))
        z += size + 0.02  # the next object starts above this one
        name = f"{color}_{shape}"
        mat = material(name, density, friction, restitution)
        geom = Geom(Sphere(size) if is_ball else Box((size, size, size)), material=mat, rgba=COLORS[color])
        bodies.append(Body(name, (geom,), Pose(position)))
        volume = 4 / 3 * math.pi * size**3 if is_ball else 8 * size**3
        objects.append(SceneObject(name, color, shape, size, density * volume, friction, restitution))
    camera = random_camera(rng, (0.0, 0.0, 0.1), 1.5, rng.uniform(-120, -60), 38.0)
    world = world_of(NAME, bodies, gravity, camera, rng)
    bounds = [-inner, inner, -inner, inner, rim]
    spec = SceneSpec(NAME, world, camera, objects,
                     latent={"gravity": round(gravity, 5), "container.inner_half_width": round(inner, 6),
                             "container.rim_height": round(rim, 6)},
                     units={"gravity": "m/s^2", "container.inner_half_width": "m", "container.rim_height": "m"},
                     facts={"container_color": colors[0], "bounds": [round(b, 6) for b in bounds]})
    spec.record_object_latents()
    return spec
