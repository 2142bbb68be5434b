"""Given poses of free bodies (not simulated: predicted, edited or replayed), measure and render them.

A trajectory generator outputs body poses frame by frame; to check it against physics we need,
for each frame, how far each body is from everything else (penetration is a negative distance,
free flight a clear margin) and images of the posed scene. Nothing here steps the physics.

    probe = BodyPoseProbe(world, ("red_ball",))
    gap = probe.clearance(positions)                     # (n_frames, 1) m, < 0 = interpenetration
    ids = probe.render(positions, kind="segmentation")   # (n_frames, H, W) int32, i + 1 = world body i
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from physforge.sim.compile import compile_world, initial_state
from physforge.world import World

#: m, distances are reported up to this far (further is "clear")
DEFAULT_MAX_DISTANCE = 1.0


class BodyPoseProbe:
    """Places free ``bodies`` of ``world`` at given poses and measures or renders the result.

    bodies: names of free-joint bodies whose poses are given; every other body keeps its
    initial pose. Arrays: positions (n_frames, n_bodies, 3) float m, world frame, body origin;
    quaternions (n_frames, n_bodies, 4) (w, x, y, z) or None (keep each body's initial orientation).
    """

    def __init__(self, world: World, bodies: Sequence[str]):
        self.compiled = compile_world(world)
        self.world = world
        self.model = self.compiled.model
        self.data = mujoco.MjData(self.model)

        self.data.qpos[:], self.data.qvel[:] = initial_state(self.compiled)
        mujoco.mj_forward(self.model, self.data)
        self.bodies = tuple(bodies)
        self._qpos_address = []
        for name in self.bodies:
            try:
                body = world.body(name)
            except (KeyError, ValueError):
                raise ValueError(f"BodyPoseProbe bodies: no body named {name!r}; expected one of "
                                 f"{[b.name for b in world.bodies]}") from None
            if body.joint.type != "free":
                raise ValueError(f"BodyPoseProbe bodies: '{name}' has a {body.joint.type} joint; only free bodies can be "
                                 "placed")
            self._qpos_address.append(int(self.model.joint(name).qposadr[0]))
        self._initial_qpos = self.data.qpos.copy()
        model = self.model
        collides = (model.geom_contype | model.geom_conaffinity) != 0
        index = self.compiled.geom_body_index
        self._own_geoms = [np.flatnonzero(collides & (index == world.body_index(n))) for n in self.bodies]
        self._other_geoms = [np.flatnonzero(collides & (index != world.body_index(n))) for n in self.bodies]
        self._fromto = np.zeros(6)

    @property
    def masses(self) -> np.ndarray:
        """(n_bodies,) float64 kg of the probed bodies."""
        return np.array([self.model.body_mass[self.compiled.body_id(n)] for n in self.bodies])

    def place(self, positions: np.ndarray, quaternions: np.ndarray | None = None) -> None:
        """Put the probed bodies at one frame's poses: positions (n_bodies, 3), quaternions (n_bodies, 4)."""
        qpos = self.data.qpos
        qpos[:] = self._initial_qpos
        for i, address in enumerate(self._qpos_address):
            qpos[address:address + 3] = positions[i]
            if quaternions is not None:
                q = np.asarray(quaternions[i], dtype=float)
                qpos[address + 3:address + 7] = q / np.linalg.norm(q)
        mujoco.mj_kinematics(self.model, self.data)

    def _check(self, positions: np.ndarray, quaternions: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        positions = np.asarray(positions, dtype=float)
        if positions.ndim != 3 or positions.shape[1:] != (len(self.bodies), 3):
            raise ValueError(f"positions: expected shape (n_frames, {len(self.bodies)}, 3), got {positions.shape}")
        if not np.all(np.isfinite(positions)):
            raise ValueError("positions: holds NaN or infinite values")
        if quaternions is not None:
            quaternions = np.asarray(quaternions, dtype=float)
            if quaternions.shape != positions.shape[:2] + (4,):
                raise ValueError(f"quaternions: expected shape {positions.shape[:2] + (4,)}, got {quaternions.shape}")
        return positions, quaternions

    def clearance(self, positions: np.ndarray, quaternions: np.ndarray | None = None,
                  max_distance: float = DEFAULT_MAX_DISTANCE) -> np.ndarray:
        """(n_frames, n_bodies) float64 m: signed distance from each probed body to the nearest other
        colliding geom (ground, static bodies, other bodies), capped at ``max_distance``; negative
        means interpenetration by that depth."""
        positions, quaternions = self._check(positions, quaternions)
        out = np.full(positions.shape[:2], float(max_distance))
        for frame in range(len(positions)):
            self.place(positions[frame], None if quaternions is None else quaternions[frame])
            for i in range(len(self.bodies)):
                best = float(max_distance)
                for g1 in self._own_geoms[i]:
                    for g2 in self._other_geoms[i]:
                        d = mujoco.mj_geomDistance(self.model, self.data, int(g1), int(g2), best, self._fromto)
                        best = min(best, d)
                out[frame, i] = best
        return out

    def support(self, max_distance: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
        """What each probed body rests on at the world's initial poses: (normals, friction).

        normals: (n_bodies, 3) float64, the unit normal of the surface it rests on, pointing from
        that surface toward the body (world frame); zero when no other colliding geom is within
        ``max_distance`` m. Of several touching surfaces the one facing most against gravity
        (the floor rather than a neighbour's side) is taken. friction: (n_bodies,) float64, the
        sliding friction MuJoCo uses on that contact (the larger of the two geoms'); for a body
        resting on nothing, the one it would have on the ground (where it comes down), 0 without one."""
        from physforge.sim.compile import GROUND_GEOM_NAME

        ground = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, GROUND_GEOM_NAME)
        self.place(self._initial_positions(), None)
        up = -np.asarray(self.model.opt.gravity, dtype=float)
        up = up / np.linalg.norm(up) if np.linalg.norm(up) > 0 else np.array([0.0, 0.0, 1.0])
        normals = np.zeros((len(self.bodies), 3))
        friction = np.zeros(len(self.bodies))
        for i in range(len(self.bodies)):
            best = -np.inf
            for g1 in self._own_geoms[i]:
                for g2 in self._other_geoms[i]:
                    d = mujoco.mj_geomDistance(self.model, self.data, int(g1), int(g2), max_distance, self._fromto)
                    if d >= max_distance:
                        continue
                    gap = self._fromto[:3] - self._fromto[3:]  # from the other geom's nearest point to ours
                    length = np.linalg.norm(gap)
                    # touching exactly leaves no direction; only the flat floor is placed that exactly
                    normal = gap / length * np.sign(d) if length > 1e-9 and d != 0 else up
                    if normal @ up > best:
                        best = float(normal @ up)
                        normals[i] = normal
                        friction[i] = max(self.model.geom_friction[g1, 0], self.model.geom_friction[g2, 0])
            if best == -np.inf and ground >= 0:
                friction[i] = max(self.model.geom_friction[g, 0] for g in (*self._own_geoms[i], ground))
        return normals, friction

    def _initial_positions(self) -> np.ndarray:
        return np.array([self._initial_qpos[a:a + 3] for a in self._qpos_address])

    def render(self, positions: np.ndarray, quaternions: np.ndarray | None = None, *, camera=None,
               width: int = 64, height: int = 64, kind: str = "rgb") -> np.ndarray:
        """Render each frame: kind "rgb" -> (n_frames, H, W, 3) uint8; "segmentation" ->
        (n_frames, H, W) int32 (0 background and ground, i + 1 = world body i). camera: a
        ``physforge.world.Camera``, default the world's first camera."""
        from physforge.sim.render import RenderConfig, SceneRenderer, default_camera

        if kind not in ("rgb", "segmentation"):
            raise ValueError(f"kind must be 'rgb' or 'segmentation', got {kind!r}")
        positions, quaternions = self._check(positions, quaternions)
        if camera is None:
            camera = self.world.cameras[0] if self.world.cameras else default_camera(self.world)
        renderer = SceneRenderer(self.compiled, RenderConfig(width, height))
        try:
            frames = []
            for frame in range(len(positions)):
                self.place(positions[frame], None if quaternions is None else quaternions[frame])
                if kind == "rgb":
                    frames.append(renderer.rgb(self.data, camera))
                else:
                    frames.append(renderer.depth_segmentation(self.data, camera)[1])
        finally:
            renderer.release()
        return np.stack(frames)
