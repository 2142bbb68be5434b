"""``physforge asset eval``: single-image asset generation scored against the ground truth of
held-out library objects, next to two baselines, in one table.

Methods:

- ``vlm``: the model (``AssetGenerator``), its text parsed and repaired into the schema;
- ``nearest_neighbour``: the training object whose image is nearest (cosine) to the test
  image in the model's own vision-tower embedding (mean-pooled patch features,
  ``image_retrieval``), copied whole; for a retrieval-augmented model, from its own index: with
  ``retrieval_at="global"`` the very neighbour whose text its prompt carried, so VLM minus this
  baseline is what the model adds; with ``"geometry"`` the model's neighbour is searched within
  the category its global answer names (the vlm row's ``retrieved``) and may differ from this one.
  On the train split both leave the shown object out (its own view is in the index);
- ``category_mean_predicted``: the honest category baseline: the category of that nearest
  training image, then the mean training object of that category;
- ``category_mean_oracle``: an oracle, not a method: the mean training object of the test
  object's *true* category, which no image-only method is given. A category's mean object is
  its most common part structure (dimensions, pivots, axes and ranges averaged, each part's
  voxels by majority, or its median number of most often filled cells where no cell has a
  majority, materials by vote). For a held-out category, with no training object of
  its own, the oracle uses the mean over the most common structure of all training objects.

Every prediction goes through the same decoding (``from_image.decode_asset``) and gate.

Metrics per object (``metrics``), averaged per split and method (``summarise``):
category accuracy (the predicted category is the true one); voxel IoU (whole object, the
normalised 16^3 grid); Chamfer distance (m, mean of both
directions) and F-score at ``fscore_fraction`` x the true largest dimension, between points
sampled on the decoded part meshes and on the true part meshes (object frame); joint-type
accuracy over the true moving groups (matched by group index); axis angular error (deg,
sign-free); pivot distance (m, from the built asset's pivot to the true axis line; revolute joints);
range error (deg for revolute, m for prismatic: mean of both ends); absolute scale error (m,
mean over x, y, z); material accuracy (matched by part label); gate pass rate. A generation that
cannot be parsed scores 0 IoU, 0 accuracies and a failed gate, and is counted.

Paired intervals (``paired``, from ``image_eval_paired``): per split, the VLM minus each other
method, per metric, the mean per-object difference and its 95 % paired-bootstrap interval, so a
tie can be told from a win.

Image ablation (``image_ablation``): the model's round-1 answer from the true image, from
another test object's image (the split's images shifted by half its length) and from a blank grey image.
A model that reads the image names the category of the image it is shown, so its accuracy
against the true category falls with the shuffled image, and the blank image shows its prior.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from physforge.assets.image_eval_paired import format_paired, paired_result
from physforge.assets.from_image import DEFAULT_ATTEMPTS, MAX_ATTEMPTS, SAMPLE_TEMPERATURE
from physforge.configs import ConfigError, JsonConfig, check_float, check_int
from physforge.threads import with_config_threads

log = logging.getLogger(__name__)

METHODS = ("vlm", "nearest_neighbour", "category_mean_predicted", "category_mean_oracle")
METRICS = ("category_accuracy", "voxel_iou", "chamfer_m", "fscore", "joint_type_accuracy", "axis_error_deg",
           "pivot_distance_m",
           "range_error_deg", "range_error_m", "scale_error_m", "material_accuracy", "gate_pass")


class AssetEvalConfigError(ConfigError):
    """An asset-eval config holds a bad value; ``path`` names the field."""


@dataclass(frozen=True)
class AssetEvalConfig(JsonConfig):
    """data: image-asset dataset folder. out: result folder (result.json, config.json).
    model: a ``model/`` folder (None: the built-in model). splits: which held-out splits.
    max_objects: per split, the first N objects (0: all). max_per_category: per split and
    category, the first N objects (0: all; keeps every category in a cut-down run). view: which rendered view of each
    object is the input image. gate: run the simulation gate on every prediction.
    fscore_fraction: F-score distance threshold as a fraction of the true largest dimension.
    points: surface points sampled per object for Chamfer / F-score. seed: point sampling.
    threads: torch CPU threads for generation (0: torch's default; 1 is fastest on a loaded
    2-core machine, see AssetVLMConfig.threads). image_ablation: also generate round 1 from a
    shuffled and a blank image (see the module docstring). paired_resamples, paired_seed: the
    paired bootstrap of the VLM against each baseline (``image_eval_paired``; result.json's
    ``paired`` section): how many resamples of the objects, and the seed of the generator that draws them.
    attempts, sample_temperature: the VLM generates as ``physforge asset from-image`` does
    (``from_image.generate_verified``: greedy, then sampled attempts while the gate rejects the asset),
    so the table measures what users get; 1: the greedy generation alone. Each VLM row records its
    attempts. The baselines are not resampled (they have nothing to draw).
    """

    data: str
    out: str
    model: str | None = None
    splits: tuple[str, ...] = ("test_objects", "test_categories")
    max_objects: int = 0
    max_per_category: int = 0
    view: int = 0
    gate: bool = True
    fscore_fraction: float = 0.05
    points: int = 2000
    seed: int = 0
    threads: int = 1
    image_ablation: bool = True
    paired_resamples: int = 10_000
    paired_seed: int = 0
    attempts: int = DEFAULT_ATTEMPTS
    sample_temperature: float = SAMPLE_TEMPERATURE

    error_type = AssetEvalConfigError

    def __post_init__(self):
        e = AssetEvalConfigError
        for name in ("data", "out"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise e(name, "expected a folder path")
        object.__setattr__(self, "splits", tuple(self.splits))
        for split in self.splits:
            if split not in ("train", "test_objects", "test_categories"):
                raise e("splits", f"unknown split {split!r}; choose test_objects and/or test_categories")
        check_int("max_objects", self.max_objects, 0, 10_000_000, e)
        check_int("max_per_category", self.max_per_category, 0, 10_000_000, e)
        check_int("view", self.view, 0, 1000, e)
        check_float("fscore_fraction", self.fscore_fraction, 1e-4, 1.0, e)
        check_int("points", self.points, 100, 1_000_000, e)
        check_int("seed", self.seed, 0, 2**31, e)
        check_int("threads", self.threads, 0, 1024, e)
        check_int("paired_resamples", self.paired_resamples, 1000, 1_000_000, e)
        check_int("paired_seed", self.paired_seed, 0, 2**31, e)
        check_int("attempts", self.attempts, 1, MAX_ATTEMPTS, e)
        check_float("sample_temperature", self.sample_temperature, 1e-3, 10.0, e)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(getattr(self, f.name)) if isinstance(getattr(self, f.name), tuple)
                else getattr(self, f.name) for f in fields(self)}


# -- ground truth and baselines ------------------------------------------------------------------

@dataclass
class Truth:
    """One dataset object: its annotation, part voxels (from its geometry rounds) and image;
    reference: its ``image_text.reference_text`` (what a retrieval index holds for it)."""

    object_id: str
    category: str
    annotation: Any
    voxels: dict[int, np.ndarray]
    image_png: bytes
    spec: Any = None
    reference: str | None = None


def truths(rows: list[dict], view: int | None) -> list[Truth]:
    from physforge.assets.image_data import ObjectSpec
    from physforge.assets.image_text import parse_geometry, reference_from_conversation
    from physforge.assets.schema import annotation_from_dict

    out = []
    for row in rows:
        if view is not None and row["view"] != view:
            continue
        annotation = annotation_from_dict(json.loads(row["annotation"]))
        messages = row["messages"]
        voxels = {}
        for part, reply in zip(annotation.parts, messages[3::2]):
            voxels[part.label] = parse_geometry(reply["content"][0]["text"])[0]
        out.append(Truth(row["object_id"], row["category"], annotation, voxels, row["images"][0]["bytes"],
                         ObjectSpec(row["split"], row["category"], row["index"], row["seed"]),
                         reference_from_conversation(messages)))
    return out


def _signature(annotation) -> tuple:
    return (tuple(p.name for p in annotation.parts),
            tuple((g.index, g.parts, g.parent, g.joint_type) for g in annotation.groups))


def mean_object(objects: list[Truth]):
    """(annotation, voxels) of the mean of ``objects``' most common part structure."""
    from physforge.assets.schema import AssetAnnotation, KinematicGroup, PartAnnotation

    counts = Counter(_signature(o.annotation) for o in objects)
    signature = counts.most_common(1)[0][0]
    members = [o for o in objects if _signature(o.annotation) == signature]
    template = members[0].annotation
    dims = tuple(float(v) for v in np.mean([o.annotation.dimensions for o in members], axis=0))
    parts = []
    for k, part in enumerate(template.parts):
        same = [o.annotation.parts[k] for o in members]
        material = Counter(p.material for p in same).most_common(1)[0][0]
        parts.append(PartAnnotation(part.label, part.name, material, float(np.mean([p.density for p in same])),
                                    part.youngs_modulus, part.poisson_ratio,
                                    Counter(p.affordance_rank for p in same).most_common(1)[0][0],
                                    part.basic_description))
    groups = []
    for k, group in enumerate(template.groups):
        same = [o.annotation.groups[k] for o in members]
        axis = np.mean([g.axis for g in same], axis=0)
        axis = axis / np.linalg.norm(axis) if np.linalg.norm(axis) > 1e-6 else np.array(group.axis)
        pivot = tuple(float(v) for v in np.mean([g.pivot for g in same], axis=0))
        rng_ = None if group.range is None else tuple(float(v) for v in np.mean([g.range for g in same], axis=0))
        slide = None if group.slide_range is None else tuple(float(v) for v in
                                                                 np.mean([g.slide_range for g in same], axis=0))
        groups.append(KinematicGroup(group.index, group.parts, group.parent, group.joint_type, tuple(axis), pivot,
                                     rng_, slide, group.name))
    annotation = AssetAnnotation(template.category, template.category, dims, tuple(parts), tuple(groups),
                                 template.base, "physforge.category_mean")
    voxels = {p.label: _mean_part([o.voxels[p.label] for o in members]) for p in template.parts}
    return annotation, voxels


def _mean_part(grids: list[np.ndarray]) -> np.ndarray:
    """A part's mean occupancy ((n, n, n) bool) over objects: the cells most of them fill.
    Where no cell is filled by most of them (a table's legs and top sit at a different place in
    every table's normalised grid), the median count of the most frequently filled cells, so the
    mean object still has the part instead of failing to decode."""
    frequency = np.mean(grids, axis=0)
    majority = frequency >= 0.5
    if majority.any() or not frequency.any():
        return majority
    count = min(max(int(np.median([g.sum() for g in grids])), 1), int((frequency > 0).sum()))
    # exactly ``count`` cells, the most frequent first (ties: the lower flat index, stable sort)
    order = np.argsort(-frequency, axis=None, kind="stable")[:count]
    out = np.zeros(frequency.shape, dtype=bool)
    out.flat[order] = True
    return out


class NearestNeighbour:
    """Retrieval (``image_retrieval``: the model's vision-tower embedding, mean-pooled, L2-normalised)
    of the training object nearest to an image, copied whole.

    A retrieval-augmented model's own index is used when it holds exactly this dataset's training
    objects (same ids and reference texts), so the baseline copies the very neighbour whose text a
    ``retrieval_at="global"`` model was shown and the paired VLM - NN difference is what the model
    adds (a ``"geometry"`` model searches within its predicted category, so its neighbour may
    differ); otherwise ``image_retrieval.build_index`` over ``train`` (float32, as before that
    index existed)."""

    def __init__(self, generator, train: list[Truth]):
        from physforge.assets.image_retrieval import build_index

        self.generator = generator
        self.by_object = {t.object_id: t for t in reversed(train)}  # first row of each object
        own = getattr(generator, "retrieval", None)
        # ids name (split, category, index), not the object: a dataset written with another seed
        # reuses them for other objects, so the index's texts must be this dataset's objects'
        self.uses_model_index = own is not None and set(own.object_ids) == set(self.by_object) and all(
            self.by_object[o].reference == reference for o, reference in zip(own.object_ids, own.references))
        if self.uses_model_index:
            self.index = own
        else:
            self.index = build_index(generator.model, generator.processor, [_pil(t.image_png) for t in train],
                                     [t.object_id for t in train], [t.category for t in train],
                                     {o: t.reference or "" for o, t in self.by_object.items()}, float16=False)

    def predict(self, png: bytes, exclude_object: str | None = None) -> Truth:
        """exclude_object: never that object (for an image of the training split, whose own views
        are in the index)."""
        from physforge.assets.image_retrieval import embed_images

        query = embed_images(self.generator.model, self.generator.processor, [_pil(png)])[0]
        row = self.index.nearest_row(query, exclude_object)
        return self.by_object[self.index.object_ids[int(self.index.row_objects[row])]]


def _pil(png: bytes):
    from PIL import Image

    from physforge.images import load_image

    return Image.fromarray(load_image(png))


# -- metrics ----------------------------------------------------------------------------------

def _union(voxels: dict[int, np.ndarray], n: int) -> np.ndarray:
    out = np.zeros((n, n, n), dtype=bool)
    for v in voxels.values():
        if v.shape == out.shape:
            out |= v
    return out


def _sample(meshes: dict[int, tuple[np.ndarray, np.ndarray]], count: int, seed: int) -> np.ndarray:
    import trimesh

    mesh = trimesh.util.concatenate([trimesh.Trimesh(v, f, process=False) for v, f in meshes.values()])
    points, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points)


def chamfer_fscore(pred: np.ndarray, true: np.ndarray, threshold: float) -> tuple[float, float]:
    """(Chamfer distance m: mean of both directions' mean nearest distances, F-score at threshold m)."""
    from scipy.spatial import cKDTree

    d_pt = cKDTree(true).query(pred)[0]
    d_tp = cKDTree(pred).query(true)[0]
    precision, recall = float((d_pt < threshold).mean()), float((d_tp < threshold).mean())
    fscore = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return float(0.5 * (d_pt.mean() + d_tp.mean())), fscore


def _angle(a, b) -> float:
    cos = abs(float(np.dot(a, b)) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return math.degrees(math.acos(min(1.0, cos)))


def _line_distance(point, pivot, axis) -> float:
    d = np.asarray(point) - np.asarray(pivot)
    axis = np.asarray(axis) / np.linalg.norm(axis)
    return float(np.linalg.norm(d - (d @ axis) * axis))


def metrics(pred_annotation, pred_voxels, truth: Truth, *, true_meshes, pred_asset, config: AssetEvalConfig,
            gate_passed: bool | None) -> dict[str, Any]:
    """Per-object metrics of one prediction (see the module docstring); None where undefined."""
    n = next(iter(truth.voxels.values())).shape[0]
    true_union, pred_union = _union(truth.voxels, n), _union(pred_voxels, n)
    union = (true_union | pred_union).sum()
    out: dict[str, Any] = {"parsed": True, "category_accuracy": float(pred_annotation.category == truth.category),
                           "voxel_iou": float((true_union & pred_union).sum() / union) if union else 0.0}
    if pred_asset is not None:
        threshold = config.fscore_fraction * max(truth.annotation.dimensions)
        pred_points = _sample({p.label: p.visual for p in pred_asset.parts}, config.points, config.seed)
        true_points = _sample(true_meshes, config.points, config.seed + 1)
        out["chamfer_m"], out["fscore"] = chamfer_fscore(pred_points, true_points, threshold)
    else:
        out["chamfer_m"], out["fscore"] = None, 0.0
    pred_groups = {g.index: g for g in pred_annotation.groups}
    moving = [g for g in truth.annotation.groups if g.index != 0]
    correct, axes, pivots, ranges_deg, ranges_m = 0, [], [], [], []
    for g in moving:
        p = pred_groups.get(g.index)
        if p is None:
            continue
        correct += p.joint_type == g.joint_type
        if g.joint_type in ("revolute", "prismatic", "revolute_prismatic") and p.joint_type in (
                "revolute", "prismatic", "revolute_prismatic", "ball"):
            axes.append(_angle(p.axis, g.axis))
            if g.joint_type != "prismatic":
                pivots.append(_line_distance(p.pivot, g.pivot, g.axis))
        if p.joint_type == g.joint_type and g.range is not None and p.range is not None:
            err = 0.5 * (abs(p.range[0] - g.range[0]) + abs(p.range[1] - g.range[1]))
            (ranges_m if g.joint_type == "prismatic" else ranges_deg).append(
                err if g.joint_type == "prismatic" else math.degrees(err))
    out["joint_type_accuracy"] = correct / len(moving) if moving else None
    out["axis_error_deg"] = float(np.mean(axes)) if axes else None
    out["pivot_distance_m"] = float(np.mean(pivots)) if pivots else None
    out["range_error_deg"] = float(np.mean(ranges_deg)) if ranges_deg else None
    out["range_error_m"] = float(np.mean(ranges_m)) if ranges_m else None
    out["scale_error_m"] = float(np.mean(np.abs(np.subtract(pred_annotation.dimensions,
                                                            truth.annotation.dimensions))))
    materials = {p.label: p.material for p in pred_annotation.parts}
    out["material_accuracy"] = float(np.mean([materials.get(p.label) == p.material for p in truth.annotation.parts]))
    out["gate_pass"] = None if gate_passed is None else float(gate_passed)
    return out


def failed_metrics(reason: str, gate: bool, truth: Truth) -> dict[str, Any]:
    """The row of a generation that failed to parse: 0 for what a success would score in [0, 1],
    None for the errors it has no value for. Joint-type accuracy stays undefined (None) for an
    object with no moving joint, as in a successful row, so failures do not put a 0 into a mean
    that leaves such objects out."""
    moving = any(g.index != 0 for g in truth.annotation.groups)
    return {"parsed": False, "error": reason, "category_accuracy": 0.0, "voxel_iou": 0.0, "chamfer_m": None,
            "fscore": 0.0,
            "joint_type_accuracy": 0.0 if moving else None, "axis_error_deg": None, "pivot_distance_m": None,
            "range_error_deg": None,
            "range_error_m": None, "scale_error_m": None, "material_accuracy": 0.0,
            "gate_pass": 0.0 if gate else None}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of every metric over the rows where it is defined, with the count."""
    out: dict[str, Any] = {"objects": len(rows), "parse_failures": sum(not r["parsed"] for r in rows)}
    for name in METRICS:
        values = [r[name] for r in rows if r.get(name) is not None]
        out[name] = float(np.mean(values)) if values else None
        out[f"{name}_n"] = len(values)
    return out


# -- the run ----------------------------------------------------------------------------------

@with_config_threads
def evaluate_assets(config: AssetEvalConfig, *, overwrite: bool = False, generator=None,
                    progress=None) -> dict[str, Any]:
    """Score the model and both baselines on the configured splits; writes ``result.json``
    (returned as a dict: ``{"config", "table", "objects", "seconds"}``; ``table[split][method]``
    holds the averaged metrics)."""
    from physforge.assets.from_image import build_generated, generate_verified
    from physforge.assets.gate import run_gate
    from physforge.assets.image_data import library_object, read_split
    from physforge.assets.image_model import AssetGenerator
    from physforge.assets.image_text import GenerationParseError
    from physforge.errors import PhysforgeError
    from physforge.images import load_image
    from physforge.outputs import staged_directory, write_json

    start = time.perf_counter()
    generator = generator or AssetGenerator(config.model)
    train = truths(read_split(config.data, "train"), None)
    by_object: dict[str, Truth] = {}
    for t in train:
        by_object.setdefault(t.object_id, t)
    nn = NearestNeighbour(generator, train)
    per_category: dict[str, list[Truth]] = defaultdict(list)
    for t in by_object.values():
        per_category[t.category].append(t)
    means = {c: mean_object(objs) for c, objs in per_category.items()}
    global_mean = mean_object(list(by_object.values()))

    def undecodable(err, annotation, truth):
        """The row of an annotation that parsed but did not decode: its category still counts."""
        return failed_metrics(f"decode: {err}", config.gate, truth) | {
            "parsed": True, "category_accuracy": float(annotation.category == truth.category)}

    def score(annotation, voxels, truth, true_meshes, built=None):
        """built: (asset, notes, gate report) already made by generate_verified."""
        if built is not None:
            asset, notes, report = built
        else:
            try:
                asset, notes = build_generated(annotation, voxels)
            except PhysforgeError as err:
                return undecodable(err, annotation, truth)
            report = run_gate(asset.world) if config.gate else None
        passed = bool(report["passed"]) if report is not None else None
        # pivots as built (decoding may move a hinge onto its body), so the score is the asset's
        built = {g.index: g.pivot for g in asset.annotation.groups}
        annotation = dataclasses.replace(annotation, groups=tuple(
            dataclasses.replace(g, pivot=built.get(g.index, g.pivot)) for g in annotation.groups))
        # which checks failed and what decoding repaired, per object: where to look next
        return metrics(annotation, voxels, truth, true_meshes=true_meshes, pred_asset=asset, config=config,
                       gate_passed=passed) | {"gate_failed": report["failed"] if report is not None else None,
                                              "decode_notes": notes}

    rows, table, ablation = [], {}, {}
    for split in config.splits:
        tests = truths(read_split(config.data, split), config.view)
        if config.max_per_category:
            seen: Counter = Counter()
            kept = []
            for t in tests:
                seen[t.category] += 1
                if seen[t.category] <= config.max_per_category:
                    kept.append(t)
            tests = kept
        if config.max_objects:
            tests = tests[:config.max_objects]
        split_rows: dict[str, list] = {m: [] for m in METHODS}
        for truth in tests:
            # a train image is in the index: its nearest row is itself, so retrieval (the model's and
            # the baseline's) leaves its object out, as the model's training conversations did
            own = {"exclude_object": truth.object_id} if split == "train" else {}
            source, _ = library_object(truth.spec)
            true_meshes = source.meshes
            image = load_image(truth.image_png, name=truth.object_id)
            entries = {}
            try:
                verified = generate_verified(generator, image, attempts=config.attempts,
                                             temperature=config.sample_temperature,
                                             gate=run_gate if config.gate else False, **own)
                generation = verified.generation
                if verified.asset is None:  # the kept attempt parsed but did not decode
                    entries["vlm"] = undecodable(verified.error, generation["annotation"], truth)
                else:
                    entries["vlm"] = score(generation["annotation"], generation["voxels"], truth, true_meshes,
                                           built=(verified.asset, verified.notes, verified.report))
                # seconds: the kept generation; seconds_all_attempts: every attempt's generation, decoding and gate
                entries["vlm"].update(tokens=generation["tokens"], seconds=round(generation["seconds"], 3),
                                      repairs=len(generation["repairs"]),
                                      predicted_category=generation["annotation"].category,
                                      attempts=len(verified.attempts), attempt_kept=verified.kept + 1,
                                      attempt_records=verified.attempts,
                                      seconds_all_attempts=round(verified.seconds, 3))
                if generation.get("retrieved") is not None:  # a retrieval model: the neighbour in its prompt
                    entries["vlm"]["retrieved"] = generation["retrieved"]
            except GenerationParseError as err:
                entries["vlm"] = failed_metrics(str(err), config.gate, truth)
                records = getattr(err, "attempts", [])
                entries["vlm"].update(attempts=len(records), attempt_kept=None, attempt_records=records,
                                      seconds_all_attempts=round(sum(r["seconds"] for r in records), 3))
            neighbour = nn.predict(truth.image_png, **own)
            entries["nearest_neighbour"] = score(neighbour.annotation, neighbour.voxels, truth, true_meshes)
            entries["nearest_neighbour"]["retrieved"] = neighbour.object_id
            entries["category_mean_predicted"] = score(*means[neighbour.category], truth, true_meshes)
            entries["category_mean_predicted"]["predicted_category"] = neighbour.category
            mean_annotation, mean_voxels = means.get(truth.category, global_mean)
            entries["category_mean_oracle"] = score(mean_annotation, mean_voxels, truth, true_meshes)
            for method, entry in entries.items():
                entry.update(split=split, method=method, object_id=truth.object_id, category=truth.category)
                split_rows[method].append(entry)
                rows.append(entry)
            if progress is not None:
                progress(split, truth.object_id, entries)
        table[split] = {m: summarise(r) for m, r in split_rows.items()}
        if config.image_ablation and tests:
            ablation[split] = image_ablation(generator, tests, split_rows["vlm"], exclude_own=split == "train")
    result = {"config": config.to_dict(), "model": str(generator.path), "table": table, "ablation": ablation,
              "objects": rows,
              "seconds": round(time.perf_counter() - start, 2),
              "notes": {"nearest_neighbour": "training object nearest in the model's vision-tower embedding",
                        "category_mean_predicted": "mean object of the nearest training image's category",
                        "category_mean_oracle": "ORACLE: mean object of the true category, which image-only "
                                                "methods are not given (held-out categories: of all training objects)",
                        "fscore_threshold": f"{config.fscore_fraction} x true largest "
                                                                          "dimension"}}
    result["paired"] = paired_result(result, np.random.default_rng(config.paired_seed),
                                     resamples=config.paired_resamples)
    with staged_directory(config.out, overwrite=overwrite) as staging:
        write_json(staging / "result.json", result)
        write_json(staging / "config.json", config.to_dict())
    return result


def image_ablation(generator, tests: list[Truth], vlm_rows: list[dict], *, exclude_own: bool = False) -> dict[str, Any]:
    """Category accuracy of the model's round-1 answer from the true image (its full generation
    in ``vlm_rows``), from another test object's image (half the split away) and from a blank
    grey image.

    ``shuffled_matches_shown``: how often the shuffled image's answer names the category of the
    image actually shown (high when the model reads the image). exclude_own: the tests are
    training images (a retrieval model never retrieves the shown image's own object)."""
    from physforge.assets.image_text import GenerationParseError, parse_global
    from physforge.images import load_image

    def category(image, own: str | None = None) -> str | None:
        try:
            kwargs = {"exclude_object": own} if own is not None else {}
            return parse_global(generator.generate_global(image, **kwargs)["text"]).annotation.category
        except GenerationParseError:
            return None

    true = [r.get("predicted_category") for r in vlm_rows]
    # half the split away: tests are grouped by category, so a shift of one mostly stays in it
    shown = [tests[(i + len(tests) // 2) % len(tests)] for i in range(len(tests))]
    shuffled = [category(load_image(t.image_png, name=t.object_id), t.object_id if exclude_own else None)
                for t in shown]
    first = load_image(tests[0].image_png, name=tests[0].object_id)
    blank = category(np.full_like(first, 128))
    truth = [t.category for t in tests]
    return {"objects": len(tests),
            "true_image_category_accuracy": float(np.mean([p == c for p, c in zip(true, truth)])),
            "shuffled_image_category_accuracy": float(np.mean([p == c for p, c in zip(shuffled, truth)])),
            "shuffled_matches_shown": float(np.mean([p == t.category for p, t in zip(shuffled, shown)])),
            "shown_is_same_category": float(np.mean([t.category == c for t, c in zip(shown, truth)])),
            "blank_image_category": blank,
            "blank_image_category_accuracy": float(np.mean([blank == c for c in truth])),
            "true_image_categories": dict(Counter(p or "unparsed" for p in true)),
            "shuffled_image_categories": dict(Counter(p or "unparsed" for p in shuffled))}


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of ``result["table"]`` (one block per split)."""
    lines = []
    columns = ("category_accuracy", "voxel_iou", "chamfer_m", "fscore", "joint_type_accuracy", "axis_error_deg",
               "pivot_distance_m",
               "range_error_deg", "range_error_m", "scale_error_m", "material_accuracy", "gate_pass")
    short = ("cat", "IoU", "CD m", "F", "joint", "axis°", "pivot m", "range°", "range m", "scale m", "mat", "gate")
    for split, methods in result["table"].items():
        lines.append(f"{split}: " + "  ".join(f"{s:>8}" for s in ("method" + " " * 16,) + short))
        for method, row in methods.items():
            cells = ["—" if row[c] is None else f"{row[c]:.3f}" for c in columns]
            lines.append(f"  {method:<24}" + "  ".join(f"{c:>8}" for c in cells))
        ablation = result.get("ablation", {}).get(split)
        if ablation:
            lines.append("  image ablation, VLM category accuracy: true image "
                         f"{ablation['true_image_category_accuracy']:.3f}, shuffled image "
                         f"{ablation['shuffled_image_category_accuracy']:.3f} (names the shown image's category "
                         f"{ablation['shuffled_matches_shown']:.3f}), blank image -> "
                         f"{ablation['blank_image_category']}")
    if result.get("paired"):
        lines.append(format_paired(result["paired"]))
    return "\n".join(lines)
