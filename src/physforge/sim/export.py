"""World -> standalone MJCF file (meshes written beside it), checked by loading it back."""

from __future__ import annotations

import shutil
from pathlib import Path

import mujoco

from physforge.errors import PhysforgeError
from physforge.sim.compile import compile_world, initial_state
from physforge.world import World

MESH_FOLDER = "meshes"


class ExportError(PhysforgeError, RuntimeError):
    """An exported file did not load back into MuJoCo."""


def export_mjcf(world: World, path: str | Path) -> Path:
    """Write ``world`` as MJCF at ``path``; mesh files go to ``meshes/`` beside it.

    The file is loaded back with plain ``mujoco.MjModel.from_xml_path`` before it is put in
    place, so a file at ``path`` always loads.
    """
    path = Path(path)
    if path.suffix.lower() != ".xml":
        raise ValueError(f"MJCF path must end in .xml, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.stem}.export-tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        mesh_dir = staging / MESH_FOLDER
        compiled = compile_world(world, mesh_dir=mesh_dir)
        spec = compiled.spec
        qpos, qvel = initial_state(compiled)
        # Plain MuJoCo users start from the world's initial state with mj_resetDataKeyframe(m, d, 0).
        spec.add_key(name="initial", time=0.0, qpos=qpos.tolist(), qvel=qvel.tolist())
        spec.compile()
        xml = spec.to_xml().replace(f'meshdir="{mesh_dir}', f'meshdir="{MESH_FOLDER}')
        (staging / path.name).write_text(xml)
        try:
            mujoco.MjModel.from_xml_path(str(staging / path.name))
        except ValueError as err:
            raise ExportError(f"exported MJCF for '{world.name}' does not load in MuJoCo: {err}") from None
        if any(mesh_dir.iterdir()):
            target_meshes = path.parent / MESH_FOLDER
            target_meshes.mkdir(exist_ok=True)
            for mesh_file in mesh_dir.iterdir():
                mesh_file.replace(target_meshes / mesh_file.name)
        (staging / path.name).replace(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
