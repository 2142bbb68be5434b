"""Exported assets checked by independent consumers; importers; bad input gives one clear error and no output."""

import json
import math

import mujoco
import numpy as np
import pytest
import trimesh

from physforge.assets.build import BuildConfig, build_asset
from physforge.assets.export import check_asset_dir, write_asset
from physforge.assets.geometry import MeshQualityError
from physforge.assets.importers import ImportConfig, load_source
from physforge.assets.library import generate, object_rng
from physforge.assets.schema import to_physxnet
from physforge.assets.urdf import import_urdf
from physforge.errors import InputFileError, WorldValidationError
from physforge.world.mesh_io import write_obj


@pytest.fixture(scope="module")
def cabinet_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("assets") / "cabinet"
    source = generate("cabinet", object_rng(3, 0), seed=3)
    asset = build_asset(source)
    report = write_asset(asset, out)
    return out, asset, report


def test_report_card_passes_and_files_are_there(cabinet_dir):
    out, asset, report = cabinet_dir
    assert report["passed"], report["failed"]
    assert {"annotation.json", "physxnet.json", "world.json", "model.xml", "model.urdf", "report.json",
            "config.json", "parts", "meshes", "urdf_meshes"} <= {p.name for p in out.iterdir()}
    on_disk = json.loads((out / "report.json").read_text())
    assert set(on_disk["checks"]) == {"mjcf", "urdf_mujoco", "urdf_yourdfpy", "urdf_pybullet", "inertia", "rest",
                                      "sweep"}
    assert not list(out.parent.glob(".*"))  # no staging leftovers


def test_urdf_read_by_yourdfpy_matches_masses_limits_and_has_collision(cabinet_dir):
    import yourdfpy

    out, asset, _ = cabinet_dir
    robot = yourdfpy.URDF.load(str(out / "model.urdf"), load_meshes=True, build_collision_scene_graph=True,
                               load_collision_meshes=True)
    for body in asset.world.bodies:
        link = robot.link_map[body.name]
        assert link.inertial.mass == pytest.approx(body.inertial.mass, rel=1e-8)
        assert link.collisions, f"{body.name} has no collision"
        assert not np.allclose(link.inertial.inertia, np.eye(3))  # no placeholder inertia
    for group in asset.annotation.groups[1:]:
        joint = robot.joint_map[asset.annotation.body_name(group)]
        assert (joint.limit.lower, joint.limit.upper) == pytest.approx(group.range)
        assert float(joint.dynamics.damping) > 0 and float(joint.dynamics.friction) > 0
    # metric: the collision scene spans the object's real size (metres)
    bounds = robot.collision_scene.bounds
    assert np.ptp(bounds, axis=0) == pytest.approx(asset.annotation.dimensions, abs=0.002)


def test_urdf_read_by_pybullet_matches_masses(cabinet_dir):
    import pybullet

    out, asset, _ = cabinet_dir
    client = pybullet.connect(pybullet.DIRECT)
    try:
        uid = pybullet.loadURDF(str(out / "model.urdf"), flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
                                physicsClientId=client)
        links = {pybullet.getJointInfo(uid, j, physicsClientId=client)[12].decode(): j
                 for j in range(pybullet.getNumJoints(uid, physicsClientId=client))}
        links[pybullet.getBodyInfo(uid, physicsClientId=client)[0].decode()] = -1
        for body in asset.world.bodies:
            mass = pybullet.getDynamicsInfo(uid, links[body.name], physicsClientId=client)[0]
            assert mass == pytest.approx(body.inertial.mass, rel=1e-6)
    finally:
        pybullet.disconnect(physicsClientId=client)


def test_mjcf_and_urdf_load_in_plain_mujoco_with_the_same_masses(cabinet_dir):
    out, asset, _ = cabinet_dir
    for name in ("model.xml", "model.urdf"):
        model = mujoco.MjModel.from_xml_path(str(out / name))
        for body in asset.world.bodies:
            assert model.body(body.name).mass[0] == pytest.approx(body.inertial.mass, rel=1e-5)
    model = mujoco.MjModel.from_xml_path(str(out / "model.xml"))
    door = model.joint(asset.world.bodies[1].name)
    assert door.damping[0] > 0.01 and model.dof_frictionloss[door.dofadr[0]] > 0


def test_check_re_runs_the_gate_from_the_folder(cabinet_dir):
    out, _, _ = cabinet_dir
    report = check_asset_dir(out)
    assert report["passed"] and report["parts"]


def test_asset_folder_rebuilds_from_its_own_annotation(cabinet_dir, tmp_path):
    out, asset, _ = cabinet_dir
    source = load_source(out)
    assert source.annotation == asset.annotation
    for label, (vertices, _) in source.meshes.items():
        assert np.allclose(vertices, dict((p.label, p.visual[0]) for p in asset.parts)[label])


def test_physxnet_folder_import_restores_metric_scale(tmp_path):
    """A PhysXNet-style folder: finaljson in cm + part OBJs in normalised units (largest side 1)."""
    source = generate("microwave", object_rng(6, 0), seed=6)
    a = source.annotation
    scale = 1.0 / max(a.dimensions)
    folder = tmp_path / "physx"
    (folder / "finaljson").mkdir(parents=True)
    (folder / "partseg" / "42" / "objs").mkdir(parents=True)
    data = to_physxnet(a)
    for key, value in data["group_info"].items():  # positions and slides to mesh units
        if key != "0":
            value[2][3:6] = [v * scale + 0.5 for v in value[2][3:6]]
            if value[3] == "B":
                value[2][6:8] = [v * scale for v in value[2][6:8]]
    (folder / "finaljson" / "42.json").write_text(json.dumps(data))
    for label, (v, f) in source.meshes.items():
        write_obj(folder / "partseg" / "42" / "objs" / f"{label}.obj", v * scale + 0.5, f)
    imported = load_source(folder / "finaljson" / "42.json")
    assert imported.annotation.dimensions == pytest.approx(a.dimensions, rel=1e-4)
    for g_in, g_out in zip(a.groups, imported.annotation.groups):
        assert np.allclose(g_out.pivot, g_in.pivot, atol=1e-4)
        assert g_out.joint_type == g_in.joint_type and g_out.range == pytest.approx(g_in.range)
    for label, (v, _) in source.meshes.items():
        assert np.allclose(imported.meshes[label][0], v, atol=1e-4)
    report = write_asset(build_asset(imported, BuildConfig(collision="hull")), tmp_path / "out")
    assert report["checks"]["mjcf"]["passed"] and report["checks"]["inertia"]["passed"]


def _box_obj(path, size=(0.1, 0.1, 0.1), center=(0, 0, 0)):
    mesh = trimesh.creation.box(extents=size)
    mesh.apply_translation(center)
    write_obj(path, mesh.vertices, mesh.faces)


PARTNET_URDF = """<?xml version="1.0"?>
<robot name="partnet_cabinet">
  <link name="base"/>
  <link name="link_0">
    <visual><origin xyz="0 0 0"/><geometry><mesh filename="textured_objs/body.obj"/></geometry></visual>
  </link>
  <link name="link_1">
    <visual><origin xyz="0 0 0"/><geometry><mesh filename="textured_objs/door.obj"/></geometry></visual>
  </link>
  <joint name="joint_0" type="fixed"><parent link="base"/><child link="link_0"/></joint>
  <joint name="joint_1" type="revolute">
    <origin xyz="-0.2 0.21 0.25"/><axis xyz="0 0 1"/><parent link="link_0"/><child link="link_1"/>
    <limit lower="0" upper="1.57"/>
  </joint>
</robot>
"""


def _partnet_folder(tmp_path, text=PARTNET_URDF):
    folder = tmp_path / "partnet"
    (folder / "textured_objs").mkdir(parents=True)
    _box_obj(folder / "textured_objs" / "body.obj", (0.4, 0.4, 0.5), (0, 0, 0.25))
    _box_obj(folder / "textured_objs" / "door.obj", (0.4, 0.02, 0.48), (0.2, 0.012, 0.0))
    (folder / "mobility.urdf").write_text(text)
    return folder


def test_partnet_style_urdf_import_keeps_joints_and_builds(tmp_path):
    folder = _partnet_folder(tmp_path)
    source = import_urdf(folder / "mobility.urdf")
    groups = source.annotation.groups
    assert [g.joint_type for g in groups] == ["fixed", "revolute"]
    assert groups[1].range == pytest.approx((0, 1.57))
    assert groups[1].axis == pytest.approx((0, 0, 1))
    body = build_asset(source).world.body("joint_1")
    assert body.inertial.mass == pytest.approx(1050 * 0.4 * 0.02 * 0.48, rel=1e-6)  # default material plastic


def test_urdf_with_entities_is_refused(tmp_path):
    bomb = PARTNET_URDF.replace('<?xml version="1.0"?>',
                                '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;">]>')
    folder = _partnet_folder(tmp_path, bomb.replace('name="partnet_cabinet"', 'name="&b;"'))
    with pytest.raises(InputFileError, match="DTD or entities"):
        import_urdf(folder / "mobility.urdf")


def test_urdf_mesh_paths_cannot_leave_the_folder(tmp_path):
    folder = _partnet_folder(tmp_path, PARTNET_URDF.replace("textured_objs/door.obj", "../door.obj"))
    _box_obj(tmp_path / "door.obj")
    with pytest.raises(InputFileError, match=r"'\.\.' is not allowed"):
        import_urdf(folder / "mobility.urdf")
    folder2 = _partnet_folder(tmp_path / "abs", PARTNET_URDF.replace("textured_objs/door.obj", str(tmp_path / "door.obj")))
    with pytest.raises(InputFileError, match="absolute paths are not allowed"):
        import_urdf(folder2 / "mobility.urdf")


def test_urdf_joint_to_an_unknown_link_is_named(tmp_path):
    folder = _partnet_folder(tmp_path, PARTNET_URDF.replace('<child link="link_1"/>', '<child link="link_9"/>'))
    with pytest.raises(InputFileError, match="joint 'joint_1' child link 'link_9' is not defined"):
        import_urdf(folder / "mobility.urdf")


def test_non_watertight_mesh_is_refused_unless_repair_is_asked(tmp_path):
    mesh = trimesh.creation.box(extents=(0.1, 0.2, 0.3))
    open_box = trimesh.Trimesh(mesh.vertices, mesh.faces[:-6], process=False)  # three sides missing
    path = tmp_path / "open.obj"
    write_obj(path, open_box.vertices, open_box.faces)
    source = load_source(path)
    with pytest.raises(MeshQualityError, match=r"part 0 \(open\): the mesh is not watertight"):
        build_asset(source)
    hull = build_asset(source, BuildConfig(repair="hull"))
    assert hull.parts[0].repaired == "hull"
    on_disk = trimesh.load(path, process=False)
    assert hull.world.bodies[0].inertial.mass == pytest.approx(1050 * on_disk.convex_hull.volume, rel=1e-6)


def test_voxel_repair_seals_a_small_hole(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.1)
    around = np.flatnonzero((sphere.faces == 0).any(axis=1))  # every face around vertex 0: a 5-6 sided hole
    keep = np.setdiff1d(np.arange(len(sphere.faces)), around)
    path = tmp_path / "leaky.obj"
    write_obj(path, sphere.vertices, sphere.faces[keep])
    source = load_source(path)
    with pytest.raises(MeshQualityError, match="not watertight"):
        build_asset(source)
    voxel = build_asset(source, BuildConfig(repair="voxel", collision="hull"))
    assert voxel.parts[0].repaired == "voxel"
    assert voxel.parts[0].mass.volume == pytest.approx(4 / 3 * math.pi * 0.1**3, rel=0.08)


def test_degenerate_and_enormous_meshes_are_refused(tmp_path):
    flat = tmp_path / "flat.obj"
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=float) * 0.1
    write_obj(flat, v, np.array([[0, 1, 2], [1, 3, 2], [0, 2, 1], [1, 2, 3]]))
    with pytest.raises((MeshQualityError, InputFileError), match="volume|zero|flat|degenerate"):
        build_asset(load_source(flat))
    big = tmp_path / "big.obj"
    _box_obj(big, (0.5, 0.5, 0.5))
    with pytest.raises(MeshQualityError, match="cap of 20.0 m; is the mesh in millimetres"):
        build_asset(load_source(big, ImportConfig(scale=100.0)))


def test_missing_part_mesh_and_unknown_part_in_annotation(tmp_path, cabinet_dir):
    out, _, _ = cabinet_dir
    folder = tmp_path / "copy"
    import shutil

    shutil.copytree(out, folder)
    (folder / "parts" / "1.obj").unlink()
    with pytest.raises(InputFileError, match=r"mesh of part 1 .*file not found"):
        load_source(folder)
    data = json.loads((out / "annotation.json").read_text())
    data["groups"][1]["parts"] = [99]
    (folder / "annotation.json").write_text(json.dumps(data))
    with pytest.raises(WorldValidationError, match="annotation.json:groups.*refers to part 99"):
        load_source(folder)


def test_single_mesh_becomes_a_one_part_rigid_asset(tmp_path):
    path = tmp_path / "brick.obj"
    _box_obj(path, (0.2, 0.1, 0.05), (5, 5, 5))
    asset = build_asset(load_source(path, ImportConfig(material="wood")), BuildConfig(collision="hull"))
    body = asset.world.bodies[0]
    assert body.joint.type == "free" and body.inertial.mass == pytest.approx(700 * 0.001)
    assert asset.parts[0].visual[0][:, 2].min() == pytest.approx(0.0)
    report = write_asset(asset, tmp_path / "brick")
    assert report["passed"], report["failed"]


@pytest.mark.parametrize("category", ["bottle", "lamp", "drawer_chest"])
def test_our_urdf_reads_back_into_the_same_kinematics(tmp_path, category):
    """revolute+prismatic and ball joints are split through connector links in URDF; the
    importer folds them back."""
    asset = build_asset(generate(category, object_rng(9, 0), seed=9))
    write_asset(asset, tmp_path / category)
    source = import_urdf(tmp_path / category / "model.urdf")
    assert len(source.annotation.groups) == len(asset.annotation.groups)
    for before, after in zip(asset.annotation.groups, source.annotation.groups):
        assert after.joint_type == before.joint_type
        assert after.pivot == pytest.approx(before.pivot, abs=1e-6)
        if before.joint_type not in ("ball", "fixed"):
            assert after.axis == pytest.approx(before.axis)
        assert (after.range is None) == (before.range is None)
        if before.range is not None:
            assert after.range == pytest.approx(before.range)
        if before.slide_range is not None:
            assert after.slide_range == pytest.approx(before.slide_range)
    volume = sum(p.mass.volume for p in asset.parts)
    rebuilt = build_asset(source, BuildConfig(collision="hull"))
    assert sum(p.mass.volume for p in rebuilt.parts) == pytest.approx(volume, rel=1e-9)


def test_the_file_checks_fail_on_a_placeholder_mass_or_a_missing_mesh(cabinet_dir, tmp_path):
    import re
    import shutil

    from physforge.assets.gate import run_gate

    out, asset, _ = cabinet_dir
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    text = (broken / "model.urdf").read_text()
    (broken / "model.urdf").write_text(re.sub(r'<mass value="[^"]+"', '<mass value="1.0"', text, count=1))
    next(iter((broken / "meshes").iterdir())).unlink()
    report = run_gate(asset.world, mjcf=broken / "model.xml", urdf=broken / "model.urdf")
    assert {"mjcf", "urdf_mujoco", "urdf_yourdfpy", "urdf_pybullet"} <= set(report["failed"])
    assert "MuJoCo cannot load it" in report["checks"]["mjcf"]["error"]
    assert "mass 1.0" in json.dumps(report["checks"]["urdf_pybullet"]["problems"])
