"""Simulation and rendering of a ``physforge.world.World`` with MuJoCo.

This is the only package that imports mujoco. Headless rendering uses EGL unless MUJOCO_GL
is already set (``osmesa`` works too).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

from physforge.sim.compile import CompiledWorld, CompileError, compile_world, restitution_solref  # noqa: E402
from physforge.sim.export import ExportError, export_mjcf  # noqa: E402
from physforge.sim.render import (RenderConfig, SceneRenderer, default_camera, write_png,  # noqa: E402
                                  write_video)
from physforge.sim.simulator import Rollout, Simulator, Snapshot  # noqa: E402
from physforge.sim.trajectory import Trajectory  # noqa: E402

import mujoco as _mujoco  # noqa: E402

#: The MuJoCo release physforge is simulating with (recorded beside every output).
MUJOCO_VERSION = _mujoco.__version__

__all__ = [
    "CompiledWorld", "CompileError", "compile_world", "restitution_solref", "ExportError", "export_mjcf",
    "RenderConfig", "SceneRenderer", "default_camera", "write_png", "write_video",
    "Rollout", "Simulator", "Snapshot", "Trajectory", "MUJOCO_VERSION",
]
