"""The event log: contacts collapsed into one start/end pair per touching episode, plus
rest, topple and leave-support events derived from the trajectory.

MuJoCo reports every contact point at every physics step; a scene of a few seconds has
thousands. A user wants "A hit B at t=0.42 s with an impulse of 0.3 N·s". A tracker keeps
one episode per body pair: it opens when the pair first touches, accumulates the contact
impulse (the vector sum of normal and friction forces times dt; its magnitude is reported)
while they touch, and closes once they have been apart for ``CONTACT_RELEASE_TIME``.
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
    impulse: np.ndarray = field(default_factory=lambda: np.zeros(3))
    last_seen: float = 0.0


class _EpisodeBook:
    """Open and closed contact episodes per body pair; both trackers write into one."""

    def __init__(self, body_names: tuple[str, ...], timestep: float):
        self.names = body_names
        self.dt = timestep
        self.open: dict[tuple[int, int], _Episode] = {}
        self.closed: list[_Episode] = []

    def touch(self, pair: tuple[int, int], first: float, last: float, impulse: np.ndarray, start) -> None:
        """``pair`` touched from ``first`` to ``last`` (s, step times) with total ``impulse`` (3,) N·s.

        ``start()`` builds the episode if this opens one (a new pair, or one apart for at
        least CONTACT_RELEASE_TIME).
        """
        episode = self.open.get(pair)
        if episode is not None and first - episode.last_seen - self.dt >= CONTACT_RELEASE_TIME - 1e-9:
            self.closed.append(self.open.pop(pair))
            episode = None
        if episode is None:
            episode = start()
            self.open[pair] = episode
        episode.impulse = episode.impulse + impulse
        episode.last_seen = last

    def finish(self, end_time: float) -> list[dict]:
        """All episodes as ``contact_start``/``contact_end`` events. A pair still touching within
        CONTACT_RELEASE_TIME of ``end_time`` gets no end event."""
        for pair, episode in list(self.open.items()):
            if end_time - episode.last_seen - self.dt >= CONTACT_RELEASE_TIME - 1e-9:
                self.closed.append(self.open.pop(pair))
        events = []
        for episode, ended in [(e, True) for e in self.closed] + [(e, False) for e in self.open.values()]:
            names = [self._name(episode.a), self._name(episode.b)]
            impulse = round(float(np.linalg.norm(episode.impulse)), 9)
            events.append({
                "type": "contact_start", "time": round(episode.start, 9), "bodies": names,
                "position": episode.position.round(6).tolist(), "normal": episode.normal.round(6).tolist(),
                "relative_speed": round(episode.relative_speed, 6), "impulse": impulse,
            })
            if ended:
                end = episode.last_seen + self.dt
                events.append({"type": "contact_end", "time": round(end, 9), "bodies": names, "impulse": impulse,
                               "duration": round(end - episode.start, 9)})
        return events

    def _name(self, index: int) -> str:
        return GROUND_NAME if index < 0 else self.names[index]


def _episode_from_contacts(pair, time, model, data, geom_body: np.ndarray) -> _Episode:
    """The opening facts of an episode, read from ``data`` at the state where ``pair`` touches:
    first contact point, its normal, and the closing speed of the two bodies along it."""
    row = 0
    for i, (g1, g2) in enumerate(data.contact.geom):
        if tuple(sorted((int(geom_body[g1]), int(geom_body[g2])))) == pair:
            row = i
            break
    contact = data.contact
    position = np.array(contact.pos[row])
    normal = np.array(contact.frame[row, :3])
    velocities = []
    for geom in contact.geom[row]:
        body = model.geom_bodyid[geom]
        root_com = data.subtree_com[model.body_rootid[body]]
        angular, linear = data.cvel[body, :3], data.cvel[body, 3:]
        velocities.append(linear + np.cross(angular, position - root_com))
    speed = float(abs(np.dot(velocities[1] - velocities[0], normal)))
    return _Episode(a=pair[0], b=pair[1], start=time, position=position, normal=normal, relative_speed=speed,
                    last_seen=time)


class StepContactTracker:
    """Reference tracker: reads MuJoCo's contact list after every ``mj_step`` (plain Python).

    ``contact_tracking="steps"``: the naive loop, contact by contact, that the fast
    ContactTracker (sensor or batched contact-list rows) must agree with in tests. Body indices are those of
    ``world.bodies``; -1 is the world itself (the ground, or another world geom).
    """

    def __init__(self, geom_body_index: np.ndarray, body_names: tuple[str, ...], timestep: float):
        self._geom_body = np.asarray(geom_body_index, dtype=np.int64)
        self._book = _EpisodeBook(body_names, timestep)
        self._dt = timestep
        self._force = np.zeros(6)

    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Account for the contacts of the step just taken (they belong to the state before it)."""
        if data.ncon == 0:
            return
        time = float(data.time) - self._dt
        totals: dict[tuple[int, int], np.ndarray] = {}
        for i, (g1, g2) in enumerate(data.contact.geom):
            pair = tuple(sorted((int(self._geom_body[g1]), int(self._geom_body[g2]))))
            if pair[0] == pair[1]:
                continue
            mujoco.mj_contactForce(model, data, i, self._force)
            frame = data.contact.frame[i].reshape(3, 3)
            totals[pair] = totals.get(pair, np.zeros(3)) + frame.T @ self._force[:3]
        for pair, force in totals.items():
            self._book.touch(pair, time, time, force * self._dt,
                             lambda pair=pair: _episode_from_contacts(pair, time, model, data, self._geom_body))

    def finish(self, end_time: float) -> list[dict]:
        return self._book.finish(end_time)


class ContactTracker:
    """Fast tracker: takes a chunk of steps at once as sparse (step, pair, force) rows, finds the
    touching steps per pair with numpy, and does Python-level work only per episode.

    The rows come from per-pair MuJoCo contact sensors recorded by ``mujoco.rollout``
    (``sensor_rows``) or from MuJoCo's contact list read with numpy after each step
    (``ContactListReader``). The facts that open an episode (contact point, normal, closing
    speed) are read by re-running MuJoCo's forward pass on the recorded state of that step.
    """

    def __init__(self, pairs: np.ndarray, geom_body_index: np.ndarray, body_names: tuple[str, ...], timestep: float):
        self._pairs = [tuple(int(v) for v in p) for p in pairs]
        self._geom_body = np.asarray(geom_body_index, dtype=np.int64)
        self._book = _EpisodeBook(body_names, timestep)
        self._dt = timestep
        self._state_spec = mujoco.mjtState.mjSTATE_FULLPHYSICS

    def consume(self, model: mujoco.MjModel, scratch: mujoco.MjData, start_time: float, start_state: np.ndarray,
                states: np.ndarray, steps: np.ndarray, columns: np.ndarray, forces: np.ndarray) -> None:
        """Account for ``len(states)`` steps taken from ``start_state`` at ``start_time``.

        states: (n_steps, nstate) FULLPHYSICS state after each step. steps, columns: (k,) int,
        a step index and a pair index (into ``pairs``) where that pair touched, one row per
        contact or per pair; forces: (k, 3) float, N, world frame, the contact force of the row
        (computed at the state before the step). Rows of one step and pair are summed.
        """
        n_steps = len(states)
        if len(steps) == 0:
            return
        key, inverse = np.unique(np.asarray(columns, dtype=np.int64) * n_steps + steps, return_inverse=True)
        force = np.zeros((len(key), 3))
        np.add.at(force, inverse.ravel(), forces)
        column_of, step_of = np.divmod(key, n_steps)
        bounds = np.flatnonzero(np.diff(column_of)) + 1
        for rows in np.split(np.arange(len(key)), bounds):
            column = int(column_of[rows[0]])
            pair = self._pairs[column]
            touching = step_of[rows]
            # split into runs separated by gaps of at least the release time
            gaps = (np.diff(touching) - 1) * self._dt >= CONTACT_RELEASE_TIME - 1e-9
            cuts = np.flatnonzero(gaps) + 1
            for run_rows, run in zip(np.split(rows, cuts), np.split(touching, cuts)):
                first, last = int(run[0]), int(run[-1])
                impulse = force[run_rows].sum(axis=0) * self._dt
                self._book.touch(pair, start_time + first * self._dt, start_time + last * self._dt, impulse,
                                 lambda pair=pair, first=first: self._opening(model, scratch, pair, start_time,
                                                                              start_state, states, first))

    def _opening(self, model, scratch, pair, start_time, start_state, states, step) -> _Episode:
        mujoco.mj_setState(model, scratch, start_state if step == 0 else states[step - 1], self._state_spec)
        mujoco.mj_forward(model, scratch)
        return _episode_from_contacts(pair, start_time + step * self._dt, model, scratch, self._geom_body)

    def finish(self, end_time: float) -> list[dict]:
        return self._book.finish(end_time)


def sensor_rows(sensordata: np.ndarray, address: int, n_pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, columns, forces) rows for ContactTracker from per-pair contact sensors.

    sensordata: (n_steps, nsensordata); from ``address`` on, 4 values per pair (found, net
    force in the world frame).
    """
    block = sensordata[:, address:address + 4 * n_pairs].reshape(len(sensordata), n_pairs, 4)
    steps, columns = np.nonzero(block[:, :, 0] > 0)
    return steps, columns, block[steps, columns, 1:4]


class ContactListRecorder:
    """Collects MuJoCo's contact list after each ``mj_step`` (a few array copies a step, no
    per-contact Python) and turns a batch of steps into ContactTracker rows with numpy: each
    contact between two different bodies becomes a (step, pair index, world-frame force) row.

    The force is the elliptic-cone contact force (normal and the two sliding-friction
    components, which MuJoCo stores first in ``efc_force`` at the contact's address) rotated
    out of the contact frame and signed as the force on the pair's second body, so the rows of
    one pair add up like MuJoCo's net-force contact sensor.
    """

    def __init__(self, model: mujoco.MjModel, pairs: np.ndarray, geom_body_index: np.ndarray):
        if model.opt.cone != mujoco.mjtCone.mjCONE_ELLIPTIC:
            raise ValueError("ContactListRecorder reads elliptic-cone contact forces; the model uses another cone")
        n_bodies = int(max(np.max(geom_body_index, initial=-1), np.max(pairs, initial=-1))) + 2
        self._column = np.full((n_bodies, n_bodies), -1, dtype=np.int64)
        if len(pairs):
            self._column[pairs[:, 0] + 1, pairs[:, 1] + 1] = np.arange(len(pairs))
        self._geom_body = np.asarray(geom_body_index, dtype=np.int64) + 1  # 0 = the world
        self._steps: list[int] = []
        self._counts: list[int] = []
        self._geoms: list[np.ndarray] = []
        self._addresses: list[np.ndarray] = []
        self._dims: list[np.ndarray] = []
        self._frames: list[np.ndarray] = []
        self._efc_forces: list[np.ndarray] = []

    def record(self, step: int, data: mujoco.MjData) -> None:
        """Keep the contacts of the step just taken (index ``step`` in the batch)."""
        n = data.ncon
        if n:
            contact = data.contact
            self._steps.append(step)
            self._counts.append(n)
            self._geoms.append(contact.geom[:n].copy())
            self._addresses.append(contact.efc_address[:n].copy())
            self._dims.append(contact.dim[:n].copy())
            self._frames.append(contact.frame[:n].copy())
            self._efc_forces.append(data.efc_force[:data.nefc].copy())

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps (k,), columns (k,), forces (k, 3)) of the contacts recorded since the last call."""
        if not self._steps:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 3))
        counts = np.array(self._counts)
        steps = np.repeat(np.array(self._steps), counts)
        bodies = self._geom_body[np.concatenate(self._geoms)]
        efc_force = np.concatenate(self._efc_forces)
        efc_offset = np.repeat(np.cumsum([0] + [len(f) for f in self._efc_forces[:-1]]), counts)
        address = np.concatenate(self._addresses)
        dims = np.concatenate(self._dims)
        frames = np.concatenate(self._frames).reshape(-1, 3, 3)
        for values in (self._steps, self._counts, self._geoms, self._addresses, self._dims, self._frames,
                       self._efc_forces):
            values.clear()
        columns = self._column[np.minimum(bodies[:, 0], bodies[:, 1]), np.maximum(bodies[:, 0], bodies[:, 1])]
        keep = columns >= 0  # not a pair: parts of one body
        components = np.arange(3)
        # frictionless contacts have a normal row only; excluded ones (address -1) have none
        has_row = (components < dims[keep, None]) & (address[keep, None] >= 0)
        index = np.where(has_row, (efc_offset + address)[keep, None] + components, -1)
        local = np.where(index >= 0, efc_force[np.maximum(index, 0)], 0.0)
        forces = np.einsum("kij,ki->kj", frames[keep], local)
        # MuJoCo's contact force acts on the contact's second geom; flip where the order differs
        forces[bodies[keep, 0] > bodies[keep, 1]] *= -1.0
        return steps[keep], columns[keep], forces


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
