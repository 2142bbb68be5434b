"""Functional programs over a scene's event log and states, and the rollouts they run on.

A program is a list of nodes; each node is ``{"op": name, "inputs": [earlier node indices],
...arguments}`` and the last node's value is the answer. Nodes that read the simulation name
the rollout they read with ``"rollout"``: ``"factual"`` or an intervention such as
``{"remove": "red_cube"}``, ``{"mass_scale": ["red_cube", 3.0]}``, ``{"friction": ["ramp", 1.0]}``
or ``{"gravity_scale": 0.5}``. Counterfactual rollouts re-simulate the scene's initial
snapshot under the intervention (``Simulator.restore`` + the intervention + ``run``).

    provider = RolloutProvider(sim, snapshot, duration=2.75, fps=20)
    value = execute(program, ExecutionContext(provider, scene_facts))
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from physforge.sim import Rollout, Simulator, Snapshot

GROUND = "ground"
#: CPU seconds spent per pipeline stage in this process (for benchmarks; never written to a dataset).
TIMINGS: Counter = Counter()
#: A body "moved" when its origin ends this far (m) from where it started.
DISPLACED_DISTANCE = 0.02


def rollout_key(intervention: Any) -> str:
    """Canonical text of a rollout reference (``"factual"`` or an intervention dict)."""
    if intervention in (None, "factual"):
        return "factual"
    return json.dumps(intervention, sort_keys=True, separators=(",", ":"))


class RolloutProvider:
    """Rollouts of one scene, factual and under interventions, each simulated once and cached.

    perturbation: optional ``{body: impulse (3,) N s}`` applied right after restoring the
    initial snapshot (before any intervention): the near-threshold check runs every program
    again on a perturbed provider.

    event_rollouts: rollout keys (``rollout_key``) whose event log some program may read; the
    others are simulated without contact tracking (about a third cheaper, same trajectory).
    None: every rollout tracks contacts. A program that asks for the events of a rollout run
    without them gets it simulated again with them, so a missing key costs time, never answers.
    """

    def __init__(self, sim: Simulator, snapshot: Snapshot, duration: float, fps: float, *,
                 perturbation: dict[str, list[float]] | None = None, factual: Rollout | None = None,
                 event_rollouts: set[str] | frozenset[str] | None = None):
        self.sim, self.snapshot, self.duration, self.fps = sim, snapshot, duration, fps
        self.perturbation = perturbation or {}
        self.event_rollouts = event_rollouts
        self._cache: dict[str, Rollout] = {}
        self._without_events: set[str] = set()
        if factual is not None:
            self._cache["factual"] = factual
        self.simulations = 0

    def get(self, intervention: Any = "factual", *, events: bool = True) -> Rollout:
        """The rollout under ``intervention``; ``events``: the caller reads its event log."""
        key = rollout_key(intervention)
        if key not in self._cache or (events and key in self._without_events):
            track = events or self.event_rollouts is None or key in self.event_rollouts
            self._cache[key] = self.simulate(None if key == "factual" else intervention, events=track)
            (self._without_events.discard if track else self._without_events.add)(key)
        return self._cache[key]

    def simulate(self, intervention: dict | None, on_frame=None, *, events: bool = True) -> Rollout:
        """Restore the initial snapshot, perturb, intervene, run (SimulationUnstable propagates)."""
        sim = self.sim
        sim.restore(self.snapshot)
        for name, impulse in sorted(self.perturbation.items()):
            sim.apply_impulse(name, impulse)
        if intervention is not None:
            apply_intervention(sim, intervention)
        self.simulations += 1
        start = time.process_time()
        try:
            return sim.run(self.duration, self.fps, events=events, on_frame=on_frame)
        finally:
            TIMINGS["resimulation"] += time.process_time() - start


def apply_intervention(sim: Simulator, intervention: dict) -> None:
    """Apply one intervention dict to ``sim`` through its public intervention API."""
    if len(intervention) != 1:
        raise ValueError(f"an intervention has exactly one key, got {sorted(intervention)}")
    (kind, value), = intervention.items()
    if kind == "remove":
        sim.remove_body(value)
    elif kind == "mass_scale":
        name, factor = value
        sim.set_mass(name, sim.body_mass(name) * float(factor))
    elif kind == "friction":
        name, coefficient = value
        sim.set_friction(name, float(coefficient))
    elif kind == "gravity_scale":
        sim.set_gravity(np.asarray(sim.world.gravity, dtype=float) * float(value))
    else:
        raise ValueError(f"unknown intervention {kind!r}; expected remove, mass_scale, friction or gravity_scale")


@dataclass
class ExecutionContext:
    """What programs run against: rollouts and the scene's static facts.

    observed_until: s, the end of the clip the question shows; "observed" windows end there,
    "future" windows start there. latent: the scene's latent properties. bodies: world body
    name -> initial position (3,) m.
    """

    provider: RolloutProvider
    observed_until: float
    latent: dict[str, float]
    facts: dict[str, Any] = field(default_factory=dict)


def _window(events: list[dict], window: str, observed_until: float) -> list[dict]:
    if window == "observed":
        return [e for e in events if e["time"] <= observed_until]
    if window == "future":
        return [e for e in events if e["time"] > observed_until]
    return list(events)


def _body_state(rollout: Rollout, body: str, field_name: str, time: float) -> float:
    """Position component (m) or speed (m/s) of ``body`` at ``time`` s, linearly interpolated
    between recorded states (clamped to the run)."""
    trajectory = rollout.trajectory
    t = trajectory.time
    index = trajectory.body_names.index(body)
    if field_name in ("x", "y", "z"):
        series = trajectory.position[:, index, "xyz".index(field_name)]
    elif field_name == "speed":
        series = np.linalg.norm(trajectory.linear_velocity[:, index], axis=1)
    else:
        raise ValueError(f"unknown state field {field_name!r}; expected x, y, z or speed")
    return float(np.interp(time, t, series))


def _rotation_angle(q0: np.ndarray, q1: np.ndarray) -> float:
    dot = abs(float(np.dot(q0, q1)))
    return 2.0 * math.acos(min(1.0, dot))


def _period(rollout: Rollout, body: str) -> float | None:
    """Oscillation period (s) from the sign changes of the body's dominant velocity component."""
    trajectory = rollout.trajectory
    velocity = trajectory.linear_velocity[:, trajectory.body_names.index(body)]
    axis = int(np.argmax(np.abs(velocity).max(axis=0)))
    v = velocity[:, axis]
    t = trajectory.time
    crossings = []
    for k in range(1, len(v)):
        if v[k - 1] == 0 or np.sign(v[k - 1]) == np.sign(v[k]):
            continue
        crossings.append(t[k - 1] + (t[k] - t[k - 1]) * v[k - 1] / (v[k - 1] - v[k]))
    if len(crossings) < 2:
        return None
    return float(2.0 * np.mean(np.diff(crossings)))


#: Predicates that read a rollout's event log (the others read only its trajectory).
EVENT_PREDICATES = frozenset({"toppled", "count_toppled", "touching_at_end", "resting_on"})


def _predicate(name: str, node: dict, rollout: Rollout, context: ExecutionContext) -> Any:
    trajectory = rollout.trajectory
    if name == "displaced":
        index = trajectory.body_names.index(node["body"])
        distance = node.get("distance", DISPLACED_DISTANCE)
        moved = np.linalg.norm(trajectory.position[:, index] - trajectory.position[0, index], axis=1)
        return bool(moved[-1] > distance)
    if name == "any_displaced":
        return any(_predicate("displaced", {**node, "body": body}, rollout, context) for body in node["bodies"])
    if name == "count_displaced":
        return sum(_predicate("displaced", {**node, "body": body}, rollout, context) for body in node["bodies"])
    if name == "toppled":
        return any(e["type"] == "topple" and e["bodies"] == [node["body"]] for e in rollout.events)
    if name == "count_toppled":
        return sum(_predicate("toppled", {"body": body}, rollout, context) for body in node["bodies"])
    if name == "inside":
        x0, x1, y0, y1, rim = node["bounds"]
        index = trajectory.body_names.index(node["body"])
        x, y, z = trajectory.position[-1, index]
        return bool(x0 < x < x1 and y0 < y < y1 and z < rim)
    if name == "count_inside":
        return sum(_predicate("inside", {**node, "body": body}, rollout, context) for body in node["bodies"])
    if name == "max_rotation":
        index = trajectory.body_names.index(node["body"])
        q = trajectory.quaternion[:, index]
        return float(max(_rotation_angle(q[0], qk) for qk in q))
    if name == "max_travel":
        index = trajectory.body_names.index(node["body"])
        return float(np.linalg.norm(trajectory.position[:, index] - trajectory.position[0, index], axis=1).max())
    if name == "period":
        return _period(rollout, node["body"])
    if name == "touching_at_end":
        pair = sorted([node["a"], node["b"]])
        open_pairs = set()
        for e in rollout.events:
            key = tuple(sorted(e["bodies"]))
            if e["type"] == "contact_start":
                open_pairs.add(key)
            elif e["type"] == "contact_end":
                open_pairs.discard(key)
        return tuple(pair) in open_pairs
    if name == "resting_on":
        # in contact at the end, with its centre above the other's ("on", not "beside" or "under")
        if not _predicate("touching_at_end", {"a": node["body"], "b": node["support"]}, rollout, context):
            return False
        body, support = (trajectory.body_names.index(node[k]) for k in ("body", "support"))
        return bool(trajectory.position[-1, body, 2] > trajectory.position[-1, support, 2])
    raise ValueError(f"unknown predicate {name!r}")


def _involves(event: dict, body: str) -> bool:
    return body in event["bodies"]


def execute(program: list[dict], context: ExecutionContext) -> Any:
    """Run ``program`` and return its last node's value (bool, int, float, str, or None when
    the program has no answer here, e.g. a period that the run is too short to show)."""
    values: list[Any] = []
    for index, node in enumerate(program):
        op = node.get("op")
        inputs = [values[i] for i in node.get("inputs", [])]
        if op not in _OPS:
            raise ValueError(f"program node {index}: unknown op {op!r}; expected one of {sorted(_OPS)}")
        values.append(_OPS[op](node, inputs, context))
    return values[-1] if values else None


def _events(node, inputs, context):
    rollout = context.provider.get(node.get("rollout", "factual"))
    events = _window(rollout.events, node.get("window", "all"), context.observed_until)
    if node.get("after") is not None:  # a question that shows only a prefix of the clip: events after it
        events = [e for e in events if e["time"] > node["after"]]
    kind = node.get("type")
    if kind:
        events = [e for e in events if e["type"] == kind]
    if node.get("exclude_ground", False):
        events = [e for e in events if GROUND not in e["bodies"]]
    if node.get("exclude"):
        events = [e for e in events if not set(e["bodies"]) & set(node["exclude"])]
    return events


_OPS: dict[str, Callable] = {
    "events": _events,
    "involving": lambda node, inputs, context: [e for e in inputs[0] if _involves(e, node["body"])],
    "pair": lambda node, inputs, context: [e for e in inputs[0] if sorted(e["bodies"]) == sorted([node["a"], node["b"]])],
    "count": lambda node, inputs, context: len(inputs[0]),
    "exists": lambda node, inputs, context: len(inputs[0]) > 0,
    "not": lambda node, inputs, context: None if inputs[0] is None else not inputs[0],
    "first_time": lambda node, inputs, context: (min(e["time"] for e in inputs[0]) if inputs[0] else None),
    "before": lambda node, inputs, context: (inputs[0] is not None and inputs[1] is not None
                                             and inputs[0] < inputs[1]),
    "partner": lambda node, inputs, context: (next((b for b in inputs[0][0]["bodies"] if b != node["body"]), None)
                                              if inputs[0] else None),
    "state": lambda node, inputs, context: _body_state(context.provider.get(node.get("rollout", "factual"),
                                                                            events=False),
                                                       node["body"], node["field"], node["time"]),
    "state_at": lambda node, inputs, context: (None if inputs[0] is None else _body_state(
        context.provider.get(node.get("rollout", "factual"), events=False), node["body"], node["field"],
        inputs[0] + node.get("offset", 0.0))),
    "latent": lambda node, inputs, context: context.latent[node["key"]],
    "greater": lambda node, inputs, context: (None if inputs[0] is None or inputs[1] is None
                                              else inputs[0] > inputs[1]),
    "greater_than": lambda node, inputs, context: None if inputs[0] is None else inputs[0] > node["value"],
    "equal": lambda node, inputs, context: inputs[0] == node["value"],
    "choose": lambda node, inputs, context: node["names"][int(np.argmax([(-math.inf if v is None else v)
                                                                          for v in inputs]))],
    "subtract": lambda node, inputs, context: (None if inputs[0] is None or inputs[1] is None
                                               else inputs[0] - inputs[1]),
    "predicate": lambda node, inputs, context: _predicate(
        node["name"], node, context.provider.get(node.get("rollout", "factual"),
                                                 events=node["name"] in EVENT_PREDICATES), context),
    "constant": lambda node, inputs, context: node["value"],
    "lookup": lambda node, inputs, context: node["table"].get(inputs[0]) if inputs[0] is not None else None,
    "relative_change": lambda node, inputs, context: (None if inputs[0] is None or not inputs[1]
                                                      else abs(inputs[0] - inputs[1]) / abs(inputs[1])),
}
#: op name -> implementation ``(node, input values, context) -> value``
OPS = _OPS


def program_rollouts(program: list[dict]) -> list[str]:
    """The rollout keys a program reads (for citing and for pre-simulating)."""
    return sorted({rollout_key(node.get("rollout", "factual")) for node in program
                   if node["op"] in ("events", "state", "state_at", "predicate")})


def event_rollouts(program: list[dict]) -> set[str]:
    """The rollout keys whose event log a program reads (the rest of its rollouts need only
    their trajectories)."""
    return {rollout_key(node.get("rollout", "factual")) for node in program
            if node["op"] == "events" or (node["op"] == "predicate" and node["name"] in EVENT_PREDICATES)}


def program_cites(program: list[dict]) -> list[str]:
    """The ground-truth fields a program reads, as dataset column paths."""
    cites = set()
    for node in program:
        rollout = rollout_key(node.get("rollout", "factual"))
        prefix = "" if rollout == "factual" else f"counterfactual[{rollout}]."
        if node["op"] == "events":
            cites.add(f"{prefix}events")
        elif node["op"] in ("state", "state_at", "predicate"):
            cites.add(f"{prefix}states")
        elif node["op"] == "latent":
            cites.add(f"latent.{node['key']}")
    return sorted(cites)
