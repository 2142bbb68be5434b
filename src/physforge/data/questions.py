"""Question templates: each proposes candidate questions as functional programs; answers come
from executing the programs on the simulator's rollouts.

Question types: descriptive, quantitative, predictive, property, causal, counterfactual,
stability, plausibility. A template returns ``Candidate``s; ``select`` evaluates a few (lazily:
counterfactual programs re-simulate) and keeps one per template and scene, steering towards
the answer seen least often so far for that template (answers balanced per template), and
putting the correct option of a single-answer multiple-choice question at the least used letter.
Answers are balanced per split and template. Predictive questions show only the first frame
(the clip would give the answer away), or, for will_collide, the first 1-3 frames; counterfactual questions show the whole factual clip, as
in CLEVRER: what did happen is the evidence for what would have happened.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from physforge.data.families.base import SceneSpec
from physforge.data.programs import ExecutionContext, execute

QUESTION_TYPES = ("descriptive", "quantitative", "predictive", "property", "causal", "counterfactual", "stability",
                  "plausibility")
ANSWER_TYPES = ("bool", "count", "number", "name", "choice", "multi")
LETTERS = "ABCDEFGH"
#: Numeric answers count as right within max(abs, rel * |answer|).
TIME_TOLERANCE = (0.05, 0.05)  # s, fraction
POSITION_TOLERANCE = (0.03, 0.05)  # m, fraction
SPEED_TOLERANCE = (0.05, 0.1)  # m/s, fraction
#: At most this many candidates are evaluated per template and scene (fewer when each one
#: needs its own counterfactual simulation).
MAX_EVALUATIONS = 3
MAX_COUNTERFACTUAL_EVALUATIONS = 2
#: Within a shard, a yes/no template's more frequent answer may lead by at most this many.
BALANCE_SLACK = 1


@dataclass
class Candidate:
    """A question before its answer is known: text, program(s), answer type, frames shown."""

    qtype: str
    template: str
    text: str
    answer_type: str
    program: list[dict] = field(default_factory=list)
    options: list[dict] = field(default_factory=list)  # {"text", "program"}
    tolerance: tuple[float, float] = (0.0, 0.0)
    frames: list[int] | None = None  # None: every frame of the clip
    answer: str | None = None
    option_correct: list[bool] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def evaluate(self, context: ExecutionContext) -> str | None:
        """Run the program(s); set and return the answer text (None: not answerable here)."""
        if self.options:
            values = [execute(o["program"], context) for o in self.options]
            if any(v is None for v in values):
                return None
            self.option_correct = [bool(v) for v in values]
            correct = [LETTERS[i] for i, c in enumerate(self.option_correct) if c]
            if self.answer_type == "choice" and len(correct) != 1:
                return None
            self.answer = ",".join(correct) if correct else "none"
            return self.answer
        value = execute(self.program, context)
        self.answer = format_answer(value, self.answer_type)
        return self.answer


def format_answer(value: Any, answer_type: str) -> str | None:
    if value is None:
        return None
    if answer_type == "bool":
        return "yes" if value else "no"
    if answer_type == "count":
        return str(int(value))
    if answer_type == "number":
        if not math.isfinite(float(value)):
            return None
        return f"{float(value):.3f}"
    return str(value)


class Scene:
    """What templates read: the spec, the factual rollout and the clip's timing."""

    def __init__(self, spec: SceneSpec, context: ExecutionContext, frame_times: list[float]):
        self.spec, self.context, self.frame_times = spec, context, frame_times
        self.factual = context.provider.get("factual")
        self.names = {o.name: o.description for o in spec.objects}

    def d(self, name: str) -> str:
        return "the ground" if name == "ground" else f"the {self.names.get(name, name.replace('_', ' '))}"

    def collisions(self, window: str = "observed") -> list[dict]:
        t_obs = self.context.observed_until
        out = []
        for e in self.factual.events:
            if e["type"] != "contact_start" or "ground" in e["bodies"]:
                continue
            if not all(b in self.names for b in e["bodies"]):
                continue
            if (window == "observed") != (e["time"] <= t_obs) and window != "all":
                continue
            out.append(e)
        return out


def _collision_program(a: str, b: str, window: str = "observed", rollout: Any = "factual") -> list[dict]:
    return [{"op": "events", "type": "contact_start", "window": window, "rollout": rollout},
            {"op": "pair", "inputs": [0], "a": a, "b": b}, {"op": "exists", "inputs": [1]}]


# -- generic templates -------------------------------------------------------------------------------
def count_collisions(scene: Scene, rng) -> list[Candidate]:
    if len(scene.spec.objects) < 2:
        return []
    return [Candidate("descriptive", "count_collisions", "How many collisions between objects happen in the video?",
                      "count", [{"op": "events", "type": "contact_start", "window": "observed",
                                 "exclude_ground": True, "exclude": scene.spec.facts.get("static", [])},
                                {"op": "count", "inputs": [0]}])]


def collision_order(scene: Scene, rng) -> list[Candidate]:
    events = scene.collisions("observed")
    pairs = []
    for e in events:
        pair = tuple(sorted(e["bodies"]))
        if pair not in pairs:
            pairs.append(pair)
    out = []
    for i in range(len(pairs)):
        for j in range(len(pairs)):
            if i == j:
                continue
            (a, b), (c, d) = pairs[i], pairs[j]
            program = [{"op": "events", "type": "contact_start", "window": "observed"},
                       {"op": "pair", "inputs": [0], "a": a, "b": b}, {"op": "first_time", "inputs": [1]},
                       {"op": "pair", "inputs": [0], "a": c, "b": d}, {"op": "first_time", "inputs": [3]},
                       {"op": "before", "inputs": [2, 4]}]
            out.append(Candidate("descriptive", "collision_order",
                                 f"Does the collision between {scene.d(a)} and {scene.d(b)} happen before the "
                                 f"collision between {scene.d(c)} and {scene.d(d)}?", "bool", program))
    return out


def first_partner(scene: Scene, rng) -> list[Candidate]:
    out = []
    colors = {o.name: o.color for o in scene.spec.objects}
    for o in scene.spec.objects:
        if any(o.name in e["bodies"] for e in scene.collisions("observed")):
            program = [{"op": "events", "type": "contact_start", "window": "observed", "exclude_ground": True},
                       {"op": "involving", "inputs": [0], "body": o.name},
                       {"op": "partner", "inputs": [1], "body": o.name},
                       {"op": "lookup", "inputs": [2], "table": colors}]
            out.append(Candidate("descriptive", "first_partner",
                                 f"What colour is the first object that {scene.d(o.name)} collides with?", "name",
                                 program))
    return out


def speed_at(scene: Scene, rng) -> list[Candidate]:
    out = []
    trajectory = scene.factual.trajectory
    for o in scene.spec.objects:
        speeds = [float(np.interp(t, trajectory.time, np.linalg.norm(trajectory.body(o.name)["linear_velocity"], axis=1)))
                  for t in scene.frame_times]
        moving = [k for k in range(1, len(speeds)) if speeds[k] > 0.05]
        pool = moving if moving and rng.random() < 0.8 else list(range(1, len(scene.frame_times)))
        frame = int(pool[int(rng.integers(len(pool)))])
        t = round(scene.frame_times[frame], 4)
        out.append(Candidate("quantitative", "speed_at",
                             f"What is the speed of {scene.d(o.name)} in m/s at t = {t:.2f} s (frame {frame + 1})?",
                             "number", [{"op": "state", "body": o.name, "field": "speed", "time": t}],
                             tolerance=SPEED_TOLERANCE))
    return out


def height_at(scene: Scene, rng) -> list[Candidate]:
    out = []
    for o in scene.spec.objects:
        frame = int(rng.integers(0, len(scene.frame_times)))
        t = round(scene.frame_times[frame], 4)
        out.append(Candidate("quantitative", "height_at",
                             f"How high above the ground, in metres, is the centre of {scene.d(o.name)} at "
                             f"t = {t:.2f} s (frame {frame + 1})?", "number",
                             [{"op": "state", "body": o.name, "field": "z", "time": t}], tolerance=POSITION_TOLERANCE))
    return out


def time_to_collision(scene: Scene, rng) -> list[Candidate]:
    out = []
    seen = set()
    for e in scene.collisions("all"):
        pair = tuple(sorted(e["bodies"]))
        if pair in seen:
            continue
        seen.add(pair)
        program = [{"op": "events", "type": "contact_start", "window": "all"},
                   {"op": "pair", "inputs": [0], "a": pair[0], "b": pair[1]}, {"op": "first_time", "inputs": [1]}]
        out.append(Candidate("quantitative", "time_to_collision",
                             f"How many seconds after the first frame do {scene.d(pair[0])} and {scene.d(pair[1])} "
                             "first touch?", "number", program, tolerance=TIME_TOLERANCE))
    return out


def will_collide(scene: Scene, rng) -> list[Candidate]:
    """CLEVRER's predictive question: the clip is cut after its first 1-3 frames (drawn per scene,
    whatever the answers) and the question asks whether two objects that have not touched yet
    will touch later in the run. Asked after the whole clip it had no "yes" in 300 scenes: the
    objects' collisions are over before the clip ends."""
    shown = int(rng.integers(1, min(3, len(scene.frame_times)) + 1))
    cut = scene.frame_times[shown - 1]
    touched = {tuple(sorted(e["bodies"])) for e in scene.collisions("all") if e["time"] <= cut}
    names = sorted(o.name for o in scene.spec.objects)
    out = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if (names[i], names[j]) in touched:
                continue
            program = _collision_program(names[i], names[j], "all")
            program[0]["after"] = cut
            out.append(Candidate("predictive", "will_collide",
                                 f"Will {scene.d(names[i])} and {scene.d(names[j])} collide after the last frame "
                                 "shown?", "bool", program, frames=list(range(shown))))
    return out


def responsible(scene: Scene, rng) -> list[Candidate]:
    """CLEVRER's explanatory question: which earlier collision is responsible for a later one
    (an option is correct iff removing its other object prevents the target collision)."""
    events = scene.collisions("observed")
    out = []
    for k, target in enumerate(events):
        a, b = sorted(target["bodies"])
        options = []
        for earlier in events[:k]:
            if earlier["time"] >= target["time"]:
                continue
            others = [x for x in earlier["bodies"] if x not in (a, b)]
            if not others or tuple(sorted(earlier["bodies"])) == (a, b):
                continue
            c, d = sorted(earlier["bodies"])
            text = f"the collision between {scene.d(c)} and {scene.d(d)}"
            if any(o["text"] == text for o in options):
                continue
            options.append({"text": text, "program": _collision_program(a, b, "all", {"remove": others[0]})
                            + [{"op": "not", "inputs": [2]}]})
        if options:
            out.append(Candidate("causal", "responsible",
                                 f"Which of these is responsible for the collision between {scene.d(a)} and "
                                 f"{scene.d(b)}?", "multi", options=options[:3]))
    return out


def counterfactual_remove(scene: Scene, rng) -> list[Candidate]:
    names = [o.name for o in scene.spec.objects]
    if len(names) < 3:
        return []
    out = []
    for removed in names:
        rest = [n for n in names if n != removed]
        pairs = [(rest[i], rest[j]) for i in range(len(rest)) for j in range(i + 1, len(rest))]
        order = rng.permutation(len(pairs))[:4]
        options = [{"text": f"{scene.d(pairs[i][0])} collides with {scene.d(pairs[i][1])}",
                    "program": _collision_program(*pairs[i], "all", {"remove": removed})} for i in order]
        out.append(Candidate("counterfactual", "remove_object",
                             f"If {scene.d(removed)} were removed, which of these would happen?", "multi",
                             options=options))
    return out


def counterfactual_heavier(scene: Scene, rng) -> list[Candidate]:
    """Would A and B still collide if X were three times heavier or a third as heavy? X is an
    object that touched another object before A first met B (possibly A or B itself): a mass
    change alters a sliding object's motion only from its first collision on (friction and
    gravity scale with it), so any other X would make the answer "yes" by construction."""
    collisions = scene.collisions("all")
    first: dict[tuple[str, str], float] = {}
    for e in collisions:
        first.setdefault(tuple(sorted(e["bodies"])), e["time"])
    out = []
    for (a, b), time in first.items():
        for x in sorted({body for e in collisions if e["time"] < time for body in e["bodies"]}):
            factor, wording = (3.0, "three times heavier") if rng.random() < 0.5 else (1 / 3, "a third as heavy")
            out.append(Candidate("counterfactual", "mass_still_collide",
                                 f"If {scene.d(x)} were {wording}, would {scene.d(a)} and {scene.d(b)} still "
                                 "collide?", "bool", _collision_program(a, b, "all", {"mass_scale": [x, factor]})))
    return out


def _two_option(scene: Scene, template: str, qtype: str, text: str, a: str, b: str, make_program) -> Candidate:
    options = [{"text": scene.d(x)[4:], "program": make_program(x, y)} for x, y in ((a, b), (b, a))]
    return Candidate(qtype, template, text, "choice", options=options)


def _latent_greater(key: str):
    return lambda x, y: [{"op": "latent", "key": f"{x}.{key}"}, {"op": "latent", "key": f"{y}.{key}"},
                         {"op": "greater", "inputs": [0, 1]}]


# -- family-specific templates ---------------------------------------------------------------------
def heavier_after_collision(scene: Scene, rng) -> list[Candidate]:
    """Which of two colliding objects is heavier: visible from the velocity changes."""
    out = []
    for e in scene.collisions("observed"):
        a, b = sorted(e["bodies"])
        ma, mb = scene.spec.obj(a).mass, scene.spec.obj(b).mass
        if max(ma, mb) / min(ma, mb) < 1.5:
            continue
        out.append(_two_option(scene, "heavier", "property", f"Which is heavier, {scene.d(a)} or {scene.d(b)}?", a, b,
                               _latent_greater("mass")))
    return out


def faster_after_collision(scene: Scene, rng) -> list[Candidate]:
    out = []
    for e in scene.collisions("observed"):
        a, b = sorted(e["bodies"])

        def program(x, y, t=e["time"], a=a, b=b):
            return [{"op": "events", "type": "contact_start", "window": "observed"},
                    {"op": "pair", "inputs": [0], "a": a, "b": b}, {"op": "first_time", "inputs": [1]},
                    {"op": "state_at", "inputs": [2], "body": x, "field": "speed", "offset": 0.15},
                    {"op": "state_at", "inputs": [2], "body": y, "field": "speed", "offset": 0.15},
                    {"op": "greater", "inputs": [3, 4]}]
        out.append(_two_option(scene, "faster_after_collision", "quantitative",
                               f"Right after {scene.d(a)} and {scene.d(b)} collide, which one moves faster?", a, b,
                               program))
    return out


def tower_falls(scene: Scene, rng) -> list[Candidate]:
    blocks = scene.spec.facts["blocks"]
    distance = scene.spec.facts["fall_distance"]
    program = [{"op": "predicate", "name": "any_displaced", "bodies": blocks, "distance": distance}]
    out = [Candidate("stability", "tower_falls", "Will this tower fall over?", "bool", program, frames=[0])]
    if len(blocks) >= 3:
        top = blocks[-1]
        out.append(Candidate("counterfactual", "tower_without_top",
                             f"If {scene.d(top)} on top were removed, would the rest of the tower fall over?", "bool",
                             [{"op": "predicate", "name": "any_displaced", "bodies": blocks[:-1], "distance": distance,
                               "rollout": {"remove": top}}]))
    return out


def domino_templates(scene: Scene, rng) -> list[Candidate]:
    order = scene.spec.facts["order"]
    last = order[-1]
    out = [Candidate("stability", "last_domino_falls", f"Will the last domino ({scene.d(last)}) fall?", "bool",
                     [{"op": "predicate", "name": "toppled", "body": last}], frames=[0]),
           Candidate("descriptive", "count_fallen", "How many dominoes fall over by the end?", "count",
                     [{"op": "predicate", "name": "count_toppled", "bodies": order}], frames=None)]
    for middle in order[1:-1]:
        out.append(Candidate("counterfactual", "domino_removed",
                             f"If {scene.d(middle)} were removed, would the last domino ({scene.d(last)}) fall?", "bool",
                             [{"op": "predicate", "name": "toppled", "body": last, "rollout": {"remove": middle}}]))
    return out


def ramp_templates(scene: Scene, rng) -> list[Candidate]:
    out = []
    cubes = [o for o in scene.spec.objects if o.shape == "cube"]
    for o in cubes:
        out.append(Candidate("stability", "block_slides", f"Will {scene.d(o.name)} slide down the ramp?", "bool",
                             [{"op": "predicate", "name": "displaced", "body": o.name, "distance": 0.02}], frames=[0]))
        mu = round(float(rng.uniform(0.05, 1.2)), 2)
        out.append(Candidate("counterfactual", "other_ramp_friction",
                             f"If the ramp's friction coefficient were {mu:.2f} instead, would {scene.d(o.name)} "
                             "slide down?", "bool",
                             [{"op": "predicate", "name": "displaced", "body": o.name, "distance": 0.02,
                               "rollout": {"friction": ["ramp", mu]}}]))
    ramp_mu = scene.spec.facts["ramp_friction"]
    for i in range(len(cubes)):
        for j in range(i + 1, len(cubes)):
            a, b = cubes[i], cubes[j]
            mu_a, mu_b = max(a.friction, ramp_mu), max(b.friction, ramp_mu)
            if max(mu_a, mu_b) / max(min(mu_a, mu_b), 1e-6) < 1.4:
                continue  # the motion would not tell them apart
            out.append(_two_option(scene, "more_slippery", "property",
                                   f"Which is more slippery on this ramp, {scene.d(a.name)} or {scene.d(b.name)}?",
                                   a.name, b.name,
                                   lambda x, y: [{"op": "predicate", "name": "max_travel", "body": x},
                                                 {"op": "predicate", "name": "max_travel", "body": y},
                                                 {"op": "greater", "inputs": [0, 1]}]))
    return out


def projectile_templates(scene: Scene, rng) -> list[Candidate]:
    out = []
    for o in scene.spec.objects:
        flight = [{"op": "events", "type": "contact_start", "window": "all"},
                  {"op": "pair", "inputs": [0], "a": o.name, "b": "ground"}, {"op": "first_time", "inputs": [1]}]
        out.append(Candidate("quantitative", "flight_time",
                             f"How many seconds is {scene.d(o.name)} in the air before it first touches the ground?",
                             "number", flight, tolerance=TIME_TOLERANCE))
        out.append(Candidate("quantitative", "landing_distance",
                             f"How far, horizontally in metres, from its starting point does {scene.d(o.name)} "
                             "first touch the ground?", "number",
                             flight + [{"op": "state_at", "inputs": [2], "body": o.name, "field": "x"},
                                       {"op": "state", "body": o.name, "field": "x", "time": 0.0},
                                       {"op": "subtract", "inputs": [3, 4]}], tolerance=POSITION_TOLERANCE))
    balls = scene.spec.objects
    for i in range(len(balls)):
        for j in range(i + 1, len(balls)):
            a, b = balls[i], balls[j]
            out.append(_two_option(scene, "lands_first", "predictive",
                                   f"Which ball touches the ground first, {scene.d(a.name)} or {scene.d(b.name)}?",
                                   a.name, b.name,
                                   lambda x, y: [{"op": "events", "type": "contact_start", "window": "all"},
                                                 {"op": "pair", "inputs": [0], "a": y, "b": "ground"},
                                                 {"op": "first_time", "inputs": [1]},
                                                 {"op": "pair", "inputs": [0], "a": x, "b": "ground"},
                                                 {"op": "first_time", "inputs": [3]},
                                                 {"op": "greater", "inputs": [2, 4]}]))
            if abs(a.restitution - b.restitution) >= 0.3:
                out.append(_two_option(scene, "bouncier", "property",
                                       f"Which ball is bouncier, {scene.d(a.name)} or {scene.d(b.name)}?", a.name,
                                       b.name, _latent_greater("restitution")))
    return out


def containment_templates(scene: Scene, rng) -> list[Candidate]:
    bounds = scene.spec.facts["bounds"]
    container = f"the {scene.spec.facts['container_color']} container"
    names = [o.name for o in scene.spec.objects]
    start_height = {name: scene.spec.world.body(name).pose.position[2] for name in names}
    out = []
    for name in names:
        out.append(Candidate("predictive", "ends_inside", f"Will {scene.d(name)} end up inside {container}?", "bool",
                             [{"op": "predicate", "name": "inside", "body": name, "bounds": bounds}], frames=[0]))
        for other in names:
            if other != name:
                out.append(Candidate("counterfactual", "inside_without",
                                     f"If {scene.d(other)} were removed, would {scene.d(name)} end up inside "
                                     f"{container}?", "bool",
                                     [{"op": "predicate", "name": "inside", "body": name, "bounds": bounds,
                                       "rollout": {"remove": other}}]))
                if start_height[name] > start_height[other]:  # asked of the one dropped from higher up
                    out.append(Candidate("stability", "supported_by",
                                         f"At the end, is {scene.d(name)} resting on {scene.d(other)}?", "bool",
                                         [{"op": "predicate", "name": "resting_on", "body": name, "support": other}]))
    out.append(Candidate("descriptive", "count_inside", f"How many objects are inside {container} at the end?", "count",
                         [{"op": "predicate", "name": "count_inside", "bodies": names, "bounds": bounds}]))
    return out


def pendulum_templates(scene: Scene, rng) -> list[Candidate]:
    oscillators = [n for n in scene.spec.facts["oscillators"]]
    out = []
    for i in range(len(oscillators)):
        for j in range(i + 1, len(oscillators)):
            a, b = oscillators[i], oscillators[j]
            out.append(_two_option(scene, "faster_oscillation", "property",
                                   f"Which swings back and forth faster, {scene.d(a)} or {scene.d(b)}?", a, b,
                                   lambda x, y: [{"op": "predicate", "name": "period", "body": y},
                                                 {"op": "predicate", "name": "period", "body": x},
                                                 {"op": "greater", "inputs": [0, 1]}]))
    for name in oscillators:
        # The object is named by colour only: "slider" or "pendulum" in the text decided the
        # answer by itself (a spring's period grows with mass, a pendulum's does not), so a
        # text-only model answered it perfectly. Whether it hangs from a rod or slides must be seen.
        out.append(Candidate("counterfactual", "heavier_period",
                             f"If the {scene.spec.obj(name).color} oscillating object were twice as heavy, would it "
                             "take noticeably (over 5 %) longer to swing back and forth?", "bool",
                             [{"op": "predicate", "name": "period", "body": name, "rollout": {"mass_scale": [name, 2.0]}},
                              {"op": "predicate", "name": "period", "body": name},
                              {"op": "subtract", "inputs": [0, 1]}, {"op": "predicate", "name": "period", "body": name},
                              {"op": "relative_change", "inputs": [0, 3]},
                              {"op": "greater_than", "inputs": [4], "value": 0.05}]))
    block = scene.spec.facts.get("block")
    if block:
        first = oscillators[0]
        out.append(Candidate("predictive", "knocks_over", f"Will {scene.d(first)} knock {scene.d(block)} over?", "bool",
                             [{"op": "predicate", "name": "toppled", "body": block}], frames=[0]))
    return out


def articulated_templates(scene: Scene, rng) -> list[Candidate]:
    facts = scene.spec.facts
    if facts["kind"] == "door":
        door, ball = facts["door"], facts["ball"]
        opens = [{"op": "predicate", "name": "max_rotation", "body": door},
                 {"op": "greater_than", "inputs": [0], "value": facts["open_angle"]}]
        # heavier or lighter at random: a three times heavier ball opened the door in all of 14 scenes
        factor, wording = (3.0, "three times heavier") if rng.random() < 0.5 else (1 / 3, "a third as heavy")
        cf = [dict(opens[0], rollout={"mass_scale": [ball, factor]}), opens[1]]
        degrees = round(math.degrees(facts["open_angle"]))
        return [Candidate("predictive", "door_opens", f"Will {scene.d(ball)} push {scene.d(door)} open by more than "
                          f"{degrees} degrees?", "bool", opens, frames=[0]),
                Candidate("counterfactual", "ball_mass_door", f"If {scene.d(ball)} were {wording}, would "
                          f"{scene.d(door)} open by more than {degrees} degrees?", "bool", cf, frames=[0])]
    drawer = facts["drawer"]
    full = [{"op": "predicate", "name": "max_travel", "body": drawer},
            {"op": "greater_than", "inputs": [0], "value": facts["travel"] - 0.005}]
    cf = [dict(full[0], rollout={"mass_scale": [drawer, 2.0]}), full[1]]
    return [Candidate("predictive", "drawer_opens_fully", f"Will {scene.d(drawer)} slide all the way open?", "bool",
                      full, frames=[0]),
            Candidate("counterfactual", "heavier_drawer", f"If {scene.d(drawer)} were twice as heavy (same push speed),"
                      " would it slide all the way open?", "bool", cf, frames=[0])]


GENERIC: list[Callable] = [count_collisions, collision_order, first_partner, speed_at, height_at, time_to_collision,
                           will_collide, responsible, counterfactual_remove, counterfactual_heavier]
FAMILY_TEMPLATES: dict[str, list[Callable]] = {
    "collisions": [heavier_after_collision, faster_after_collision],
    "ramps": [ramp_templates],
    "towers": [tower_falls],
    "dominoes": [domino_templates],
    "projectiles": [projectile_templates],
    "containment": [containment_templates],
    "pendulums": [pendulum_templates],
    "articulated": [articulated_templates],
}
#: Generic templates that read collisions between free objects; other families use a subset.
GENERIC_FOR: dict[str, list[Callable]] = {
    "collisions": GENERIC,
    "ramps": [speed_at, height_at, time_to_collision, count_collisions],
    "towers": [height_at, speed_at],
    "dominoes": [collision_order, time_to_collision, speed_at, responsible],
    "projectiles": [height_at, speed_at, will_collide],
    "containment": [count_collisions, first_partner, height_at, speed_at, time_to_collision],
    "pendulums": [speed_at, height_at, time_to_collision],
    "articulated": [speed_at, time_to_collision],
}


class Balancer:
    """Per-(split, template) answer counts (within one shard) that steer selection towards balance.

    split: the split of the scene being questioned (set per scene). Answers are counted per split
    as well as per template because OOD splits change the physics, and with it which answer a
    template's scenes allow (faster dominoes nearly always topple the last one): balanced over
    the whole shard, an OOD split could still be all "yes", and its majority baseline would then
    be a prior learnt from the split's skew, not from the training data.
    """

    def __init__(self):
        self.answers: dict[str, Counter] = {}
        self.letters: dict[str, Counter] = {}
        self.split = ""

    def _key(self, template: str) -> str:
        return f"{self.split}/{template}" if self.split else template

    def target(self, template: str, answer_type: str) -> str | None:
        seen = self.answers.setdefault(self._key(template), Counter())
        if answer_type == "bool":
            return min(("no", "yes"), key=lambda a: (seen[a], a))
        return None

    def admit(self, candidate: Candidate) -> bool:
        """False if keeping this yes/no question would put its answer more than BALANCE_SLACK
        ahead of the other answer for its template (within the shard)."""
        if candidate.answer_type != "bool":
            return True
        seen = self.answers.setdefault(self._key(candidate.template), Counter())
        other = "no" if candidate.answer == "yes" else "yes"
        return seen[candidate.answer] < seen[other] + BALANCE_SLACK

    def record(self, candidate: Candidate) -> None:
        self.answers.setdefault(self._key(candidate.template), Counter())[candidate.answer] += 1

    def place_correct(self, candidate: Candidate, rng: np.random.Generator) -> None:
        """For single-answer choice: move the correct option to the least used letter so far
        (ties broken at random). For multiple-answer choice: shuffle the options (templates list
        them in event order, and the earliest is the most often correct)."""
        if candidate.answer_type == "multi" and len(candidate.options) > 1:
            order = [int(k) for k in rng.permutation(len(candidate.options))]
            candidate.options = [candidate.options[k] for k in order]
            candidate.option_correct = [candidate.option_correct[k] for k in order]
            correct = [LETTERS[i] for i, c in enumerate(candidate.option_correct) if c]
            candidate.answer = ",".join(correct) if correct else "none"
            return
        if candidate.answer_type != "choice":
            return
        used = self.letters.setdefault(self._key(candidate.template), Counter())
        n = len(candidate.options)
        correct = candidate.option_correct.index(True)
        fewest = min(used[LETTERS[k]] for k in range(n))
        ties = [k for k in range(n) if used[LETTERS[k]] == fewest]
        slot = ties[int(rng.integers(len(ties)))]
        order = list(range(n))
        order.remove(correct)
        order.insert(slot, correct)
        candidate.options = [candidate.options[k] for k in order]
        candidate.option_correct = [candidate.option_correct[k] for k in order]
        candidate.answer = LETTERS[slot]
        used[candidate.answer] += 1


def balance_rows(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Split question rows (in generation order) into (kept, dropped) so that every yes/no
    template has as many "yes" as "no" answers within each split (rows without a "split" count as
    one split): the latest rows of the leading answer go.

    The Balancer steers towards balance while a shard is generated, but it can only choose
    among the answers a scene allows; a template whose physics mostly gives one answer (a door
    that nearly always opens) would still lead by up to BALANCE_SLACK per shard, which over a
    dataset of many shards is most of it. ``generate.balance_questions`` trims the whole
    dataset's rows with this once at finalisation, so every split is exactly balanced and a rare
    minority answer from any shard is kept.
    """
    def key(row: dict) -> tuple[str, str]:
        return row.get("split", ""), row["template"]

    counts: dict[tuple[str, str], Counter] = {}
    for row in rows:
        if row["answer_type"] == "bool":
            counts.setdefault(key(row), Counter())[row["answer"]] += 1
    surplus = {}
    for template, seen in counts.items():
        lead = seen["yes"] - seen["no"]
        if lead:
            surplus[template] = ("yes" if lead > 0 else "no", abs(lead))
    dropped_index = set()
    for index in range(len(rows) - 1, -1, -1):
        row = rows[index]
        answer, left = surplus.get(key(row), (None, 0))
        if left and row["answer_type"] == "bool" and row["answer"] == answer:
            dropped_index.add(index)
            surplus[key(row)] = (answer, left - 1)
    return ([r for i, r in enumerate(rows) if i not in dropped_index],
            [r for i, r in enumerate(rows) if i in dropped_index])


def propose(scene: Scene, rng: np.random.Generator) -> dict[str, list[Candidate]]:
    """All candidates of every template that applies to the scene's family, by template name."""
    by_template: dict[str, list[Candidate]] = {}
    for template in GENERIC_FOR.get(scene.spec.family, []) + FAMILY_TEMPLATES.get(scene.spec.family, []):
        for candidate in template(scene, rng):
            by_template.setdefault(candidate.template, []).append(candidate)
    return by_template


def select(candidates: list[Candidate], context: ExecutionContext, balancer: Balancer,
           rng: np.random.Generator, errors: Counter) -> Candidate | None:
    """Evaluate up to MAX_EVALUATIONS candidates in random order; return the one whose answer is
    the template's least frequent so far (or the first answerable one). The caller records the
    kept question with ``balancer.place_correct`` and ``balancer.record``."""
    from physforge.errors import SimulationUnstable

    if not candidates:
        return None
    target = balancer.target(candidates[0].template, candidates[0].answer_type)
    answered = []
    programs = [candidates[0].program] + [o["program"] for o in candidates[0].options]
    resimulates = any(node.get("rollout", "factual") != "factual" for p in programs for node in p)
    limit = MAX_COUNTERFACTUAL_EVALUATIONS if resimulates else MAX_EVALUATIONS
    for index in rng.permutation(len(candidates))[:limit]:
        candidate = candidates[int(index)]
        try:
            answer = candidate.evaluate(context)
        except SimulationUnstable:
            errors["counterfactual_unstable"] += 1
            continue
        if answer is None:
            continue
        answered.append(candidate)
        if target is None or answer == target:
            break
    if not answered:
        return None
    return next((c for c in answered if target is None or c.answer == target), answered[0])
