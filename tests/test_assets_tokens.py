"""Geometry tokens: lossless encodings (property-based), the PhysX-Anything format, voxelisation and
meshing against exact answers, and fewer BPE tokens than the baseline."""

import numpy as np
import pytest
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st

from physforge.assets import tokens as T
from physforge.assets.library import CATEGORIES, generate, object_rng
from physforge.assets.token_stats import TokenizerConfig, geometry_tokenizer, token_report


@st.composite
def grids(draw):
    n = draw(st.sampled_from([16, 32]))
    style = draw(st.sampled_from(["scatter", "blocks"]))
    grid = np.zeros((n, n, n), dtype=bool)
    if style == "scatter":
        cells = draw(st.sets(st.integers(0, n**3 - 1), max_size=300))
        grid.reshape(-1)[list(cells)] = True
    else:
        for _ in range(draw(st.integers(0, 6))):
            lo = [draw(st.integers(0, n - 1)) for _ in range(3)]
            hi = [draw(st.integers(lo[k] + 1, n)) for k in range(3)]
            value = draw(st.booleans())
            grid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = value
    return grid


@settings(max_examples=150, deadline=None)
@given(grids(), st.sampled_from(T.ENCODINGS))
def test_every_encoding_is_lossless(grid, encoding):
    text = T.encode(grid, encoding)
    assert text == text.strip() and text.isascii()
    assert all(ch.isdigit() or ch in " -+;" for ch in text)  # plain decimal text, no special tokens
    assert np.array_equal(T.decode(text, encoding, grid.shape[0]), grid)


@settings(max_examples=60, deadline=None)
@given(grids())
def test_cuboids_tile_exactly_without_overlap(grid):
    count = np.zeros(grid.shape, dtype=int)
    for x, y, z, dx, dy, dz in T.cuboids(grid):
        count[x:x + dx, y:y + dy, z:z + dz] += 1
    assert np.array_equal(count, grid.astype(int))


def test_baseline_is_physx_anything_flat_indices_with_merged_runs():
    grid = np.zeros((4, 4, 4), dtype=bool)
    grid[0, 0, 0:3] = True  # flat 0, 1, 2
    grid[1, 0, 0] = True  # 1 * 16 = 16
    grid[3, 3, 3] = True  # 63
    assert T.encode(grid, "baseline") == "0-2 16 63"
    assert T.encode(grid, "boxes") == "0 0 0 1 1 3;1 0 0 1 1 1;3 3 3 1 1 1"


@pytest.mark.parametrize("text,encoding,message", [("3-1", "baseline", "outside"), ("1 2", "boxes", "six"),
                                                  ("0 0 0 17 1 1", "boxes", "leaves"), ("4", "zruns", "gap"),
                                                  ("x", "baseline", "not")])
def test_malformed_text_is_refused(text, encoding, message):
    with pytest.raises(ValueError, match=message):
        T.decode(text, encoding, 16)


def test_voxelising_a_grid_aligned_box_gives_exactly_its_cells():
    grid = T.Grid(low=np.zeros(3), size=1.6, n=16)  # 0.1 m cells
    box = trimesh.creation.box(extents=(0.33, 0.53, 0.13))
    box.apply_translation((0.21 + 0.165, 0.31 + 0.265, 0.61 + 0.065))  # [0.21, 0.54] x [0.31, 0.84] x [0.61, 0.74]
    occupancy = T.voxelize(box.vertices, box.faces, grid)
    expected = np.zeros((16, 16, 16), dtype=bool)
    expected[2:6, 3:9, 6:8] = True  # every cell the box reaches into
    assert np.array_equal(occupancy, expected)


def test_voxelising_a_sphere_matches_its_volume():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    grid = T.Grid.around(sphere.vertices, 64)
    occupancy = T.voxelize(sphere.vertices, sphere.faces, grid)
    interior_only = occupancy.sum() * grid.cell**3
    assert interior_only == pytest.approx(4 / 3 * np.pi * 0.5**3, rel=0.1)


def test_decoded_mesh_is_watertight_and_snapped_to_the_metric_extent():
    source = generate("table", object_rng(8, 0), seed=8)
    points = np.concatenate([v for v, _ in source.meshes.values()])
    grid = T.Grid.around(points, 32)
    v, f = source.meshes[0]  # the table top
    occupancy = T.decode(T.encode(T.voxelize(v, f, grid), "boxes"), "boxes", 32)
    vertices, faces = T.voxels_to_mesh(occupancy, grid)
    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.is_watertight and mesh.volume > 0
    cells = np.argwhere(occupancy)
    assert vertices.min(0) == pytest.approx(grid.low + cells.min(0) * grid.cell, abs=1e-9)
    assert vertices.max(0) == pytest.approx(grid.low + (cells.max(0) + 1) * grid.cell, abs=1e-9)
    # the decoded top covers the real one to within a cell on each side
    assert np.all(np.abs(vertices.min(0) - v.min(0)) <= grid.cell + 1e-9)
    assert np.all(np.abs(vertices.max(0) - v.max(0)) <= grid.cell + 1e-9)


@pytest.fixture(scope="module")
def small_tokenizer(tmp_path_factory):
    config = TokenizerConfig(vocab_size=1024, objects_per_category=1, resolutions=(32,))
    cache = tmp_path_factory.mktemp("tok")
    tokenizer = geometry_tokenizer(config, cache)
    assert list(cache.glob("geometry-bpe-*.json"))  # cached for the next run
    return tokenizer


def test_ours_needs_fewer_tokens_than_the_baseline_for_every_category(small_tokenizer):
    for category in sorted(CATEGORIES):
        report = token_report(generate(category, object_rng(21, 0), seed=21), small_tokenizer, 32)
        totals = {k: sum(p["tokens"][k] for p in report["parts"]) for k in ("raw_obj", "baseline", "ours")}
        assert totals["ours"] < totals["baseline"], (category, totals)
        assert report["ratio_baseline_over_ours"] > 1


def test_ours_beats_the_baseline_on_a_scanned_mesh_too(small_tokenizer):
    import pybullet_data
    from pathlib import Path

    from physforge.assets.importers import load_single_mesh

    source = load_single_mesh(Path(pybullet_data.getDataPath()) / "duck.obj")
    report = token_report(source, small_tokenizer, 32)
    tokens = report["parts"][0]["tokens"]
    assert tokens["ours"] < tokens["baseline"] < tokens["raw_obj"]
    text = T.encode(T.voxelize(*source.meshes[0], T.Grid.around(source.meshes[0][0], 32)), "ours")
    assert "+" in text  # an organic shape: the run encoding wins


def test_the_tokenizer_round_trips_geometry_text(small_tokenizer):
    text = T.encode(np.ones((16, 16, 16), dtype=bool), "baseline")
    assert small_tokenizer.decode(small_tokenizer.encode(text).ids) == text
