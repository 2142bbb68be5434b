"""Preview clips of a world for reports and the viewer: a turntable (the camera orbits the object
at its initial pose) and a joint sweep (every hinge and slide joint driven through its range,
kinematically, while the camera stays put)."""

from __future__ import annotations

import math

import numpy as np

from physforge.sim.articulation import JointPoseProbe, sweep_values
from physforge.sim.render import RenderConfig, SceneRenderer
from physforge.world import Camera, World

#: Camera elevation of previews, rad (a little above: tops and fronts are both visible).
PREVIEW_ELEVATION = math.radians(25.0)


def _framing(probe: JointPoseProbe) -> tuple[np.ndarray, float]:
    """(centre (3,) m, camera distance m) that fits every body's geometry in a 45 degree view."""
    model = probe.model
    # geom_rbound: bounding-sphere radius per geom around its centre (data.geom_xpos)
    points = probe.data.geom_xpos
    radii = model.geom_rbound
    keep = probe.compiled.geom_body_index >= 0
    if not np.any(keep):
        return np.zeros(3), 2.0
    low = np.min(points[keep] - radii[keep, None], axis=0)
    high = np.max(points[keep] + radii[keep, None], axis=0)
    centre = (low + high) / 2
    radius = max(float(np.linalg.norm(high - low)) / 2, 0.05)
    # bounding spheres overestimate boxes: 0.7 of the sphere-fitting distance frames them well
    return centre, 0.7 * radius / math.sin(math.radians(22.5))


def _orbit_camera(centre: np.ndarray, distance: float, azimuth: float) -> Camera:
    offset = distance * np.array([math.cos(PREVIEW_ELEVATION) * math.cos(azimuth),
                                  math.cos(PREVIEW_ELEVATION) * math.sin(azimuth), math.sin(PREVIEW_ELEVATION)])
    return Camera("preview", position=tuple(centre + offset), look_at=tuple(centre))


def turntable(world: World, *, frames: int = 24, size: int = 192) -> np.ndarray:
    """(frames, size, size, 3) uint8: one full orbit around the world at its initial pose."""
    if frames < 1 or size < 16:
        raise ValueError(f"turntable needs frames >= 1 and size >= 16 px, got frames={frames}, size={size}")
    probe = JointPoseProbe(world)
    centre, distance = _framing(probe)
    renderer = SceneRenderer(probe.compiled, RenderConfig(size, size))
    try:
        azimuths = -math.pi / 2 + 2 * math.pi * np.arange(frames) / frames
        return np.stack([renderer.rgb(probe.data, _orbit_camera(centre, distance, a)) for a in azimuths])
    finally:
        renderer.release()


def joint_sweep(world: World, *, frames_per_joint: int = 12, size: int = 192) -> tuple[np.ndarray, list[str]]:
    """``(frames (n, size, size, 3) uint8, joint names)``: each hinge/slide joint in turn goes from
    its lower to its upper limit and back, the others held at their initial positions. No joints:
    an empty (0, size, size, 3) array."""
    if frames_per_joint < 2 or size < 16:
        raise ValueError(f"joint_sweep needs frames_per_joint >= 2 and size >= 16 px, got {frames_per_joint}, {size}")
    probe = JointPoseProbe(world)
    joints = [j for j in probe.joints.values() if j.kind in ("hinge", "slide")]
    if not joints:
        return np.zeros((0, size, size, 3), np.uint8), []
    centre, distance = _framing(probe)
    renderer = SceneRenderer(probe.compiled, RenderConfig(size, size))
    frames = []
    try:
        camera = _most_visible_side(probe, joints, renderer, centre, distance)
        for joint in joints:
            values = sweep_values(joint, frames_per_joint)
            for value in values + values[::-1]:
                probe.reset()
                probe.set({joint.name: value})
                frames.append(renderer.rgb(probe.data, camera))
        probe.reset()
    finally:
        renderer.release()
    return np.stack(frames), [j.name for j in joints]


def _most_visible_side(probe: JointPoseProbe, joints, renderer: SceneRenderer, centre: np.ndarray,
                       distance: float) -> Camera:
    """The orbit camera (of 8 azimuths) that sees the joints move most: the object's front is not
    known, so compare the image at every joint's lower and upper limit from each side."""
    best, best_change = None, -1.0
    for k in range(8):
        camera = _orbit_camera(centre, distance, -math.pi / 2 + math.radians(30) + 2 * math.pi * k / 8)
        images = []
        for end in (0, -1):
            probe.reset()
            probe.set({j.name: sweep_values(j, 2)[end] for j in joints})
            images.append(renderer.rgb(probe.data, camera).astype(np.int16))
        change = float(np.abs(images[0] - images[1]).mean())
        if change > best_change:
            best, best_change = camera, change
    probe.reset()
    return best
