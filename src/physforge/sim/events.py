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
    another world geom). Cost per step is kept to a few vectorised operations: while the raw
    contact list keeps its geom pairs (most steps) only the normal forces are summed; when it
    changes, rows are mapped to per-pair slots by a sorted search; Python-level episode work
    happens only when a pair starts touching.
    """

    def __init__(self, geom_body_index: np.ndarray, body_names: tuple[str, ...], timestep: float):
        self._geom_body = np.asarray(geom_body_index, dtype=np.int64)
        self._names = body_names
        self._dt = timestep
        self._episodes: dict[int, _Episode] = {}  # open episode per pair key
        self._closed: list[_Episode] = []
        # one slot per pair key ever seen: sorted keys, impulse and last time seen since the
        # slot's episode opened
        self._slot_keys = np.zeros(0, dtype=np.int64)
        self._slot_impulse = np.zeros(0)
        self._slot_last_seen = np.full(0, -np.inf)
        # the current raw contact list: its signature, rows with a force, their slots
        self._signature = b""
        self._force_rows = np.zeros(0, dtype=np.int64)
        self._force_slots = np.zeros(0, dtype=np.int64)
        self._row_force = np.zeros(0)
        self._force_address = np.zeros(0, dtype=np.int64)
        self._seen_slots = np.zeros(0, dtype=np.int64)
        self._run_start = 0.0
        self._run_steps = 0
        self._signature_pending = b""
        self._layouts: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self._slots_of: dict[bytes, np.ndarray] = {}
        self._slots_size = 0

    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Account for the contacts of the step just taken (call after each ``mj_step``)."""
        if data.ncon == 0:
            if self._signature:
                self._flush()
            return
        contact = data.contact
        # same geom pairs and same constraint count => same rows in efc_force (MuJoCo orders
        # constraints equality, friction, limit, contact)
        signature = contact.geom.tobytes() + data.nefc.to_bytes(4, "little")
        if signature != self._signature:
            self._flush()
            self._signature_pending = signature
            self._new_contact_list(model, data, contact.geom, float(data.time) - self._dt)
            self._signature = signature
            self._force_address = contact.efc_address[self._force_rows]
        self._row_force += data.efc_force[self._force_address]
        self._run_steps += 1

    def _flush(self) -> None:
        """Move what the current contact list accumulated into its pair slots."""
        if self._signature and self._run_steps:
            if len(self._force_slots):
                np.add.at(self._slot_impulse, self._force_slots, self._row_force * self._dt)
            self._slot_last_seen[self._seen_slots] = self._run_start + (self._run_steps - 1) * self._dt
        self._signature = b""
        self._run_steps = 0

    def _new_contact_list(self, model, data, geoms: np.ndarray, time: float) -> None:
        # The same few contact lists recur (a box rocking between 2 and 4 corners): their row ->
        # slot maps are cached by signature until a new slot shifts the slot numbering.
        cached = self._layouts.get(self._signature_pending)
        if cached is None:
            contact = data.contact
            bodies = self._geom_body[geoms]
            low, high = bodies.min(axis=1), bodies.max(axis=1)
            # every reported contact touches: physforge geoms have zero margin
            keys = ((low + 1) << 16) | (high + 1)
            with_force = contact.efc_address >= 0
            cached = (keys, np.flatnonzero(with_force))
            self._layouts[self._signature_pending] = cached
        keys, force_rows = cached
        slots = self._slots_of.get(self._signature_pending)
        if slots is None or len(self._slot_keys) != self._slots_size:
            slots = self._lookup_slots(keys)
        if slots is None or bool(np.any(time - self._slot_last_seen[slots] - self._dt >= CONTACT_RELEASE_TIME)):
            self._open_episodes(model, data, keys, time)
            slots = self._lookup_slots(keys)
        self._slots_of[self._signature_pending] = slots
        self._slots_size = len(self._slot_keys)
        self._force_rows = force_rows
        self._force_slots = slots[force_rows]
        self._row_force = np.zeros(len(force_rows))
        self._seen_slots = slots
        self._run_start = time

    def _lookup_slots(self, keys: np.ndarray) -> np.ndarray | None:
        """Slot index of each key, or None if some key has no slot yet."""
        if not len(self._slot_keys):
            return None
        slots = np.minimum(np.searchsorted(self._slot_keys, keys), len(self._slot_keys) - 1)
        return slots if bool(np.all(self._slot_keys[slots] == keys)) else None

    def _open_episodes(self, model, data, keys: np.ndarray, time: float) -> None:
        """Open an episode for every pair in ``keys`` that is new or was apart too long."""
        self._close_episodes(time)
        unique, first = np.unique(keys, return_index=True)
        for key, row in zip(unique.tolist(), first.tolist()):
            if key in self._episodes:
                continue
            pair = ((key >> 16) - 1, (key & 0xFFFF) - 1)
            self._episodes[key] = self._start(pair, time, model, data, row)
            position = int(np.searchsorted(self._slot_keys, key))
            if position < len(self._slot_keys) and self._slot_keys[position] == key:
                self._slot_impulse[position] = 0.0
                self._slot_last_seen[position] = time
            else:
                self._slot_keys = np.insert(self._slot_keys, position, key)
                self._slot_impulse = np.insert(self._slot_impulse, position, 0.0)
                self._slot_last_seen = np.insert(self._slot_last_seen, position, time)
                self._slots_of.clear()

    def _close_episodes(self, time: float) -> None:
        """Close the episodes of pairs apart for CONTACT_RELEASE_TIME, copying in their slot totals."""
        for key in list(self._episodes):
            slot = int(np.searchsorted(self._slot_keys, key))
            last_seen = float(self._slot_last_seen[slot])
            if time - last_seen - self._dt >= CONTACT_RELEASE_TIME:
                episode = self._episodes.pop(key)
                episode.impulse, episode.last_seen = float(self._slot_impulse[slot]), last_seen
                self._closed.append(episode)

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

    def finish(self, end_time: float) -> list[dict]:
        """All episodes as ``contact_start``/``contact_end`` events, sorted by time.

        Episodes still open at ``end_time`` get no end event.
        """
        if self._signature:
            self._flush()
        self._close_episodes(end_time)
        for key, episode in self._episodes.items():  # still touching at the end
            slot = int(np.searchsorted(self._slot_keys, key))
            episode.impulse, episode.last_seen = float(self._slot_impulse[slot]), float(self._slot_last_seen[slot])
        events = []
        for episode, closed in [(e, True) for e in self._closed] + [(e, False) for e in self._episodes.values()]:
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
