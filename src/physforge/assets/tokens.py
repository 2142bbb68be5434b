"""Geometry tokens: part voxels as plain decimal text, and back to a watertight metric mesh.

Grid: each object is normalised into an N^3 grid (N = 32 or 64): the grid is a cube of edge
L = the object's largest dimension, centred on the object's bounding box, so cell (x, y, z)
covers ``low + (x, y, z) * L / N`` to ``+ L / N`` (m, object frame). A part's occupancy is
every cell whose centre is inside the part's watertight mesh, plus every cell its surface
passes through (thin panels never vanish).

Encodings (all plain decimal text, no special tokens, all lossless on voxels):

- ``baseline`` (PhysX-Anything): occupied flat indices x·N²+y·N+z in increasing order,
  space separated, consecutive runs merged as ``a-b``.
- ``boxes`` (ours): the occupied cells tiled exactly by axis-aligned cuboids (greedy, grown
  along z, then y, then x, so long runs become one box); each cuboid written as
  ``x y z dx dy dz`` (corner cell and size in cells), cuboids separated by ``;``. Solid
  parts built from panels, rods and blocks need a handful of cuboids instead of hundreds of
  index runs.
- ``zruns`` (ours, second): per (x, y) column in raster order, the gap since the previous
  run and the run length along z, as ``gap+len`` pairs; small numbers only.
- ``ours``: per part, whichever of ``boxes`` and ``zruns`` is shorter (boxes win on panels and
  blocks, zruns on organic scans); the decoder tells them apart by the ``+`` only zruns uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physforge.errors import InputFileError, MissingDependencyError, PhysforgeError


class TokenError(PhysforgeError, ValueError):
    """Geometry-token text (or its encoding, resolution or grid) is malformed."""


ENCODINGS = ("baseline", "boxes", "zruns", "ours")
RESOLUTIONS = (16, 32, 64, 128)


@dataclass(frozen=True)
class Grid:
    """The normalised frame of one object: ``low`` (3,) m corner, ``size`` m edge, ``n`` cells per edge."""

    low: np.ndarray
    size: float
    n: int

    @property
    def cell(self) -> float:
        return self.size / self.n

    @classmethod
    def around(cls, points: np.ndarray, n: int) -> "Grid":
        if n not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {n}")
        low, high = points.min(0), points.max(0)
        size = float((high - low).max())
        if not size > 0:
            raise ValueError("cannot voxelise a zero-size object")
        centre = (low + high) / 2
        return cls(low=centre - size / 2, size=size * (1 + 1e-9), n=n)


def voxelize(vertices: np.ndarray, faces: np.ndarray, grid: Grid) -> np.ndarray:
    """(n, n, n) bool occupancy of a mesh (m, object frame) in ``grid``."""
    n = grid.n
    cell = grid.cell
    v = (np.asarray(vertices, dtype=np.float64) - grid.low) / cell  # in cell units
    f = np.asarray(faces, dtype=np.int64)
    occupied = np.zeros((n, n, n), dtype=bool)
    # interior: parity of z-ray crossings through each column centre (offset slightly so no
    # ray runs exactly through a mesh edge)
    tri = v[f]
    jitter = np.array([1.234567e-6, 2.345678e-6])
    cols, zs = [], []
    for t in tri:
        a, b, c = t[:, :2]
        area = (b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])
        if abs(area) < 1e-12:
            continue
        lo = np.maximum(np.ceil(t[:, :2].min(0) - 0.5), 0).astype(int)
        hi = np.minimum(np.floor(t[:, :2].max(0) - 0.5), n - 1).astype(int)
        if (hi < lo).any():
            continue
        xs, ys = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
        px, py = xs.ravel() + 0.5 + jitter[0], ys.ravel() + 0.5 + jitter[1]
        w0 = ((b[0] - px) * (c[1] - py) - (c[0] - px) * (b[1] - py)) / area
        w1 = ((c[0] - px) * (a[1] - py) - (a[0] - px) * (c[1] - py)) / area
        w2 = 1.0 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        if not inside.any():
            continue
        z = w0[inside] * t[0, 2] + w1[inside] * t[1, 2] + w2[inside] * t[2, 2]
        cols.append(xs.ravel()[inside] * n + ys.ravel()[inside])
        zs.append(z)
    if cols:
        col = np.concatenate(cols)
        z = np.concatenate(zs)
        order = np.lexsort((z, col))
        col, z = col[order], z[order]
        starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
        counts = np.diff(np.r_[starts, len(col)])
        for start, count in zip(starts, counts):
            if count % 2:
                continue  # an open column (mesh not watertight there): the surface pass covers it
            x, y = divmod(int(col[start]), n)
            for k in range(start, start + count, 2):
                z0 = int(max(np.ceil(z[k] - 0.5), 0))
                z1 = int(min(np.floor(z[k + 1] - 0.5), n - 1))
                if z1 >= z0:
                    occupied[x, y, z0:z1 + 1] = True
    # surface: points on every triangle, no farther apart than half a cell
    points = _surface_points(v, f, 0.5)
    idx = np.clip(np.floor(points).astype(np.int64), 0, n - 1)
    occupied[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return occupied


def _surface_points(v: np.ndarray, f: np.ndarray, spacing: float) -> np.ndarray:
    tri = v[f]
    edges = np.stack([np.linalg.norm(tri[:, 1] - tri[:, 0], axis=1), np.linalg.norm(tri[:, 2] - tri[:, 1], axis=1),
                      np.linalg.norm(tri[:, 0] - tri[:, 2], axis=1)], 1).max(1)
    steps = np.maximum(1, np.ceil(edges / spacing)).astype(int)
    out = [v]
    for k in np.unique(steps):
        group = tri[steps == k]
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = (i + j) <= k
        u, w = (i[keep] / k), (j[keep] / k)
        weights = np.stack([1 - u - w, u, w], 1)  # (p, 3)
        out.append(np.einsum("pc,tcd->tpd", weights, group).reshape(-1, 3))
    return np.concatenate(out)


# -- encodings ---------------------------------------------------------------------------------

def encode(occupancy: np.ndarray, encoding: str) -> str:
    occupancy = _check_grid(occupancy)
    if encoding == "baseline":
        return _encode_baseline(occupancy)
    if encoding == "boxes":
        return _encode_boxes(occupancy)
    if encoding == "zruns":
        return _encode_zruns(occupancy)
    if encoding == "ours":
        boxes, zruns = _encode_boxes(occupancy), _encode_zruns(occupancy)
        return zruns if len(zruns) < len(boxes) else boxes
    raise TokenError(f"unknown encoding {encoding!r}; choose one of {ENCODINGS}")


def decode(text: str, encoding: str, n: int) -> np.ndarray:
    """The (n, n, n) bool occupancy a text encodes; TokenError (a ValueError) on malformed text."""
    if not isinstance(text, str):
        raise TokenError(f"token text must be a str, got {type(text).__name__}")
    if n not in RESOLUTIONS:
        raise TokenError(f"resolution must be one of {RESOLUTIONS}, got {n}")
    if encoding == "baseline":
        return _decode_baseline(text, n)
    if encoding == "boxes":
        return _decode_boxes(text, n)
    if encoding == "zruns":
        return _decode_zruns(text, n)
    if encoding == "ours":
        return _decode_zruns(text, n) if "+" in text else _decode_boxes(text, n)
    raise TokenError(f"unknown encoding {encoding!r}; choose one of {ENCODINGS}")


def _check_grid(occupancy) -> np.ndarray:
    grid = np.asarray(occupancy, dtype=bool)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise TokenError(f"occupancy must be a cube (n, n, n), got shape {grid.shape}")
    return grid


def _runs(sorted_values: np.ndarray) -> list[tuple[int, int]]:
    if len(sorted_values) == 0:
        return []
    breaks = np.flatnonzero(np.diff(sorted_values) != 1)
    starts = np.r_[0, breaks + 1]
    ends = np.r_[breaks, len(sorted_values) - 1]
    return [(int(sorted_values[s]), int(sorted_values[e])) for s, e in zip(starts, ends)]


def _encode_baseline(grid: np.ndarray) -> str:
    flat = np.flatnonzero(grid.reshape(-1))  # C order: x * n^2 + y * n + z
    return " ".join(str(a) if a == b else f"{a}-{b}" for a, b in _runs(flat))


def _decode_baseline(text: str, n: int) -> np.ndarray:
    flat = np.zeros(n**3, dtype=bool)
    for item in text.split():
        match = re.fullmatch(r"([0-9]{1,9})(?:-([0-9]{1,9}))?", item)
        if not match:
            raise TokenError(f"baseline token {item!r} is not 'i' or 'a-b'")
        a = int(match.group(1))
        b = int(match.group(2)) if match.group(2) else a
        if not a <= b < n**3:
            raise TokenError(f"baseline run {item!r} outside 0..{n**3 - 1}")
        flat[a:b + 1] = True
    return flat.reshape(n, n, n)


def cuboids(grid: np.ndarray) -> list[tuple[int, int, int, int, int, int]]:
    """Cuboids (x, y, z, dx, dy, dz) that tile the occupied cells exactly, without overlap.

    Greedy in x-y-z order: from the first free occupied cell grow along z, then y, then x."""
    remaining = np.array(grid, dtype=bool)
    n = grid.shape[0]
    out = []
    for x, y, z in zip(*np.nonzero(remaining)):
        if not remaining[x, y, z]:
            continue
        dz = 1
        while z + dz < n and remaining[x, y, z + dz]:
            dz += 1
        dy = 1
        while y + dy < n and remaining[x, y + dy, z:z + dz].all():
            dy += 1
        dx = 1
        while x + dx < n and remaining[x + dx, y:y + dy, z:z + dz].all():
            dx += 1
        remaining[x:x + dx, y:y + dy, z:z + dz] = False
        out.append((int(x), int(y), int(z), dx, dy, dz))
    return out


def _encode_boxes(grid: np.ndarray) -> str:
    return ";".join(" ".join(str(v) for v in box) for box in cuboids(grid))


def _decode_boxes(text: str, n: int) -> np.ndarray:
    grid = np.zeros((n, n, n), dtype=bool)
    if not text.strip():
        return grid
    for item in text.split(";"):
        values = item.split()
        if len(values) != 6 or not all(re.fullmatch(r"[0-9]{1,9}", v) for v in values):
            raise TokenError(f"box {item!r} is not six cell counts 'x y z dx dy dz'")
        x, y, z, dx, dy, dz = (int(v) for v in values)
        if min(dx, dy, dz) < 1 or x + dx > n or y + dy > n or z + dz > n:
            raise TokenError(f"box {item!r} leaves the {n}^3 grid")
        grid[x:x + dx, y:y + dy, z:z + dz] = True
    return grid


def _encode_zruns(grid: np.ndarray) -> str:
    flat = np.flatnonzero(grid.reshape(-1))
    out, cursor = [], 0
    n = grid.shape[0]
    for a, b in _runs(flat):
        # split runs at column boundaries so each pair stays within one (x, y) column
        start = a
        while start <= b:
            end = min(b, (start // n + 1) * n - 1)
            out.append(f"{start - cursor}+{end - start + 1}")
            cursor = end + 1
            start = end + 1
    return " ".join(out)


def _decode_zruns(text: str, n: int) -> np.ndarray:
    flat = np.zeros(n**3, dtype=bool)
    cursor = 0
    for item in text.split():
        match = re.fullmatch(r"([0-9]{1,9})\+([0-9]{1,9})", item)
        if not match:
            raise TokenError(f"zruns token {item!r} is not 'gap+length'")
        start = cursor + int(match.group(1))
        length = int(match.group(2))
        if length < 1 or start + length > n**3:
            raise TokenError(f"zruns token {item!r} leaves the {n}^3 grid")
        flat[start:start + length] = True
        cursor = start + length
    return flat.reshape(n, n, n)


# -- voxels -> mesh ----------------------------------------------------------------------------

def voxels_to_mesh(occupancy: np.ndarray, grid: Grid, *, smooth: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """A watertight mesh (vertices m in the object frame, faces) of the occupied cells.

    Marching cubes on the (Gaussian-smoothed, ``smooth`` cells) occupancy, then each axis
    scaled so the mesh spans exactly the occupied cells' metric extent."""
    from scipy.ndimage import gaussian_filter
    from skimage.measure import marching_cubes

    occupancy = _check_grid(occupancy)
    if not occupancy.any():
        raise ValueError("no occupied cell: nothing to mesh")
    field = np.pad(occupancy.astype(np.float64), 2)
    if smooth > 0:
        field = gaussian_filter(field, smooth)
    vertices, faces, _, _ = marching_cubes(field, level=0.5)
    vertices = vertices - 2.0 + 0.5  # back to cell-centre coordinates
    cells = np.argwhere(occupancy)
    target_low, target_high = cells.min(0), cells.max(0) + 1.0
    low, high = vertices.min(0), vertices.max(0)
    scale = (target_high - target_low) / np.maximum(high - low, 1e-9)
    vertices = (vertices - low) * scale + target_low
    metric = grid.low + vertices * grid.cell
    faces = np.asarray(faces, dtype=np.int64)[:, ::-1]  # outward normals for a solid below the level set
    return metric, faces


def remesh_watertight(vertices: np.ndarray, faces: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Voxelise a (possibly leaky) mesh in its own bounding cube and mesh the voxels: a
    watertight stand-in for a mesh that cannot be repaired."""
    from scipy.ndimage import binary_closing, binary_fill_holes

    grid = Grid.around(np.asarray(vertices), resolution if resolution in RESOLUTIONS else 64)
    surface = np.pad(voxelize(vertices, faces, grid), CLOSING_CELLS + 1)
    # closing seals holes up to about 2 x CLOSING_CELLS cells wide before the inside is filled
    sealed = binary_closing(surface, iterations=CLOSING_CELLS)
    occupancy = binary_fill_holes(sealed)[tuple(slice(CLOSING_CELLS + 1, -CLOSING_CELLS - 1) for _ in range(3))]
    return voxels_to_mesh(occupancy, grid, smooth=0.0)


#: Morphological closing (cells) used when remeshing a leaky mesh.
CLOSING_CELLS = 2


# -- token counting ----------------------------------------------------------------------------

def obj_text(vertices: np.ndarray, faces: np.ndarray, digits: int = 6) -> str:
    """The mesh as Wavefront OBJ text, coordinates with ``digits`` decimals (what a VLM would read)."""
    lines = [f"v {x:.{digits}f} {y:.{digits}f} {z:.{digits}f}" for x, y, z in np.asarray(vertices).tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces).tolist()]
    return "\n".join(lines) + "\n"


def train_bpe(texts: list[str], vocab_size: int = 4096, *, split_digits: bool = False):
    """A byte-level BPE tokenizer trained on ``texts``. split_digits: pre-split numbers into
    single digits (as Qwen2/LLaMA tokenizers do) instead of GPT-2's whole-number chunks."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        raise MissingDependencyError("tokenizers", "ml") from None
    tokenizer = Tokenizer(models.BPE())
    tokenizer.decoder = decoders.ByteLevel()
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                               if split_digits else byte_level)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def count_tokens(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text).ids)


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    if not Path(path).is_file():
        raise InputFileError(path, "tokenizer file not found")
    return Tokenizer.from_file(str(path))
