"""A renderer for many worlds in a row: one OpenGL context per process, re-bound per world.

``SceneRenderer`` creates a GL context and a full MuJoCo render context (with 150 % fonts)
per world, which costs ~0.3-0.4 s in software GL: more than simulating and rendering a short
clip. A data generator renders thousands of small worlds, so this module keeps one context
per process and per image size, builds only a small-font ``MjrContext`` per world (~10-20 ms),
and reads depth and segmentation from the same flat-colour pass.

    frames = FrameRenderer(256, 256)
    frames.bind(sim.compiled)                            # once per world
    rgb = frames.rgb(sim.data, camera)                   # (H, W, 3) uint8
    depth, ids = frames.depth_segmentation(sim.data, camera)
    # depth (H, W) float32 m along the view axis; ids (H, W) int32, 0 = background, i + 1 = bodies[i]
"""

from __future__ import annotations

import mujoco
import numpy as np

from physforge.sim.compile import CompiledWorld
from physforge.sim.render import MAX_RENDER_SIZE, free_camera
from physforge.sim.simulator import HIDDEN_GEOM_GROUP
from physforge.world import Camera

_CONTEXTS: dict[tuple[int, int], object] = {}


def _gl_context(width: int, height: int):
    """The process's GL context for this image size, made current (created once)."""
    key = (width, height)
    context = _CONTEXTS.get(key)
    if context is None:
        from mujoco import gl_context

        context = gl_context.GLContext(width, height)
        _CONTEXTS[key] = context
    context.make_current()
    return context


class FrameRenderer:
    """Renders RGB + metric depth and instance segmentation of whichever world is bound.

    width, height: pixels. Shadows and reflections are off (software GL renders ~10x faster).
    The GL context is shared by every FrameRenderer of the same size in the process.
    """

    def __init__(self, width: int, height: int):
        for name, value in (("width", width), ("height", height)):
            if not isinstance(value, int) or not 1 <= value <= MAX_RENDER_SIZE:
                raise ValueError(f"FrameRenderer {name} must be an integer in [1, {MAX_RENDER_SIZE}], got {value!r}")
        self.width, self.height = width, height
        self._context = None
        self._compiled: CompiledWorld | None = None
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._options = mujoco.MjvOption()
        self._options.geomgroup[HIDDEN_GEOM_GROUP] = 0
        self._perturb = mujoco.MjvPerturb()
        self._rgb = np.zeros((height, width, 3), dtype=np.uint8)
        self._depth = np.zeros((height, width), dtype=np.float32)

    def bind(self, compiled: CompiledWorld) -> None:
        """Prepare to render ``compiled`` (call once per world, before rendering its data)."""
        _gl_context(self.width, self.height)
        self.release()
        model = compiled.model
        model.vis.quality.shadowsize = 0
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 4 * model.ngeom))
        self._compiled = compiled
        self._instance_of_geom = np.concatenate([[0], compiled.geom_body_index + 1]).astype(np.int32)
        extent = model.stat.extent
        self._near, self._far = model.vis.map.znear * extent, model.vis.map.zfar * extent

    def release(self) -> None:
        """Free the bound world's render context (the GL context stays for the next world)."""
        if self._context is not None:
            self._context.free()
            self._context = None
            self._compiled = None

    def close(self) -> None:
        self.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _render(self, data: mujoco.MjData, camera: Camera, segment: bool) -> None:
        if self._compiled is None:
            raise RuntimeError("FrameRenderer.bind(compiled) must be called before rendering")
        _gl_context(self.width, self.height)
        model = self._compiled.model
        view = free_camera(camera, model)
        mujoco.mjv_updateScene(model, data, self._options, self._perturb, view, mujoco.mjtCatBit.mjCAT_ALL,
                               self._scene)
        flags = self._scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = int(segment)
        flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = int(segment)
        mujoco.mjr_render(self._viewport, self._scene, self._context)

    def rgb(self, data: mujoco.MjData, camera: Camera) -> np.ndarray:
        """(H, W, 3) uint8."""
        self._render(data, camera, segment=False)
        mujoco.mjr_readPixels(self._rgb, None, self._viewport, self._context)
        return np.flipud(self._rgb).copy()

    def depth_segmentation(self, data: mujoco.MjData, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
        """``(depth (H, W) float32 m along the view axis, ids (H, W) int32)`` from one flat-colour
        pass (as mujoco.Renderer renders depth): ids 0 = background and ground, i + 1 = bodies[i]."""
        self._render(data, camera, segment=True)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._viewport, self._context)
        return self._metric_depth(), self._instance_ids()

    def _metric_depth(self) -> np.ndarray:
        # MuJoCo renders with reversed Z: undo its projection in float64 (as mujoco.Renderer does)
        far, near = np.float32(self._far), np.float32(self._near)
        c = np.float32(-0.5) * (-(far + near) / (far - near)) - np.float32(0.5)
        d = np.float32(-0.5) * (-(np.float32(2) * far * near) / (far - near))
        depth = float(d) / (self._depth.astype(np.float64) + float(c))
        return np.flipud(depth).astype(np.float32)

    def _instance_ids(self) -> np.ndarray:
        raw = np.flipud(self._rgb).astype(np.int64)
        # IDCOLOR paints each scene geom in colour (segid + 1); 0 is the background
        code = raw[..., 0] + raw[..., 1] * 256 + raw[..., 2] * 65536
        lookup = np.zeros(self._scene.ngeom + 2, dtype=np.int32)
        geom_type = int(mujoco.mjtObj.mjOBJ_GEOM)
        for i in range(self._scene.ngeom):
            geom = self._scene.geoms[i]
            if geom.segid >= 0 and geom.objtype == geom_type and geom.segid + 1 < len(lookup):
                lookup[geom.segid + 1] = self._instance_of_geom[geom.objid + 1]
        out = np.where(code < len(lookup), lookup[np.clip(code, 0, len(lookup) - 1)], 0)
        return out.astype(np.int32)
