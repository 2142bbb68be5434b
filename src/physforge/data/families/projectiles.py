"""Projectiles: balls launched from a height at an angle; they fly, land and bounce.

Closed form (no drag): the centre height is h + v sin(a) t - g t^2 / 2, so the ball of radius
r first touches the ground at t = (v sin a + sqrt((v sin a)^2 + 2 g (h - r))) / g.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from physforge.data.families.base import (COLORS, Range, SceneObject, SceneSpec, check_params, gravity_of, material,
                                          pick_colors, random_camera, world_of)
from physforge.world import Body, Geom, Pose, Sphere

NAME = "projectiles"


@dataclass(frozen=True)
class Params:
    """count: balls (ood_count: compositional). height: launch height of the centre, m. speed:
    m/s (ood_speed: extrapolation). angle: elevation, degrees. radius: m. restitution and
    density (kg/m^3) of each ball. gravity: |g|, m/s^2."""

    count: Range = Range(1, 2)
    ood_count: Range = Range(3, 3)
    height: Range = Range(0.3, 1.0)
    speed: Range = Range(0.8, 2.5)
    ood_speed: Range = Range(3.0, 4.0)
    angle: Range = Range(0.0, 60.0)
    radius: Range = Range(0.03, 0.05)
    restitution: Range = Range(0.1, 0.9)
    density: Range = Range(500.0, 3000.0)
    gravity: Range = Range(9.3, 10.3)
    ood_gravity: Range = Range(12.0, 15.0)

    def __post_init__(self):
        check_params(self)


def build(rng: np.random.Generator, params: Params, variant: str) -> SceneSpec:
    count = (params.ood_count if variant == "compositional" else params.count).sample_int(rng)
    gravity = gravity_of(rng, params, variant)
    colors = pick_colors(rng, count)
    bodies, objects, launches = [], [], {}
    for i in range(count):
        radius, height = params.radius.sample(rng), params.height.sample(rng)
        speed = (params.ood_speed if variant == "params" else params.speed).sample(rng)
        angle = math.radians(params.angle.sample(rng))
        restitution, density = params.restitution.sample(rng), params.density.sample(rng)
        name = f"{colors[i]}_ball"
        y = 0.25 * (i - 0.5 * (count - 1))
        velocity = (round(speed * math.cos(angle), 5), 0.0, round(speed * math.sin(angle), 5))
        mat = material(name, density, 0.5, restitution)
        bodies.append(Body(name, (Geom(Sphere(radius), material=mat, rgba=COLORS[colors[i]]),),
                           Pose((-0.6, round(y, 5), round(height, 5))), velocity=velocity))
        objects.append(SceneObject(name, colors[i], "ball", radius, density * 4 / 3 * math.pi * radius**3, 0.5,
                                   restitution))
        launches[name] = {"height": round(height, 5), "speed": speed, "angle": angle, "radius": radius,
                          "velocity": list(velocity)}
    camera = random_camera(rng, (0.1, 0.0, 0.35), 2.6, -90.0, 12.0, jitter_deg=6.0)
    world = world_of(NAME, bodies, gravity, camera, rng)
    spec = SceneSpec(NAME, world, camera, objects, latent={"gravity": round(gravity, 5)}, units={"gravity": "m/s^2"},
                     facts={"launches": launches})
    for name, launch in launches.items():
        for key, unit in (("speed", "m/s"), ("angle", "rad"), ("height", "m")):
            spec.latent[f"{name}.launch_{key}"] = round(float(launch[key]), 6)
            spec.units[f"{name}.launch_{key}"] = unit
    spec.record_object_latents()
    return spec
