"""6-DoF object motion from an RGB-D video with instance masks: point-to-model ICP per frame,
a confidence per frame, and confidence-weighted smoothing.

Per frame the masked depth pixels are back-projected (world frame, known camera) and registered
to the object's model points (its reconstructed surface) with ICP (nearest neighbours from a
scipy KD-tree, Kabsch/Umeyama updates), starting from the previous frame's pose: observed
points are matched to the model, so a partial view does not bias the pose. The confidence is the
inlier fraction times the visible-pixel ratio to the first frame; frames below
``min_confidence`` are re-filled by interpolation before smoothing.

Poses are (4, 4) float64 world-from-object transforms; the object frame is the model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physforge.robot.reconstruct import back_project, to_world

#: Observed points within this distance (m) of the model after registration are inliers.
INLIER_DISTANCE = 0.005
#: Model points count as facing the camera when the cosine between their normal and the line of
#: sight exceeds this (grazing faces are seen by few pixels and would bias the fit).
FACING_COSINE = 0.3


@dataclass(frozen=True)
class TrackingConfig:
    """iterations: ICP iterations per frame. max_points: observed points used per frame.
    smoothing_window: frames (odd) of the moving average. min_confidence: frames below it are
    interpolated from their neighbours. max_correspondence: m, matches farther apart are ignored."""

    iterations: int = 30
    max_points: int = 1500
    smoothing_window: int = 5
    min_confidence: float = 0.3
    max_correspondence: float = 0.05

    def __post_init__(self):
        if self.iterations < 1 or self.max_points < 10:
            raise ValueError(f"iterations must be >= 1 and max_points >= 10, got {self.iterations}, {self.max_points}")
        if self.smoothing_window < 1 or self.smoothing_window % 2 == 0:
            raise ValueError(f"smoothing_window must be an odd number of frames >= 1, got {self.smoothing_window}")
        if not 0.0 <= self.min_confidence < 1.0:
            raise ValueError(f"min_confidence must lie in [0, 1), got {self.min_confidence}")


@dataclass(frozen=True)
class Track:
    """poses: (n_frames, 4, 4) float64 world-from-object, smoothed; raw_poses: before smoothing;
    confidence: (n_frames,) float in [0, 1]."""

    poses: np.ndarray
    raw_poses: np.ndarray
    confidence: np.ndarray

    def relative(self) -> np.ndarray:
        """(n_frames, 4, 4) motion relative to the first frame, world frame: Δ[t] = T[t] T[0]^-1."""
        return self.poses @ np.linalg.inv(self.poses[0])


def kabsch(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(4, 4) rigid transform minimising sum w |R s + t - d|^2 for paired (n, 3) points."""
    w = np.ones(len(source)) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    mu_s, mu_t = w @ source, w @ target
    covariance = (target - mu_t).T @ ((source - mu_s) * w[:, None])
    u, _, vt = np.linalg.svd(covariance)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = mu_t - rotation @ mu_s
    return transform


def register(observed: np.ndarray, model_tree, model_points: np.ndarray, initial: np.ndarray,
             config: TrackingConfig, model_normals: np.ndarray | None = None, viewpoint=None) -> tuple[np.ndarray, float]:
    """ICP: world-from-object pose aligning ``model_points`` (object frame) to ``observed`` (world),
    from ``initial``; returns the pose and the inlier fraction.

    With ``model_normals`` (n, 3) and the camera ``viewpoint`` (3,) m, the model points facing the
    camera are also matched to their nearest observed points (symmetric ICP): a partial view can
    then not slide the model along a face it shows.
    """
    from scipy.spatial import cKDTree

    observed_tree = cKDTree(observed) if model_normals is not None else None
    pose = initial.copy()
    for _ in range(config.iterations):
        inverse = np.linalg.inv(pose)
        local = observed @ inverse[:3, :3].T + inverse[:3, 3]
        distance, index = model_tree.query(local)
        keep = distance < config.max_correspondence
        if keep.sum() < 3:
            break
        source, target = [model_points[index[keep]]], [observed[keep]]
        if observed_tree is not None:
            world_points = model_points @ pose[:3, :3].T + pose[:3, 3]
            sight = np.asarray(viewpoint) - world_points
            sight /= np.linalg.norm(sight, axis=1, keepdims=True)
            facing = (sight * (model_normals @ pose[:3, :3].T)).sum(axis=1) > FACING_COSINE
            back, nearest = observed_tree.query(world_points[facing])
            close = back < 2 * INLIER_DISTANCE
            source.append(model_points[facing][close])
            target.append(observed[nearest[close]])
        # observed (world) <- model (object): solve for the pose mapping model points to observed
        update = kabsch(np.concatenate(source), np.concatenate(target))
        change = np.linalg.norm(update[:3, 3] - pose[:3, 3]) + np.linalg.norm(update[:3, :3] - pose[:3, :3])
        pose = update
        if change < 1e-7:
            break
    inverse = np.linalg.inv(pose)
    distance, _ = model_tree.query(observed @ inverse[:3, :3].T + inverse[:3, 3])
    return pose, float((distance < INLIER_DISTANCE).mean())


def track_object(depths: np.ndarray, masks: np.ndarray, intrinsics: np.ndarray, camera_rotation: np.ndarray,
                 camera_position, model_points: np.ndarray, initial_pose: np.ndarray,
                 rng: np.random.Generator, config: TrackingConfig = TrackingConfig(),
                 model_normals: np.ndarray | None = None) -> Track:
    """Track one object through a video.

    depths: (n_frames, H, W) float m; masks: (n_frames, H, W) bool, the object's pixels;
    model_points: (n, 3) m, object frame (e.g. samples of the reconstructed surface);
    initial_pose: (4, 4) world-from-object at frame 0 (from the reconstruction);
    model_normals: (n, 3) outward unit normals of the model points (enables symmetric ICP).
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(model_points)
    n = len(depths)
    raw = np.zeros((n, 4, 4))
    confidence = np.zeros(n)
    pose = np.asarray(initial_pose, dtype=float).copy()
    first_count = None
    for t in range(n):
        observed = to_world(back_project(depths[t], intrinsics, masks[t]), camera_rotation, camera_position)
        count = len(observed)
        if first_count is None:
            first_count = max(count, 1)
        if count < 10:
            raw[t], confidence[t] = pose, 0.0
            continue
        if count > config.max_points:
            observed = observed[rng.choice(count, config.max_points, replace=False)]
        pose, inliers = register(observed, tree, model_points, pose, config, model_normals, camera_position)
        raw[t] = pose
        confidence[t] = inliers * min(1.0, count / first_count)
    return Track(poses=smooth_poses(raw, confidence, config), raw_poses=raw, confidence=confidence)


def smooth_poses(poses: np.ndarray, confidence: np.ndarray, config: TrackingConfig) -> np.ndarray:
    """Confidence-weighted moving average of positions and rotations (chordal mean, projected
    back to SO(3)); frames under ``min_confidence`` get zero weight (filled by neighbours)."""
    n = len(poses)
    weights = np.where(confidence >= config.min_confidence, np.maximum(confidence, 1e-3), 0.0)
    if not weights.any():
        weights = np.ones(n)
    half = config.smoothing_window // 2
    out = np.empty_like(poses)
    for t in range(n):
        low, high = max(0, t - half), min(n, t + half + 1)
        w = weights[low:high]
        if w.sum() == 0:  # no confident frame in the window: widen until one is found
            valid = np.flatnonzero(weights)
            nearest = valid[np.argmin(np.abs(valid - t))]
            out[t] = poses[nearest]
            continue
        w = w / w.sum()
        out[t] = np.eye(4)
        out[t, :3, 3] = np.einsum("k,ki->i", w, poses[low:high, :3, 3])
        mean = np.einsum("k,kij->ij", w, poses[low:high, :3, :3])
        u, _, vt = np.linalg.svd(mean)
        out[t, :3, :3] = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0]) @ vt
    return out


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (rad) between two (3, 3) rotations."""
    cosine = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.arccos(np.clip(cosine, -1.0, 1.0)))
