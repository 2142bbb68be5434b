"""One scene, end to end: sample, simulate, render, ask, answer, check, and lay out as rows.

Everything random comes from one generator per scene, ``SeedSequence([seed, index])``.
"""

from __future__ import annotations

import copy
import os
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import physforge
from physforge.data.config import IID_SPLITS, DataConfig
from physforge.data.families import FAMILIES
from physforge.data.families.base import SceneSpec
from physforge.data.programs import TIMINGS, ExecutionContext, RolloutProvider, event_rollouts, program_cites
from physforge.data.questions import LETTERS, Balancer, Candidate, Scene, propose, select
from physforge.errors import SimulationUnstable
from physforge.sim import Simulator
from physforge.world import world_to_dict

#: Depth images store millimetres in uint16 PNGs (0 .. 65.535 m).
DEPTH_SCALE = 1000.0
#: Speed (m/s) of the upward kick that makes a clip physically impossible.
VIOLATION_KICK_SPEED = 1.5


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def versions() -> dict[str, str]:
    from physforge.sim import MUJOCO_VERSION

    return {"physforge": physforge.__version__, "mujoco": MUJOCO_VERSION,
            "renderer": f"mujoco OpenGL ({os.environ.get('MUJOCO_GL', 'egl')}), shadows off"}


def assign(config: DataConfig, rng: np.random.Generator) -> tuple[str, str, str]:
    """(family, split, variant) of a scene, from the first draws of its generator."""
    names = sorted(config.families)
    weights = np.array([config.families[n] for n in names], dtype=float)
    family = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    u, v = float(rng.random()), float(rng.random())
    if family in config.heldout_families:
        return family, "test_ood_family", "iid"
    if u < config.ood_params_fraction:
        return family, "test_ood_params", "params"
    if u < config.ood_params_fraction + config.ood_compositional_fraction:
        return family, "test_ood_compositional", "compositional"
    edges = np.cumsum(config.split_fractions)
    return family, IID_SPLITS[int(min(np.searchsorted(edges, v, side="right"), 2))], "iid"


@dataclass
class SceneResult:
    index: int
    family: str
    split: str
    scene: dict[str, Any] | None  # the scene row; None when rejected
    questions: list[dict[str, Any]] = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)
    rejected: str | None = None


_PNG_KINDS = {(3, "uint8"): (8, 2), (2, "uint8"): (8, 0), (2, "uint16"): (16, 0)}  # (ndim, dtype) -> bit depth, colour type


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _png(array: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB, (H, W) uint8 grey or (H, W) uint16 grey image.

    Rows go unfiltered into zlib at level 1. Pillow's PNG encoder tries all five row filters on
    every row whatever the settings, which here costs twice the deflate itself (~4.3 vs ~1.6 ms
    per 256² RGB frame) and gives no smaller files on flat-shaded renders. Any PNG reader
    decodes these (the tests read them back with Pillow).
    """
    kind = _PNG_KINDS.get((array.ndim, array.dtype.name))
    if kind is None or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"expected (H, W, 3) uint8, (H, W) uint8 or (H, W) uint16, got {array.shape} {array.dtype}")
    height, width = array.shape[:2]
    rows = np.zeros((height, 1 + array[0].nbytes), dtype=np.uint8)  # first byte of a row: filter 0 (none)
    rows[:, 1:] = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).reshape(height, -1).view(np.uint8)
    header = struct.pack(">IIBBBBB", width, height, kind[0], kind[1], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows, 1))
            + _png_chunk(b"IEND", b""))


def _image(array: np.ndarray) -> dict[str, Any]:
    start = time.process_time()
    data = _png(array)
    TIMINGS["encode"] += time.process_time() - start
    return {"bytes": data, "path": None}


def _perturbation(sim: Simulator, spec: SceneSpec, rng: np.random.Generator, speed: float) -> dict[str, list[float]]:
    """A tiny random impulse (N s) per moving top-level body: mass x speed in a random direction."""
    out = {}
    for body in spec.world.bodies:
        if body.parent is not None or body.joint.type == "fixed":
            continue
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        out[body.name] = (sim.body_mass(body.name) * speed * direction).tolist()
    return out


def _same(a: Candidate, b: Candidate) -> bool:
    from physforge.data.grade import answers_match

    if a.options:
        return a.option_correct == b.option_correct
    if b.answer is None:
        return False
    return answers_match(b.answer, a.answer, a.answer_type, a.tolerance)


def generate_scene(config: DataConfig, index: int, renderer, balancer: Balancer) -> SceneResult:
    """Build, simulate, render and question scene ``index`` of the run. ``renderer`` is a
    ``physforge.sim.SceneRenderer`` of the config's size (one per worker, re-bound per scene)."""
    rng = scene_rng(config.seed, index)
    family, split, variant = assign(config, rng)
    config = config.for_family(family)
    result = SceneResult(index=index, family=family, split=split, scene=None)
    balancer.split = split  # answers are balanced per split and template
    spec = FAMILIES[family].build(rng, config.params[family], variant)
    sim = Simulator(spec.world)
    renderer.bind(sim.compiled)
    snapshot = sim.snapshot()
    stride, n = config.frame_stride, config.num_frames
    rgb, depth, segmentation = [], [], []
    camera = spec.camera
    # the impossible twin clip is this run up to its violation at frame n // 2: keep that state
    # (a few hundred bytes) so the twin re-simulates and renders only the frames after it
    middle: list = []

    def on_frame(simulator: Simulator, frame: int) -> None:
        if frame == (n // 2) * stride:
            middle.append(simulator.snapshot())
        if frame % stride == 0 and frame // stride < n:
            colour, d, s = renderer.rgb_depth_segmentation(simulator.data, camera)
            rgb.append(_image(colour))
            depth.append(_image(np.clip(np.round(d * DEPTH_SCALE), 0, 65535).astype(np.uint16)))
            segmentation.append(_image(np.clip(s, 0, 255).astype(np.uint8)))

    try:
        factual = sim.run(config.duration, config.state_fps, on_frame=on_frame)
    except SimulationUnstable as err:
        result.rejected = f"unstable: {err.reason}"
        result.stats["rejected_unstable"] += 1
        renderer.release()
        return result
    provider = RolloutProvider(sim, snapshot, config.duration, config.state_fps, factual=factual)
    context = ExecutionContext(provider, config.clip_duration, spec.latent, spec.facts)
    frame_times = [k / config.fps for k in range(n)]
    scene = Scene(spec, context, frame_times)

    # questions: one per template, balanced, then checked against perturbed initial states
    questions_start, resimulation_before = time.process_time(), TIMINGS["resimulation"]
    kept: list[Candidate] = []
    proposals = propose(scene, rng)
    # re-simulations whose event log no candidate reads skip contact tracking
    needs_events = {key for candidates in proposals.values() for c in candidates
                    for program in [c.program] + [o["program"] for o in c.options] for key in event_rollouts(program)}
    provider.event_rollouts = needs_events
    perturbed_contexts = [ExecutionContext(RolloutProvider(sim, snapshot, config.duration, config.state_fps,
                                                           perturbation=_perturbation(sim, spec, rng,
                                                                                      config.perturbation_speed),
                                                           event_rollouts=needs_events),
                                           config.clip_duration, spec.latent, spec.facts)
                          for _ in range(config.perturbation_trials)]
    for template in sorted(proposals):
        chosen = select(proposals[template], context, balancer, rng, result.stats)
        if chosen is None:
            continue
        # balance first: a question the balancer drops needs no perturbed re-simulations
        if not balancer.admit(chosen):
            result.stats["balance_dropped"] += 1
            continue
        flipped = False
        for perturbed in perturbed_contexts:
            twin = copy.deepcopy(chosen)
            try:
                twin.evaluate(perturbed)
            except SimulationUnstable:
                flipped = True
                break
            if not _same(chosen, twin):
                flipped = True
                break
        if flipped:
            result.stats["near_threshold_dropped"] += 1
            result.stats[f"near_threshold_dropped.{template}"] += 1
            continue
        balancer.place_correct(chosen, rng)
        balancer.record(chosen)
        kept.append(chosen)

    TIMINGS["questions"] += time.process_time() - questions_start - (TIMINGS["resimulation"] - resimulation_before)

    alt_rgb: list[dict] = []
    if config.plausibility_fraction > 0 and rng.random() < config.plausibility_fraction:
        start, encode_before = time.process_time(), TIMINGS["encode"]
        violation = _impossible_clip(sim, middle[0], rgb, spec, config, renderer, rng, alt_rgb)
        TIMINGS["plausibility_clip"] += time.process_time() - start - (TIMINGS["encode"] - encode_before)
        if violation is not None:
            kept.append(_plausibility_question(violation, n, rng, balancer))
        else:
            result.stats["plausibility_unstable"] += 1
    renderer.release()
    result.stats["simulations"] += provider.simulations + sum(c.provider.simulations for c in perturbed_contexts) + 1

    rows_start = time.process_time()
    scene_id = f"s{config.seed}-{index:08d}"
    trajectory = factual.trajectory
    K = camera.intrinsics(config.width, config.height)
    world_from_camera = np.eye(4)
    world_from_camera[:3, :3] = camera.rotation_matrix()
    world_from_camera[:3, 3] = camera.position
    result.scene = {
        "scene_id": scene_id, "index": index, "split": split, "family": family, "variant": variant,
        "seed": [config.seed, index],
        "frames": rgb, "depth": depth, "segmentation": segmentation, "alt_frames": alt_rgb,
        "fps": config.fps, "state_fps": config.state_fps, "clip_duration": config.clip_duration,
        "duration": config.duration, "width": config.width, "height": config.height,
        "camera": {"position": list(camera.position), "look_at": list(camera.look_at), "fovy": camera.fovy,
                   "intrinsics": K.reshape(-1).tolist(), "world_from_camera": world_from_camera.reshape(-1).tolist()},
        "objects": [{"name": o.name, "color": o.color, "shape": o.shape, "size": o.size, "mass": o.mass,
                     "friction": o.friction, "restitution": o.restitution,
                     "instance_id": spec.world.body_index(o.name) + 1} for o in spec.objects],
        "latent": [{"key": k, "value": float(v), "unit": spec.units.get(k, "")} for k, v in sorted(spec.latent.items())],
        "states": {"time": trajectory.time.tolist(), "body_names": list(trajectory.body_names),
                   "position": trajectory.position.tolist(), "quaternion": trajectory.quaternion.tolist(),
                   "linear_velocity": trajectory.linear_velocity.tolist(),
                   "angular_velocity": trajectory.angular_velocity.tolist()},
        "events": [_event_row(e) for e in factual.events],
        "world": _world_json(spec),
        "versions": versions(),
    }
    for k, c in enumerate(kept):
        result.questions.append(_question_row(c, scene_id, k, split, family, n))
        result.stats[f"questions.{c.qtype}"] += 1
    TIMINGS["rows"] += time.process_time() - rows_start
    return result


def _world_json(spec: SceneSpec) -> str:
    import json

    return json.dumps(world_to_dict(spec.world), sort_keys=True, separators=(",", ":"))


EVENT_FIELDS = ("type", "time", "bodies", "position", "normal", "relative_speed", "impulse", "duration", "angle")


def _event_row(event: dict) -> dict:
    return {k: event.get(k) for k in EVENT_FIELDS}


def _question_row(c: Candidate, scene_id: str, k: int, split: str, family: str, n: int) -> dict:
    import json

    frames = c.frames if c.frames is not None else list(range(n))
    frames = c.extra.get("frames", frames)
    programs = [c.program] + [o["program"] for o in c.options]
    cites = sorted({cite for p in programs for cite in program_cites(p)})
    return {
        "question_id": f"{scene_id}-q{k:02d}", "scene_id": scene_id, "split": split, "family": family,
        "question_type": c.qtype, "template": c.template, "question": c.text, "answer": c.answer,
        "answer_type": c.answer_type, "tolerance_abs": float(c.tolerance[0]), "tolerance_rel": float(c.tolerance[1]),
        "options": [{"label": LETTERS[i], "text": o["text"], "correct": bool(c.option_correct[i]),
                     "program": json.dumps(o["program"], sort_keys=True)} for i, o in enumerate(c.options)],
        "program": json.dumps(c.program, sort_keys=True),
        "frame_indices": [int(f) for f in frames],
        "cites": cites,
    }


def _impossible_clip(sim: Simulator, middle, factual_rgb: list[dict], spec: SceneSpec, config: DataConfig,
                     renderer, rng, out: list[dict]) -> dict | None:
    """Render the same scene with a physics violation half way: gravity reverses, or an object
    is kicked upwards by nothing. Returns the violation, or None if that run blew up.

    middle: the factual run's snapshot at clip frame ``num_frames // 2``, where the violation
    happens. Up to there the twin is the factual clip (same state, same renderer), so its first
    frames are the factual frames and only the rest is simulated and rendered.
    """
    movable = [b.name for b in spec.world.bodies if b.joint.type == "free"]
    kinds = ["gravity_reversal"] + (["spontaneous_kick"] if movable else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    target = movable[int(rng.integers(len(movable)))] if movable else None
    half = config.num_frames // 2
    stride = config.frame_stride
    camera = spec.camera

    def on_frame(simulator, frame):
        if frame % stride == 0 and frame > 0:
            out.append(_image(renderer.rgb(simulator.data, camera)))

    out.extend(factual_rgb[:half + 1])
    try:
        sim.restore(middle)
        if kind == "gravity_reversal":
            sim.set_gravity([-g for g in spec.world.gravity])
        else:
            sim.apply_impulse(target, [0.0, 0.0, sim.body_mass(target) * VIOLATION_KICK_SPEED])
        sim.run((config.num_frames - 1 - half) / config.fps, config.state_fps, events=False, on_frame=on_frame)
    except SimulationUnstable:
        out.clear()
        return None
    if len(out) != config.num_frames:
        out.clear()
        return None
    return {"kind": kind, "body": target, "at_frame": half}


def _plausibility_question(violation: dict, n: int, rng, balancer: Balancer) -> Candidate:
    factual_first = bool(rng.random() < 0.5)
    first, second = (list(range(n)), list(range(n, 2 * n))) if factual_first else (list(range(n, 2 * n)),
                                                                                      list(range(n)))
    options = [{"text": "the first clip", "program": [{"op": "constant", "value": factual_first,
                                                       "violation_in_other_clip": violation}]},
               {"text": "the second clip", "program": [{"op": "constant", "value": not factual_first,
                                                        "violation_in_other_clip": violation}]}]
    candidate = Candidate("plausibility", "possible_clip",
                          f"Two clips of {n} frames follow: frames 1-{n} are the first clip, frames {n + 1}-{2 * n} the "
                          "second. One of them breaks the laws of physics. Which clip is physically possible?",
                          "choice", options=options, frames=first + second)
    candidate.option_correct = [factual_first, not factual_first]
    candidate.answer = "A" if factual_first else "B"
    balancer.record(candidate)
    return candidate
