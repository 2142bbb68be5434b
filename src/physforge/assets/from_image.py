"""One image -> a sim-ready asset folder: text -> schema -> voxels -> meshes -> MJCF + URDF -> gate.

    from physforge.assets.from_image import asset_from_image
    result = asset_from_image("examples/images/cabinet.png", "runs/cabinet")   # built-in model
    result["report"]["passed"], result["low_confidence"]

Decoding (``decode_asset``) turns the generated annotation and per-part voxels into a
``SourceAsset`` the ordinary build pipeline accepts:

- the N^3 grid is the normalised frame of the predicted dimensions (as ``tokens.Grid.around``
  frames a real object), and the decoded object is then stretched per axis onto exactly the
  predicted metric box (resting on z = 0, centred in x and y);
- a cell claimed by parts of several bodies goes to the body nearest the base, so no two
  bodies start interpenetrating; parts left without a cell are dropped (and said so);
- two bodies sliding along the same axis never share a line of cells along it: each such
  column goes to one of them (``_clear_slides``, said so in the notes), since the one behind
  would push through the other;
- a hinge pivot generated outside the object's box is moved onto its body's box (``_snap_pivots``,
  said so in the notes);
- a free object that could not stand (its centre of mass outside the footprint of its lowest
  cells) has the base parts that stop one cell short of the floor extended down to it
  (``_ground_short_parts``, said so in the notes);
- visual meshes come from marching cubes of each part's voxels (``tokens.voxels_to_mesh``),
  collision from the exact cuboids that tile the voxels (``tokens.cuboids``), and every moving
  body is shrunk by ``CLEARANCE`` per side, as the library leaves a gap around moving parts.

The folder is written all at once (``outputs.staged_directory``): the asset files of
``assets.export.write_asset`` plus ``input.png`` and ``generation.json`` (every attempt of ``generate_verified``, the kept one's generated text,
repairs, token counts, confidence).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from physforge.assets.image_text import GenerationParseError
from physforge.assets.library import CLEARANCE
from physforge.errors import ImageInputError

#: Mean log-probability per generated token below which a result is flagged low-confidence.
#: Measured with the built-in model: -0.22 to -0.84 on the example images (the drawer chest,
#: at -0.84, is flagged), but -0.18 on uniform noise and -0.15 on a two-tone image with no
#: object, so with this model the flag does not separate "no object" from an object; only the
#: flat-image check below refuses those.
LOW_CONFIDENCE_LOGPROB = -0.8
#: An image whose pixels vary less than this (std over all pixels and channels, 0-255 levels)
#: shows nothing: there is no object to reconstruct.
BLANK_IMAGE_STD = 2.0


def check_has_content(image: np.ndarray, label: str) -> None:
    """Refuse an image with nothing in it (one flat colour)."""
    if float(np.asarray(image, dtype=np.float32).std()) < BLANK_IMAGE_STD:
        raise ImageInputError(label, "the image is a single flat colour: no object to reconstruct; give a photo or "
                              "render of one object")


def decode_asset(annotation, voxels: dict[int, np.ndarray], resolution: int | None = None):
    """(SourceAsset, notes) from an annotation and part label -> (n, n, n) bool voxels."""
    from physforge.assets.geometry import CollisionPiece
    from physforge.assets.source import SourceAsset
    from physforge.assets.tokens import Grid, cuboids, voxels_to_mesh
    from physforge.world import Box, Pose

    notes: list[str] = []
    dims = np.asarray(annotation.dimensions, dtype=np.float64)
    first = next(iter(voxels.values()), None)
    n = resolution or (first.shape[0] if first is not None else 16)
    low = np.array([-dims[0] / 2, -dims[1] / 2, 0.0])
    grid = Grid.around(np.stack([low, low + dims]), n)
    owner = {label: g for g in annotation.groups for label in g.parts}
    # cells go to bodies nearest the base first
    depth = {g.index: _depth(annotation, g) for g in annotation.groups}
    order = sorted((p.label for p in annotation.parts), key=lambda label: (depth[owner[label].index], label))
    taken = np.zeros((n, n, n), dtype=bool)
    kept: dict[int, np.ndarray] = {}
    for label in order:
        occupancy = np.asarray(voxels.get(label, np.zeros((n, n, n), bool)), dtype=bool)
        if occupancy.shape != (n, n, n):
            notes.append(f"part {label}: voxel grid {occupancy.shape} is not {n}^3; dropped")
            continue
        mine = occupancy & ~taken
        if mine.sum() < occupancy.sum():
            notes.append(f"part {label}: {int(occupancy.sum() - mine.sum())} cells shared with another part removed")
        if not mine.any():
            notes.append(f"part {label} ({annotation.part(label).name}): no geometry; dropped")
            continue
        taken |= mine
        kept[label] = mine
    for label in _clear_slides(annotation, kept, notes):  # parts the clearing emptied
        notes.append(f"part {label} ({annotation.part(label).name}): no geometry left; dropped")
        del kept[label]
    taken = np.zeros((n, n, n), dtype=bool)
    for occupancy in kept.values():
        taken |= occupancy
    if not kept:
        raise GenerationParseError("no part has any geometry after decoding; the generation describes nothing "
                                   "buildable (is there an object in the image?)")
    annotation = _without_parts(annotation, set(p.label for p in annotation.parts) - set(kept), notes)
    taken = _ground_short_parts(annotation, kept, taken, notes)
    # stretch the occupied cells onto the predicted metric box
    cells = np.argwhere(taken)
    cell_low = grid.low + cells.min(0) * grid.cell
    cell_high = grid.low + (cells.max(0) + 1) * grid.cell
    scale = dims / np.maximum(cell_high - cell_low, 1e-9)

    def to_object(points: np.ndarray) -> np.ndarray:
        return (points - cell_low) * scale + low

    annotation = _snap_pivots(annotation, kept, grid, to_object, notes)
    owner = {label: g for g in annotation.groups for label in g.parts}
    meshes, collision = {}, {}
    for label, occupancy in kept.items():
        try:
            vertices, faces = voxels_to_mesh(occupancy, grid)
        except ValueError:  # a part one cell thin vanishes under smoothing: mesh the cells as they are
            vertices, faces = voxels_to_mesh(occupancy, grid, smooth=0.0)
        boxes = []
        for x, y, z, dx, dy, dz in cuboids(occupancy):
            a = to_object(grid.low + np.array([x, y, z]) * grid.cell)
            b = to_object(grid.low + np.array([x + dx, y + dy, z + dz]) * grid.cell)
            boxes.append((a, b))
        vertices = to_object(vertices)
        if owner[label].index != 0:
            vertices, boxes = _shrink(vertices, boxes)
        meshes[label] = (vertices, np.asarray(faces, dtype=np.int64))
        collision[label] = tuple(CollisionPiece(Box(tuple(float(h) for h in (b - a) / 2)),
                                                Pose(tuple(float(c) for c in (a + b) / 2))) for a, b in boxes)
    return SourceAsset(annotation=annotation, meshes=meshes, collision=collision), notes


def _snap_pivots(annotation, kept: dict[int, np.ndarray], grid, to_object, notes: list[str]):
    """Move a hinge whose axis line lies outside the object onto its body's box.

    The pivot is written in the global answer and the voxels in later rounds, and the two can
    disagree: a door hinged 12 cm beyond the object's side swings on a wide arc through its
    neighbour. No library hinge lies outside its object's box, so a pivot that does (seen along
    the axis, by more than half a voxel) is certainly wrong; it is clamped to the nearest point
    of its own body's box, the best evidence of where the hinge belongs. A pivot inside the
    object's box is kept even when it misses its body: measured on the built-in model's held-out
    generations, the pivot is then more often right than the body's voxels (a refrigerator door
    whose cells went to the carcass), and snapping those moved pivots 0.016 m further from the
    true axes on average. Axis-aligned revolute joints only."""
    dims = np.asarray(annotation.dimensions, dtype=np.float64)
    object_low, object_high = np.array([-dims[0] / 2, -dims[1] / 2, 0.0]), np.array([dims[0] / 2, dims[1] / 2, dims[2]])
    replaced = []
    for g in annotation.groups:
        axis = np.abs(np.asarray(g.axis, dtype=np.float64))
        if g.joint_type != "revolute" or axis.max() < 0.999:
            replaced.append(g)
            continue
        cells = [np.argwhere(kept[label]) for label in g.parts if label in kept]
        if not cells:
            replaced.append(g)
            continue
        cells = np.concatenate(cells)
        low = to_object(grid.low + cells.min(0) * grid.cell)
        high = to_object(grid.low + (cells.max(0) + 1) * grid.cell)
        pivot = np.asarray(g.pivot, dtype=np.float64)
        along = int(axis.argmax())
        across = np.arange(3) != along  # sliding the pivot along its own axis changes nothing
        outside = float(np.linalg.norm((np.clip(pivot, object_low, object_high) - pivot)[across]))
        cell = to_object(grid.low + grid.cell) - to_object(grid.low)  # one voxel in metres, per axis
        if outside > 0.5 * float(np.min(cell)):  # within half a voxel is decoding noise
            snapped = np.where(across, np.clip(pivot, low, high), pivot)
            notes.append(f"group {g.index} ({g.name or g.index}): pivot {tuple(round(float(v), 3) for v in pivot)} "
                         f"lies {outside:.3f} m outside the object's box; moved {np.linalg.norm(snapped - pivot):.3f} "
                         "m onto its body's box")
            g = dataclasses.replace(g, pivot=tuple(float(v) for v in snapped))
        replaced.append(g)
    return dataclasses.replace(annotation, groups=tuple(replaced))


def _clear_slides(annotation, kept: dict[int, np.ndarray], notes: list[str]) -> list[int]:
    """Give each column along a shared slide axis to one sliding body; returns the labels of
    parts left with no cell.

    Two bodies that slide along the same axis (drawers of a chest) and both hold cells in one
    line of cells along that axis collide as soon as the one behind slides out: the gate's sweep
    check rejects every such pair (seen on held-out drawer chests, drawers overlapping by up to
    8 cm as one slid). Real drawers are stacked side by side or one above another, never one
    behind the other, so each shared column goes to the body with more cells in it (ties: the
    group listed first in the annotation) and is removed from the other, listed in the notes. A body and its own
    parent or child are skipped: jointed parent and child never collide. Axis-aligned prismatic
    joints only."""
    groups = [g for g in annotation.groups if g.joint_type == "prismatic"
              and float(np.abs(np.asarray(g.axis, dtype=np.float64)).max()) >= 0.999]
    owned = {g.index: [label for label in g.parts if label in kept] for g in groups}  # kept loses no key here
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            along = int(np.abs(np.asarray(a.axis)).argmax())
            if along != int(np.abs(np.asarray(b.axis)).argmax()) or a.parent == b.index or b.parent == a.index:
                continue
            cells_a = sum(kept[label].sum(axis=along) for label in owned[a.index])
            cells_b = sum(kept[label].sum(axis=along) for label in owned[b.index])
            if np.isscalar(cells_a) or np.isscalar(cells_b):
                continue
            shared = (cells_a > 0) & (cells_b > 0)
            if not shared.any():
                continue
            b_keeps = shared & (cells_b > cells_a)
            a_keeps = shared & ~b_keeps
            removed = {a.index: 0, b.index: 0}
            for group, lose in ((a, b_keeps), (b, a_keeps)):
                mask = np.expand_dims(lose, along)
                for label in owned[group.index]:
                    removed[group.index] += int((kept[label] & mask).sum())
                    kept[label] = kept[label] & ~mask
            notes.append(f"groups {a.index} ({a.name}) and {b.index} ({b.name}) both slide along axis {along} and "
                         f"shared {int(shared.sum())} columns of cells along it (one would push through the other); "
                         f"each column went to the body with more cells in it: {removed[a.index]} cells removed "
                         f"from {a.name}, {removed[b.index]} from {b.name}")
    return [label for labels in owned.values() for label in labels if not kept[label].any()]


#: How far inside the footprint (cells, in the voxel grid's x-y plane) the centre of mass must
#: lie for a free object to count as standing: a quarter cell keeps a centre of mass right on the
#: edge (a tipping point) from counting.
STANDING_MARGIN_CELLS = 0.25


def _standing(cells_by_part: dict[int, np.ndarray], density: dict[int, float]) -> bool:
    """Whether a free object of these cells ((k, 3) int per part) rests on its lowest layer: the
    centre of mass, each part's cells weighted by its density, projects inside the convex hull of
    the lowest layer's cells (as squares) by ``STANDING_MARGIN_CELLS``. The decoder stretches the
    grid per axis onto the metric box, an affine map, which keeps this inside/outside verdict."""
    from scipy.spatial import ConvexHull, QhullError

    every = np.concatenate(list(cells_by_part.values()))
    floor = every[:, 2].min()
    mass = np.concatenate([np.full(len(c), density[k]) for k, c in cells_by_part.items()])
    centre = (every[:, :2] + 0.5).T @ mass / mass.sum()
    bottom = every[every[:, 2] == floor][:, :2]
    corners = np.concatenate([bottom + d for d in ((0, 0), (1, 0), (0, 1), (1, 1))]).astype(np.float64)
    try:
        hull = ConvexHull(corners)
    except QhullError:  # degenerate footprints are impossible with unit squares; be safe anyway
        return False
    # hull.equations: outward normal . x + offset <= 0 inside; distance inside = -(...)
    inside = -(hull.equations[:, :2] @ centre + hull.equations[:, 2])
    return bool(inside.min() >= STANDING_MARGIN_CELLS)


def _ground_short_parts(annotation, kept: dict[int, np.ndarray], taken: np.ndarray, notes: list[str]) -> np.ndarray:
    """Extend base parts that end one cell above the floor down to it, when without them the free
    object cannot stand.

    A table's legs are written one part per round, and a leg that stops one cell (the grid's
    precision) above the others leaves the object on the rest of its legs: seen on held-out
    tables, where the gate's rest check found the object rocking onto the short legs (turned
    7.4 degrees). Only when the object would tip as decoded (``_standing``), only the base's
    parts, only a one-cell gap (a part hanging higher is meant to: a drawer, a table top) and
    only into empty cells; each extension is listed in the notes. Fixed bases are welded to
    the world and left alone. Returns the updated occupancy of all parts."""
    if annotation.base != "free":
        return taken
    base = [label for label in next(g for g in annotation.groups if g.index == 0).parts if label in kept]
    density = {p.label: p.density for p in annotation.parts}
    cells = {label: np.argwhere(occupancy) for label, occupancy in kept.items()}
    if _standing(cells, density):
        return taken
    floor = min(int(c[:, 2].min()) for c in cells.values())
    extended = []
    for label in base:
        occupancy = kept[label]
        lowest = int(cells[label][:, 2].min())
        if lowest != floor + 1:
            continue
        below = occupancy[:, :, lowest] & ~taken[:, :, floor]
        if not below.any():
            continue
        occupancy[:, :, floor] |= below
        taken[:, :, floor] |= below
        extended.append((label, int(below.sum())))
    if extended:
        cells = {label: np.argwhere(occupancy) for label, occupancy in kept.items()}
        verdict = "stands now" if _standing(cells, density) else "still cannot stand"
        for label, count in extended:
            notes.append(f"part {label} ({annotation.part(label).name}): ended one cell above the floor of an "
                         f"object that could not stand; extended {count} cells down to the floor ({verdict})")
    return taken


def _depth(annotation, group) -> int:
    depth, current = 0, group
    while current.parent is not None and depth <= len(annotation.groups):
        current = annotation.group(current.parent)
        depth += 1
    return depth


def _shrink(vertices: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]]):
    """Shrink a moving part's visual mesh by CLEARANCE per side (at most 20 % of its size) about
    its centre, and inset each collision box by CLEARANCE per side (at most 10 % of that box's
    size per side).

    Each box separately, because scaling the boxes about the part's centre moves only the outer
    faces by CLEARANCE: a face inside the part's extent, next to another body (the step between
    two drawers of a generated chest), moved by less and the two bodies touched when one slid."""
    low, high = vertices.min(0), vertices.max(0)
    size = np.maximum(high - low, 1e-9)
    factor = np.maximum(1.0 - 2 * np.minimum(CLEARANCE, 0.1 * size) / size, 0.5)
    centre = (low + high) / 2
    vertices = (vertices - centre) * factor + centre
    inset = [np.minimum(CLEARANCE, 0.1 * np.abs(b - a)) for a, b in boxes]
    return vertices, [(a + d, b - d) for (a, b), d in zip(boxes, inset)]


def _without_parts(annotation, drop: set[int], notes: list[str]):
    """The annotation without parts ``drop``; emptied groups removed, their children re-parented."""
    from physforge.assets.schema import AssetAnnotation, KinematicGroup

    if not drop:
        return annotation
    parts = tuple(p for p in annotation.parts if p.label not in drop)
    groups = {g.index: g for g in annotation.groups}
    emptied = {i for i, g in groups.items() if not set(g.parts) - drop}
    if 0 in emptied:  # the base keeps a part: the first surviving part of the shallowest group moves into it
        donor = min((g for i, g in groups.items() if i not in emptied),
                    key=lambda g: (_depth(annotation, g), g.index))
        moved = next(p for p in donor.parts if p not in drop)
        groups[0] = dataclasses.replace(groups[0], parts=(moved,))
        groups[donor.index] = dataclasses.replace(donor, parts=tuple(p for p in donor.parts if p != moved))
        notes.append(f"base lost its parts; part {moved} moved into it")
        emptied = {i for i, g in groups.items() if not set(g.parts) - drop}
    out = []
    for index, g in groups.items():
        if index in emptied:
            notes.append(f"group {index} has no part left; dropped")
            continue
        parent = g.parent
        while parent is not None and parent in emptied:
            parent = groups[parent].parent
        if parent is None and g.joint_type != "free" and index != 0:
            parent = 0
        out.append(KinematicGroup(g.index, tuple(p for p in g.parts if p not in drop), parent, g.joint_type, g.axis,
                                  g.pivot, g.range, g.slide_range, g.name))
    return AssetAnnotation(annotation.name, annotation.category, annotation.dimensions, parts, tuple(out),
                           annotation.base, annotation.source, annotation.seed)


def build_generated(annotation, voxels, resolution: int | None = None):
    """(SimAsset, notes): decode and attach physics (exact cuboid collision, no CoACD)."""
    from physforge.assets.build import BuildConfig, build_asset

    source, notes = decode_asset(annotation, voxels, resolution)
    return build_asset(source, BuildConfig()), notes


#: Attempts ``physforge asset from-image`` and ``asset eval`` make by default: the greedy one and up
#: to three sampled ones. On the shipped model's 192 held-out objects 12 greedy assets failed the gate
#: (builtin_model/README.md has what each extra attempt bought); each attempt costs one generation
#: and one gate run, and only failing objects pay for more than one.
DEFAULT_ATTEMPTS = 4
#: Temperature of the sampled attempts. Below 1 the draw stays near the model's own best answer (a
#: sample at 1.0 from a small model trained on ~2K objects drifts into shapes it never saw, and a
#: geometry round is ~100 tokens, where one wrong digit moves a part), yet it still changes the
#: few uncertain decisions (a drawer's cells, a leg's length) that made the greedy asset fail;
#: 0.7 is the usual choice for that trade-off, not tuned here.
SAMPLE_TEMPERATURE = 0.7
MAX_ATTEMPTS = 64


def check_attempts(attempts: Any, name: str = "attempts") -> int:
    """``attempts`` as an int in 1..MAX_ATTEMPTS, or a ValueError naming ``name`` and the fix."""
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"{name} is {attempts!r}, expected an int from 1 (greedy only, no retry) to "
                         f"{MAX_ATTEMPTS}; the default is {DEFAULT_ATTEMPTS}")
    return attempts


@dataclasses.dataclass
class Verified:
    """What ``generate_verified`` kept. generation: ``AssetGenerator.generate``'s dict (None when no
    attempt parsed). asset, notes, report: the built asset, its decode notes and its gate report
    (None when the kept attempt did not decode; report None without a gate). error: why the kept
    attempt did not decode. attempts: one record per attempt made. kept: index into attempts."""

    generation: dict[str, Any] | None
    asset: Any
    notes: list[str]
    report: dict[str, Any] | None
    error: Exception | None
    attempts: list[dict[str, Any]]
    kept: int

    @property
    def seconds(self) -> float:
        """Generation, decoding and gate time of every attempt made."""
        return float(sum(a["seconds"] for a in self.attempts))


def generate_verified(generator, image: np.ndarray, *, attempts: int = DEFAULT_ATTEMPTS,
                      temperature: float = SAMPLE_TEMPERATURE, gate=None, build=None,
                      exclude_object: str | None = None) -> Verified:
    """Generate, build, check in simulation, and resample when the check fails.

    Attempt 1 is greedy (``generator.generate(image)``, exactly as without retries); when it does not
    parse, does not decode, or its asset fails the gate, attempts 2..K sample at ``temperature`` with
    seeds 1..K-1. Returns the first attempt whose asset passes; if none does, the greedy attempt, or,
    when it did not decode, the first that decoded (then the first that parsed). Raises the greedy
    attempt's GenerationParseError (with ``.attempts``) when no attempt parsed.

    gate: asset world -> report dict with "passed" and "failed" (default ``assets.gate.run_gate``;
    False: no gate, so only a failure to parse or decode triggers a retry). build: (annotation, voxels,
    resolution) -> (asset, notes) (default ``build_generated``). Both are parameters so the loop can
    be checked with a stub gate and decoder."""
    import time

    from physforge.errors import PhysforgeError

    check_attempts(attempts)
    if gate is None:
        from physforge.assets.gate import run_gate as gate
    build = build or build_generated
    own = {"exclude_object": exclude_object} if exclude_object is not None else {}
    records: list[dict[str, Any]] = []
    outcomes: list[tuple[dict | None, Any, list, dict | None, Exception | None]] = []
    for index in range(attempts):
        start = time.perf_counter()
        seed = None if index == 0 else index
        record: dict[str, Any] = {"attempt": index + 1, "seed": seed,
                                  "temperature": None if seed is None else temperature,
                                  "parsed": False, "decoded": False, "gate_passed": None, "failed": None,
                                  "error": None}
        generation = asset = report = error = None
        notes: list[str] = []
        try:
            # attempt 1 calls generate exactly as before retries existed (greedy)
            generation = (generator.generate(image, **own) if seed is None else
                          generator.generate(image, **own, seed=seed, temperature=temperature))
            record.update(parsed=True, tokens=generation["tokens"], mean_logprob=_finite(generation["mean_logprob"]),
                          category=generation["annotation"].category)
            asset, notes = build(generation["annotation"], generation["voxels"], generation["resolution"])
            record["decoded"] = True
            if gate is not False:
                report = gate(asset.world)
                record.update(gate_passed=bool(report["passed"]), failed=list(report["failed"]))
        except PhysforgeError as err:  # GenerationParseError from parsing or decoding, or a build error
            error = err
            record["error"] = str(err)
        record["seconds"] = round(time.perf_counter() - start, 3)
        records.append(record)
        outcomes.append((generation, asset, notes, report, error))
        if record["decoded"] and record["gate_passed"] is not False:
            break
    passing = [i for i, r in enumerate(records) if r["decoded"] and r["gate_passed"] is not False]
    if passing:
        kept = passing[0]
    else:
        ranked = [i for i, r in enumerate(records) if r["decoded"]] or [i for i, r in enumerate(records) if r["parsed"]]
        if not ranked:
            error = outcomes[0][4]
            error.attempts = records
            raise error
        kept = ranked[0]
    for i, r in enumerate(records):
        r["kept"] = i == kept
    generation, asset, notes, report, error = outcomes[kept]
    return Verified(generation, asset, notes, report, error, records, kept)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def asset_from_image(image_path: str | Path, out_dir: str | Path, model: str | Path | None = None, *,
                     overwrite: bool = False, generator=None, attempts: int = DEFAULT_ATTEMPTS,
                     temperature: float = SAMPLE_TEMPERATURE) -> dict[str, Any]:
    """Generate a sim-ready asset folder from one image; returns ``{"out", "report", "generation",
    "low_confidence", "notes"}``. model: a ``model/`` folder from ``physforge asset train-vlm``
    (None: the built-in model). generator: an ``AssetGenerator`` to reuse across calls.
    attempts, temperature: ``generate_verified`` (1: the greedy generation only, no retry);
    generation.json lists every attempt and which was kept.
    Raises ImageInputError (unreadable, tiny, huge or blank image) or GenerationParseError
    (nothing buildable generated); on any error nothing is written."""
    from physforge.assets.export import write_asset
    from physforge.assets.image_model import AssetGenerator
    from physforge.images import load_image
    from physforge.outputs import OutputExistsError, staged_directory, write_json
    from physforge.sim import write_png

    check_attempts(attempts)
    image_path, out_dir = Path(image_path), Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"{out_dir} already exists; choose another folder or pass --overwrite")
    image = load_image(image_path, min_side=16)
    check_has_content(image, str(image_path))
    generator = generator or AssetGenerator(model)
    # write_asset gates the folder it writes; a single attempt has nothing to choose, so it is not
    # gated twice (with retries, the kept attempt is: the loop needs each attempt's verdict first)
    verified = generate_verified(generator, image, attempts=attempts, temperature=temperature,
                                 gate=None if attempts > 1 else False)
    if verified.asset is None:  # the kept attempt parsed but did not decode: nothing buildable
        verified.error.attempts = verified.attempts
        raise verified.error
    generation, asset, notes = verified.generation, verified.asset, verified.notes
    low_confidence = bool(generation["mean_logprob"] < LOW_CONFIDENCE_LOGPROB)
    record = {"image": str(image_path), "model": str(generator.path), "global_text": generation["global_text"],
              "part_texts": {str(k): v for k, v in generation["part_texts"].items()},
              "repairs": generation["repairs"], "decode_notes": notes,
              "dropped_cuboids": {str(k): v for k, v in generation["dropped_cuboids"].items()},
              "tokens": generation["tokens"], "seconds": round(generation["seconds"], 3),
              "mean_logprob": generation["mean_logprob"] if math.isfinite(generation["mean_logprob"]) else None,
              "low_confidence": low_confidence, "low_confidence_threshold": LOW_CONFIDENCE_LOGPROB,
              "resolution": generation["resolution"],
              # a retrieval-augmented model's neighbour, whose text was in its prompt (None without)
              "retrieved": generation.get("retrieved"),
              # every attempt of generate_verified (seed None: greedy) and the one written here
              "attempts": verified.attempts, "attempt_kept": verified.kept + 1,
              "sample_temperature": temperature, "seconds_all_attempts": round(verified.seconds, 3)}
    with staged_directory(out_dir, overwrite=overwrite) as staging:
        # write_asset stages and renames onto ``staging`` itself; everything stays inside ours
        # write_asset runs the gate again on the written files: the report card is the folder's own
        report = write_asset(asset, staging, overwrite=True,
                             extra_config={"from_image": {"image": str(image_path), "model": str(generator.path)}})
        write_png(image, staging / "input.png")
        record["gate_passed"] = report["passed"]
        write_json(staging / "generation.json", record)
    return {"out": str(out_dir), "report": report, "generation": record, "low_confidence": low_confidence,
            "notes": notes}


def describe(result: dict[str, Any]) -> str:
    g = result["generation"]
    return json.dumps({"out": result["out"], "passed": result["report"]["passed"], "failed": result["report"]["failed"],
                       "tokens": g["tokens"], "seconds": g["seconds"], "low_confidence": result["low_confidence"]})
