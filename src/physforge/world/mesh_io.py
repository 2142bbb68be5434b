"""Reading triangle meshes from disk, defensively (the files may come from the internet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physforge.constants import MAX_MESH_FACES
from physforge.errors import InputFileError

MESH_SUFFIXES = (".obj", ".stl", ".ply", ".off", ".glb", ".gltf")
MAX_MESH_FILE_BYTES = 512 * 1024 * 1024


def load_mesh_arrays(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (n, 3) float64 m, faces (m, 3) int64)`` of the mesh file at ``path``.

    Raises InputFileError for a missing, empty, oversized, non-finite or unreadable mesh.
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "mesh file not found")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputFileError(path, f"unsupported mesh type; expected one of {', '.join(MESH_SUFFIXES)}")
    if path.stat().st_size > MAX_MESH_FILE_BYTES:
        raise InputFileError(path, f"mesh file larger than {MAX_MESH_FILE_BYTES} bytes")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as err:  # trimesh raises many types for garbage input
        raise InputFileError(path, f"cannot read mesh ({type(err).__name__}: {err})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputFileError(path, "file holds no triangles")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) > MAX_MESH_FACES:
        raise InputFileError(path, f"{len(faces)} faces is more than the limit of {MAX_MESH_FACES}; simplify it")
    if not np.isfinite(vertices).all():
        raise InputFileError(path, "mesh has NaN or infinite vertex coordinates")
    return vertices, faces


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a Wavefront OBJ with full float precision (so a reload is bit-identical)."""
    lines = [f"v {x!r} {y!r} {z!r}" for x, y, z in np.asarray(vertices, dtype=np.float64).tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64).tolist()]
    Path(path).write_text("\n".join(lines) + "\n")
