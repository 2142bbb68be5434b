"""Fuzzing the geometry-token decoder and the asset annotation importers (physforge
annotation.json and PhysXNet finaljson): whatever the input, they succeed or raise one of
physforge's own error types.

PHYSFORGE_FUZZ_EXAMPLES sets hypothesis' max_examples (small by default so the suite stays
fast; the campaign reported in SECURITY.md ran with a large value by hand).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from physforge.assets import tokens
from physforge.assets.importers import load_annotated
from physforge.assets.schema import annotation_from_dict
from physforge.errors import PhysforgeError
from physforge.world.mesh_io import write_obj

EXAMPLES = int(os.environ.get("PHYSFORGE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)

# -- geometry tokens ---------------------------------------------------------------------------

token_text = (st.text(alphabet="0123456789 +-;\n", max_size=200)
              | st.text(max_size=60)
              | st.lists(st.integers(-5, 10**6).map(str), max_size=12).map(" ".join)
              | st.lists(st.tuples(*[st.integers(-2, 140)] * 6), max_size=6).map(
                  lambda boxes: ";".join(" ".join(map(str, b)) for b in boxes))
              | st.lists(st.tuples(st.integers(0, 5000), st.integers(-1, 300)), max_size=12).map(
                  lambda pairs: " ".join(f"{a}+{b}" for a, b in pairs)))


@FUZZ
@given(token_text, st.sampled_from(tokens.ENCODINGS + ("nope", "")), st.sampled_from(tokens.RESOLUTIONS + (0, 7)))
def test_token_decoder_never_crashes(text, encoding, n):
    try:
        grid = tokens.decode(text, encoding, n)
    except PhysforgeError:
        return
    assert grid.shape == (n, n, n) and grid.dtype == bool


@FUZZ
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.6), st.sampled_from(tokens.ENCODINGS))
def test_tokens_round_trip_random_grids(seed, fill, encoding):
    """Oracle: decoding an encoding gives back the very cells encoded (lossless on voxels)."""
    rng = np.random.default_rng(seed)
    grid = rng.random((16, 16, 16)) < fill
    assert np.array_equal(tokens.decode(tokens.encode(grid, encoding), encoding, 16), grid)


def test_token_decoder_errors_name_the_token():
    with pytest.raises(PhysforgeError, match=r"box '1 2 3 4 5 ²' is not six cell counts"):
        tokens.decode("1 2 3 4 5 ²", "boxes", 16)
    with pytest.raises(PhysforgeError, match=r"baseline token '9{5000}' is not 'i' or 'a-b'".replace("{5000}", "+")):
        tokens.decode("9" * 5000, "baseline", 16)


# -- asset annotations ---------------------------------------------------------------------------

CUBE_V = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
CUBE_F = np.array([[0, 2, 3], [0, 3, 1], [4, 5, 7], [4, 7, 6], [0, 1, 5], [0, 5, 4],
                   [2, 6, 7], [2, 7, 3], [0, 4, 6], [0, 6, 2], [1, 3, 7], [1, 7, 5]])

PHYSXNET = {
    "object_name": "box", "category": "cabinet", "dimension": "40*30*50",
    "parts": [{"label": 0, "name": "body", "material": "wood", "density": "0.6 g/cm^3", "priority_rank": 3,
               "Young's Modulus (GPa)": 10, "Poisson's Ratio": 0.3},
              {"label": 1, "name": "door", "material": "wood", "density": "0.6 g/cm^3", "priority_rank": 1}],
    "group_info": {"0": [0], "1": [[1], "0", [0, 0, 1, 0, 0, 0, 0, 90], "A"]},
}
ANNOTATION = {
    "schema": "physforge.asset", "name": "box", "category": "cabinet", "dimensions": [0.4, 0.3, 0.5],
    "parts": [{"label": 0, "name": "body", "material": "wood", "density": 600.0, "youngs_modulus": 1e10,
               "poisson_ratio": 0.3, "affordance_rank": 3}],
    "groups": [{"index": 0, "parts": [0], "parent": None, "joint_type": "fixed"}],
    "base": "fixed",
}
PATHS = [("object_name",), ("dimension",), ("category",), ("parts",), ("parts", 0), ("parts", 0, "label"),
         ("parts", 0, "density"), ("parts", 0, "priority_rank"), ("parts", 1, "Young's Modulus (GPa)"),
         ("parts", 1, "Poisson's Ratio"), ("parts", 1, "name"), ("group_info",), ("group_info", "0"),
         ("group_info", "1"), ("group_info", "1", 0), ("group_info", "1", 1), ("group_info", "1", 2),
         ("group_info", "1", 2, 7), ("group_info", "1", 3), ("group_info", "2")]
ANNOTATION_PATHS = [("name",), ("dimensions",), ("dimensions", 0), ("parts",), ("parts", 0, "label"),
                    ("parts", 0, "density"), ("parts", 0, "material"), ("groups",), ("groups", 0),
                    ("groups", 0, "parts"), ("groups", 0, "joint_type"), ("groups", 0, "parent"), ("base",),
                    ("schema_version",), ("parts", 0, "affordance_rank"), ("groups", 1)]


def _mutate(data, path, value):
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return data
    if isinstance(target, dict):
        target[path[-1]] = value
    elif isinstance(target, list) and isinstance(path[-1], int) and path[-1] < len(target):
        target[path[-1]] = value
    return data


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "objs").mkdir()
        (root / "parts").mkdir()
        for label in range(3):
            write_obj(root / "objs" / f"{label}.obj", CUBE_V + label, CUBE_F)
        write_obj(root / "parts" / "0.obj", CUBE_V * 0.1, CUBE_F)
        yield root


def _load(folder: Path, name: str, data) -> None:
    path = folder / name
    path.write_text(json.dumps(data, allow_nan=True))
    try:
        load_annotated(path)
    except PhysforgeError:
        pass


def test_the_unmutated_inputs_load(folder):
    (folder / "finaljson.json").write_text(json.dumps(PHYSXNET))
    asset = load_annotated(folder / "finaljson.json")
    assert asset.annotation.dimensions == pytest.approx((0.4, 0.3, 0.5))
    (folder / "annotation.json").write_text(json.dumps(ANNOTATION))
    assert load_annotated(folder / "annotation.json").annotation.parts[0].density == 600.0


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=3))
def test_physxnet_importer_never_crashes(folder, mutations):
    data = PHYSXNET
    for path, value in mutations:
        data = _mutate(data, path, value)
    _load(folder, "finaljson.json", data)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(ANNOTATION_PATHS), json_values), min_size=1, max_size=3))
def test_annotation_importer_never_crashes(folder, mutations):
    data = ANNOTATION
    for path, value in mutations:
        data = _mutate(data, path, value)
    _load(folder, "annotation.json", data)


@FUZZ
@given(json_values)
def test_arbitrary_json_never_crashes_the_importers(folder, data):
    _load(folder, "any.json", data)
    _load(folder, "any.json", {"group_info": data, "parts": data, "object_name": "x", "dimension": data})
    try:
        annotation_from_dict(data)
    except PhysforgeError:
        pass
