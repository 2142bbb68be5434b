"""Towers: blocks stacked with random offsets; some stand, some fall."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from physforge.data.families.base import (COLORS, Range, SceneObject, SceneSpec, check_params, gravity_of, material,
                                          pick_colors, random_camera, world_of)
from physforge.world import Body, Box, Geom, Pose

NAME = "towers"


@dataclass(frozen=True)
class Params:
    """count: blocks (ood_count: compositional). size: block half edge, m. offset: horizontal
    offset of each block from the one below, as a fraction of the half edge (1 = centre over
    the edge). density: kg/m^3. friction: coefficient. gravity: |g|, m/s^2."""

    count: Range = Range(2, 4)
    ood_count: Range = Range(5, 6)
    size: Range = Range(0.04, 0.06)
    offset: Range = Range(0.0, 1.4)
    density: Range = Range(300.0, 2000.0)
    ood_density: Range = Range(6000.0, 9000.0)
    friction: Range = Range(0.5, 0.9)
    gravity: Range = Range(9.3, 10.3)
    ood_gravity: Range = Range(12.0, 15.0)

    def __post_init__(self):
        check_params(self)


def build(rng: np.random.Generator, params: Params, variant: str) -> SceneSpec:
    count = (params.ood_count if variant == "compositional" else params.count).sample_int(rng)
    gravity = gravity_of(rng, params, variant)
    colors = pick_colors(rng, count)
    size = params.size.sample(rng)
    direction = rng.uniform(0, 2 * math.pi)
    axis = np.array([math.cos(direction), math.sin(direction)])
    xy = np.zeros(2)
    z = 0.0
    bodies, objects = [], []
    for i in range(count):
        if i > 0:
            xy = xy + axis * params.offset.sample(rng) * size * rng.choice([1.0, 1.0, -0.5])
        half = size * rng.uniform(0.9, 1.1)
        z += half
        density = (params.ood_density if variant == "params" else params.density).sample(rng)
        friction = params.friction.sample(rng)
        name = f"{colors[i]}_block"
        mat = material(name, density, friction, 0.0)
        bodies.append(Body(name, (Geom(Box((half, half, half)), material=mat, rgba=COLORS[colors[i]]),),
                           Pose((round(float(xy[0]), 6), round(float(xy[1]), 6), round(z + 2e-4 * (i + 1), 6)))))
        objects.append(SceneObject(name, colors[i], "block", half, density * 8 * half**3, friction, 0.0))
        z += half
    camera = random_camera(rng, (0.0, 0.0, 0.5 * z), 1.4 + 0.8 * z, rng.uniform(-150, -30), 20.0)
    world = world_of(NAME, bodies, gravity, camera, rng)
    spec = SceneSpec(NAME, world, camera, objects, latent={"gravity": round(gravity, 5)}, units={"gravity": "m/s^2"},
                     facts={"blocks": [o.name for o in objects], "fall_distance": 0.6 * size})
    spec.record_object_latents()
    return spec
