"""Headless rendering of RGB, metric depth and instance segmentation, and writing clips.

The OpenGL backend is chosen by MUJOCO_GL before mujoco is imported (physforge.sim sets
``egl`` unless the user chose); OSMesa (``MUJOCO_GL=osmesa``) also works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from physforge.sim.compile import CompiledWorld
from physforge.sim.simulator import HIDDEN_GEOM_GROUP
from physforge.world import Camera, World

MAX_RENDER_SIZE = 4096


@dataclass(frozen=True)
class RenderConfig:
    """width, height: pixels. shadows/reflections: off by default, as software GL renders
    ~10x faster without them. shadow_size: shadow map edge in pixels when shadows are on."""

    width: int = 256
    height: int = 256
    shadows: bool = False
    reflections: bool = False
    shadow_size: int = 1024

    def __post_init__(self):
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_RENDER_SIZE:
                raise ValueError(f"RenderConfig.{name} must be an integer in [1, {MAX_RENDER_SIZE}], got {value!r}")


class SceneRenderer:
    """Renders a compiled world's current MjData from a named camera or a ``Camera``.

        renderer = SceneRenderer(sim.compiled, RenderConfig(128, 128))
        rgb = renderer.rgb(sim.data, "front")            # (H, W, 3) uint8
        depth = renderer.depth(sim.data, "front")        # (H, W) float32, m along the view axis
        ids = renderer.segmentation(sim.data, "front")   # (H, W) int32, 0 = background,
                                                         #   i + 1 = world.bodies[i]
    """

    def __init__(self, compiled: CompiledWorld, config: RenderConfig = RenderConfig()):
        self.compiled = compiled
        self.config = config
        model = compiled.model
        model.vis.quality.shadowsize = config.shadow_size if config.shadows else 0
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, config.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, config.height)
        # the smallest font atlas: building the 150 % one costs ~0.3 s per world in software GL
        self._renderer = mujoco.Renderer(model, height=config.height, width=config.width,
                                         font_scale=mujoco.mjtFontScale.mjFONTSCALE_50)
        self._options = mujoco.MjvOption()
        self._options.geomgroup[HIDDEN_GEOM_GROUP] = 0
        # geom id -> instance id (world body index + 1; 0 for the ground and other world geoms)
        self._instance_of_geom = np.concatenate([[0], compiled.geom_body_index + 1]).astype(np.int32)

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _update(self, data: mujoco.MjData, camera: str | Camera) -> None:
        self._renderer.update_scene(data, camera=self._camera(camera), scene_option=self._options)
        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = int(self.config.shadows)
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(self.config.reflections)

    def _camera(self, camera: str | Camera):
        if isinstance(camera, Camera):
            return free_camera(camera, self.compiled.model)
        if mujoco.mj_name2id(self.compiled.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            names = [c.name for c in self.compiled.world.cameras]
            raise ValueError(f"no camera named {camera!r}; the world has {names}")
        return camera

    def rgb(self, data: mujoco.MjData, camera: str | Camera) -> np.ndarray:
        """(height, width, 3) uint8."""
        self._update(data, camera)
        return self._renderer.render().copy()

    def depth(self, data: mujoco.MjData, camera: str | Camera) -> np.ndarray:
        """(height, width) float32, metres along the camera's viewing axis (z-depth)."""
        self._renderer.enable_depth_rendering()
        try:
            self._update(data, camera)
            return self._renderer.render().astype(np.float32)
        finally:
            self._renderer.disable_depth_rendering()

    def segmentation(self, data: mujoco.MjData, camera: str | Camera) -> np.ndarray:
        """(height, width) int32 instance ids: 0 background and ground, i + 1 for world.bodies[i]."""
        self._renderer.enable_segmentation_rendering()
        try:
            self._update(data, camera)
            raw = self._renderer.render()
        finally:
            self._renderer.disable_segmentation_rendering()
        ids, types = raw[..., 0], raw[..., 1]
        is_geom = (types == int(mujoco.mjtObj.mjOBJ_GEOM)) & (ids >= 0)
        return np.where(is_geom, self._instance_of_geom[np.clip(ids, -1, None) + 1], 0).astype(np.int32)


def free_camera(camera: Camera, model: mujoco.MjModel) -> mujoco.MjvCamera:
    """A MuJoCo free camera placed like ``camera`` (fovy comes from the model's visual settings)."""
    offset = np.subtract(camera.position, camera.look_at)
    distance = float(np.linalg.norm(offset))
    view = mujoco.MjvCamera()
    view.type = mujoco.mjtCamera.mjCAMERA_FREE
    view.lookat[:] = camera.look_at
    view.distance = distance
    view.azimuth = math.degrees(math.atan2(-offset[1], -offset[0]))
    view.elevation = math.degrees(math.asin(-offset[2] / distance))
    model.vis.global_.fovy = math.degrees(camera.fovy)
    return view


def default_camera(world: World) -> Camera:
    """A camera that frames every body from the front, a little above."""
    centres = []
    for body in world.bodies:
        if body.parent is None:
            centres.append(body.pose.position)
    centre = np.mean(centres, axis=0) if centres else np.zeros(3)
    spread = float(np.max(np.ptp(np.array(centres), axis=0))) if len(centres) > 1 else 0.5
    distance = max(1.5, 2.2 * spread + 0.8)
    position = centre + distance * np.array([0.0, -0.85, 0.45])
    return Camera("default", position=tuple(position), look_at=tuple(centre))


def write_video(frames: list[np.ndarray] | np.ndarray, path: str | Path, fps: float) -> Path:
    """Write RGB frames (n, H, W, 3) uint8 to ``.mp4`` (H.264 via imageio-ffmpeg) or ``.gif``.

    Written to a temporary name first, so a crash never leaves a truncated clip behind.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"video path must end in .mp4 or .gif, got {path.name}")
    frames = np.asarray(frames)
    temporary = path.with_name(f".{path.stem}.tmp{suffix}")
    if suffix == ".mp4":
        import imageio.v2 as imageio

        even = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]  # H.264 needs even sizes
        with imageio.get_writer(temporary, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1,
                                pixelformat="yuv420p") as writer:
            for frame in even:
                writer.append_data(frame)
    else:
        import imageio.v3 as iio

        iio.imwrite(temporary, frames, duration=1000.0 / fps, loop=0)
    temporary.replace(path)
    return path


def write_png(image: np.ndarray, path: str | Path) -> Path:
    import imageio.v3 as iio

    path = Path(path)
    temporary = path.with_name(f".{path.stem}.tmp.png")
    iio.imwrite(temporary, image)
    temporary.replace(path)
    return path
