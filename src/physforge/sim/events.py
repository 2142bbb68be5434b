"""The event log: contacts collapsed into one start/end pair per touching episode, plus
rest, topple and leave-support events derived from the trajectory.

MuJoCo reports every contact point at every physics step; a scene of a few seconds has
thousands. A user wants "A hit B at t=0.42 s with an impulse of 0.3 N·s". The tracker keeps
one episode per body pair: it opens when the pair first touches, accumulates the normal
impulse while they touch, and closes once they have been apart for ``CONTACT_RELEASE_TIME``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from physforge.sim.trajectory import Trajectory

#: A pair must be apart this long (s) before its contact episode ends: a sliding box makes
#: sub-millimetre hops of ~15 ms in soft-contact physics, which are not new collisions.
CONTACT_RELEASE_TIME = 0.04
#: Contacts deeper than this separation (m) count as touching (MuJoCo reports near misses too).
CONTACT_TOUCH_DISTANCE = 1e-4
#: A body is at rest when its speed stays below these for REST_MIN_DURATION.
REST_LINEAR_SPEED = 0.01  # m/s
REST_ANGULAR_SPEED = 0.1  # rad/s
REST_MIN_DURATION = 0.2  # s
#: Tilt of a body's initial up axis (rad) beyond which it has toppled.
TOPPLE_ANGLE = np.deg2rad(45.0)
#: A contact whose normal is within this of vertical, lasting SUPPORT_MIN_DURATION, is support.
SUPPORT_NORMAL_Z = 0.7
SUPPORT_MIN_DURATION = 0.1  # s
GROUND_NAME = "ground"


@dataclass
class _Episode:
    a: int
    b: int
    start: float
    position: np.ndarray
    normal: np.ndarray
    relative_speed: float
    impulse: float = 0.0
    normal_sum: np.ndarray = field(default_factory=lambda: np.zeros(3))
    last_seen: float = 0.0


class ContactTracker:
    """Observes MuJoCo contacts step by step and emits de-duplicated contact episodes.

    Body indices are those of ``world.bodies``; -1 is the world itself (the ground, or
    another world geom).
    """

    def __init__(self, geom_body_index: np.ndarray, body_names: tuple[str, ...], timestep: float):
        self._geom_body = np.asarray(geom_body_index)
        self._names = body_names
        self._dt = timestep
        self._open: dict[tuple[int, int], _Episode] = {}
        self._closed: list[_Episode] = []
        self._last_keys: bytes = b""

    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Account for the contacts of the step just taken (call after each ``mj_step``)."""
        time = float(data.time) - self._dt  # the contacts belong to the state before the step
        if data.ncon == 0:
            if self._open:
                self._close_stale(time)
            return
        contact = data.contact
        touching = contact.dist <= CONTACT_TOUCH_DISTANCE
        bodies = self._geom_body[contact.geom]
        bodies.sort(axis=1)
        keep = touching & (bodies[:, 0] != bodies[:, 1])
        if not keep.any():
            if self._open:
                self._close_stale(time)
            return
        bodies = bodies[keep]
        address = contact.efc_address[keep]
        if data.nefc:
            forces = np.where(address >= 0, data.efc_force[np.clip(address, 0, data.nefc - 1)], 0.0)
        else:
            forces = np.zeros(len(address))
        keys = (bodies[:, 0] + 1) * 65536 + (bodies[:, 1] + 1)
        unique, inverse = np.unique(keys, return_inverse=True)
        impulses = np.bincount(inverse, weights=forces) * self._dt
        for slot, key in enumerate(unique.tolist()):
            pair = (key // 65536 - 1, key % 65536 - 1)
            episode = self._open.get(pair)
            if episode is None:
                first = int(np.flatnonzero(inverse == slot)[0])
                row = np.flatnonzero(keep)[first]
                episode = self._start(pair, time, model, data, row)
                self._open[pair] = episode
            episode.impulse += float(impulses[slot])
            episode.last_seen = time
        if len(self._open) > len(unique):
            self._close_stale(time)

    def _start(self, pair, time, model, data, row: int) -> _Episode:
        contact = data.contact
        position = np.array(contact.pos[row])
        normal = np.array(contact.frame[row, :3])
        geom_a = int(contact.geom[row, 0])
        speed = self._normal_speed(model, data, geom_a, int(contact.geom[row, 1]), position, normal)
        return _Episode(a=pair[0], b=pair[1], start=time, position=position, normal=normal,
                        relative_speed=speed, last_seen=time)

    @staticmethod
    def _normal_speed(model, data, geom_a, geom_b, point, normal) -> float:
        """Closing speed (m/s) of the two geoms along the contact normal at ``point``."""
        velocities = []
        for geom in (geom_a, geom_b):
            body = model.geom_bodyid[geom]
            root_com = data.subtree_com[model.body_rootid[body]]
            angular, linear = data.cvel[body, :3], data.cvel[body, 3:]
            velocities.append(linear + np.cross(angular, point - root_com))
        return float(abs(np.dot(velocities[1] - velocities[0], normal)))

    def _close_stale(self, time: float) -> None:
        for pair in [p for p, e in self._open.items() if time - e.last_seen >= CONTACT_RELEASE_TIME]:
            self._closed.append(self._open.pop(pair))

    def finish(self, end_time: float) -> list[dict]:
        """All episodes as ``contact_start``/``contact_end`` events, sorted by time.

        Episodes still open at ``end_time`` get no end event.
        """
        events = []
        for episode, closed in [(e, True) for e in self._closed] + [(e, False) for e in self._open.values()]:
            names = [self._name(episode.a), self._name(episode.b)]
            events.append({
                "type": "contact_start", "time": round(episode.start, 9), "bodies": names,
                "position": episode.position.round(6).tolist(), "normal": episode.normal.round(6).tolist(),
                "relative_speed": round(episode.relative_speed, 6), "impulse": round(episode.impulse, 9),
            })
            if closed:
                events.append({"type": "contact_end", "time": round(episode.last_seen + self._dt, 9),
                               "bodies": names, "impulse": round(episode.impulse, 9),
                               "duration": round(episode.last_seen + self._dt - episode.start, 9)})
        return events

    def _name(self, index: int) -> str:
        return GROUND_NAME if index < 0 else self._names[index]


def state_events(trajectory: Trajectory, contact_events: list[dict], movable: list[bool],
                 free_bodies: list[bool], round_bodies: list[bool]) -> list[dict]:
    """Rest, topple and leave-support events derived from a trajectory and its contacts.

    movable: per body, whether it can move at all. free_bodies: per body, whether it moves
    freely (only those can topple). round_bodies: per body, whether it is made of spheres only
    (its tilt means nothing, so it cannot topple).
    """
    events: list[dict] = []
    time = trajectory.time
    if len(time) < 2:
        return events
    frame_dt = float(time[1] - time[0])
    min_rest_frames = max(1, int(round(REST_MIN_DURATION / frame_dt)))
    for index, name in enumerate(trajectory.body_names):
        if not movable[index]:
            continue
        speed = np.linalg.norm(trajectory.linear_velocity[:, index], axis=1)
        spin = np.linalg.norm(trajectory.angular_velocity[:, index], axis=1)
        still = (speed < REST_LINEAR_SPEED) & (spin < REST_ANGULAR_SPEED)
        resting = False
        run_start = None
        for frame, is_still in enumerate(still):
            if is_still and run_start is None:
                run_start = frame
            if not is_still:
                run_start = None
                resting = False
            if run_start is not None and not resting and frame - run_start + 1 >= min_rest_frames:
                resting = True
                if run_start > 0:  # at rest from the start is not an event
                    events.append({"type": "rest", "time": round(float(time[run_start]), 9), "bodies": [name],
                                   "position": trajectory.position[run_start, index].round(6).tolist()})
        if free_bodies[index] and not round_bodies[index]:
            up0 = _up_axis(trajectory.quaternion[0, index])
            ups = np.array([_up_axis(q) for q in trajectory.quaternion[:, index]])
            tilt = np.arccos(np.clip(ups @ up0, -1.0, 1.0))
            over = np.flatnonzero(tilt > TOPPLE_ANGLE)
            if len(over):
                events.append({"type": "topple", "time": round(float(time[over[0]]), 9), "bodies": [name],
                               "angle": round(float(tilt[over[0]]), 6)})
    starts = {}
    for event in contact_events:
        key = tuple(event["bodies"])
        if event["type"] == "contact_start":
            starts[key] = event
        elif event["type"] == "contact_end" and key in starts:
            start = starts.pop(key)
            if event["duration"] < SUPPORT_MIN_DURATION or abs(start["normal"][2]) < SUPPORT_NORMAL_Z:
                continue
            upper, lower = _upper_lower(trajectory, key, start["time"])
            if upper is not None:
                events.append({"type": "leave_support", "time": event["time"], "bodies": [upper, lower]})
    return events


def _upper_lower(trajectory: Trajectory, pair: tuple[str, str], at: float):
    """(body on top, its support) for a contact pair at time ``at``; None if neither can move."""
    frame = int(np.clip(np.searchsorted(trajectory.time, at), 0, trajectory.num_frames - 1))
    heights = []
    for name in pair:
        if name == GROUND_NAME:
            heights.append(-np.inf)
        else:
            heights.append(trajectory.position[frame, trajectory.body_names.index(name), 2])
    upper, lower = (pair[0], pair[1]) if heights[0] >= heights[1] else (pair[1], pair[0])
    return (upper, lower) if upper != GROUND_NAME else (None, None)


def _up_axis(quaternion: np.ndarray) -> np.ndarray:
    w, x, y, z = quaternion
    return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])


def sort_events(events: list[dict]) -> list[dict]:
    order = {"contact_start": 0, "contact_end": 1, "leave_support": 2, "topple": 3, "rest": 4}
    return sorted(events, key=lambda e: (e["time"], order.get(e["type"], 9), e["bodies"]))
