"""The physical world description: pure data, no simulator import.

    from physforge.world import World, Body, Geom, Sphere, Joint, Pose
    world = World(bodies=(Body("ball", (Geom(Sphere(0.05)),), Pose((0, 0, 1))),))
"""

from physforge.world.geometry import Box, Capsule, Cylinder, Mesh, Shape, Sphere, Voxels
from physforge.world.io import SCHEMA_VERSION, load_world, save_world, world_from_dict, world_to_dict
from physforge.world.model import (JOINT_TYPES, Actuator, Body, Camera, Geom, Ground, Inertial, Joint, Light, Material,
                                   Pose, World)
from physforge.world.paths import resolve_inside

__all__ = [
    "Box", "Capsule", "Cylinder", "Mesh", "Shape", "Sphere", "Voxels",
    "Actuator", "Body", "Camera", "Geom", "Ground", "Inertial", "Joint", "Light", "Material", "Pose", "World",
    "JOINT_TYPES", "SCHEMA_VERSION", "load_world", "save_world", "world_from_dict", "world_to_dict",
    "resolve_inside",
]
