"""Articulated objects: a door on a hinge hit by a rolling ball and a drawer on a slide pushed
open against friction, built from world primitives, and chests of drawers from the asset
library (``physforge.assets``: procedural part meshes, joints with damping and friction)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from physforge.data.families.base import (COLORS, Range, SceneObject, SceneSpec, check_params, gravity_of, material,
                                          pick_colors, random_camera, world_of)
from physforge.world import Body, Box, Geom, Joint, Pose, Sphere

NAME = "articulated"
DRAWER_TRAVEL = 0.25  # m


@dataclass(frozen=True)
class Params:
    """door_probability: chance of a door scene (else a drawer). door_width: half width, m.
    door_damping: hinge damping, N m s/rad. door_friction: dry friction of the hinge, N m (without
    it every ball pushed every door past the question's 20 degrees, so "no" never occurred).
    ball_speed: m/s (ood_ball_speed: extrapolation).
    ball_density: kg/m^3. drawer_speed: initial opening speed, m/s. drawer_friction: dry
    friction of the slide, N. density: door/drawer density, kg/m^3. library_probability: chance of
    a chest of drawers from the asset library instead; library_drawer_speed: its drawer's
    opening speed, m/s. gravity: m/s^2. The drawer ranges put the dry-friction stopping distance
    v^2 m / (2 F) on both sides of the travel, also for a twice heavier drawer (the earlier ones
    sent ~80 % of drawers, and ~90 % of heavier ones, all the way open)."""

    door_probability: float = 0.5
    door_width: Range = Range(0.12, 0.2)
    door_damping: Range = Range(0.0, 0.03)
    door_friction: Range = Range(0.05, 1.5)
    ball_speed: Range = Range(0.8, 2.4)
    ood_ball_speed: Range = Range(2.5, 3.5)
    ball_density: Range = Range(500.0, 8000.0)
    drawer_speed: Range = Range(0.3, 1.1)
    drawer_friction: Range = Range(1.0, 9.0)
    density: Range = Range(300.0, 900.0)
    library_probability: float = 0.25
    library_drawer_speed: Range = Range(0.7, 2.6)
    ood_count: Range = Range(2, 2)
    gravity: Range = Range(9.3, 10.3)
    ood_gravity: Range = Range(12.0, 15.0)

    def __post_init__(self):
        check_params(self)


def _door(rng, params, variant, colors) -> tuple[list[Body], list[SceneObject], dict]:
    width, height, thick = params.door_width.sample(rng), 0.16, 0.01
    frame_material = material("frame", 1000.0, 0.5, 0.0)
    post = Body("frame", (Geom(Box((0.02, 0.02, height + 0.02)), Pose((0.0, -0.02, 0.0)), frame_material,
                               (0.35, 0.3, 0.25, 1.0)),), Pose((0.0, 0.0, height + 0.02)), Joint("fixed"))
    density = params.density.sample(rng)
    name = f"{colors[0]}_door"
    door_geom = Geom(Box((thick, width, height)), Pose((0.0, width + 0.005, 0.0)),
                     material(name, density, 0.4, 0.0), COLORS[colors[0]])
    damping = params.door_damping.sample(rng)
    friction = params.door_friction.sample(rng)
    door = Body(name, (door_geom,), Pose((0.0, 0.0, height + 0.005)),
                Joint("revolute", axis=(0, 0, 1), range=(-1.9, 1.9), damping=round(damping, 5),
                      frictionloss=round(friction, 4)))
    radius = rng.uniform(0.03, 0.05)
    speed = (params.ood_ball_speed if variant == "params" else params.ball_speed).sample(rng)
    ball_density = params.ball_density.sample(rng)
    ball_name = f"{colors[1]}_ball"
    hit_y = rng.uniform(0.3, 0.9) * 2 * width
    ball = Body(ball_name, (Geom(Sphere(radius), material=material(ball_name, ball_density, 0.3, 0.3),
                                 rgba=COLORS[colors[1]]),),
                Pose((-0.45, round(hit_y, 5), round(radius + 1e-4, 6))), velocity=(round(speed, 5), 0.0, 0.0))
    objects = [SceneObject(name, colors[0], "door", width, density * 8 * thick * width * height, 0.4, 0.0),
               SceneObject(ball_name, colors[1], "ball", radius, ball_density * 4 / 3 * math.pi * radius**3, 0.3, 0.3)]
    facts = {"kind": "door", "door": name, "ball": ball_name, "open_angle": math.radians(20.0)}
    return [post, door, ball], objects, {**facts, "damping": damping, "hinge_friction": round(friction, 4),
                                         "ball_speed": speed}


def _drawer(rng, params, colors) -> tuple[list[Body], list[SceneObject], dict]:
    half = (0.15, 0.14, 0.06)
    shell_material = material("cabinet", 1000.0, 0.3, 0.0)
    wood = (0.45, 0.35, 0.25, 1.0)
    shell = Body("cabinet", (
        Geom(Box((half[0], half[1], 0.01)), Pose((0, 0, 0.01)), shell_material, wood),
        Geom(Box((half[0], half[1], 0.01)), Pose((0, 0, 2 * half[2] + 0.05)), shell_material, wood),
        Geom(Box((half[0], 0.01, half[2] + 0.02)), Pose((0, half[1] + 0.01, half[2] + 0.02)), shell_material, wood),
        Geom(Box((half[0], 0.01, half[2] + 0.02)), Pose((0, -half[1] - 0.01, half[2] + 0.02)), shell_material, wood),
        Geom(Box((0.01, half[1], half[2] + 0.02)), Pose((-half[0] - 0.01, 0, half[2] + 0.02)), shell_material, wood),
    ), Pose((0.0, 0.0, 0.0)), Joint("fixed"))
    density = params.density.sample(rng)
    name = f"{colors[0]}_drawer"
    speed = params.drawer_speed.sample(rng)
    friction = params.drawer_friction.sample(rng)
    drawer = Body(name, (Geom(Box((half[0] - 0.01, half[1] - 0.015, half[2] - 0.01)),
                              material=material(name, density, 0.0, 0.0), rgba=COLORS[colors[0]]),),
                  Pose((0.0, 0.0, round(half[2] + 0.025, 5))),
                  Joint("prismatic", axis=(1, 0, 0), range=(0.0, DRAWER_TRAVEL), frictionloss=round(friction, 4),
                        initial_velocity=round(speed, 5)))
    volume = 8 * (half[0] - 0.01) * (half[1] - 0.015) * (half[2] - 0.01)
    objects = [SceneObject(name, colors[0], "drawer", half[0], density * volume, 0.0, 0.0)]
    return [shell, drawer], objects, {"kind": "drawer", "drawer": name, "travel": DRAWER_TRAVEL,
                                      "slide_friction": friction, "open_speed": speed}


def _library_drawer(rng, params) -> tuple[list[Body], list[SceneObject], dict]:
    """A chest of drawers from the asset library; its lowest drawer is pushed open."""
    from physforge.assets import build_asset, generate

    speed = params.library_drawer_speed.sample(rng)
    chest = build_asset(generate("drawer_chest", rng, seed=int(rng.integers(2**31)))).world
    drawer = next(b for b in chest.bodies if b.joint.type == "prismatic")
    bodies = [dataclasses.replace(b, joint=dataclasses.replace(b.joint, initial_velocity=round(speed, 5)))
              if b.name == drawer.name else b for b in chest.bodies]
    mass = drawer.inertial.mass if drawer.inertial is not None else float("nan")
    objects = [SceneObject(drawer.name, "wooden", "drawer", 0.0, mass, 0.0, 0.0)]
    return bodies, objects, {"kind": "drawer", "drawer": drawer.name, "travel": float(drawer.joint.range[1]),
                             "slide_friction": drawer.joint.frictionloss, "open_speed": speed, "library": True}


def build(rng: np.random.Generator, params: Params, variant: str) -> SceneSpec:
    gravity = gravity_of(rng, params, variant)
    colors = pick_colors(rng, 3)
    is_door = variant == "compositional" or rng.random() < params.door_probability
    if is_door:
        bodies, objects, facts = _door(rng, params, variant, colors)
        look = (0.0, 0.15, 0.12)
    elif rng.random() < params.library_probability:
        bodies, objects, facts = _library_drawer(rng, params)
        camera = random_camera(rng, (0.0, 0.1, 0.3), 2.0, rng.uniform(50, 130), 25.0)
        world = world_of(NAME, bodies, gravity, camera, rng)
        spec = SceneSpec(NAME, world, camera, objects, latent={"gravity": round(gravity, 5)},
                         units={"gravity": "m/s^2"}, facts=facts)
        spec.latent["drawer.slide_friction"], spec.units["drawer.slide_friction"] = facts["slide_friction"], "N"
        spec.latent["drawer.open_speed"], spec.units["drawer.open_speed"] = round(facts["open_speed"], 6), "m/s"
        spec.record_object_latents()
        return spec
    else:
        bodies, objects, facts = _drawer(rng, params, colors)
        look = (0.1, 0.0, 0.08)
    camera = random_camera(rng, look, 1.3, rng.uniform(-150, -110), 30.0)
    world = world_of(NAME, bodies, gravity, camera, rng)
    spec = SceneSpec(NAME, world, camera, objects, latent={"gravity": round(gravity, 5)}, units={"gravity": "m/s^2"},
                     facts=facts)
    if is_door:
        spec.latent["door.damping"], spec.units["door.damping"] = round(facts["damping"], 6), "N m s/rad"
        spec.latent["door.hinge_friction"], spec.units["door.hinge_friction"] = facts["hinge_friction"], "N m"
        spec.latent["ball.speed"], spec.units["ball.speed"] = round(facts["ball_speed"], 6), "m/s"
    else:
        spec.latent["drawer.slide_friction"], spec.units["drawer.slide_friction"] = round(facts["slide_friction"], 6), "N"
        spec.latent["drawer.open_speed"], spec.units["drawer.open_speed"] = round(facts["open_speed"], 6), "m/s"
    spec.record_object_latents()
    return spec
