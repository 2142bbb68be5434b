"""Reading triangle meshes from disk, defensively (the files may come from the internet)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physforge.constants import MAX_MESH_FACES, MIN_FACE_AREA, MIN_GEOMETRY_SIZE
from physforge.errors import InputFileError

MESH_SUFFIXES = (".obj", ".stl", ".ply", ".off", ".glb", ".gltf")
MAX_MESH_FILE_BYTES = 512 * 1024 * 1024


def load_mesh_arrays(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (n, 3) float64 m, faces (m, 3) int64)`` of the mesh file at ``path``.

    Before parsing, the file's leading bytes must match its extension (a PNG renamed
    ``.stl`` is refused) and the face count its header declares (or, for OBJ and ASCII STL,
    a streamed count of face lines) must be at most ``MAX_MESH_FACES``, so an oversized mesh
    is refused without being loaded whole. After parsing, NaN/inf coordinates and face
    indices out of range are refused; zero-area faces (repeated vertices, collinear corners)
    are dropped, a documented repair that changes neither volume, mass nor collision shape.

    Raises InputFileError for a missing, empty, oversized, mistyped, non-finite or unreadable mesh.
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "mesh file not found")
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise InputFileError(path, f"unsupported mesh type; expected one of {', '.join(MESH_SUFFIXES)}")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(path, "mesh file is empty (0 bytes)")
    if size > MAX_MESH_FILE_BYTES:
        raise InputFileError(path, f"mesh file larger than {MAX_MESH_FILE_BYTES} bytes")
    _check_contents_match_suffix(path, suffix, size)
    declared = _declared_face_count(path, suffix, size)
    if declared > MAX_MESH_FACES:
        raise InputFileError(path, f"declares {declared} faces, more than the limit of {MAX_MESH_FACES}; "
                             "simplify it (e.g. trimesh simplify_quadric_decimation) before use")
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
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputFileError(path, f"face vertex index outside [0, {len(vertices) - 1}]")
    faces = drop_degenerate_faces(vertices, faces)
    if len(faces) == 0:
        raise InputFileError(path, "every face has zero area (degenerate mesh)")
    return vertices, faces


def drop_degenerate_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``faces`` without the zero-area ones (area below ``MIN_FACE_AREA`` relative to the mesh size²)."""
    corners = vertices[faces]
    doubled = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    extent = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    keep = doubled > 2.0 * MIN_FACE_AREA * max(extent, MIN_GEOMETRY_SIZE) ** 2
    keep &= (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return faces if keep.all() else faces[keep]


# Leading bytes of common non-mesh files, to name what a mistyped file really is.
_FOREIGN_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
                  b"PK\x03\x04": "a ZIP archive", b"%PDF": "a PDF document", b"\x7fELF": "an executable",
                  b"\x1f\x8b": "a gzip archive", b"<!DOCTYPE": "an HTML/XML document", b"<html": "an HTML page",
                  b"<?xml": "an XML document"}
_HEAD_BYTES = 4096


def _check_contents_match_suffix(path: Path, suffix: str, size: int) -> None:
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    for magic, what in _FOREIGN_MAGIC.items():
        if head.lstrip()[: len(magic)].lower() == magic.lower():
            raise InputFileError(path, f"contents are {what}, not a {suffix} mesh")
    text_like = b"\x00" not in head
    problem = None
    if suffix == ".ply" and not head.startswith(b"ply"):
        problem = "a PLY file must start with 'ply'"
    elif suffix == ".off" and b"OFF" not in head.split(b"\n", 1)[0]:
        problem = "an OFF file must start with an 'OFF' line"
    elif suffix == ".glb" and not head.startswith(b"glTF"):
        problem = "a GLB file must start with 'glTF'"
    elif suffix == ".gltf" and not head.lstrip().startswith(b"{"):
        problem = "a glTF file must be JSON"
    elif suffix == ".obj" and not text_like:
        problem = "an OBJ file must be text"
    elif suffix == ".stl" and not _is_binary_stl(head, size) and not (head.lstrip().startswith(b"solid") and text_like):
        problem = "neither a binary STL (size must be 84 + 50 x its face count) nor an ASCII STL ('solid ...')"
    if problem:
        raise InputFileError(path, f"contents do not match the extension {suffix!r}: {problem}")


def _is_binary_stl(head: bytes, size: int) -> bool:
    return len(head) >= 84 and size == 84 + 50 * int.from_bytes(head[80:84], "little")


def _declared_face_count(path: Path, suffix: str, size: int) -> int:
    """Faces (polygons) the file declares, found without parsing it whole; polygons that
    triangulate into more faces are checked again after loading."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if suffix == ".stl" and _is_binary_stl(head, size):
        return int.from_bytes(head[80:84], "little")
    if suffix == ".ply":
        for line in head.split(b"\n"):
            parts = line.split()
            if len(parts) == 3 and parts[0] == b"element" and parts[1] == b"face":
                return _int_or_refuse(path, parts[2])
            if line.strip() == b"end_header":
                break
        return 0
    if suffix == ".off":
        numbers = [p for line in head.split(b"\n")[:4] if not line.startswith(b"#")
                   for p in line.replace(b"OFF", b"").split()]
        return _int_or_refuse(path, numbers[1]) if len(numbers) >= 2 else 0
    if suffix in (".obj", ".stl"):
        marker = b"\nf " if suffix == ".obj" else b"endfacet"
        return _count_occurrences(path, marker)
    if suffix in (".glb", ".gltf"):
        return _gltf_face_count(path, suffix, head)
    return 0


def _int_or_refuse(path: Path, token: bytes) -> int:
    try:
        return int(token)
    except ValueError:
        raise InputFileError(path, f"header face count {token[:20]!r} is not an integer") from None


def _count_occurrences(path: Path, marker: bytes, chunk: int = 1 << 23) -> int:
    # Streams the file in 8 MiB pieces so that counting never holds it whole in memory.
    count, tail = 0, b"\n"
    with open(path, "rb") as handle:
        while piece := handle.read(chunk):
            window = tail + piece
            count += window.count(marker)
            # The tail is shorter than the marker, so a marker split across pieces is counted once.
            tail = window[-(len(marker) - 1):]
    return count


def _gltf_face_count(path: Path, suffix: str, head: bytes) -> int:
    import json

    try:
        if suffix == ".glb":
            if len(head) < 20:
                raise ValueError("truncated GLB header")
            length = int.from_bytes(head[12:16], "little")
            if length > MAX_MESH_FILE_BYTES:
                raise ValueError("JSON chunk length beyond the file")
            with open(path, "rb") as handle:
                handle.seek(20)
                document = json.loads(handle.read(length))
        else:
            document = json.loads(path.read_bytes())
        accessors = document.get("accessors", [])
        total = 0
        for mesh in document.get("meshes", []):
            for primitive in mesh.get("primitives", []):
                index = primitive.get("indices", primitive.get("attributes", {}).get("POSITION"))
                if isinstance(index, int) and 0 <= index < len(accessors):
                    total += int(accessors[index].get("count", 0)) // 3
        return total
    except (ValueError, TypeError, AttributeError, RecursionError) as err:
        raise InputFileError(path, f"unreadable glTF header ({type(err).__name__}: {err})") from None


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a Wavefront OBJ with full float precision (so a reload is bit-identical)."""
    lines = [f"v {x!r} {y!r} {z!r}" for x, y, z in np.asarray(vertices, dtype=np.float64).tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64).tolist()]
    Path(path).write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class MeshDefects:
    """What keeps a triangle mesh from bounding a volume whose mass can be computed.

    boundary_edges: edges used by one face (holes). nonmanifold_edges: edges used by three or
    more faces. inconsistent_winding: neighbouring faces disagree on orientation.
    inverted: closed and consistently wound, but with inward normals (negative volume).
    self_intersections: edges that pierce a face they do not belong to (None: not checked,
    the mesh has more than SELF_INTERSECTION_MAX_FACES faces).
    """

    boundary_edges: int
    nonmanifold_edges: int
    inconsistent_winding: bool
    inverted: bool
    self_intersections: int | None

    @property
    def bounds_volume(self) -> bool:
        """True when the mesh's own volume integral gives its mass properties."""
        return (self.boundary_edges == 0 and self.nonmanifold_edges == 0 and not self.inconsistent_winding
                and not self.self_intersections)

    def describe(self) -> str:
        parts = []
        if self.boundary_edges:
            parts.append(f"{self.boundary_edges} open (boundary) edges")
        if self.nonmanifold_edges:
            parts.append(f"{self.nonmanifold_edges} non-manifold edges")
        if self.inconsistent_winding:
            parts.append("inconsistent face winding")
        if self.self_intersections:
            parts.append(f"{self.self_intersections} self-intersections")
        if self.inverted:
            parts.append("inward-facing normals")
        return ", ".join(parts) or "none"


#: Above this many faces the self-intersection test is skipped (reported as None): with
#: Embree (``embreex``) 80k faces take ~1 s; trimesh's pure-numpy ray caster is ~100x slower.
SELF_INTERSECTION_MAX_FACES = 200_000
SELF_INTERSECTION_MAX_FACES_WITHOUT_EMBREE = 2_000


def mesh_defects(vertices: np.ndarray, faces: np.ndarray) -> MeshDefects:
    """Check a mesh (vertices (n, 3) float64 m, faces (m, 3) int64) for what breaks its volume."""
    import trimesh

    mesh = trimesh.Trimesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64),
                           process=False)
    # Coincident vertices written separately (per-face OBJ/STL exports) still share edges.
    mesh.merge_vertices()
    edges = np.sort(np.asarray(mesh.edges, dtype=np.int64), axis=1)
    _, counts = np.unique(edges[:, 0] * len(mesh.vertices) + edges[:, 1], return_counts=True)
    boundary, nonmanifold = int((counts == 1).sum()), int((counts > 2).sum())
    consistent = bool(mesh.is_winding_consistent) if nonmanifold == 0 else False
    inverted = bool(boundary == 0 and nonmanifold == 0 and consistent and mesh.volume < 0)
    intersector, limit = _ray_intersector()
    crossings = _self_intersections(mesh, intersector) if len(mesh.faces) <= limit else None
    return MeshDefects(boundary, nonmanifold, not consistent, inverted, crossings)


def _ray_intersector():
    import importlib

    try:
        importlib.import_module("embreex")  # trimesh's Embree caster needs it; probe before choosing
        from trimesh.ray.ray_pyembree import RayMeshIntersector

        return RayMeshIntersector, SELF_INTERSECTION_MAX_FACES
    except ImportError:
        from trimesh.ray.ray_triangle import RayMeshIntersector

        return RayMeshIntersector, SELF_INTERSECTION_MAX_FACES_WITHOUT_EMBREE


def _self_intersections(mesh, intersector) -> int:
    """Edges of ``mesh`` that cross the interior of a face not sharing a vertex with them."""
    edges = mesh.edges_unique
    if len(edges) == 0:
        return 0
    vertices = np.asarray(mesh.vertices)
    origins = vertices[edges[:, 0]]
    vectors = vertices[edges[:, 1]] - origins
    lengths = np.linalg.norm(vectors, axis=1)
    usable = lengths > 0
    edges, origins, vectors, lengths = edges[usable], origins[usable], vectors[usable], lengths[usable]
    locations, rays, triangles = intersector(mesh).intersects_location(
        origins, vectors / lengths[:, None], multiple_hits=True)
    if len(rays) == 0:
        return 0
    distance = np.linalg.norm(locations - origins[rays], axis=1)
    # Embree works in float32: hits within this of an edge's ends are its own corners.
    margin = 1e-5 * float(np.ptp(vertices, axis=0).max())
    inside = (distance > margin) & (distance < lengths[rays] - margin)
    corners = np.asarray(mesh.faces)[triangles]
    shares = (corners == edges[rays, :1]).any(axis=1) | (corners == edges[rays, 1:]).any(axis=1)
    return int(len(np.unique(rays[inside & ~shares])))


@dataclass(frozen=True)
class MassMesh:
    """A mesh made ready for MuJoCo to integrate its mass properties.

    vertices (n, 3) float64 m and faces (m, 3) int64: possibly repaired. defects: as found.
    repair: what was changed ("" when nothing). convex_inertia: the mesh bounds no volume
    (holes, non-manifold edges, self-intersections), so mass and inertia must come from its
    convex hull, which is also the shape MuJoCo collides with.
    """

    vertices: np.ndarray
    faces: np.ndarray
    defects: MeshDefects
    repair: str
    convex_inertia: bool


def prepare_for_mass(vertices: np.ndarray, faces: np.ndarray) -> MassMesh:
    """Repair what can be repaired for a volume integral; otherwise fall back to the convex hull.

    Inward normals are flipped and inconsistent winding of a closed manifold mesh is re-oriented
    (both exact: the volume is unchanged); an open, non-manifold or self-intersecting mesh gets
    ``convex_inertia=True``, an approximation that over-estimates the mass of a concave part.
    """
    vertices = np.ascontiguousarray(vertices, dtype=np.float64)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    # The same part is compiled many times (asset checks, counterfactual re-runs): cache by content.
    key = hashlib.sha256(vertices.tobytes() + b"|" + faces.tobytes()).digest()
    cached = _MASS_MESH_CACHE.get(key)
    if cached is None:
        cached = _prepare_for_mass(vertices, faces)
        for array in (cached.vertices, cached.faces):
            array.setflags(write=False)
        if len(_MASS_MESH_CACHE) >= _MASS_MESH_CACHE_SIZE:
            _MASS_MESH_CACHE.pop(next(iter(_MASS_MESH_CACHE)))
        _MASS_MESH_CACHE[key] = cached
    return cached


_MASS_MESH_CACHE: dict[bytes, MassMesh] = {}
_MASS_MESH_CACHE_SIZE = 256


def _prepare_for_mass(vertices: np.ndarray, faces: np.ndarray) -> MassMesh:
    import trimesh

    defects = mesh_defects(vertices, faces)
    closed = defects.boundary_edges == 0 and defects.nonmanifold_edges == 0 and not defects.self_intersections
    if closed and (defects.inconsistent_winding or defects.inverted):
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        mesh.merge_vertices()
        trimesh.repair.fix_winding(mesh)
        trimesh.repair.fix_inversion(mesh)
        if mesh.is_winding_consistent and mesh.volume > 0:
            return MassMesh(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64),
                            defects, "re-oriented faces outward", False)
    if defects.bounds_volume and not defects.inverted:
        return MassMesh(vertices, faces, defects, "", False)
    return MassMesh(vertices, faces, defects, "mass and inertia from the convex hull", True)
