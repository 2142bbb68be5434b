"""Broken and hostile meshes: refused with a message, or repaired as documented, and the
mass MuJoCo computes checked against the closed-form volume of what the mesh really bounds."""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import physforge.world.mesh_io as mesh_io
from physforge.errors import InputFileError
from physforge.sim.compile import compile_world
from physforge.world import Body, Geom, Mesh, Pose, World
from physforge.world.mesh_io import load_mesh_arrays, mesh_defects, prepare_for_mass, write_obj

SIDE = 0.1  # m
DENSITY = 1000.0  # kg/m^3, the default material's


def _cube(offset=(0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    cube = trimesh.creation.box((SIDE, SIDE, SIDE))
    cube.apply_translation(offset)
    return cube


def _mass(vertices, faces) -> float:
    world = World(bodies=(Body("m", (Geom(Mesh(vertices=vertices, faces=faces)),), Pose((0, 0, 1))),))
    return float(compile_world(world).model.body_mass[1])


@pytest.fixture()
def no_trimesh_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the mesh was parsed whole")

    monkeypatch.setattr(trimesh, "load", refuse)


def test_empty_and_missing(tmp_path):
    (tmp_path / "e.obj").write_bytes(b"")
    with pytest.raises(InputFileError, match=r"e\.obj: mesh file is empty"):
        load_mesh_arrays(tmp_path / "e.obj")
    (tmp_path / "v.obj").write_text("# vertices only\nv 0 0 0\nv 1 0 0\n")
    with pytest.raises(InputFileError, match=r"v\.obj: file holds no triangles"):
        load_mesh_arrays(tmp_path / "v.obj")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_vertices(tmp_path, bad):
    path = tmp_path / "n.obj"
    path.write_text(f"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 {bad}\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
    with pytest.raises(InputFileError, match="NaN or infinite vertex coordinates"):
        load_mesh_arrays(path)


def test_zero_area_faces_are_dropped_and_the_mass_is_unchanged(tmp_path):
    cube = _cube()
    faces = np.vstack([cube.faces, [[0, 0, 1], [1, 2, 1]]])
    path = tmp_path / "d.obj"
    write_obj(path, cube.vertices, faces)
    _, loaded = load_mesh_arrays(path)
    np.testing.assert_array_equal(loaded, cube.faces)
    assert _mass(cube.vertices, faces) == pytest.approx(DENSITY * SIDE ** 3, rel=1e-6)
    path.write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nv 3 0 0\nf 1 2 3\nf 2 3 4\n")
    with pytest.raises(InputFileError, match="every face has zero area"):
        load_mesh_arrays(path)


def test_face_index_out_of_range(tmp_path):
    path = tmp_path / "i.off"
    path.write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 9\n")
    with pytest.raises(InputFileError, match=r"i\.off: "):
        load_mesh_arrays(path)


def test_defects_are_found():
    cube = _cube()
    assert mesh_defects(cube.vertices, cube.faces).bounds_volume
    open_box = mesh_defects(cube.vertices, cube.faces[:-2])
    assert open_box.boundary_edges == 4 and not open_box.bounds_volume
    both = trimesh.util.concatenate([cube, _cube((SIDE / 2, 0, 0))])
    assert mesh_defects(both.vertices, both.faces).self_intersections > 0
    apart = trimesh.util.concatenate([cube, _cube((3 * SIDE, 0, 0))])
    assert mesh_defects(apart.vertices, apart.faces).describe() == "none"
    touching = trimesh.util.concatenate([cube, _cube((SIDE, SIDE, 0))])  # share one edge
    assert mesh_defects(touching.vertices, touching.faces).nonmanifold_edges == 1


def test_inverted_and_inconsistent_winding_are_reoriented_exactly(caplog):
    cube = _cube()
    flipped = cube.faces[:, ::-1]
    mixed = cube.faces.copy()
    mixed[:6] = mixed[:6, ::-1]
    for faces in (flipped, mixed):
        ready = prepare_for_mass(cube.vertices, faces)
        assert ready.repair == "re-oriented faces outward" and not ready.convex_inertia
        with caplog.at_level(logging.WARNING, logger="physforge.sim.compile"):
            # Before the repair MuJoCo refused both ("mesh volume is negative" / "inconsistent orientation").
            assert _mass(cube.vertices, faces) == pytest.approx(DENSITY * SIDE ** 3, rel=1e-6)
        assert "re-oriented faces outward" in caplog.text


def test_open_and_self_intersecting_meshes_fall_back_to_the_convex_hull(caplog):
    # Open box: integrated as it is, MuJoCo reported 0.804 kg for a 1 kg cube.
    cube = _cube()
    with caplog.at_level(logging.WARNING, logger="physforge.sim.compile"):
        assert _mass(cube.vertices, cube.faces[:-2]) == pytest.approx(DENSITY * SIDE ** 3, rel=1e-6)
    assert "4 open (boundary) edges; mass and inertia from the convex hull" in caplog.text
    # Two cubes overlapping by half: the union is 1.5 cubes; the raw integral double counts (2.0).
    both = trimesh.util.concatenate([cube, _cube((SIDE / 2, 0, 0))])
    assert _mass(both.vertices, both.faces) == pytest.approx(1.5 * DENSITY * SIDE ** 3, rel=1e-6)
    # Disjoint pieces bound a volume: kept exact (2 cubes), not replaced by their hull (4).
    apart = trimesh.util.concatenate([cube, _cube((3 * SIDE, 0, 0))])
    assert _mass(apart.vertices, apart.faces) == pytest.approx(2 * DENSITY * SIDE ** 3, rel=1e-6)


def test_huge_face_counts_refused_from_the_header(tmp_path, no_trimesh_load, monkeypatch):
    ply = tmp_path / "big.ply"
    ply.write_text("ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                   "property float z\nelement face 10000000\nproperty list uchar int vertex_indices\nend_header\n")
    with pytest.raises(InputFileError, match=r"big\.ply: declares 10000000 faces, more than the limit"):
        load_mesh_arrays(ply)
    stl = tmp_path / "big.stl"
    with open(stl, "wb") as handle:  # sparse: 500 MB on paper, nothing on disk
        handle.write(b"\0" * 80 + (10_000_000).to_bytes(4, "little"))
        handle.truncate(84 + 50 * 10_000_000)
    with pytest.raises(InputFileError, match=r"big\.stl: declares 10000000 faces"):
        load_mesh_arrays(stl)
    off = tmp_path / "big.off"
    off.write_text("OFF\n3 10000000 0\n")
    with pytest.raises(InputFileError, match=r"big\.off: declares 10000000 faces"):
        load_mesh_arrays(off)
    # OBJ has no header: its face lines are counted by streaming, never by parsing.
    monkeypatch.setattr(mesh_io, "MAX_MESH_FACES", 1000)
    obj = tmp_path / "big.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n" + "f 1 2 3\n" * 1001)
    with pytest.raises(InputFileError, match=r"big\.obj: declares 1001 faces"):
        load_mesh_arrays(obj)


@pytest.mark.parametrize("name, payload, match", [
    ("photo.stl", b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "contents are a PNG image, not a .stl mesh"),
    ("page.obj", b"<!DOCTYPE html><html>not a mesh</html>", "contents are an HTML/XML document"),
    ("blob.obj", b"v 0 0 0\n\0\0\0binary", "an OBJ file must be text"),
    ("x.ply", b"solid fake\n", "a PLY file must start with 'ply'"),
    ("x.glb", b"{}", "a GLB file must start with 'glTF'"),
    ("x.stl", b"\0" * 120, "neither a binary STL"),
    ("x.off", b"v 0 0 0\n", "an OFF file must start with an 'OFF' line"),
    ("x.png", b"v 0 0 0\n", "unsupported mesh type"),
])
def test_wrong_type_behind_the_extension(tmp_path, no_trimesh_load, name, payload, match):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(InputFileError, match=match):
        load_mesh_arrays(path)


def test_valid_files_of_every_checked_type_still_load(tmp_path):
    cube = _cube()
    for suffix in (".stl", ".ply", ".off", ".obj", ".glb"):
        path = tmp_path / f"cube{suffix}"
        cube.export(path)
        vertices, faces = load_mesh_arrays(path)
        volume = trimesh.Trimesh(vertices, faces, process=False)
        volume.merge_vertices()
        assert abs(volume.volume) == pytest.approx(SIDE ** 3, rel=1e-6), suffix
    ascii_stl = tmp_path / "ascii.stl"
    ascii_stl.write_text(trimesh.exchange.stl.export_stl_ascii(cube))
    assert len(load_mesh_arrays(ascii_stl)[1]) == 12


_FUZZ_EXAMPLES = int(__import__("os").environ.get("PHYSFORGE_FUZZ_EXAMPLES", "60"))
_MESH_SEEDS: dict[str, bytes] = {}


def _mesh_seed(suffix: str) -> bytes:
    if suffix not in _MESH_SEEDS:
        buffer = io.BytesIO()
        _cube().export(buffer, file_type=suffix[1:])
        _MESH_SEEDS[suffix] = buffer.getvalue()
    return _MESH_SEEDS[suffix]


@settings(max_examples=_FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from([".obj", ".stl", ".ply", ".off", ".glb"]),
       st.lists(st.tuples(st.integers(0, 2048), st.integers(0, 255)), max_size=8),
       st.integers(1, 4096), st.binary(max_size=64))
def test_fuzzed_mesh_files_load_or_raise_input_file_error(suffix, flips, cut, junk):
    data = bytearray(_mesh_seed(suffix))
    for position, value in flips:
        if position < len(data):
            data[position] = value
    data = bytes(data[:cut]) + junk
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            vertices, faces = load_mesh_arrays(path)
        except InputFileError:
            return
    assert np.isfinite(vertices).all() and faces.min() >= 0 and faces.max() < len(vertices)
