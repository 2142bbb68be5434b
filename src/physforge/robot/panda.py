"""The Franka Panda from ``pybullet_data`` (offline), brought in through physforge's own URDF
importer, with named joints, a grasp point and gripper commands.

Only the wrist, hand and fingers collide (the arm links are visual): the tasks touch objects
with the hand, and skipping arm self-contacts keeps the scene fast and free of spurious
contacts between the crude convex hulls of neighbouring links.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physforge.errors import MissingDependencyError
from physforge.world import Pose

ARM_JOINTS = tuple(f"panda_link{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_leftfinger", "panda_rightfinger")
HAND_BODY = "panda_link7"
#: Grasp point: between the fingertips, in the panda_grasptarget link frame (URDF).
GRASP_LINK = "panda_grasptarget"
COLLISION_LINKS = ("panda_link7", "panda_hand", "panda_leftfinger", "panda_rightfinger")
#: Finger opening per finger, m (0 = closed, 0.04 = open).
FINGER_OPEN = 0.04
FINGER_CLOSED = 0.0
#: A comfortable home configuration, rad: hand above the table, fingers pointing down.
HOME = (0.0, -0.3, 0.0, -2.2, 0.0, 1.9, math.pi / 4)


def panda_urdf_path() -> Path:
    try:
        import pybullet_data
    except ImportError:
        raise MissingDependencyError("pybullet (for pybullet_data's Franka Panda URDF)", "assets") from None
    path = Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from pybullet_data; reinstall pybullet")
    return path


@dataclass(frozen=True)
class PandaModel:
    """The Panda's bodies and actuators (``fragment``), and where its grasp point is:
    ``grasp_offset`` (3,) m in the ``HAND_BODY`` frame, ``grasp_rotation`` (3, 3) hand-from-grasp."""

    fragment: object
    grasp_offset: np.ndarray
    grasp_rotation: np.ndarray


@functools.lru_cache(maxsize=4)
def load_panda(base_position: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> PandaModel:
    """The Panda (cached per base position, m, world; the base faces +x)."""
    from physforge.assets.robot_urdf import RobotUrdfConfig, import_robot_urdf

    config = RobotUrdfConfig(base_pose=Pose(base_position), collision_links=COLLISION_LINKS)
    fragment = import_robot_urdf(panda_urdf_path(), config)
    body, transform = fragment.link_frames[GRASP_LINK]
    if body != HAND_BODY:
        raise RuntimeError(f"the grasp link folded into {body}, expected {HAND_BODY}; the URDF changed")
    return PandaModel(fragment=fragment, grasp_offset=transform[:3, 3].copy(), grasp_rotation=transform[:3, :3].copy())
