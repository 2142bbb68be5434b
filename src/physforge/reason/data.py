"""Reading a physforge dataset folder for training and evaluation: questions, clips (decoded
frames), and per-scene supervision for the PhysEncoder's auxiliary heads.

Auxiliary targets use one slot per CLEVR colour (colours are unique within a scene, so the
slot of an object is its colour; ``SLOTS`` gives the order):

- ``present``: (8,) bool, the colour is an object of the scene;
- ``future``: (n_future, 8, 3) float32, m, world frame: displacement of each object from its
  position at the last clip frame to ``clip_duration + k * horizon / n_future``, k = 1..n_future;
- ``properties``: (8, 3) float32: log(mass / kg) minus the scene mean over present objects,
  sliding friction (1), restitution (1);
- ``displaced``: (8,) float32 in {0, 1}: the object moved more than ``DISPLACED_DISTANCE`` m
  between the first and the last recorded state (stability/support outcome);
- ``contacts``: (28,) float32 in {0, 1}: the pair (i < j, row-major over slots) touched at some
  time of the run (the collision structure behind causal questions);
- ``frame_uv`` (only for rows with a camera and frames): (num_frames + N_NEXT, 8, 2) float32,
  image coordinates in [-1, 1] (x right, y down; pixel centres at (2 px + 1) / W - 1) of each
  object's centre at clip frame k, time k / fps, k = 0 .. num_frames + N_NEXT - 1: where the
  object is in the picture the encoder sees, then where it will be in the next N_NEXT frames;
  ``frame_visible``: (num_frames + N_NEXT, 8) bool, the object is present, in front of the
  camera and within ``VISIBLE_EXTENT`` of the image centre then (elsewhere frame_uv is 0).

Only numpy and pyarrow here: torch stays out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from physforge.reason.errors import ReasonDataError

#: Object slots: CLEVR colour names, in the data engine's order.
SLOTS: tuple[str, ...] = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
PAIRS: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(len(SLOTS)) for j in range(i + 1, len(SLOTS)))
#: m: an object that moved further than this between first and last state counts as displaced.
DISPLACED_DISTANCE = 0.02
#: Number of future times the state head predicts.
N_FUTURE = 2
#: Frames after the last shown one whose object positions the track head predicts.
N_NEXT = 2
#: Image coordinates ([-1, 1] is the picture) beyond which an object counts as out of view: a
#: body that fell off the table or flew past the camera has no position the pixels could give.
VISIBLE_EXTENT = 1.25
_TOKEN = re.compile(r"[a-z]+|\d|[^\sa-z\d]")


def tokenize(text: str) -> list[str]:
    """Lower-case words, single digits and punctuation marks (numbers are spelled digit by digit)."""
    return _TOKEN.findall(text.lower())


def question_text(question: dict[str, Any]) -> str:
    """The text a model reads for a question: the question and, for multiple choice, nothing else
    (options are encoded one by one)."""
    return question["question"]


@dataclass
class Scene:
    """One scene in memory. frames: (num_frames, S, S, 3) uint8; alt_frames: (0 or num_frames,
    S, S, 3) uint8; targets: see the module docs (None for a scene without states)."""

    scene_id: str
    split: str
    family: str
    fps: float
    frames: np.ndarray
    alt_frames: np.ndarray
    png: list[bytes]  # the clip's PNGs, then the alt clip's, as stored (for endpoint models)
    targets: dict[str, np.ndarray] | None = None


@dataclass
class Split:
    """Questions of some splits with their scenes."""

    questions: list[dict[str, Any]]
    scenes: dict[str, Scene] = field(default_factory=dict)

    def images(self, question: dict[str, Any]) -> np.ndarray:
        """(n_shown, S, S, 3) uint8: the frames the question shows."""
        scene = self.scenes[question["scene_id"]]
        n = len(scene.frames)
        return np.stack([scene.frames[i] if i < n else scene.alt_frames[i - n] for i in question["frame_indices"]])

    def png(self, question: dict[str, Any]) -> list[bytes]:
        return [self.scenes[question["scene_id"]].png[i] for i in question["frame_indices"]]


def dataset_splits(folder: str | Path) -> list[str]:
    """Splits present in a finished dataset folder (from meta/info.json)."""
    folder = Path(folder)
    info = folder / "meta" / "info.json"
    if not info.is_file():
        raise ReasonDataError(f"{folder}: not a finished physforge dataset (meta/info.json is missing); generate one "
                              "with `physforge data generate` or finish it by rerunning that command")
    return list(json.loads(info.read_text())["splits"])


def load_split(folder: str | Path, splits: Iterable[str], image_size: int | None = None,
               max_questions: int | None = None, rng: np.random.Generator | None = None,
               with_targets: bool = True) -> Split:
    """Questions and scenes of ``splits``. image_size: px, frames are resized to S x S (None:
    as stored). max_questions: keep at most this many per split, drawn with ``rng`` (required
    then), so a bounded evaluation is still a random sample."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    available = dataset_splits(folder)
    out = Split(questions=[])
    for split in splits:
        if split not in available:
            raise ReasonDataError(f"{folder}: split {split!r} is not in this dataset; it has {available}")
        questions = []
        for path in sorted((folder / "questions" / split).glob("*.parquet")):
            questions.extend(pq.read_table(path).to_pylist())
        if max_questions is not None and len(questions) > max_questions:
            if rng is None:
                raise ReasonDataError("max_questions needs an rng to draw the sample with")
            keep = np.sort(rng.choice(len(questions), size=max_questions, replace=False))
            questions = [questions[int(i)] for i in keep]
        wanted = {q["scene_id"] for q in questions}
        columns = ["scene_id", "split", "family", "fps", "frames", "alt_frames", "clip_duration", "duration",
                   "objects", "states", "events", "camera", "width", "height"]
        for path in sorted((folder / "scenes" / split).glob("*.parquet")):
            for row in pq.read_table(path, columns=columns).to_pylist():
                if row["scene_id"] in wanted:
                    out.scenes[row["scene_id"]] = _scene(row, image_size, with_targets)
        out.questions.extend(questions)
    if not out.questions:
        raise ReasonDataError(f"{folder}: no questions in splits {list(splits)}; generate more scenes")
    return out


def _decode(images: list[dict], size: int | None) -> np.ndarray:
    from PIL import Image

    from physforge.images import load_image

    arrays = []
    for image in images:
        # Dataset bytes may come from anywhere: decoded through the guarded reader.
        picture = Image.fromarray(load_image(image["bytes"], min_side=1, name="dataset frame (PNG)"))
        if size is not None and picture.size != (size, size):
            picture = picture.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(picture, dtype=np.uint8))
    if not arrays:
        side = size or 1
        return np.zeros((0, side, side, 3), np.uint8)
    return np.stack(arrays)


def _scene(row: dict[str, Any], size: int | None, with_targets: bool) -> Scene:
    frames = _decode(row["frames"], size)
    alt = _decode(row["alt_frames"], size) if row["alt_frames"] else np.zeros((0,) + frames.shape[1:], np.uint8)
    png = [f["bytes"] for f in row["frames"]] + [f["bytes"] for f in row["alt_frames"]]
    return Scene(row["scene_id"], row["split"], row["family"], float(row["fps"]), frames, alt, png,
                 scene_targets(row) if with_targets else None)


def clip_picks(n_shown: int, clip_frames: int) -> np.ndarray:
    """(clip_frames,) int64: which of a question's n_shown frames fill each of the encoder's
    clip_frames inputs (nearest in time; one shown frame is repeated)."""
    if n_shown > 1:
        return np.round(np.linspace(0, n_shown - 1, clip_frames)).astype(np.int64)
    return np.zeros(clip_frames, np.int64)


def project_uv(camera: dict[str, Any], width: int, height: int, points: np.ndarray) -> np.ndarray:
    """points (..., 3) m, world frame -> (..., 2) image coordinates in [-1, 1] (x right, y down)
    through the dataset's pinhole camera (``camera.intrinsics`` in px, ``world_from_camera``
    row-major 4x4, OpenGL: the camera looks along -z, y up). NaN for a point not in front of
    the camera."""
    K = np.asarray(camera["intrinsics"], np.float64).reshape(3, 3)
    world_from_camera = np.asarray(camera["world_from_camera"], np.float64).reshape(4, 4)
    rotation, origin = world_from_camera[:3, :3], world_from_camera[:3, 3]
    local = (np.asarray(points, np.float64) - origin) @ rotation  # rows: R^T (p - o)
    ahead = -local[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = K[0, 2] + K[0, 0] * local[..., 0] / ahead
        py = K[1, 2] - K[1, 1] * local[..., 1] / ahead
    uv = np.stack([2 * px / width - 1, 2 * py / height - 1], -1)
    uv[ahead <= 1e-3] = np.nan
    return uv


def scene_targets(row: dict[str, Any]) -> dict[str, np.ndarray]:
    """Auxiliary supervision of one scene row (see the module docs for shapes and units)."""
    slots = {c: k for k, c in enumerate(SLOTS)}
    states = row["states"]
    time = np.asarray(states["time"], dtype=np.float64)
    position = np.asarray(states["position"], dtype=np.float64)  # (n_states, n_bodies, 3) m
    body = {name: k for k, name in enumerate(states["body_names"])}
    present = np.zeros(len(SLOTS), bool)
    future = np.zeros((N_FUTURE, len(SLOTS), 3), np.float32)
    properties = np.zeros((len(SLOTS), 3), np.float32)
    displaced = np.zeros(len(SLOTS), np.float32)
    name_slot = {}
    clip_end = float(row["clip_duration"])
    horizon = float(row["duration"]) - clip_end
    future_times = [clip_end + horizon * (k + 1) / N_FUTURE for k in range(N_FUTURE)]
    log_mass = {}
    for obj in row["objects"]:
        slot = slots.get(obj["color"])
        if slot is None or obj["name"] not in body:
            continue
        name_slot[obj["name"]] = slot
        present[slot] = True
        track = position[:, body[obj["name"]], :]
        at_end = np.array([np.interp(clip_end, time, track[:, d]) for d in range(3)])
        for k, t in enumerate(future_times):
            future[k, slot] = np.array([np.interp(t, time, track[:, d]) for d in range(3)]) - at_end
        log_mass[slot] = float(np.log(max(obj["mass"], 1e-6)))
        properties[slot, 1] = obj["friction"]
        properties[slot, 2] = obj["restitution"]
        displaced[slot] = float(np.linalg.norm(track[-1] - track[0]) > DISPLACED_DISTANCE)
    if log_mass:
        mean = float(np.mean(list(log_mass.values())))
        for slot, value in log_mass.items():
            properties[slot, 0] = value - mean
    contacts = np.zeros(len(PAIRS), np.float32)
    pair_index = {p: k for k, p in enumerate(PAIRS)}
    for event in row["events"]:
        if event["type"] != "contact_start":
            continue
        ends = [name_slot.get(b) for b in event["bodies"]]
        if len(ends) == 2 and None not in ends and ends[0] != ends[1]:
            contacts[pair_index[tuple(sorted(ends))]] = 1.0
    out = {"present": present, "future": future, "properties": properties, "displaced": displaced,
           "contacts": contacts}
    if row.get("camera") and row.get("frames") and row.get("fps"):
        n = len(row["frames"]) + N_NEXT
        frame_times = np.arange(n) / float(row["fps"])
        uv = np.zeros((n, len(SLOTS), 2), np.float32)
        visible = np.zeros((n, len(SLOTS)), bool)
        for name, slot in name_slot.items():
            track = position[:, body[name], :]
            at = np.stack([np.interp(frame_times, time, track[:, d]) for d in range(3)], 1)
            projected = project_uv(row["camera"], int(row["width"]), int(row["height"]), at)
            seen = np.isfinite(projected).all(-1) & (np.abs(projected) <= VISIBLE_EXTENT).all(-1)
            uv[seen, slot] = projected[seen]
            visible[:, slot] = seen
        out["frame_uv"], out["frame_visible"] = uv, visible
    return out
