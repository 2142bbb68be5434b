"""Writing a sim-ready asset folder (atomically) and checking one.

Folder layout::

    annotation.json        the physical annotation (SI units; canonical bytes)
    physxnet.json          the same in PhysXNet finaljson form (cm, g/cm^3, GPa, degrees)
    parts/<label>.obj      watertight visual mesh of each part, object frame, metres
    collision/*.obj        CoACD hulls (only for parts without exact primitive pieces)
    world.json             the physforge world (references parts/ and collision/)
    model.xml, meshes/     MJCF (MuJoCo), loads with plain mujoco.MjModel.from_xml_path
    model.urdf, urdf_meshes/   URDF with collision, visual and inertial elements
    report.json            the gate's report card
    config.json            build and gate settings, versions
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from physforge.assets.build import SimAsset, make_world
from physforge.assets.gate import GateConfig, run_gate
from physforge.assets.schema import annotation_json, to_physxnet
from physforge.assets.urdf import export_urdf
from physforge.errors import InputFileError
from physforge.outputs import staged_directory, write_json
from physforge.world import Mesh, load_world, save_world
from physforge.world.mesh_io import write_obj

REPORT_FILE = "report.json"


def part_file(label: int) -> str:
    return f"parts/{label}.obj"


def write_asset(asset: SimAsset, out_dir: str | Path, *, gate: GateConfig = GateConfig(), overwrite: bool = False,
                extra_config: dict | None = None) -> dict:
    """Write ``asset`` into ``out_dir`` (all or nothing) and return its gate report card."""
    import physforge
    from physforge.sim import MUJOCO_VERSION, export_mjcf

    with staged_directory(out_dir, overwrite=overwrite) as staging:
        (staging / "annotation.json").write_text(annotation_json(asset.annotation))
        write_json(staging / "physxnet.json", to_physxnet(asset.annotation))
        (staging / "parts").mkdir()
        mesh_paths, hull_paths = {}, {}
        for part in asset.parts:
            mesh_paths[part.label] = part_file(part.label)
            write_obj(staging / mesh_paths[part.label], *part.visual)
            for k, piece in enumerate(part.collision):
                if isinstance(piece.shape, Mesh):
                    (staging / "collision").mkdir(exist_ok=True)
                    hull_paths[(part.label, k)] = f"collision/{part.label}_{k}.obj"
                    write_obj(staging / hull_paths[(part.label, k)], piece.shape.vertices, piece.shape.faces)
        file_world = make_world(asset.annotation, asset.parts, asset.body_origins, asset.config,
                                mesh_paths=mesh_paths, hull_paths=hull_paths)
        save_world(file_world, staging / "world.json")
        export_mjcf(asset.world, staging / "model.xml")
        export_urdf(asset, staging / "model.urdf")
        report = run_gate(asset.world, mjcf=staging / "model.xml", urdf=staging / "model.urdf", config=gate)
        report["parts"] = [{"label": p.label, "name": p.name, "body": p.body, "mass_kg": p.mass.mass,
                            "volume_m3": p.mass.volume, "collision_pieces": len(p.collision), "repaired": p.repaired,
                            "coacd_cache_hit": p.coacd_cache_hit} for p in asset.parts]
        write_json(staging / REPORT_FILE, report)
        write_json(staging / "config.json", {
            "build": asset.config.to_dict(), "gate": dataclasses.asdict(gate), **(extra_config or {}),
            "versions": {"physforge": physforge.__version__, "mujoco": MUJOCO_VERSION}})
    return report


def check_asset_dir(folder: str | Path, *, gate: GateConfig = GateConfig(), write_report: bool = True) -> dict:
    """Re-run the gate on an asset folder (its world.json, model.xml and model.urdf)."""
    folder = Path(folder)
    for name in ("world.json", "model.xml", "model.urdf"):
        if not (folder / name).is_file():
            raise InputFileError(folder / name, "missing; is this a folder written by 'physforge asset build'?")
    world = load_world(folder / "world.json")
    report = run_gate(world, mjcf=folder / "model.xml", urdf=folder / "model.urdf", config=gate)
    if write_report:
        previous = folder / REPORT_FILE
        parts = None
        if previous.is_file():
            import json

            try:
                parts = json.loads(previous.read_text()).get("parts")
            except ValueError:
                parts = None
        if parts is not None:
            report["parts"] = parts
        write_json(previous, report)
    return report
