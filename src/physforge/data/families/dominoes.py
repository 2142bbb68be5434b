"""Domino chains: the first domino is tipped; gaps decide how far the chain runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physforge.data.families.base import (COLORS, Range, SceneObject, SceneSpec, check_params, gravity_of, material,
                                          pick_colors, random_camera, world_of)
from physforge.world import Body, Box, Geom, Pose

NAME = "dominoes"
HALF_THICKNESS, HALF_WIDTH = 0.008, 0.035  # m


@dataclass(frozen=True)
class Params:
    """count: dominoes (ood_count: compositional). height: half height, m. gap: centre spacing as
    a fraction of the full height (ood_gap: parameter extrapolation). push: initial angular
    speed of the first domino, rad/s. density: kg/m^3. friction: coefficient. gravity: m/s^2."""

    count: Range = Range(3, 5)
    ood_count: Range = Range(7, 8)
    height: Range = Range(0.06, 0.08)
    gap: Range = Range(0.4, 1.35)
    ood_gap: Range = Range(0.2, 0.3)
    push: Range = Range(2.0, 4.0)
    density: Range = Range(500.0, 1500.0)
    friction: Range = Range(0.4, 0.8)
    gravity: Range = Range(9.3, 10.3)
    ood_gravity: Range = Range(12.0, 15.0)

    def __post_init__(self):
        check_params(self)


def build(rng: np.random.Generator, params: Params, variant: str) -> SceneSpec:
    count = (params.ood_count if variant == "compositional" else params.count).sample_int(rng)
    gravity = gravity_of(rng, params, variant)
    colors = pick_colors(rng, count)
    half_height = params.height.sample(rng)
    x = 0.0
    bodies, objects = [], []
    for i in range(count):
        if i > 0:
            x += (params.ood_gap if variant == "params" else params.gap).sample(rng) * 2 * half_height
        density, friction = params.density.sample(rng), params.friction.sample(rng)
        name = f"{colors[i]}_domino"
        mat = material(name, density, friction, 0.0)
        # the first domino gets a tip about +y (top moves towards +x), pivoting on its front edge
        spin = (0.0, round(params.push.sample(rng), 4), 0.0) if i == 0 else (0.0, 0.0, 0.0)
        velocity = (round(spin[1] * half_height, 5), 0.0, 0.0) if i == 0 else (0.0, 0.0, 0.0)
        bodies.append(Body(name, (Geom(Box((HALF_THICKNESS, HALF_WIDTH, half_height)), material=mat,
                                       rgba=COLORS[colors[i]]),),
                           Pose((round(x, 6), 0.0, round(half_height + 2e-4, 6))), velocity=velocity,
                           angular_velocity=spin))
        volume = 8 * HALF_THICKNESS * HALF_WIDTH * half_height
        objects.append(SceneObject(name, colors[i], "domino", half_height, density * volume, friction, 0.0))
    camera = random_camera(rng, (0.5 * x, 0.0, half_height), 0.9 + 0.9 * x, -70.0, 25.0)
    world = world_of(NAME, bodies, gravity, camera, rng)
    spec = SceneSpec(NAME, world, camera, objects, latent={"gravity": round(gravity, 5)}, units={"gravity": "m/s^2"},
                     facts={"order": [o.name for o in objects]})
    spec.record_object_latents()
    return spec
