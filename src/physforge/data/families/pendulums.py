"""Pendulums and springs: hinged bobs swing (period 2 pi sqrt(L / g) for small angles, whatever
the mass), masses on springs oscillate (period 2 pi sqrt(m / k)); a bob may knock a block."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from physforge.data.families.base import (COLORS, Range, SceneObject, SceneSpec, check_params, gravity_of, material,
                                          pick_colors, random_camera, world_of)
from physforge.world import Body, Box, Capsule, Geom, Joint, Pose, Sphere

NAME = "pendulums"
PIVOT_HEIGHT = 0.75  # m


@dataclass(frozen=True)
class Params:
    """length: pendulum length, m (ood_length: extrapolation). angle: release angle, degrees.
    bob: bob radius, m. density: kg/m^3. stiffness: spring constant, N/m. slider_density: kg/m^3. stretch: initial
    spring extension, m. spring_probability: chance that the second oscillator is a spring.
    block_probability: chance of a block in the first bob's path. gravity: m/s^2."""

    length: Range = Range(0.25, 0.6)
    ood_length: Range = Range(0.12, 0.18)
    angle: Range = Range(15.0, 60.0)
    bob: Range = Range(0.03, 0.045)
    density: Range = Range(1000.0, 8000.0)
    stiffness: Range = Range(8.0, 40.0)
    slider_density: Range = Range(500.0, 2000.0)
    stretch: Range = Range(0.05, 0.12)
    spring_probability: float = 0.4
    block_probability: float = 0.5
    ood_count: Range = Range(3, 3)
    gravity: Range = Range(9.3, 10.3)
    ood_gravity: Range = Range(12.0, 15.0)

    def __post_init__(self):
        check_params(self)


def _pendulum(name, color, y, length, angle, radius, density) -> tuple[Body, float]:
    mat = material(name, density, 0.5, 0.3)
    rod = Geom(Capsule(0.005, 0.5 * length), Pose((0.0, 0.0, 0.5 * length)), material=material(f"{name}_rod", 50.0,
                                                                                                  0.5, 0.0),
               rgba=(0.3, 0.3, 0.3, 1.0))
    bob = Geom(Sphere(radius), material=mat, rgba=COLORS[color])
    # the body origin is the bob's centre; the hinge sits `length` above it
    body = Body(name, (bob, rod), Pose((0.0, round(y, 5), round(PIVOT_HEIGHT - length, 6))),
                Joint("revolute", axis=(0, 1, 0), pivot=(0.0, 0.0, length), initial_position=round(-angle, 6)))
    return body, density * 4 / 3 * math.pi * radius**3


def build(rng: np.random.Generator, params: Params, variant: str) -> SceneSpec:
    count = params.ood_count.sample_int(rng) if variant == "compositional" else 2
    gravity = gravity_of(rng, params, variant)
    colors = pick_colors(rng, count + 1)
    bodies, objects, kinds = [], [], {}
    for i in range(count):
        color = colors[i]
        y = 0.3 * (i - 0.5 * (count - 1))
        if i == 1 and rng.random() < params.spring_probability:
            name = f"{color}_slider"
            size = params.bob.sample(rng)
            density = params.slider_density.sample(rng)
            stiffness, stretch = params.stiffness.sample(rng), params.stretch.sample(rng)
            mat = material(name, density, 0.0, 0.0)
            bodies.append(Body(name, (Geom(Box((size, size, size)), material=mat, rgba=COLORS[color]),),
                               Pose((0.0, round(y, 5), 0.35)),
                               Joint("prismatic", axis=(1, 0, 0), stiffness=round(stiffness, 4),
                                     initial_position=round(stretch, 5), damping=0.01)))
            mass = density * 8 * size**3
            objects.append(SceneObject(name, color, "slider", size, mass, 0.0, 0.0))
            kinds[name] = {"kind": "spring", "stiffness": stiffness, "period": 2 * math.pi * math.sqrt(mass / stiffness)}
            continue
        name = f"{color}_pendulum"
        length = (params.ood_length if variant == "params" else params.length).sample(rng)
        radius, density = params.bob.sample(rng), params.density.sample(rng)
        body, mass = _pendulum(name, color, y, length, math.radians(params.angle.sample(rng)), radius, density)
        bodies.append(body)
        objects.append(SceneObject(name, color, "pendulum", radius, mass, 0.5, 0.3))
        kinds[name] = {"kind": "pendulum", "length": length,
                       "period_small_angle": 2 * math.pi * math.sqrt(length / gravity)}
    facts = {"oscillators": kinds}
    first = bodies[0]
    if rng.random() < params.block_probability:
        color = colors[-1]
        half = rng.uniform(0.03, 0.05)
        bob_z = first.pose.position[2]
        height = 0.5 * (bob_z + rng.uniform(0.0, 0.03))  # half height: the top is level with the bob
        # the bob is released on the +x side and swings through x = 0 towards -x
        block_x = -round(float(0.045 + 0.002 + half + rng.uniform(0.0, 0.02)), 5)
        name = f"{color}_block"
        density = rng.uniform(200.0, 1500.0)
        mat = material(name, density, 0.6, 0.0)
        bodies.append(Body(name, (Geom(Box((half, half, height)), material=mat, rgba=COLORS[color]),),
                           Pose((block_x, first.pose.position[1], round(height + 2e-4, 5)))))
        objects.append(SceneObject(name, color, "block", half, density * 8 * half * half * height, 0.6, 0.0))
        facts["block"] = name
    camera = random_camera(rng, (0.0, 0.0, 0.4), 2.0, -90.0, 10.0, jitter_deg=8.0)
    world = world_of(NAME, bodies, gravity, camera, rng)
    spec = SceneSpec(NAME, world, camera, objects, latent={"gravity": round(gravity, 5)}, units={"gravity": "m/s^2"},
                     facts=facts)
    for name, info in kinds.items():
        if info["kind"] == "pendulum":
            spec.latent[f"{name}.length"] = round(info["length"], 6)
            spec.units[f"{name}.length"] = "m"
        else:
            spec.latent[f"{name}.stiffness"] = round(info["stiffness"], 6)
            spec.units[f"{name}.stiffness"] = "N/m"
    spec.record_object_latents()
    return spec
