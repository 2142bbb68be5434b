"""Ramps: blocks slide or stick and balls roll down an incline, depending on friction and angle.

A block on an incline of angle theta slides iff tan(theta) > mu, where mu is the larger of the
block's and the ramp's coefficients (MuJoCo's rule for a touching pair).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from physforge.data.families.base import (COLORS, Range, SceneObject, SceneSpec, check_params, gravity_of, material,
                                          pick_colors, random_camera, world_of)
from physforge.world import Body, Box, Geom, Joint, Pose, Sphere

NAME = "ramps"
RAMP_HALF_LENGTH = 0.6  # m
RAMP_HALF_THICKNESS = 0.02  # m


@dataclass(frozen=True)
class Params:
    """angle: incline, degrees. friction: sliding coefficient of objects and ramp (ood_friction
    for the parameter-extrapolation split). count: objects on the ramp (ood_count:
    compositional). size: half edge / radius, m. density: kg/m^3. gravity: |g|, m/s^2."""

    angle: Range = Range(12.0, 35.0)
    friction: Range = Range(0.1, 0.7)
    ood_friction: Range = Range(0.0, 0.05)
    count: Range = Range(1, 2)
    ood_count: Range = Range(3, 3)
    size: Range = Range(0.04, 0.06)
    density: Range = Range(500.0, 3000.0)
    ball_probability: float = 0.3
    gravity: Range = Range(9.3, 10.3)
    ood_gravity: Range = Range(12.0, 15.0)

    def __post_init__(self):
        check_params(self)


def build(rng: np.random.Generator, params: Params, variant: str) -> SceneSpec:
    angle = math.radians(params.angle.sample(rng))
    friction_range = params.ood_friction if variant == "params" else params.friction
    ramp_friction = friction_range.sample(rng) * 0.5
    count = (params.ood_count if variant == "compositional" else params.count).sample_int(rng)
    gravity = gravity_of(rng, params, variant)
    colors = pick_colors(rng, count + 1)
    # the ramp's top surface passes through (0, 0, top) and descends along +x
    top_height = 2 * RAMP_HALF_LENGTH * math.sin(angle) + 0.02
    centre = np.array([0.0, 0.0, top_height - RAMP_HALF_LENGTH * math.sin(angle)])
    normal = np.array([math.sin(angle), 0.0, math.cos(angle)])
    downhill = np.array([math.cos(angle), 0.0, -math.sin(angle)])
    centre_below = centre - normal * RAMP_HALF_THICKNESS
    ramp_pose = Pose.from_axis_angle(tuple(np.round(centre_below, 6)), (0, 1, 0), angle)
    ramp_material = material("ramp", 2000.0, ramp_friction, 0.0)
    bodies = [Body("ramp", (Geom(Box((RAMP_HALF_LENGTH + 0.05, 0.25, RAMP_HALF_THICKNESS)), material=ramp_material,
                                 rgba=COLORS[colors[0]][:3] + (1.0,)),), ramp_pose, Joint("fixed"))]
    objects = []
    lanes = np.linspace(-0.15, 0.15, count) if count > 1 else np.zeros(1)
    for i in range(count):
        is_ball = bool(rng.random() < params.ball_probability)
        shape = "sphere" if is_ball else "cube"
        size, density, friction = params.size.sample(rng), params.density.sample(rng), friction_range.sample(rng)
        color = colors[i + 1]
        name = f"{color}_{shape}"
        along = -RAMP_HALF_LENGTH + 0.12 + rng.uniform(0.0, 0.15)
        position = centre + downhill * along + normal * (size + 5e-4) + np.array([0.0, lanes[i], 0.0])
        mat = material(name, density, friction, 0.0)
        geom = Geom(Sphere(size) if is_ball else Box((size, size, size)), material=mat, rgba=COLORS[color])
        pose = Pose.from_axis_angle(tuple(np.round(position, 6)), (0, 1, 0), angle)
        bodies.append(Body(name, (geom,), pose))
        volume = 4 / 3 * math.pi * size**3 if is_ball else 8 * size**3
        objects.append(SceneObject(name, color, shape, size, density * volume, friction, 0.0))
    camera = random_camera(rng, (0.35, 0.0, 0.25), 2.2, -90.0, 22.0)
    world = world_of(NAME, bodies, gravity, camera, rng)
    spec = SceneSpec(NAME, world, camera, objects,
                     latent={"gravity": round(gravity, 5), "ramp.angle": round(angle, 6),
                             "ramp.friction": round(ramp_friction, 6)},
                     units={"gravity": "m/s^2", "ramp.angle": "rad", "ramp.friction": "1"},
                     facts={"angle": angle, "ramp_friction": ramp_friction, "ramp_color": colors[0],
                            "downhill": downhill.tolist()})
    spec.record_object_latents()
    return spec
