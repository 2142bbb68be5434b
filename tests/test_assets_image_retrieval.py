"""Retrieval for single-image asset generation (``assets.image_retrieval``): the index, its
leave-one-object-out neighbours, its file, and the reference layout of ``image_text`` that a
retrieval-augmented model is trained and asked with."""

import json

import numpy as np
import pytest

from physforge.assets.image_retrieval import INDEX_FILE, RetrievalIndex, load_index
from physforge.assets.image_text import (GLOBAL_PROMPT, conversation, first_user_turn, geometry_text, global_text,
                                         reference_from_conversation, with_reference)
from physforge.assets.library import generate, object_rng
from physforge.checkpoints import CheckpointError


def _index(rng, objects=5, views=3, width=8):
    # each object's views cluster tightly around its own direction, so a row's nearest row is
    # (almost always) another view of its own object: what leave-one-object-out must skip
    centres = rng.normal(size=(objects, width))
    rows = np.repeat(np.arange(objects), views)
    embeddings = centres[rows] + 0.05 * rng.normal(size=(len(rows), width))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    ids = tuple(f"train-box-{k:04d}" for k in range(objects))
    return RetrievalIndex(embeddings.astype(np.float32), rows.astype(np.int64), ids, ("box",) * objects,
                          tuple(f"Reference:\nname: box {k}" for k in range(objects)))


def test_leave_one_object_out_is_the_nearest_image_of_another_object():
    index = _index(np.random.default_rng(0))
    neighbours = index.leave_one_object_out(chunk=4)  # chunks smaller than the index: the loop's seams
    for row, neighbour in enumerate(neighbours):
        # brute force, one row at a time: the best cosine over rows of other objects only
        others = [j for j in range(len(index.row_objects)) if index.row_objects[j] != index.row_objects[row]]
        best = max(others, key=lambda j: float(index.embeddings[row] @ index.embeddings[j]))
        assert neighbour == index.row_objects[best] != index.row_objects[row]
    # an image's own view (cosine 1) wins unless its object is excluded
    row = 4
    assert index.row_objects[index.nearest_row(index.embeddings[row])] == index.row_objects[row]
    excluded = index.object_ids[index.row_objects[row]]
    assert index.neighbour(index.embeddings[row], exclude_object=excluded).object_id != excluded
    assert index.neighbour(index.embeddings[row], exclude_object=excluded).object_id == \
        index.object_ids[neighbours[row]]


def test_index_round_trips_through_its_file_and_refuses_a_bad_one(tmp_path):
    index = _index(np.random.default_rng(1))
    path = index.save(tmp_path)
    assert path.name == INDEX_FILE and not list(tmp_path.glob(".*tmp*"))
    loaded = load_index(tmp_path)
    assert loaded.object_ids == index.object_ids and loaded.references == index.references
    np.testing.assert_array_equal(loaded.row_objects, index.row_objects)
    # stored as float16: within its rounding (unit vectors: components <= 1, so 2^-11 relative)
    np.testing.assert_allclose(loaded.embeddings, index.embeddings, atol=2 ** -11)
    assert loaded.embeddings.dtype == np.float32
    with pytest.raises(CheckpointError, match="no retrieval index here; retrain with 'retrieval': true"):
        load_index(tmp_path / "elsewhere")
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(CheckpointError, match=f"{INDEX_FILE}: not a readable retrieval index"):
        load_index(tmp_path)
    from safetensors.numpy import save_file

    save_file({"embeddings": np.zeros((2, 3), np.float16), "row_objects": np.array([0, 5], np.int32)},
              str(path), metadata={"physforge": json.dumps({"kind": "physforge.asset_retrieval_index",
                                                            "format_version": 1, "object_ids": ["a"],
                                                            "categories": ["box"], "references": ["r"]})})
    with pytest.raises(CheckpointError, match="inconsistent retrieval index.*row_objects must index"):
        load_index(tmp_path)
    save_file({"embeddings": np.zeros((2, 3), np.float16)}, str(path), metadata={"physforge": '{"kind": "other"}'})
    with pytest.raises(CheckpointError, match="kind is 'other'"):
        load_index(tmp_path)


def test_a_model_folder_that_says_it_retrieves_needs_its_index(tmp_path):
    import shutil

    from physforge.assets.image_model import BUILTIN_MODEL, MODEL_META, AssetGenerator

    shutil.copytree(BUILTIN_MODEL, tmp_path / "model")
    meta = json.loads((tmp_path / "model" / MODEL_META).read_text())
    (tmp_path / "model" / MODEL_META).write_text(json.dumps(meta | {"retrieval": True}))
    (tmp_path / "model" / INDEX_FILE).unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match="no retrieval index here"):
        AssetGenerator(tmp_path / "model")
    # an index of the right width that another vision tower built (its fingerprint) is refused too
    width = json.loads((tmp_path / "model" / "config.json").read_text())["vision_config"]["hidden_size"]
    RetrievalIndex(np.eye(2, width, dtype=np.float32), np.arange(2), ("a", "b"), ("box", "box"), ("ra", "rb"),
                   vision_fingerprint="0" * 64).save(tmp_path / "model")
    with pytest.raises(CheckpointError, match="other vision-tower weights"):
        AssetGenerator(tmp_path / "model")
    # a folder whose metadata does not say it retrieves ignores an index file beside it
    (tmp_path / "model" / MODEL_META).write_text(json.dumps(meta))
    assert AssetGenerator(tmp_path / "model").retrieval is None


def _object():
    source = generate("cabinet", object_rng(0, 3), seed=0)
    rng = np.random.default_rng(0)
    return source.annotation, {p.label: rng.random((16, 16, 16)) < 0.05 for p in source.annotation.parts}


def test_conversation_without_a_reference_is_unchanged_and_with_one_only_its_first_turn_grows():
    from physforge.vlm import CHAT_TEMPLATE

    annotation, cells = _object()
    plain = conversation(annotation, cells)
    # the layout every model before retrieval was trained on, written out independently
    expected = [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": GLOBAL_PROMPT}]},
                {"role": "assistant", "content": [{"type": "text", "text": global_text(annotation)}]}]
    for part in annotation.parts:
        expected += [{"role": "user", "content": [{"type": "text", "text": f"Geometry of part {part.label} "
                                                                           f"({part.name})."}]},
                     {"role": "assistant", "content": [{"type": "text", "text": geometry_text(cells[part.label])}]}]
    assert json.dumps(plain) == json.dumps(expected) == json.dumps(conversation(annotation, cells, reference=None))
    reference = reference_from_conversation(plain)
    lines = reference.split("\n")
    assert lines[0] == "Reference:" and "\n".join(lines[1:1 + len(global_text(annotation).split("\n"))]) == \
        global_text(annotation)
    assert [line for line in lines if line.startswith("cells ")] == \
        [f"cells {p.label}: {geometry_text(cells[p.label])}" for p in annotation.parts]
    augmented = conversation(annotation, cells, reference=reference)
    assert augmented == with_reference(plain, reference) and augmented[1:] == plain[1:]
    assert [c.get("text") for c in augmented[0]["content"]] == [None, reference, GLOBAL_PROMPT]
    assert json.dumps(plain) == json.dumps(expected)  # with_reference copied, never changed its input
    # inference's first turn renders exactly as the training conversation's, with and without
    from jinja2 import Template

    render = Template(CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")).render
    for ref, conv in ((None, plain), (reference, augmented)):
        assert render(messages=[first_user_turn(ref)]) == render(messages=conv[:1])
    with pytest.raises(ValueError, match="first turn is not the image"):
        with_reference(plain[1:], reference)
    # placed at the first geometry round: only that turn grows, and a global-only row is unchanged
    later = conversation(annotation, cells, reference=reference, reference_at="geometry")
    assert later[:2] == plain[:2] and later[3:] == plain[3:]
    assert later[2]["content"] == [{"type": "text", "text": reference}] + plain[2]["content"]
    assert with_reference(plain[:2], reference, "geometry") == plain[:2]
    with pytest.raises(ValueError, match="at: expected one of"):
        with_reference(plain, reference, "middle")


def test_retrieval_within_a_category_and_leave_one_object_out_within_it():
    index = _index(np.random.default_rng(2), objects=6)
    index = RetrievalIndex(index.embeddings, index.row_objects, index.object_ids,
                           ("box", "box", "box", "cabinet", "cabinet", "lamp"), index.references)
    category = np.array(index.categories)[index.row_objects]
    neighbours = index.leave_one_object_out(chunk=5, same_category=True)
    for row, neighbour in enumerate(neighbours):
        if category[row] == "lamp":  # the only lamp: its nearest object of any category
            assert neighbour == index.leave_one_object_out()[row]
            continue
        others = [j for j in range(len(category)) if category[j] == category[row]
                  and index.row_objects[j] != index.row_objects[row]]
        best = max(others, key=lambda j: float(index.embeddings[row] @ index.embeddings[j]))
        assert neighbour == index.row_objects[best]
    lamp_view = index.embeddings[int(np.flatnonzero(category == "lamp")[0])]
    assert index.neighbour(lamp_view, category="cabinet").category == "cabinet"
    assert index.neighbour(lamp_view, category="laptop").category == "lamp"  # unknown category: all objects
