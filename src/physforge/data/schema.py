"""The dataset's on-disk format: Arrow schemas of the two tables, their Hugging Face feature
metadata (so ``datasets.load_dataset("parquet", ...)`` decodes images), and the feature docs
written to ``meta/info.json`` (dtype, shape, unit of every column)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

FORMAT_VERSION = "1.0"

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
F64 = pa.float64()
VEC = pa.list_(F64)

EVENT = pa.struct([("type", pa.string()), ("time", F64), ("bodies", pa.list_(pa.string())), ("position", VEC),
                   ("normal", VEC), ("relative_speed", F64), ("impulse", F64), ("duration", F64), ("angle", F64)])

SCENES = pa.schema([
    ("scene_id", pa.string()), ("index", pa.int64()), ("split", pa.string()), ("family", pa.string()),
    ("variant", pa.string()), ("seed", pa.list_(pa.int64())),
    ("frames", pa.list_(IMAGE)), ("depth", pa.list_(IMAGE)), ("segmentation", pa.list_(IMAGE)),
    ("alt_frames", pa.list_(IMAGE)),
    ("fps", F64), ("state_fps", F64), ("clip_duration", F64), ("duration", F64),
    ("width", pa.int64()), ("height", pa.int64()),
    ("camera", pa.struct([("position", VEC), ("look_at", VEC), ("fovy", F64), ("intrinsics", VEC),
                          ("world_from_camera", VEC)])),
    ("objects", pa.list_(pa.struct([("name", pa.string()), ("color", pa.string()), ("shape", pa.string()),
                                    ("size", F64), ("mass", F64), ("friction", F64), ("restitution", F64),
                                    ("instance_id", pa.int64())]))),
    ("latent", pa.list_(pa.struct([("key", pa.string()), ("value", F64), ("unit", pa.string())]))),
    ("states", pa.struct([("time", VEC), ("body_names", pa.list_(pa.string())),
                          ("position", pa.list_(pa.list_(VEC))), ("quaternion", pa.list_(pa.list_(VEC))),
                          ("linear_velocity", pa.list_(pa.list_(VEC))), ("angular_velocity", pa.list_(pa.list_(VEC)))])),
    ("events", pa.list_(EVENT)),
    ("world", pa.string()),
    ("versions", pa.struct([("physforge", pa.string()), ("mujoco", pa.string()), ("renderer", pa.string())])),
])

QUESTIONS = pa.schema([
    ("question_id", pa.string()), ("scene_id", pa.string()), ("split", pa.string()), ("family", pa.string()),
    ("question_type", pa.string()), ("template", pa.string()), ("question", pa.string()), ("answer", pa.string()),
    ("answer_type", pa.string()), ("tolerance_abs", F64), ("tolerance_rel", F64),
    ("options", pa.list_(pa.struct([("label", pa.string()), ("text", pa.string()), ("correct", pa.bool_()),
                                    ("program", pa.string())]))),
    ("program", pa.string()), ("frame_indices", pa.list_(pa.int64())), ("cites", pa.list_(pa.string())),
])

IMAGE_COLUMNS = ("frames", "depth", "segmentation", "alt_frames")

#: column -> (dtype, shape, unit, meaning)
SCENE_FEATURES: dict[str, tuple[str, str, str, str]] = {
    "scene_id": ("string", "()", "", "s{seed}-{index:08d}"),
    "index": ("int64", "()", "", "scene index in the run"),
    "split": ("string", "()", "", "train/val/test or test_ood_params/test_ood_family/test_ood_compositional"),
    "family": ("string", "()", "", "scene family"),
    "variant": ("string", "()", "", "iid, params (extrapolated ranges) or compositional (more objects)"),
    "seed": ("int64", "(2,)", "", "SeedSequence entropy [run seed, scene index]"),
    "frames": ("image (PNG, RGB uint8)", "(num_frames, H, W, 3)", "", "the clip"),
    "depth": ("image (PNG, uint16)", "(num_frames, H, W)", "mm", "z-depth along the camera axis; /1000 for m"),
    "segmentation": ("image (PNG, uint8)", "(num_frames, H, W)", "", "0 background/ground, i+1 = world body i"),
    "alt_frames": ("image (PNG, RGB uint8)", "(0 or num_frames, H, W, 3)", "", "impossible twin clip (plausibility)"),
    "fps": ("float64", "()", "1/s", "clip frame rate"),
    "state_fps": ("float64", "()", "1/s", "state recording rate"),
    "clip_duration": ("float64", "()", "s", "time of the last clip frame; later events are the held-back future"),
    "duration": ("float64", "()", "s", "simulated time"),
    "width": ("int64", "()", "px", "image width"),
    "height": ("int64", "()", "px", "image height"),
    "camera.position": ("float64", "(3,)", "m", "world frame"),
    "camera.look_at": ("float64", "(3,)", "m", "world frame"),
    "camera.fovy": ("float64", "()", "rad", "vertical field of view"),
    "camera.intrinsics": ("float64", "(9,)", "px", "row-major 3x3 K"),
    "camera.world_from_camera": ("float64", "(16,)", "m", "row-major 4x4; camera looks along -z, y up (OpenGL)"),
    "objects": ("struct list", "(n_objects,)", "m, kg", "name, colour, shape, size (m), mass (kg), friction, "
                "restitution, instance_id (segmentation value)"),
    "latent": ("struct list", "(n_latent,)", "per row", "latent physical properties: key, value, unit"),
    "states.time": ("float64", "(n_states,)", "s", "state times"),
    "states.body_names": ("string", "(n_bodies,)", "", "world bodies, in segmentation order"),
    "states.position": ("float64", "(n_states, n_bodies, 3)", "m", "body origin, world frame"),
    "states.quaternion": ("float64", "(n_states, n_bodies, 4)", "", "(w, x, y, z), world frame"),
    "states.linear_velocity": ("float64", "(n_states, n_bodies, 3)", "m/s", "body origin, world frame"),
    "states.angular_velocity": ("float64", "(n_states, n_bodies, 3)", "rad/s", "world frame"),
    "events": ("struct list", "(n_events,)", "s, m, m/s, N s", "contact_start/contact_end/rest/topple/leave_support"),
    "world": ("string (JSON)", "()", "SI", "the physforge World; load with physforge.world.world_from_dict"),
    "versions": ("struct", "()", "", "physforge, mujoco, renderer"),
}
QUESTION_FEATURES: dict[str, tuple[str, str, str, str]] = {
    "question_id": ("string", "()", "", "{scene_id}-qNN"),
    "scene_id": ("string", "()", "", "the scene row"),
    "split": ("string", "()", "", "the scene's split"),
    "family": ("string", "()", "", "the scene's family"),
    "question_type": ("string", "()", "", "descriptive, quantitative, predictive, property, causal, counterfactual, "
                      "stability, plausibility"),
    "template": ("string", "()", "", "question template"),
    "question": ("string", "()", "", "question text"),
    "answer": ("string", "()", "", "yes/no, integer, number, colour name, option letter(s)"),
    "answer_type": ("string", "()", "", "bool, count, number, name, choice, multi"),
    "tolerance_abs": ("float64", "()", "answer unit", "numeric answers are right within max(abs, rel*|answer|)"),
    "tolerance_rel": ("float64", "()", "1", "see tolerance_abs"),
    "options": ("struct list", "(n_options,)", "", "label, text, correct, program (JSON)"),
    "program": ("string (JSON)", "()", "", "functional program over events/states; see physforge.data.programs"),
    "frame_indices": ("int64", "(n_shown,)", "", "frames shown; i >= num_frames means alt_frames[i - num_frames]"),
    "cites": ("string", "(n_cited,)", "", "ground-truth fields the answer was computed from"),
}


def _feature(arrow_type: pa.DataType, image: bool = False) -> dict[str, Any]:
    if image:
        return {"_type": "Image"}
    if pa.types.is_list(arrow_type):
        return {"feature": _feature(arrow_type.value_type), "_type": "List"}
    if pa.types.is_struct(arrow_type):
        return {arrow_type.field(i).name: _feature(arrow_type.field(i).type) for i in range(arrow_type.num_fields)}
    dtype = {pa.string(): "string", pa.int64(): "int64", pa.float64(): "float64", pa.bool_(): "bool",
             pa.binary(): "binary"}[arrow_type]
    return {"dtype": dtype, "_type": "Value"}


def with_hf_features(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the ``huggingface`` metadata that makes ``datasets`` decode Image columns."""
    features = {}
    for f in schema:
        if f.name in IMAGE_COLUMNS:
            features[f.name] = {"feature": {"_type": "Image"}, "_type": "List"}
        else:
            features[f.name] = _feature(f.type)
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": features}})})


SCENES_HF = with_hf_features(SCENES)
QUESTIONS_HF = with_hf_features(QUESTIONS)


def feature_docs() -> dict[str, Any]:
    def table(features):
        return {name: {"dtype": d, "shape": s, "unit": u, "description": m} for name, (d, s, u, m) in features.items()}
    return {"scenes": table(SCENE_FEATURES), "questions": table(QUESTION_FEATURES)}
