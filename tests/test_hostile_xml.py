"""Hostile URDF/MJCF: entity bombs, external entities, DTDs and escaping file references are
refused before MuJoCo's XML reader sees the file."""

from __future__ import annotations

import os

import pytest

import physforge.sim.articulation as articulation
from physforge.assets.urdf import import_urdf
from physforge.errors import InputFileError
from physforge.sim.articulation import load_model_file
from physforge.world.xmlsafe import MAX_INCLUDED_FILES, check_model_file

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<{root} name="&lol9;"><worldbody/></{root}>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<{root} name="&secret;"/>
"""
DTD_ONLY = """<?xml version="1.0"?>
<!DOCTYPE {root} SYSTEM "http://example.invalid/model.dtd">
<{root}/>
"""

BOX_MJCF = """<mujoco>
  <compiler meshdir="{meshdir}"/>
  <asset><mesh name="m" file="{mesh}"/></asset>
  <worldbody><body name="b"><freejoint/><geom type="mesh" mesh="m" density="1000"/></body></worldbody>
  {include}
</mujoco>
"""
# A unit-free 0.1 m cube as an OBJ: mass at 1000 kg/m^3 is exactly 1 kg.
CUBE_OBJ = "\n".join(
    [f"v {x} {y} {z}" for x in (-0.05, 0.05) for y in (-0.05, 0.05) for z in (-0.05, 0.05)]
    + ["f 1 3 4 2", "f 5 6 8 7", "f 1 2 6 5", "f 3 7 8 4", "f 1 5 7 3", "f 2 4 8 6"]) + "\n"


@pytest.fixture()
def mujoco_never_called(monkeypatch):
    """Fail the test if MuJoCo's XML reader is reached."""

    class NoMuJoCo:
        class MjModel:
            @staticmethod
            def from_xml_path(path):
                raise AssertionError(f"MuJoCo parsed {path}")

    monkeypatch.setattr(articulation, "mujoco", NoMuJoCo)


@pytest.mark.parametrize("root", ["mujoco", "robot"])
@pytest.mark.parametrize("payload, match", [(BILLION_LAUGHS, "DTD or entities"),
                                            (EXTERNAL_ENTITY, "DTD or entities"),
                                            (DTD_ONLY, "DTD or entities")])
def test_entities_and_dtds_refused_before_mujoco(tmp_path, mujoco_never_called, root, payload, match):
    path = tmp_path / ("model.xml" if root == "mujoco" else "model.urdf")
    path.write_text(payload.replace("{root}", root))
    with pytest.raises(InputFileError, match=f"model.*{match}"):
        load_model_file(path)


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY, DTD_ONLY])
def test_urdf_importer_refuses_entities(tmp_path, payload):
    path = tmp_path / "object.urdf"
    path.write_text(payload.replace("{root}", "robot"))
    with pytest.raises(InputFileError, match="object.urdf: refused: the XML declares a DTD or entities"):
        import_urdf(path)


def _model(folder, *, meshdir="meshes", mesh="cube.obj", include=""):
    (folder / "meshes").mkdir(parents=True, exist_ok=True)
    (folder / "meshes" / "cube.obj").write_text(CUBE_OBJ)
    path = folder / "model.xml"
    path.write_text(BOX_MJCF.format(meshdir=meshdir, mesh=mesh, include=include))
    return path


def test_safe_model_with_include_loads_with_the_closed_form_mass(tmp_path):
    (tmp_path / "extra.xml").write_text(
        '<mujoco><worldbody><body name="ball" pos="1 0 0"><geom type="sphere" size="0.1" mass="2"/></body>'
        "</worldbody></mujoco>")
    path = _model(tmp_path, include='<include file="extra.xml"/>')
    assert [p.name for p in check_model_file(path)] == ["model.xml", "extra.xml"]
    summary = load_model_file(path)
    assert summary.bodies["b"] == pytest.approx(1000 * 0.1 ** 3, rel=1e-6)
    assert summary.total_mass == pytest.approx(1.0 + 2.0, rel=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"include": '<include file="../secret.xml"/>'}, r"<include file>='\.\./secret\.xml'.*'\.\.' is not allowed"),
    ({"include": '<include file="/etc/passwd"/>'}, r"<include file>='/etc/passwd'.*absolute paths"),
    ({"meshdir": "/usr/share"}, r"<compiler meshdir>='/usr/share'.*absolute paths"),
    ({"meshdir": ".."}, r"<compiler meshdir>.*'\.\.' is not allowed"),
    ({"mesh": "../../cube.obj"}, r"<mesh file>='\.\./\.\./cube\.obj'"),
    ({"mesh": "C:\\cube.obj"}, r"absolute paths"),
])
def test_mjcf_references_out_of_the_folder_refused(tmp_path, mujoco_never_called, kwargs, match):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.xml").write_text("<mujoco/>")
    path = _model(folder, **kwargs)
    with pytest.raises(InputFileError, match=match):
        load_model_file(path)


def test_symlinked_mesh_and_included_hostile_file_refused(tmp_path, mujoco_never_called):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cube.obj").write_text(CUBE_OBJ)
    folder = tmp_path / "model"
    path = _model(folder)
    (folder / "meshes" / "cube.obj").unlink()
    os.symlink(outside / "cube.obj", folder / "meshes" / "cube.obj")
    with pytest.raises(InputFileError, match=r"resolves outside .* \(through a symlink\?\)"):
        load_model_file(path)
    # An included file is parsed with the same rules: an entity bomb one include deep is refused.
    (folder / "meshes" / "cube.obj").unlink()
    (folder / "meshes" / "cube.obj").write_text(CUBE_OBJ)
    (folder / "part.xml").write_text(BILLION_LAUGHS.replace("{root}", "mujoco"))
    path = _model(folder, include='<include file="part.xml"/>')
    with pytest.raises(InputFileError, match=r"part\.xml: refused: the XML declares a DTD or entities"):
        load_model_file(path)


def test_include_cycle_and_fan_out_refused(tmp_path, mujoco_never_called):
    (tmp_path / "a.xml").write_text('<mujoco><include file="b.xml"/></mujoco>')
    (tmp_path / "b.xml").write_text('<mujoco><include file="a.xml"/></mujoco>')
    with pytest.raises(InputFileError, match="included more than once"):
        load_model_file(tmp_path / "a.xml")
    many = "".join(f'<include file="p{i}.xml"/>' for i in range(MAX_INCLUDED_FILES + 1))
    for i in range(MAX_INCLUDED_FILES + 1):
        (tmp_path / f"p{i}.xml").write_text("<mujoco/>")
    (tmp_path / "fan.xml").write_text(f"<mujoco>{many}</mujoco>")
    with pytest.raises(InputFileError, match=f"more than {MAX_INCLUDED_FILES} files"):
        load_model_file(tmp_path / "fan.xml")


@pytest.mark.parametrize("filename", ["../secret.stl", "/etc/passwd", "package://../../secret.stl"])
def test_urdf_mesh_out_of_the_folder_refused(tmp_path, mujoco_never_called, filename):
    path = tmp_path / "robot.urdf"
    path.write_text(f'<robot name="r"><link name="base"><visual><geometry><mesh filename="{filename}"/>'
                    "</geometry></visual></link></robot>")
    with pytest.raises(InputFileError, match=r"robot\.urdf: mesh filename="):
        load_model_file(path)


def test_urdf_mujoco_extension_meshdir_out_of_the_folder_refused(tmp_path, mujoco_never_called):
    path = tmp_path / "robot.urdf"
    path.write_text('<robot name="r"><mujoco><compiler meshdir="/etc"/></mujoco><link name="base"/></robot>')
    with pytest.raises(InputFileError, match=r"robot\.urdf: <compiler meshdir>='/etc'.*absolute paths"):
        load_model_file(path)


def test_not_well_formed_and_oversized(tmp_path, mujoco_never_called, monkeypatch):
    path = tmp_path / "broken.xml"
    path.write_text("<mujoco><worldbody></mujoco>")
    with pytest.raises(InputFileError, match=r"broken\.xml: not well-formed XML"):
        load_model_file(path)
    import physforge.world.xmlsafe as xmlsafe

    monkeypatch.setattr(xmlsafe, "MAX_XML_BYTES", 10)
    monkeypatch.setattr(xmlsafe.parse_untrusted_xml, "__kwdefaults__", {"max_bytes": 10})
    with pytest.raises(InputFileError, match="larger than 10 bytes"):
        load_model_file(path)
