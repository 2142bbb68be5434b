"""The physics verifier: scores a predicted motion of a known scene against the simulator and
against analytic laws. Usable as a reward (``-cost``) and as a preference oracle (lower cost wins).

Inputs: the scene's ``World``, the names of its free objects, and predicted positions
(horizon + 1, n_objects, 3) float m, world frame, body origin, one frame every ``dt`` s starting at
the conditioning frame. The reference is the simulator's rollout of the same world from the same
state (``Simulator(world).run``), recorded at the same times.

Metrics (frames 1..horizon; frame 0 is the given state):
- ``l2``: m, mean Euclidean distance between predicted and reference positions.
- ``chamfer``: m, symmetric Chamfer distance between the predicted and reference point sets of
  each object's path (timing-free shape of the motion), averaged over objects.
- ``iou``: mask IoU of each object in frames rendered with the predicted and the reference poses
  (every ``iou_stride``-th frame), averaged over objects and frames where either mask is non-empty.
- ``gravity_residual``: m/s^2, mean |second difference / dt^2 - g| over (frame, object) where the
  object is in free flight (clear of every other geom by more than its travel over a step) in the
  prediction or in the simulator's rollout: a prediction cannot escape the check by keeping an
  object that truly flies near a surface (or sinking it), and one that hovers is caught too.
- ``penetration``: m, deepest interpenetration of an object with anything (signed geom distance).
- ``energy_created``: J/kg, how far the specific mechanical energy (translational kinetic +
  gravitational, velocities by central differences, mass-weighted over the objects) rises above
  its value at frame 1. Rotational energy is not counted (positions only), so a rolling ball shows
  less energy than it has, never more.
- ``cost``: unitless, lower is better: every term above normalised by a scale of the scene and
  weighted (``ScoreConfig``); ``terms`` holds the normalised terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physforge.dynamics.config import ScoreConfig
from physforge.dynamics.errors import DynamicsDataError

METRICS = ("l2", "chamfer", "iou", "gravity_residual", "penetration", "energy_created", "cost")


def reference_rollout(world, bodies: tuple[str, ...], horizon: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's positions (horizon + 1, n, 3) m and quaternions (horizon + 1, n, 4) of ``bodies``
    every ``dt`` s from the world's initial state."""
    from physforge.sim import Simulator

    rollout = Simulator(world).run(horizon * dt, fps=1.0 / dt, events=False)
    trajectory = rollout.trajectory
    columns = [trajectory.body_names.index(b) for b in bodies]
    if trajectory.num_frames != horizon + 1:
        raise DynamicsDataError(f"the simulator recorded {trajectory.num_frames} frames, expected {horizon + 1}; "
                                f"choose dt as a multiple of the world timestep {world.timestep} s")
    return trajectory.position[:, columns].copy(), trajectory.quaternion[:, columns].copy()


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer distance (m) of point sets a (n, 3), b (m, 3): mean of both directed
    mean nearest-neighbour distances."""
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return float(0.5 * (d.min(1).mean() + d.min(0).mean()))


def specific_energy(positions: np.ndarray, masses: np.ndarray, gravity: np.ndarray, dt: float) -> np.ndarray:
    """(n_frames - 2,) J/kg at frames 1..n-2: sum_i m_i (|v_i|^2 / 2 - g . p_i) / sum_i m_i, with v by
    central differences."""
    velocity = (positions[2:] - positions[:-2]) / (2 * dt)
    e = 0.5 * (velocity ** 2).sum(-1) - positions[1:-1] @ gravity
    return (e * masses).sum(-1) / masses.sum()


def free_flight(positions: np.ndarray, clearance: np.ndarray, margin: float) -> np.ndarray:
    """(n_frames, n) bool: frames 1..n-2 where an object is clear of everything at t-1, t, t+1 by more
    than its own step plus the largest step of any other object plus ``margin`` (so it cannot have
    touched anything between the samples)."""
    step = np.linalg.norm(np.diff(positions, axis=0), axis=-1)  # (n_frames - 1, n)
    n = positions.shape[1]
    out = np.zeros(positions.shape[:2], bool)
    for t in range(1, len(positions) - 1):
        own = step[t - 1:t + 1].max(0)  # (n,) how far each object moves in either step
        for i in range(n):
            others = max((own[j] for j in range(n) if j != i), default=0.0)
            out[t, i] = bool((clearance[t - 1:t + 2, i] > own[i] + others + margin).all())
    return out


def law_residuals(positions: np.ndarray, clearance: np.ndarray, masses: np.ndarray, gravity: np.ndarray, dt: float,
                  config: ScoreConfig, also_flying: np.ndarray | None = None) -> dict[str, float]:
    """Analytic-law residuals of one motion (positions (n_frames, n, 3) m; clearance (n_frames, n) m).
    also_flying: (n_frames, n) bool, frames checked for constant g besides the motion's own free flight."""
    flight = free_flight(positions, clearance, config.flight_margin)
    if also_flying is not None:
        flight = flight | also_flying
    acceleration = np.zeros_like(positions)
    acceleration[1:-1] = (positions[2:] - 2 * positions[1:-1] + positions[:-2]) / dt ** 2
    residual = np.linalg.norm(acceleration - gravity, axis=-1)[flight]
    energy = specific_energy(positions, masses, gravity, dt)
    return {"gravity_residual": float(residual.mean()) if residual.size else 0.0,
            "flight_frames": int(flight.sum()),
            "penetration": float(max(0.0, -clearance.min())),
            "energy_created": float(max(0.0, energy.max() - energy[0])) if energy.size else 0.0}


@dataclass
class Verifier:
    """Scores predicted motions of one known scene.

        verifier = Verifier(world, ("red_ball",), horizon=16, dt=0.1)
        report = verifier.score(predicted)          # predicted (17, 1, 3) m
        report["cost"], report["violations"]

    reference / reference_quaternion: the simulator rollout if already known (e.g. the dataset's
    recorded states); else it is simulated here.
    """

    world: object
    bodies: tuple[str, ...]
    horizon: int
    dt: float
    config: ScoreConfig = field(default_factory=ScoreConfig)
    reference: np.ndarray | None = None
    reference_quaternion: np.ndarray | None = None

    def __post_init__(self):
        from physforge.sim.poses import BodyPoseProbe

        self.bodies = tuple(self.bodies)
        if self.reference is None:
            self.reference, self.reference_quaternion = reference_rollout(self.world, self.bodies, self.horizon, self.dt)
        self.reference = np.asarray(self.reference, dtype=np.float64)
        expected = (self.horizon + 1, len(self.bodies), 3)
        if self.reference.shape != expected:
            raise DynamicsDataError(f"reference: expected shape {expected}, got {self.reference.shape}")
        self.probe = BodyPoseProbe(self.world, self.bodies)
        self.masses = self.probe.masses
        self.gravity = np.asarray(self.world.gravity, dtype=np.float64)
        self._reference_masks: np.ndarray | None = None
        self._ids = np.array([self.world.body_index(b) + 1 for b in self.bodies])
        reference_clearance = self.probe.clearance(self.reference, self.reference_quaternion)
        self.reference_flight = free_flight(self.reference, reference_clearance, self.config.flight_margin)

    def _frames(self) -> np.ndarray:
        return np.arange(1, self.horizon + 1, self.config.iou_stride)

    def masks(self, positions: np.ndarray, quaternions: np.ndarray | None) -> np.ndarray:
        """(n_iou_frames, n, S, S) bool object masks at the IoU frames."""
        frames = self._frames()
        size = self.config.image_size
        ids = self.probe.render(positions[frames], None if quaternions is None else quaternions[frames],
                                width=size, height=size, kind="segmentation")
        return ids[:, None] == self._ids[None, :, None, None]

    def iou(self, positions: np.ndarray, quaternions: np.ndarray | None = None) -> float:
        """Mean object-mask IoU of the predicted against the reference renders (see module doc)."""
        if self._reference_masks is None:
            self._reference_masks = self.masks(self.reference, self.reference_quaternion)
        predicted = self.masks(positions, quaternions)
        inter = (predicted & self._reference_masks).sum((-1, -2))
        union = (predicted | self._reference_masks).sum((-1, -2))
        seen = union > 0
        return float((inter[seen] / union[seen]).mean()) if seen.any() else float("nan")

    @property
    def motion_scale(self) -> float:
        """m, L of the cost: the mean distance of the objects from their start over frames 1..T of the
        reference (the L2 of predicting no motion), floored at ``config.min_motion_scale``."""
        travel = np.linalg.norm(self.reference[1:] - self.reference[:1], axis=-1).mean()
        return float(max(travel, self.config.min_motion_scale))

    def cost_terms(self, report: dict, iou_rendered: bool = True) -> dict[str, float]:
        """The cost's normalised terms (unitless, see ``ScoreConfig``) of a report's metrics. The IoU
        term is NaN when IoU was not rendered, and 0 when it was but no object was in view in either
        render (nothing to compare)."""
        scale, g = self.motion_scale, max(float(np.linalg.norm(self.gravity)), 1e-9)
        iou = report["iou"]
        iou_term = 1.0 - iou if np.isfinite(iou) else (0.0 if iou_rendered else float("nan"))
        return {"l2": report["l2"] / scale, "chamfer": report["chamfer"] / scale, "iou": iou_term,
                "gravity": report["gravity_residual"] / g, "penetration": report["penetration"] / scale,
                "energy": report["energy_created"] / (g * scale)}

    def cost(self, report: dict, iou_rendered: bool = True) -> float:
        """The weighted sum of ``cost_terms`` (terms with weight 0 are left out, so a report without
        IoU has a finite cost when w_iou is 0 and NaN otherwise)."""
        c = self.config
        terms = self.cost_terms(report, iou_rendered)
        return float(sum(getattr(c, f"w_{name}") * value for name, value in terms.items()
                         if getattr(c, f"w_{name}") > 0))

    def score(self, predicted: np.ndarray, *, quaternions: np.ndarray | None = None, iou: bool | None = None) -> dict:
        """Every metric of one predicted motion (see the module doc), the scalar ``cost`` (see
        ``ScoreConfig``), its normalised ``terms`` and ``violations`` (names of the laws broken
        beyond the config's tolerances).

        quaternions: (horizon + 1, n, 4) predicted orientations, or None to keep each object's
        initial orientation (a position-only generator: a block that tips over may then show a
        false interpenetration). iou: render masks for IoU; None = when the cost needs it
        (``config.w_iou`` > 0). Without IoU, ``iou`` is NaN and so is the cost if w_iou > 0."""
        predicted = np.asarray(predicted, dtype=np.float64)
        expected = (self.horizon + 1, len(self.bodies), 3)
        if predicted.shape != expected:
            raise DynamicsDataError(f"predicted trajectory: expected shape {expected} (frames, objects, xyz m), "
                                    f"got {predicted.shape}")
        if not np.all(np.isfinite(predicted)):
            raise DynamicsDataError("predicted trajectory holds NaN or infinite values")
        c = self.config
        if iou is None:
            iou = c.w_iou > 0
        l2 = float(np.linalg.norm(predicted[1:] - self.reference[1:], axis=-1).mean())
        cd = float(np.mean([chamfer(predicted[1:, i], self.reference[1:, i]) for i in range(len(self.bodies))]))
        clearance = self.probe.clearance(predicted, quaternions)
        laws = law_residuals(predicted, clearance, self.masses, self.gravity, self.dt, c, self.reference_flight)
        out = {"l2": l2, "chamfer": cd, **laws}
        out["iou"] = self.iou(predicted, quaternions) if iou else float("nan")
        out["terms"] = self.cost_terms(out, iou)
        out["cost"] = self.cost(out, iou)
        out["violations"] = [name for name, value, tolerance in (
            ("gravity", laws["gravity_residual"], c.gravity_tolerance),
            ("interpenetration", laws["penetration"], c.penetration_tolerance),
            ("energy_created", laws["energy_created"], c.energy_tolerance)) if value > tolerance]
        return out
