"""The world description: validation names the bad field; JSON round-trips; files stay in their folder."""

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from physforge.errors import InputFileError, WorldValidationError
from physforge.world import (Body, Box, Camera, Capsule, Cylinder, Geom, Inertial, Joint, Material, Mesh, Pose,
                             Sphere, Voxels, World, load_world, save_world, world_from_dict, world_to_dict)


def ball(name="ball", **kwargs):
    return Body(name, (Geom(Sphere(0.05)),), Pose((0, 0, 1)), **kwargs)


def test_negative_mass_names_the_field():
    with pytest.raises(WorldValidationError, match=r"mass: must be > 0.*-1"):
        Inertial(mass=-1.0, inertia=(1, 1, 1))


def test_zero_size_geometry_is_refused():
    with pytest.raises(WorldValidationError, match="half_extents"):
        Box((0.1, 0.0, 0.1))
    with pytest.raises(WorldValidationError, match="radius"):
        Sphere(0.0)


def test_non_unit_quaternion_is_refused_not_normalised():
    with pytest.raises(WorldValidationError, match=r"quaternion.*unit length.*norm is 2"):
        Pose((0, 0, 0), (2.0, 0, 0, 0))


def test_unknown_joint_type_lists_the_choices():
    with pytest.raises(WorldValidationError, match=r"type: must be one of free, fixed, revolute.*hinge"):
        Joint("hinge")


def test_missing_parent_names_body_and_parent():
    child = Body("lid", (Geom(Box((0.1, 0.1, 0.01))),), joint=Joint("revolute"), parent="box")
    with pytest.raises(WorldValidationError, match=r"bodies\[0\]\.parent: body 'lid' names a parent.*'box'"):
        World(bodies=(child,))


def test_free_joint_on_child_is_refused():
    base = Body("base", (Geom(Box((0.1, 0.1, 0.1))),), joint=Joint("fixed"))
    child = Body("child", (Geom(Box((0.1, 0.1, 0.1))),), parent="base")
    with pytest.raises(WorldValidationError, match=r"bodies\[1\]\.joint\.type: a free joint is only allowed"):
        World(bodies=(base, child))


def test_parent_cycle_is_refused():
    a = Body("a", (Geom(Sphere(0.1)),), joint=Joint("revolute"), parent="b")
    b = Body("b", (Geom(Sphere(0.1)),), joint=Joint("revolute"), parent="a")
    with pytest.raises(WorldValidationError, match="cycle"):
        World(bodies=(a, b))


def test_duplicate_body_names_are_refused():
    with pytest.raises(WorldValidationError, match=r"bodies\[1\]\.name: names must be unique"):
        World(bodies=(ball(), ball()))


def test_inertia_must_satisfy_triangle_inequality():
    with pytest.raises(WorldValidationError, match="triangle inequality"):
        Inertial(mass=1.0, inertia=(1.0, 1.0, 3.0))


def test_json_error_carries_the_full_path():
    data = world_to_dict(World(bodies=(ball(),)))
    data["bodies"][0]["geoms"][0]["material"]["density"] = -5
    with pytest.raises(WorldValidationError, match=r"bodies\[0\]\.geoms\[0\]\.material\.density: must be > 0"):
        world_from_dict(data)
    data = world_to_dict(World(bodies=(ball(),)))
    data["bodies"][0]["joint"]["type"] = "telescope"
    with pytest.raises(WorldValidationError, match=r"bodies\[0\]\.joint\.type"):
        world_from_dict(data)
    data = world_to_dict(World(bodies=(ball(),)))
    data["bodies"][0]["colour"] = "red"
    with pytest.raises(WorldValidationError, match=r"bodies\[0\]\.colour: unknown field"):
        world_from_dict(data)


def _rich_world() -> World:
    cube = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float) * 0.1
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    grid = np.zeros((3, 4, 2), dtype=bool)
    grid[0, :, 0] = grid[2, 1, 1] = True
    return World(name="rich", gravity=(0, 0, -3.7), timestep=0.001, integrator="RK4", bodies=(
        Body("table", (Geom(Box((0.5, 0.5, 0.02)), material=Material("wood", 600, (0.7, 0.01, 0.001), 0.2)),),
             Pose((0, 0, 0.5)), Joint("fixed")),
        Body("drawer", (Geom(Box((0.2, 0.2, 0.05)), name="drawer_box"),), Pose((0.1, 0, -0.1)),
             Joint("prismatic", axis=(1, 0, 0), range=(0.0, 0.3), damping=2.0, frictionloss=0.1, armature=0.01),
             parent="table"),
        Body("cap", (Geom(Cylinder(0.03, 0.01)),), Pose((0, 0, 0.6)),
             Joint("revolute_prismatic", axis=(0, 0, 2), range=(0, 6.28), slide_range=(0, 0.01)), parent="table"),
        Body("mesh_body", (Geom(Mesh(vertices=cube, faces=faces)), Geom(Capsule(0.02, 0.05), collide=False)),
             Pose.from_axis_angle((0, 1, 1), (1, 1, 0), 0.3), velocity=(0.1, 0, 0), angular_velocity=(0, 0, 1),
             inertial=Inertial(0.5, (0.001, 0.002, 0.0025, 0.0001, 0, 0), (0.05, 0.05, 0.05))),
        Body("voxel_body", (Geom(Voxels(grid, 0.02, (-0.03, -0.04, 0))),), Pose((1, 0, 0.1))),
        Body("arm", (Geom(Capsule(0.02, 0.1)),), Pose((0, 0, 0.2)), Joint("ball", range=(0, 1.0)), parent="table"),
    ), cameras=(Camera("top", (0, 0, 3), fovy=0.7),))


def test_world_json_round_trip_is_exact(tmp_path):
    world = _rich_world()
    path = save_world(world, tmp_path / "w.json")
    again = load_world(path)
    assert again == world
    assert world_to_dict(again) == world_to_dict(world)
    assert json.loads(path.read_text())["schema_version"] == 1


def test_axis_is_normalised():
    assert Joint("revolute", axis=(0, 0, 2)).axis == (0, 0, 1)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"bodies": [{"name": "a", "geoms": [{"shape": {"type": "sphere", "radius": NaN}}]}]}', "non-finite"),
    ("[1, 2]", "a world is a JSON object"),
    ('{"schema_version": 99}', "schema_version"),
])
def test_malformed_world_files_give_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises((InputFileError, WorldValidationError), match=message):
        load_world(path)


def _mesh_world_dict(path: str) -> dict:
    return {"bodies": [{"name": "m", "geoms": [{"shape": {"type": "mesh", "path": path}}]}]}


@pytest.mark.parametrize("reference", ["../outside.obj", "/etc/passwd", "meshes/../../x.obj", "C:\\evil.obj"])
def test_mesh_paths_may_not_escape_the_world_folder(tmp_path, reference):
    folder = tmp_path / "world"
    folder.mkdir()
    (tmp_path / "outside.obj").write_text("v 0 0 0\n")
    (folder / "w.json").write_text(json.dumps(_mesh_world_dict(reference)))
    with pytest.raises(InputFileError, match="not allowed|outside"):
        load_world(folder / "w.json")


def test_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "world"
    folder.mkdir()
    (tmp_path / "secret.obj").write_text("v 0 0 0\n")
    os.symlink(tmp_path / "secret.obj", folder / "link.obj")
    (folder / "w.json").write_text(json.dumps(_mesh_world_dict("link.obj")))
    with pytest.raises(InputFileError, match="outside"):
        load_world(folder / "w.json")


def test_missing_mesh_file_is_named(tmp_path):
    (tmp_path / "w.json").write_text(json.dumps(_mesh_world_dict("meshes/gone.obj")))
    with pytest.raises(InputFileError, match=r"meshes/gone\.obj: file not found"):
        load_world(tmp_path / "w.json")


def test_camera_intrinsics_match_field_of_view():
    camera = Camera("c", (0, 0, 1), fovy=math.radians(90))
    k = camera.intrinsics(200, 100)
    assert k[1, 1] == pytest.approx(50.0)
    assert k[0, 2] == 100 and k[1, 2] == 50


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6))))
def test_voxel_boxes_tile_the_occupied_cells_exactly(grid):
    if not grid.any():
        with pytest.raises(WorldValidationError):
            Voxels(grid, 0.01)
        return
    covered = np.zeros(grid.shape, dtype=int)
    for (i, j, k), (a, b, c) in Voxels(grid, 0.01).boxes():
        covered[i:i + a, j:j + b, k:k + c] += 1
    assert np.array_equal(covered, grid.astype(int))
