"""The text a VLM writes for an object, in PhysX-Anything's multi-round layout, and the
repairing parser that turns any generation into the schema or a clear ``GenerationParseError``.

Round 1 (the global answer; the user turn carries the image)::

    name: cabinet
    category: cabinet
    base: free
    dimensions_cm: 62 41 88
    part 0: carcass | wood | 600 | 2 | the carcass of the cabinet
    part 1: door | wood | 600 | 7 | the door of the cabinet
    group 0: base | parts 0 | fixed
    group 1: door | parts 1 | revolute | parent 0 | axis 0 0 1 | pivot_cm -31 22 44 | range 0 103

Units at this edge: cm for dimensions, pivots and prismatic ranges, degrees for revolute and
ball ranges, kg/m^3 for density (SI inside, as everywhere in physforge). A part line is
``name | material | density | affordance rank 1-10 | description``.

Rounds 2..: one per part (``Geometry of part L (name).``), answered with the part's voxels in
the object's normalised N^3 grid (``GEOMETRY_RESOLUTION``) in the ``boxes`` encoding of
``physforge.assets.tokens`` (``x y z dx dy dz`` cuboids separated by ``;``): digits, spaces
and semicolons only, so a token whitelist constrains its decoding.

Parsing never trusts the text: unknown lines are dropped, numbers are clamped to the
schema's ranges, dangling references are re-attached to the base, and what cannot be repaired
(no dimensions, no part) raises ``GenerationParseError`` naming what was missing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from physforge.assets.materials import MATERIALS
from physforge.assets.schema import GROUP_JOINT_TYPES, AssetAnnotation, KinematicGroup, PartAnnotation
from physforge.errors import PhysforgeError, WorldValidationError

#: Voxel grid edge (cells) of the geometry rounds: coarse enough for a CPU-sized VLM's context.
GEOMETRY_RESOLUTION = 16
GLOBAL_PROMPT = "Describe this object as a sim-ready asset: name, category, size, parts and joints."
GEOMETRY_CHARACTERS = "0123456789 ;"
#: Caps that keep a repaired generation sane (a CPU-sized model can loop).
MAX_PARTS = 32
MAX_DIMENSION_CM = 2000.0
MIN_DIMENSION_CM = 0.5
DEFAULT_MATERIAL = "plastic"


class GenerationParseError(PhysforgeError, ValueError):
    """A generated text cannot be repaired into an asset annotation or part geometry."""


def geometry_prompt(label: int, name: str) -> str:
    return f"Geometry of part {label} ({name})."


# -- writing ---------------------------------------------------------------------------------

def _num(value: float, digits: int = 0) -> str:
    text = f"{value:.{digits}f}"
    return "0" if text in ("-0", "-0.0") else (text[:-2] if text.endswith(".0") else text)


def global_text(annotation: AssetAnnotation) -> str:
    """Round 1 target text of ``annotation`` (cm, degrees, kg/m^3)."""
    lines = [f"name: {_strip_seed(annotation.name, annotation.category)}", f"category: {annotation.category}",
             f"base: {annotation.base}",
             "dimensions_cm: " + " ".join(_num(100 * d) for d in annotation.dimensions)]
    for part in annotation.parts:
        lines.append(f"part {part.label}: {part.name} | {part.material} | {_num(part.density)} | "
                     f"{part.affordance_rank} | {_clean(part.basic_description)}")
    for group in annotation.groups:
        fields = [f"group {group.index}: {annotation.body_name(group)}",
                  "parts " + " ".join(str(p) for p in group.parts), group.joint_type]
        if group.index != 0 and group.parent is not None:
            fields.append(f"parent {group.parent}")
        if group.joint_type not in ("fixed", "free"):
            fields.append("axis " + " ".join(f"{round(a, 2) + 0.0:g}" for a in group.axis))
            fields.append("pivot_cm " + " ".join(_num(100 * p) for p in group.pivot))
            if group.range is not None:
                scale = 100.0 if group.joint_type == "prismatic" else 180.0 / math.pi
                fields.append("range " + " ".join(_num(scale * r) for r in group.range))
            if group.slide_range is not None:
                fields.append("slide_cm " + " ".join(_num(100 * r) for r in group.slide_range))
        lines.append(" | ".join(fields))
    return "\n".join(lines)


def _strip_seed(name: str, category: str) -> str:
    # library names carry the seed and index (cabinet_0_0003): not something an image shows
    stripped = re.sub(r"(_\d+)+$", "", name)
    return stripped or category


def _clean(text: str) -> str:
    return " ".join(text.replace("|", " ").split())


def geometry_text(occupancy: np.ndarray) -> str:
    from physforge.assets.tokens import encode

    return encode(occupancy, "boxes")


def conversation(annotation: AssetAnnotation, occupancies: dict[int, np.ndarray], *,
                 reference: str | None = None, reference_at: str = "global") -> list[dict]:
    """The multi-round chat (TRL conversational form) of one object: image + global answer,
    then one round per part with its geometry tokens. reference: a retrieved training object's
    ``reference_text``, carried in the first user turn (or the first geometry round's, with
    ``reference_at="geometry"``; ``with_reference``); None gives the conversation of a model
    without retrieval, unchanged."""
    messages = [{"role": "user", "content": [{"type": "image", "text": None},
                                             {"type": "text", "text": GLOBAL_PROMPT}]},
                {"role": "assistant", "content": [{"type": "text", "text": global_text(annotation)}]}]
    for part in annotation.parts:
        messages.append({"role": "user", "content": [{"type": "text", "text": geometry_prompt(part.label, part.name)}]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": geometry_text(
            occupancies[part.label])}]})
    return messages if reference is None else with_reference(messages, reference, reference_at)


# -- a retrieved reference in the prompt -------------------------------------------------------
#
# A retrieval-augmented model (``AssetVLMConfig.retrieval``) is shown, in its first user turn,
# the full target text of the training object nearest to the image (``assets.image_retrieval``):
#
#     <image> Reference:
#     name: cabinet
#     ... (the neighbour's global answer, as global_text writes it)
#     cells 0: 0 0 0 16 9 16; ...
#     cells 1: ...            (one line per part: its label and its geometry round's answer)
#     Describe this object as a sim-ready asset: ...
#
# Each later round keeps that turn in its context (the whole conversation is the context), as in
# training, so a geometry round can copy the neighbour's cells of the same part.
#
# Placed ``at="geometry"``, the same block opens the first geometry round's user turn instead
# (before ``Geometry of part 0 (...)``): the global answer is then written from the image alone,
# as a model without retrieval writes it, and the neighbour, retrieved within the category that
# answer names, is there only for the part shapes. A conversation with no geometry round (a
# global-answer-only training row) is left as it is.

REFERENCE_PLACES = ("global", "geometry")

REFERENCE_HEADER = "Reference:"
_GEOMETRY_PROMPT = re.compile(r"Geometry of part (\d+) ")


def reference_text(global_answer: str, geometry: list[tuple[int, str]]) -> str:
    """The reference block of one object: its global answer, then ``cells L: <geometry>`` per part."""
    return "\n".join([REFERENCE_HEADER, global_answer] + [f"cells {label}: {text}" for label, text in geometry])


def reference_from_conversation(messages: list[dict]) -> str:
    """``reference_text`` of a training conversation (``conversation``'s layout, no reference)."""
    texts = [" ".join(item["text"] for item in m["content"] if item["type"] == "text" and item["text"])
             for m in messages]
    geometry = []
    for prompt, answer in zip(texts[2::2], texts[3::2]):
        match = _GEOMETRY_PROMPT.match(prompt)
        if match is None:
            raise ValueError(f"not a geometry round's prompt: {prompt[:60]!r}; expected the layout of "
                             "image_text.conversation")
        geometry.append((int(match.group(1)), answer))
    return reference_text(texts[1], geometry)


def first_user_turn(reference: str | None = None) -> dict:
    """The first user turn as inference asks it: the image, the reference when there is one,
    the global request."""
    content: list[dict] = [{"type": "image"}]
    if reference is not None:
        content.append({"type": "text", "text": reference})
    content.append({"type": "text", "text": GLOBAL_PROMPT})
    return {"role": "user", "content": content}


def with_reference(messages: list[dict], reference: str, at: str = "global") -> list[dict]:
    """A copy of a conversation whose first user turn carries ``reference`` between the image and
    the global request (``at="global"``), or whose first geometry round's user turn opens with it
    (``at="geometry"``; the layout above)."""
    if at not in REFERENCE_PLACES:
        raise ValueError(f"at: expected one of {REFERENCE_PLACES}, got {at!r}")
    if at == "geometry":
        if len(messages) < 3:
            return list(messages)
        turn = messages[2]
        if turn["role"] != "user" or not any(item["type"] == "text" for item in turn["content"]):
            raise ValueError("the conversation's third turn is not a geometry request of image_text.conversation; "
                             "cannot add a reference to it")
        return list(messages[:2]) + [{"role": "user", "content": [{"type": "text", "text": reference}]
                                      + list(turn["content"])}] + list(messages[3:])
    first = messages[0]
    content = list(first["content"])
    at = next((i for i, item in enumerate(content) if item["type"] == "text" and item["text"] == GLOBAL_PROMPT),
              None)
    if first["role"] != "user" or at is None:
        raise ValueError("the conversation's first turn is not the image + global request of "
                         "image_text.conversation; cannot add a reference to it")
    content.insert(at, {"type": "text", "text": reference})
    return [{"role": "user", "content": content}] + list(messages[1:])


# -- parsing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParseResult:
    """annotation: the repaired annotation. repairs: what was changed to make it valid (empty
    for a clean generation)."""

    annotation: AssetAnnotation
    repairs: tuple[str, ...]


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_NAME_OK = re.compile(r"[^A-Za-z0-9_\-]+")


def _numbers(text: str) -> list[float]:
    out = []
    for token in re.findall(_NUMBER, text):
        value = float(token)
        if math.isfinite(value):
            out.append(value)
    return out


def _name(text: str, fallback: str) -> str:
    name = _NAME_OK.sub("_", text.strip()).strip("_")[:48]
    return name or fallback


def parse_global(text: str) -> ParseResult:
    """Repair round 1's text into an ``AssetAnnotation`` (SI units); raises
    ``GenerationParseError`` when no dimensions or no part can be read."""
    if not isinstance(text, str):
        raise GenerationParseError(f"expected generated text, got {type(text).__name__}")
    repairs: list[str] = []
    fields: dict[str, str] = {}
    part_lines: list[tuple[int, str]] = []
    group_lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        match = re.fullmatch(r"(part|group)\s+(\d{1,4})\s*:\s*(.*)", line)
        if match:
            (part_lines if match.group(1) == "part" else group_lines).append((int(match.group(2)), match.group(3)))
            continue
        match = re.fullmatch(r"(name|category|base|dimensions_cm)\s*:\s*(.*)", line)
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2)
        elif line:
            repairs.append(f"dropped unreadable line {line[:40]!r}")

    dims = _numbers(fields.get("dimensions_cm", ""))
    if len(dims) < 3:
        raise GenerationParseError("the generated text has no 'dimensions_cm: X Y Z' line with three numbers; the "
                                   "model did not describe an object (is there one in the image?)")
    dims = [min(max(abs(d), MIN_DIMENSION_CM), MAX_DIMENSION_CM) / 100.0 for d in dims[:3]]
    category = _name(fields.get("category", ""), "object")
    name = _name(fields.get("name", ""), category)
    base = fields.get("base", "").strip()
    if base not in ("fixed", "free"):
        repairs.append(f"base {base!r} -> free")
        base = "free"

    parts: list[PartAnnotation] = []
    names_seen: set[str] = set()
    for label, body in part_lines:
        if any(p.label == label for p in parts):
            repairs.append(f"dropped duplicate part {label}")
            continue
        if len(parts) >= MAX_PARTS:
            repairs.append(f"dropped parts after {MAX_PARTS}")
            break
        parts.append(_part(label, body, names_seen, repairs))
    if not parts:
        raise GenerationParseError("the generated text names no part ('part L: name | material | density | rank | "
                                   "description'); cannot build an asset without geometry")
    groups = _groups(group_lines, parts, repairs)
    try:
        annotation = AssetAnnotation(name=name, category=category, dimensions=tuple(dims), parts=tuple(parts),
                                     groups=tuple(groups), base=base, source="physforge.from_image")
    except WorldValidationError as err:  # repairs above should prevent this; never let it escape raw
        raise GenerationParseError(f"the generated text does not form a valid asset after repair: {err}") from None
    return ParseResult(annotation, tuple(repairs))


def _part(label: int, body: str, names_seen: set[str], repairs: list[str]) -> PartAnnotation:
    cells = [c.strip() for c in body.split("|")]
    cells += [""] * (5 - len(cells))
    name = _name(cells[0], f"part_{label}")
    if name in names_seen:
        name = f"{name}_{label}"
        repairs.append(f"part {label}: renamed to {name} (duplicate name)")
    names_seen.add(name)
    material = cells[1].strip().lower()
    if material not in MATERIALS:
        repairs.append(f"part {label}: material {material!r} -> {DEFAULT_MATERIAL}")
        material = DEFAULT_MATERIAL
    props = MATERIALS[material]
    density = _numbers(cells[2])
    density_value = density[0] if density and 1.0 <= density[0] <= 25000.0 else props.density
    if not density or density_value != density[0]:
        repairs.append(f"part {label}: density -> {props.density:g} kg/m^3 ({material})")
    rank = _numbers(cells[3])
    rank_value = int(min(max(round(rank[0]), 1), 10)) if rank else 5
    return PartAnnotation(label=label, name=name, material=material, density=float(density_value),
                          youngs_modulus=props.youngs_modulus, poisson_ratio=props.poisson_ratio,
                          affordance_rank=rank_value, basic_description=_clean(cells[4])[:200])


def _field(cells: list[str], key: str) -> list[float] | None:
    for cell in cells:
        if cell.startswith(key + " ") or cell == key:
            return _numbers(cell[len(key):])
    return None


def _groups(lines: list[tuple[int, str]], parts: list[PartAnnotation], repairs: list[str]) -> list[KinematicGroup]:
    labels = [p.label for p in parts]
    owner: dict[int, int] = {}
    raw: dict[int, dict] = {}
    for index, body in lines:
        if index in raw:
            repairs.append(f"dropped duplicate group {index}")
            continue
        cells = [c.strip() for c in body.split("|")]
        members = []
        for value in _field(cells, "parts") or []:
            label = int(value)
            if label in labels and label not in owner and value == label:
                owner[label] = index
                members.append(label)
            else:
                repairs.append(f"group {index}: dropped part {value:g} (unknown or already placed)")
        joint = next((c for c in cells[1:] if c in GROUP_JOINT_TYPES), "fixed" if index == 0 else None)
        if joint is None:
            repairs.append(f"group {index}: no joint type -> fixed")
            joint = "fixed"
        raw[index] = {"name": _name(cells[0], f"group_{index}"), "parts": members, "joint": joint,
                      "parent": _field(cells, "parent"), "axis": _field(cells, "axis"),
                      "pivot": _field(cells, "pivot_cm"), "range": _field(cells, "range"),
                      "slide": _field(cells, "slide_cm")}
    if 0 not in raw:
        repairs.append("added the base group 0")
        raw[0] = {"name": "base", "parts": [], "joint": "fixed", "parent": None, "axis": None, "pivot": None,
                  "range": None, "slide": None}
    stray = [label for label in labels if label not in owner]
    if stray:
        repairs.append(f"parts {stray} were in no group -> base")
        raw[0]["parts"].extend(stray)
    empty = [i for i, g in raw.items() if not g["parts"]]
    if 0 in empty:  # the base needs a part: take the first part of the lowest other group
        donor = min((i for i in raw if i != 0 and len(raw[i]["parts"]) > 1), default=None)
        if donor is None:
            donor = min((i for i in raw if i != 0 and raw[i]["parts"]), default=None)
        raw[0]["parts"].append(raw[donor]["parts"].pop(0))
        repairs.append(f"the base had no part: took one from group {donor}")
    for index in [i for i, g in raw.items() if not g["parts"]]:
        repairs.append(f"dropped empty group {index}")
        del raw[index]
    # parents: must exist and lead to the base without cycles; otherwise the base
    parent_of: dict[int, int | None] = {}
    for index, g in raw.items():
        if index == 0:
            parent_of[index] = None
            continue
        parent = int(g["parent"][0]) if g["parent"] else None
        if parent not in raw or parent == index:
            if g["joint"] != "free" or parent is not None:
                repairs.append(f"group {index}: parent {parent} -> 0")
            parent = 0 if g["joint"] != "free" else None
        parent_of[index] = parent
    for index in list(parent_of):
        seen, current = set(), index
        while parent_of.get(current) is not None:
            if current in seen:
                repairs.append(f"group {index}: parent cycle -> parent 0")
                parent_of[index] = 0
                break
            seen.add(current)
            current = parent_of[current]
    groups = []
    names: set[str] = set()
    for index in sorted(raw):
        g = raw[index]
        name = "base" if index == 0 else g["name"]
        if name in names or (index != 0 and name == "base"):
            name = f"{name}_{index}"
        names.add(name)
        groups.append(_group(index, g, parent_of[index], name, repairs))
    return groups


def _group(index: int, g: dict, parent: int | None, name: str, repairs: list[str]) -> KinematicGroup:
    joint = g["joint"]
    if index == 0:
        return KinematicGroup(0, tuple(g["parts"]), None, "fixed", name="base")
    if joint in ("fixed", "free"):
        return KinematicGroup(index, tuple(g["parts"]), parent, joint, name=name)
    axis = np.array((g["axis"] or [])[:3] + [0.0] * (3 - len((g["axis"] or [])[:3])), dtype=np.float64)
    norm = float(np.linalg.norm(axis))
    if not norm > 1e-6:
        repairs.append(f"group {index}: axis -> 0 0 1")
        axis, norm = np.array([0.0, 0.0, 1.0]), 1.0
    pivot = [min(max(v, -MAX_DIMENSION_CM), MAX_DIMENSION_CM) / 100.0 for v in (g["pivot"] or [])[:3]]
    if len(pivot) < 3:
        repairs.append(f"group {index}: pivot -> object origin")
        pivot = [0.0, 0.0, 0.0]
    scale = 0.01 if joint == "prismatic" else math.pi / 180.0
    range_ = _interval(g["range"], scale)
    if joint == "ball":
        range_ = (0.0, min(abs(range_[1]) if range_ else 0.5, math.pi))
        if range_[1] <= 0:
            range_ = (0.0, 0.5)
    elif joint == "revolute" and range_ is not None:
        range_ = (max(range_[0], -2 * math.pi), min(range_[1], 2 * math.pi))
        if range_[1] <= range_[0]:
            range_ = None
    slide = _interval(g["slide"], 0.01) if joint == "revolute_prismatic" else None
    return KinematicGroup(index, tuple(g["parts"]), parent, joint, tuple(float(a) for a in axis / norm),
                          tuple(float(p) for p in pivot), range_, slide, name=name)


def _interval(values: list[float] | None, scale: float) -> tuple[float, float] | None:
    if not values or len(values) < 2:
        return None
    low, high = sorted(values[:2])
    if high - low <= 0:
        return None
    return (low * scale, high * scale)


def parse_geometry(text: str, n: int = GEOMETRY_RESOLUTION) -> tuple[np.ndarray, int]:
    """(occupancy (n, n, n) bool, cuboids dropped) from a geometry round's text: malformed
    cuboids are dropped and boxes running off the grid are clipped to it."""
    grid = np.zeros((n, n, n), dtype=bool)
    dropped = 0
    if not isinstance(text, str):
        raise GenerationParseError(f"expected generated geometry text, got {type(text).__name__}")
    for item in text.split(";"):
        values = item.split()
        if not values:
            continue
        if len(values) != 6 or not all(v.isdigit() and len(v) <= 4 for v in values):
            dropped += 1
            continue
        x, y, z, dx, dy, dz = (int(v) for v in values)
        if min(dx, dy, dz) < 1 or max(x, y, z) >= n:
            dropped += 1
            continue
        grid[x:min(n, x + dx), y:min(n, y + dy), z:min(n, z + dz)] = True
    return grid, dropped
