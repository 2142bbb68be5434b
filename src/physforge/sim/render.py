"""Headless rendering of RGB, metric depth and instance segmentation, and writing clips.

The OpenGL backend is chosen by MUJOCO_GL before mujoco is imported (physforge.sim sets
``egl`` unless the user chose); OSMesa (``MUJOCO_GL=osmesa``) also works. There is one
renderer, ``SceneRenderer``, for single worlds and for generators that render thousands.
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


_GL_CONTEXTS: dict[tuple[int, int], object] = {}


def _gl_context(width: int, height: int):
    """The process's GL context for this image size, made current (created once: creating one
    costs more than rendering a short clip in software GL)."""
    key = (width, height)
    context = _GL_CONTEXTS.get(key)
    if context is None:
        from mujoco import gl_context

        context = gl_context.GLContext(width, height)
        _GL_CONTEXTS[key] = context
    context.make_current()
    return context


class SceneRenderer:
    """Renders a compiled world's current MjData from a named camera or a ``Camera``.

        renderer = SceneRenderer(sim.compiled, RenderConfig(128, 128))
        rgb = renderer.rgb(sim.data, "front")            # (H, W, 3) uint8
        depth = renderer.depth(sim.data, "front")        # (H, W) float32, m along the view axis
        ids = renderer.segmentation(sim.data, "front")   # (H, W) int32, 0 = background,
                                                         #   i + 1 = world.bodies[i]
        depth, ids = renderer.depth_segmentation(sim.data, "front")   # one pass for both

    One GL context per image size is shared by the whole process; ``bind(compiled)`` points
    the renderer at another world for ~10-20 ms (a data generator renders thousands of worlds).
    """

    def __init__(self, compiled: CompiledWorld | None = None, config: RenderConfig = RenderConfig()):
        self.config = config
        width, height = config.width, config.height
        self._context = None
        self.compiled: CompiledWorld | None = None
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._options = mujoco.MjvOption()
        self._options.geomgroup[HIDDEN_GEOM_GROUP] = 0
        self._perturb = mujoco.MjvPerturb()
        self._rgb = np.zeros((height, width, 3), dtype=np.uint8)
        self._depth = np.zeros((height, width), dtype=np.float32)
        if compiled is not None:
            self.bind(compiled)

    def bind(self, compiled: CompiledWorld) -> None:
        """Render ``compiled`` from now on (call once per world)."""
        _gl_context(self.config.width, self.config.height)
        self.release()
        model = compiled.model
        model.vis.quality.shadowsize = self.config.shadow_size if self.config.shadows else 0
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.config.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.config.height)
        # the smallest font atlas: the 150 % one costs ~0.3 s per world in software GL
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 4 * model.ngeom))
        self.compiled = compiled
        # geom id -> instance id (world body index + 1; 0 for the ground and other world geoms)
        self._instance_of_geom = np.concatenate([[0], compiled.geom_body_index + 1]).astype(np.int32)
        extent = model.stat.extent
        self._near, self._far = model.vis.map.znear * extent, model.vis.map.zfar * extent

    def release(self) -> None:
        """Free the bound world's render context (the GL context stays for the next world)."""
        if self._context is not None:
            self._context.free()
            self._context = None
            self.compiled = None

    def close(self) -> None:
        self.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _camera(self, camera: str | Camera) -> mujoco.MjvCamera:
        model = self.compiled.model
        if isinstance(camera, Camera):
            return free_camera(camera, model)
        index = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if index < 0:
            names = [c.name for c in self.compiled.world.cameras]
            raise ValueError(f"no camera named {camera!r}; the world has {names}")
        view = mujoco.MjvCamera()
        view.type = mujoco.mjtCamera.mjCAMERA_FIXED
        view.fixedcamid = index
        return view

    def _render(self, data: mujoco.MjData | None, camera: str | Camera, segment: bool) -> None:
        """Render ``data`` from ``camera``; data None: the scene of the previous call again (the
        same state and view drawn in the other mode)."""
        if self.compiled is None:
            raise RuntimeError("SceneRenderer.bind(compiled) must be called before rendering")
        _gl_context(self.config.width, self.config.height)
        model = self.compiled.model
        if data is not None:
            mujoco.mjv_updateScene(model, data, self._options, self._perturb, self._camera(camera),
                                   mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        flags = self._scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = int(self.config.shadows and not segment)
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(self.config.reflections and not segment)
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = int(segment)
        flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = int(segment)
        mujoco.mjr_render(self._viewport, self._scene, self._context)

    def rgb(self, data: mujoco.MjData, camera: str | Camera) -> np.ndarray:
        """(height, width, 3) uint8."""
        self._render(data, camera, segment=False)
        mujoco.mjr_readPixels(self._rgb, None, self._viewport, self._context)
        return np.flipud(self._rgb).copy()

    def depth_segmentation(self, data: mujoco.MjData, camera: str | Camera) -> tuple[np.ndarray, np.ndarray]:
        """``(depth (H, W) float32 m along the view axis, ids (H, W) int32)`` from one flat-colour
        pass: ids 0 = background and ground, i + 1 = world.bodies[i]."""
        self._render(data, camera, segment=True)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._viewport, self._context)
        return self._metric_depth(), self._instance_ids()

    def rgb_depth_segmentation(self, data: mujoco.MjData,
                               camera: str | Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rgb, depth, ids)`` as from ``rgb`` and ``depth_segmentation`` (the same pixels),
        with the scene built once for both passes."""
        rgb = self.rgb(data, camera)
        self._render(None, camera, segment=True)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._viewport, self._context)
        return rgb, self._metric_depth(), self._instance_ids()

    def depth(self, data: mujoco.MjData, camera: str | Camera) -> np.ndarray:
        """(height, width) float32, metres along the camera's viewing axis (z-depth)."""
        return self.depth_segmentation(data, camera)[0]

    def segmentation(self, data: mujoco.MjData, camera: str | Camera) -> np.ndarray:
        """(height, width) int32 instance ids: 0 background and ground, i + 1 for world.bodies[i]."""
        return self.depth_segmentation(data, camera)[1]

    def _metric_depth(self) -> np.ndarray:
        # MuJoCo renders with reversed Z: undo its projection in float64 (as mujoco.Renderer does)
        far, near = np.float32(self._far), np.float32(self._near)
        c = np.float32(-0.5) * (-(far + near) / (far - near)) - np.float32(0.5)
        d = np.float32(-0.5) * (-(np.float32(2) * far * near) / (far - near))
        depth = float(d) / (self._depth.astype(np.float64) + float(c))
        return np.flipud(depth).astype(np.float32)

    def _instance_ids(self) -> np.ndarray:
        # IDCOLOR paints each scene geom in colour (segid + 1); 0 is the background
        raw = self._rgb
        code = raw[..., 0].astype(np.int32)
        code |= raw[..., 1].astype(np.int32) << 8
        code |= raw[..., 2].astype(np.int32) << 16
        lookup = np.zeros(self._scene.ngeom + 2, dtype=np.int32)
        geom_type = int(mujoco.mjtObj.mjOBJ_GEOM)
        for i in range(self._scene.ngeom):
            geom = self._scene.geoms[i]
            if geom.segid >= 0 and geom.objtype == geom_type and geom.segid + 1 < len(lookup):
                lookup[geom.segid + 1] = self._instance_of_geom[geom.objid + 1]
        # codes past the table (none expected) read as background, as the last entry is 0
        np.minimum(code, len(lookup) - 1, out=code)
        return np.ascontiguousarray(np.flipud(lookup[code]))


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
