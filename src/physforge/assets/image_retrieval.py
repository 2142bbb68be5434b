"""Image retrieval over an image-asset dataset's training split, through a VLM's own vision tower.

One retrieval for two users: ``asset eval``'s nearest-neighbour baseline (copy the retrieved
training object whole) and a retrieval-augmented asset VLM (``AssetVLMConfig.retrieval``), whose
prompt carries the retrieved object's target text (``image_text.reference_text``) and which writes
its own answer, free to copy the neighbour's part shapes and to fix what the image says differs.

Embedding: the vision tower's last hidden state (patch features) mean-pooled and L2-normalised;
similarity is the cosine (a dot product). A retrieval model's vision tower is frozen during its
SFT (the config refuses otherwise), so the index built before SFT stays valid for the saved model.

The index (``RetrievalIndex``) is one row per training image and one entry per training object::

    embeddings   (n_rows, width) float32 in memory, float16 on disk, unit length
    row_objects  (n_rows,) int64, the object (position in object_ids) each image shows
    object_ids, categories, references   per object: id, category, reference text
    vision_fingerprint   sha256 of the vision tower's weights it was built with (None: unknown)

saved as ``retrieval_index.safetensors`` in the model folder (tensors plus one JSON metadata
entry; safetensors never unpickles, so a file from elsewhere cannot run code).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physforge.checkpoints import CheckpointError
from physforge.vlm import vision_tower

INDEX_FILE = "retrieval_index.safetensors"
INDEX_KIND = "physforge.asset_retrieval_index"
INDEX_FORMAT_VERSION = 1
#: Images per vision-tower forward pass when embedding many (the eval baseline's batch, kept so
#: its float results, and so its neighbours, stay as they were before this module existed).
EMBED_BATCH = 64


def embed_images(model, processor, images: list) -> np.ndarray:
    """(N, width) float32, unit length: mean-pooled vision-tower features of N PIL RGB images,
    in batches of ``EMBED_BATCH``."""
    import torch

    vision = vision_tower(model)
    dtype = next(model.parameters()).dtype
    out = []
    for start in range(0, len(images), EMBED_BATCH):
        batch = [[image] for image in images[start:start + EMBED_BATCH]]
        pixels = processor.image_processor(batch, return_tensors="pt")["pixel_values"]
        pixels = pixels.reshape(-1, *pixels.shape[-3:]).to(dtype)
        with torch.no_grad():
            features = vision(pixel_values=pixels).last_hidden_state.mean(1).numpy()
        out.append(features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class Neighbour:
    """The retrieved training object: its id, category, reference text and cosine similarity."""

    object_id: str
    category: str
    reference: str
    similarity: float


@dataclass(frozen=True)
class RetrievalIndex:
    """Training images' embeddings and their objects (shapes in the module docstring)."""

    embeddings: np.ndarray
    row_objects: np.ndarray
    object_ids: tuple[str, ...]
    categories: tuple[str, ...]
    references: tuple[str, ...]
    vision_fingerprint: str | None = None

    def __post_init__(self):
        n_objects = len(self.object_ids)
        if self.embeddings.ndim != 2 or self.row_objects.shape != (self.embeddings.shape[0],):
            raise ValueError(f"embeddings {self.embeddings.shape} and row_objects {self.row_objects.shape} must be "
                             "(n_rows, width) and (n_rows,)")
        if len(self.categories) != n_objects or len(self.references) != n_objects:
            raise ValueError(f"object_ids ({n_objects}), categories ({len(self.categories)}) and references "
                             f"({len(self.references)}) must have one entry per object")
        if len(self.row_objects) and (self.row_objects.min() < 0 or self.row_objects.max() >= n_objects):
            raise ValueError(f"row_objects must index object_ids (0..{n_objects - 1})")

    def nearest_row(self, embedding: np.ndarray, exclude_object: str | None = None,
                    category: str | None = None) -> int:
        """Row of the training image nearest to one (width,) embedding; ``exclude_object``: never a
        view of that object (an image of the training split, whose own views are in the index);
        ``category``: only objects of that category, when the index has any (else all). Ties: the
        first row."""
        score = self.embeddings @ np.asarray(embedding, dtype=self.embeddings.dtype)
        if exclude_object is not None and exclude_object in self.object_ids:
            score = np.where(self.row_objects == self.object_ids.index(exclude_object), -np.inf, score)
            if not np.isfinite(score).any():
                raise ValueError(f"every image of the index shows {exclude_object!r}, so there is nothing to "
                                 "retrieve without it; a retrieval index needs at least two training objects")
        if category is not None and category in self.categories:
            allowed = np.array([c == category for c in self.categories])[self.row_objects]
            if np.isfinite(score[allowed]).any():
                score = np.where(allowed, score, -np.inf)
        return int(np.argmax(score))

    def neighbour(self, embedding: np.ndarray, exclude_object: str | None = None,
                  category: str | None = None) -> Neighbour:
        row = self.nearest_row(embedding, exclude_object, category)
        k = int(self.row_objects[row])
        return Neighbour(self.object_ids[k], self.categories[k], self.references[k],
                         float(self.embeddings[row] @ np.asarray(embedding, dtype=self.embeddings.dtype)))

    def leave_one_object_out(self, chunk: int = 512, same_category: bool = False) -> np.ndarray:
        """(n_rows,) int64: for each training image, the object of its nearest image of another
        object (``same_category``: of another object of its own category, when there is one). A
        training row is never shown another view of its own object, which no held-out image has
        in the index, so SFT sees the references inference will give."""
        if len(np.unique(self.row_objects)) < 2:
            raise ValueError(f"the index's images show {len(np.unique(self.row_objects))} object(s); leave-one-"
                             "object-out needs at least two training objects (render more with asset image-data)")
        out = np.empty(len(self.row_objects), dtype=np.int64)
        category = np.unique(np.asarray(self.categories), return_inverse=True)[1][self.row_objects]
        for start in range(0, len(out), chunk):
            rows = slice(start, start + chunk)
            score = self.embeddings[rows] @ self.embeddings.T
            score[self.row_objects[rows, None] == self.row_objects[None, :]] = -np.inf
            if same_category:
                other = category[rows, None] != category[None, :]
                alone = np.isneginf(np.where(other, -np.inf, score)).all(axis=1)  # no other object of its category
                score[other & ~alone[:, None]] = -np.inf
            out[rows] = self.row_objects[np.argmax(score, axis=1)]
        return out

    def save(self, folder: str | Path) -> Path:
        """Write ``INDEX_FILE`` into ``folder`` atomically (embeddings as float16)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # one metadata key: safetensors orders several keys by hash, so the bytes would vary by process
        meta = json.dumps({"kind": INDEX_KIND, "format_version": INDEX_FORMAT_VERSION,
                           "object_ids": list(self.object_ids), "categories": list(self.categories),
                           "references": list(self.references), "vision_fingerprint": self.vision_fingerprint},
                          sort_keys=True)
        temporary = folder / f".{INDEX_FILE}.tmp-{os.getpid()}"
        try:
            save_file({"embeddings": np.ascontiguousarray(self.embeddings, dtype=np.float16),
                       "row_objects": np.ascontiguousarray(self.row_objects, dtype=np.int32)},
                      str(temporary), metadata={"physforge": meta})
            temporary.replace(folder / INDEX_FILE)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return folder / INDEX_FILE


def load_index(folder: str | Path) -> RetrievalIndex:
    """The retrieval index saved in a model folder; a ``CheckpointError`` naming the file and the
    fix when it is missing, corrupt or of another kind."""
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / INDEX_FILE
    fix = "retrain with 'retrieval': true in the train-vlm config, or copy the model folder again in full"
    if not path.is_file():
        raise CheckpointError(path, f"no retrieval index here; {fix}")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = json.loads((handle.metadata() or {}).get("physforge", "null"))
            if not isinstance(meta, dict) or meta.get("kind") != INDEX_KIND:
                raise CheckpointError(path, f"kind is {meta.get('kind') if isinstance(meta, dict) else None!r}, "
                                      f"expected {INDEX_KIND!r}; {fix}")
            if meta.get("format_version") != INDEX_FORMAT_VERSION:
                raise CheckpointError(path, f"format_version {meta.get('format_version')!r} is not supported "
                                      f"(expected {INDEX_FORMAT_VERSION}); {fix}")
            embeddings = handle.get_tensor("embeddings")
            row_objects = handle.get_tensor("row_objects")
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError) as err:  # JSONDecodeError is a ValueError
        raise CheckpointError(path, f"not a readable retrieval index ({str(err)[:200]}); {fix}") from None
    for key in ("object_ids", "categories", "references"):
        if not isinstance(meta.get(key), list) or not all(isinstance(v, str) for v in meta[key]):
            raise CheckpointError(path, f"metadata {key} must be a list of strings, one per object; {fix}")
    if not isinstance(meta.get("vision_fingerprint"), (str, type(None))):
        raise CheckpointError(path, f"metadata vision_fingerprint must be a string or null; {fix}")
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise CheckpointError(path, f"the index holds no images (embeddings {embeddings.shape}); {fix}")
    try:
        index = RetrievalIndex(np.asarray(embeddings, dtype=np.float32), np.asarray(row_objects, dtype=np.int64),
                               tuple(meta["object_ids"]), tuple(meta["categories"]), tuple(meta["references"]),
                               meta.get("vision_fingerprint"))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(path, f"inconsistent retrieval index ({err}); {fix}") from None
    if not np.all(np.isfinite(index.embeddings)):
        raise CheckpointError(path, f"the embeddings hold non-finite values; {fix}")
    return index


def vision_fingerprint(model) -> str:
    """sha256 of the vision tower's weights (names, dtypes, shapes and bytes, in name order): an
    index built with other weights embeds images differently and must not be used with them."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(vision_tower(model).state_dict().items()):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def check_index_matches(index: RetrievalIndex, model, path) -> None:
    """Refuse (``CheckpointError``) an index that this model's vision tower did not build: another
    embedding width, or another weights fingerprint (when the index records one)."""
    width = getattr(getattr(getattr(model, "config", None), "vision_config", None), "hidden_size", None)
    fix = "retrain with 'retrieval': true, or copy the model folder and its index together"
    if width is not None and index.embeddings.shape[1] != int(width):
        raise CheckpointError(path, f"the retrieval index's embeddings are {index.embeddings.shape[1]} wide but the "
                              f"model's vision tower gives {width}; {fix}")
    if index.vision_fingerprint is not None and index.vision_fingerprint != vision_fingerprint(model):
        raise CheckpointError(path, "the retrieval index was built with other vision-tower weights than this model's "
                              f"(fingerprint mismatch); {fix}")


def build_index(model, processor, images: list, object_ids: list[str], categories: list[str],
                references: dict[str, str], *, float16: bool = True) -> RetrievalIndex:
    """An index over training images (PIL RGB, one per row) of ``object_ids`` (per row) with
    ``categories`` (per row) and each object's reference text. float16: round the embeddings as
    the saved file will hold them, so what is used now equals what a reload gives."""
    embeddings = embed_images(model, processor, images)
    if float16:
        embeddings = embeddings.astype(np.float16).astype(np.float32)
    order: dict[str, int] = {}
    for object_id in object_ids:
        order.setdefault(object_id, len(order))
    category = {o: c for o, c in zip(object_ids, categories)}
    objects = tuple(order)
    return RetrievalIndex(embeddings, np.array([order[o] for o in object_ids], dtype=np.int64), objects,
                          tuple(category[o] for o in objects), tuple(references.get(o, "") for o in objects),
                          vision_fingerprint(model))


def references_of_rows(rows_messages: list[list[dict[str, Any]]], object_ids: list[str]) -> dict[str, str]:
    """object id -> reference text, from the first training conversation of each object (every
    view of an object has the same target text: the object at rest)."""
    from physforge.assets.image_text import reference_from_conversation

    out: dict[str, str] = {}
    for object_id, messages in zip(object_ids, rows_messages):
        if object_id not in out:
            out[object_id] = reference_from_conversation(messages)
    return out
