"""CLEVRER-style collisions on a table: a few objects slide and roll in, collide, leave."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from physforge.data.families.base import (Range, SceneObject, SceneSpec, check_params, gravity_of, material,
                                          pick_colors, random_camera, world_of, COLORS)
from physforge.world import Body, Box, Cylinder, Geom, Ground, Material, Pose, Sphere

NAME = "collisions"
SHAPES = ("sphere", "cube", "cylinder")


@dataclass(frozen=True)
class Params:
    """count: objects in training scenes; ood_count: in compositional test scenes.
    size: half size / radius, m. density: kg/m^3. speed: initial speed of moving objects, m/s
    (ood_speed for the parameter-extrapolation split). friction, restitution: coefficients.
    arena: half width of the square the objects start in, m. gravity: |g|, m/s^2."""

    count: Range = Range(2, 4)
    ood_count: Range = Range(5, 6)
    size: Range = Range(0.05, 0.08)
    density: Range = Range(400.0, 4000.0)
    speed: Range = Range(0.8, 1.8)
    ood_speed: Range = Range(2.4, 3.2)
    friction: Range = Range(0.05, 0.3)
    restitution: Range = Range(0.2, 0.9)
    arena: float = 0.5
    gravity: Range = Range(9.3, 10.3)
    ood_gravity: Range = Range(12.0, 15.0)

    def __post_init__(self):
        check_params(self)


def _volume(shape: str, size: float) -> float:
    return {"sphere": 4 / 3 * math.pi * size**3, "cube": 8 * size**3, "cylinder": math.pi * size**2 * 2 * size}[shape]


def _geom(shape: str, size: float, mat: Material, rgba) -> Geom:
    primitive = {"sphere": Sphere(size), "cube": Box((size, size, size)), "cylinder": Cylinder(size, size)}[shape]
    return Geom(primitive, material=mat, rgba=rgba)


def build(rng: np.random.Generator, params: Params, variant: str) -> SceneSpec:
    count = (params.ood_count if variant == "compositional" else params.count).sample_int(rng)
    gravity = gravity_of(rng, params, variant)
    colors = pick_colors(rng, count)
    positions: list[np.ndarray] = []
    sizes = [params.size.sample(rng) for _ in range(count)]
    for i in range(count):  # non-overlapping start positions
        for _ in range(200):
            p = rng.uniform(-params.arena, params.arena, size=2)
            if all(np.linalg.norm(p - q) > sizes[i] + sizes[j] + 0.08 for j, q in enumerate(positions)):
                break
        positions.append(p)
    moving = max(1, int(rng.integers(1, count + 1)))
    bodies, objects = [], []
    speed_range = params.ood_speed if variant == "params" else params.speed
    for i in range(count):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        size, density = sizes[i], params.density.sample(rng)
        friction, restitution = params.friction.sample(rng), params.restitution.sample(rng)
        name = f"{colors[i]}_{shape}"
        velocity = (0.0, 0.0, 0.0)
        if i < moving:  # aim at another object (with some spread) so that collisions happen
            target = positions[(i + 1 + int(rng.integers(count - 1))) % count] if count > 1 else np.zeros(2)
            direction = target - positions[i]
            angle = math.atan2(direction[1], direction[0]) + rng.normal(0.0, 0.12)
            speed = speed_range.sample(rng)
            velocity = (round(speed * math.cos(angle), 5), round(speed * math.sin(angle), 5), 0.0)
        mat = material(name, density, friction, restitution)
        bodies.append(Body(name, (_geom(shape, size, mat, COLORS[colors[i]]),),
                           Pose((round(float(positions[i][0]), 5), round(float(positions[i][1]), 5),
                                 round(size + 1e-4, 6))), velocity=velocity))
        objects.append(SceneObject(name, colors[i], shape, size, density * _volume(shape, size), friction, restitution))
    camera = random_camera(rng, (0.0, 0.0, 0.0), 2.3, -90.0, 42.0)
    table = Ground(half_size=(2.0, 2.0), material=Material("table", friction=(0.05, 0.005, 0.0001)))
    world = world_of(NAME, bodies, gravity, camera, rng, ground=table)
    spec = SceneSpec(NAME, world, camera, objects, latent={"gravity": round(gravity, 5)}, units={"gravity": "m/s^2"},
                     facts={"moving": [o.name for o in objects[:moving]]})
    spec.record_object_latents()
    return spec
