"""First RGB-D frame + intrinsics + instance masks -> a simulatable ``physforge.world`` scene.

Steps: back-project each masked object's depth pixels to a point cloud (camera intrinsics and,
when known, extrinsics); fit the support plane with RANSAC on the background pixels and rotate
the scene so that its normal is +z (gravity alignment) and it lies at z = 0; close each partial
(single-view) cloud into a watertight solid by extruding it down to the plane and taking the
convex hull; give each object physical properties from a material prior, kept as domain-
randomisation ranges; push overlapping objects apart and lift any that sink into the plane
(collision-free placement).

Objects of more than one material: when the first frame's colours are given, the pixels inside an
object's mask are split into two clusters by colour when they form clearly separated clusters
(``split_by_colour``); each cluster becomes a part of the object, its own extruded convex hull,
with a material prior looked up by its colour (``COLOUR_MATERIALS``, overridable). The object is
still one free body, with one convex mesh geom per part, each with its own density, so the
simulator's centre of mass follows the materials rather than the shape. A one-colour object stays
one hull, exactly as without colours.

Frames: camera frame is OpenGL-style (x right, y up, looking along -z), as ``Camera.rotation_matrix``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from physforge.errors import PhysforgeError
from physforge.world import Body, Geom, Material, Mesh, Pose, World

#: RANSAC inlier distance (m) for the support plane.
PLANE_INLIER_DISTANCE = 0.004
#: Objects placed closer than this (m) to each other are pushed apart.
PLACEMENT_CLEARANCE = 0.002
#: Hull points at most this far (m) above the plane are snapped onto it (the object rests there).
GROUND_SNAP = 0.01
#: An object's pixels are split into two parts by colour only when the two k-means centres of
#: their brightness-normalised colours (unit RGB vectors, so shading and highlights that scale a
#: colour do not count) are at least this far apart, and the smaller part holds at least this share
#: of the pixels. Measured on the rendered demonstrations (mask eroded by one pixel): one-colour
#: objects (cubes, the rubber wedge, the blue block) 0.006-0.039; the steel-and-wood tool 0.43.
COLOUR_SPLIT_SEPARATION = 0.15
COLOUR_SPLIT_MIN_SHARE = 0.1


class ReconstructionError(PhysforgeError, ValueError):
    """The frame cannot be reconstructed (empty mask, no support plane, bad depth)."""


@dataclass(frozen=True)
class MaterialPrior:
    """Physical-property prior for a reconstructed object: density kg/m^3 and sliding friction
    ranges (low, high) sampled per episode; nominal values are the range midpoints."""

    name: str = "plastic"
    density: tuple[float, float] = (400.0, 900.0)
    friction: tuple[float, float] = (0.6, 1.2)

    def __post_init__(self):
        for key in ("density", "friction"):
            low, high = getattr(self, key)
            if not (0 < low <= high and math.isfinite(high)):
                raise ValueError(f"MaterialPrior.{key} must be a range 0 < low <= high, got {(low, high)}")

    def nominal(self) -> Material:
        return Material(name=self.name, density=float(np.mean(self.density)),
                        friction=(float(np.mean(self.friction)), 0.005, 0.0001))


@dataclass(frozen=True)
class ColourMaterial:
    """One row of the colour-keyed material table: a material's typical surface colour ``rgb`` (3,)
    in [0, 1] and the ``prior`` a part of that colour gets."""

    rgb: tuple[float, float, float]
    prior: MaterialPrior


#: The default colour-keyed material table for the parts of multi-colour objects (a part's colour
#: is matched to the nearest row in HSV, see ``material_for_colour``): grey metal -> steel
#: (7000-8000 kg/m^3), brown -> wood (400-900), near black -> rubber (900-1500), saturated colours
#: -> plastic (900-1400). A rough prior on purpose: its ranges are what the twin and the episodes
#: randomise over. Pass ``colour_materials=`` to ``reconstruct`` to use another table.
COLOUR_MATERIALS: dict[str, ColourMaterial] = {
    "steel": ColourMaterial((0.45, 0.46, 0.5), MaterialPrior("steel", (7000.0, 8000.0), (0.4, 0.8))),
    "wood": ColourMaterial((0.62, 0.42, 0.2), MaterialPrior("wood", (400.0, 900.0), (0.5, 0.9))),
    "rubber": ColourMaterial((0.12, 0.12, 0.13), MaterialPrior("rubber", (900.0, 1500.0), (0.8, 1.2))),
    "red plastic": ColourMaterial((0.85, 0.2, 0.15), MaterialPrior("plastic", (900.0, 1400.0), (0.4, 0.8))),
    "blue plastic": ColourMaterial((0.2, 0.35, 0.85), MaterialPrior("plastic", (900.0, 1400.0), (0.4, 0.8))),
    "green plastic": ColourMaterial((0.2, 0.7, 0.25), MaterialPrior("plastic", (900.0, 1400.0), (0.4, 0.8))),
}


def _hsv_feature(rgb: np.ndarray) -> np.ndarray:
    """(..., 3): (s cos h, s sin h, v) of RGB colours in [0, 1]: a space where greys of any hue
    angle coincide and hue wraps around."""
    from matplotlib.colors import rgb_to_hsv

    hsv = rgb_to_hsv(np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0))
    angle = 2 * math.pi * hsv[..., 0]
    return np.stack([hsv[..., 1] * np.cos(angle), hsv[..., 1] * np.sin(angle), hsv[..., 2]], axis=-1)


def material_for_colour(rgb, table: dict[str, ColourMaterial] | None = None) -> tuple[str, MaterialPrior]:
    """(row name, prior) of the ``table`` row (default COLOUR_MATERIALS) whose colour is nearest to
    ``rgb`` (3,) in [0, 1], in the (s cos h, s sin h, v) space of ``_hsv_feature``."""
    table = COLOUR_MATERIALS if table is None else table
    if not table:
        raise ValueError("colour_materials is empty; give at least one ColourMaterial row")
    feature = _hsv_feature(np.asarray(rgb, dtype=np.float64))
    name = min(table, key=lambda key: float(np.linalg.norm(_hsv_feature(np.array(table[key].rgb)) - feature)))
    return name, table[name].prior


def split_by_colour(rgb: np.ndarray, mask: np.ndarray) -> list[np.ndarray] | None:
    """Two (H, W) bool masks covering ``mask`` if its pixels form two clearly separated colour
    clusters (see COLOUR_SPLIT_SEPARATION, COLOUR_SPLIT_MIN_SHARE), the larger first; else None.

    rgb: (H, W, 3) uint8 or float in [0, 1]. The clusters come from 2-means (deterministic start:
    the two pixels farthest apart along the colours' principal axis) on brightness-normalised
    colours of the mask eroded by one pixel, since the border pixels blend with the background;
    every pixel of the mask then joins the nearer centre.
    """
    from scipy import ndimage
    from scipy.cluster.vq import kmeans2

    rgb = np.asarray(rgb)
    colours = rgb.astype(np.float64) / (255.0 if rgb.dtype == np.uint8 else 1.0)
    direction = colours / np.maximum(np.linalg.norm(colours, axis=-1, keepdims=True), 1e-6)
    mask = mask.astype(bool)
    inner = ndimage.binary_erosion(mask)
    samples = direction[inner if inner.sum() >= 10 else mask]
    if len(samples) < 10:
        return None
    centred = samples - samples.mean(axis=0)
    if 2 * float(np.linalg.norm(centred, axis=1).max()) < COLOUR_SPLIT_SEPARATION:
        # every colour lies within half the separation of the mean, and so does any cluster's centre:
        # no split can pass (and on one flat colour k-means would warn of an empty cluster)
        return None
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    projection = centred @ axis
    start = samples[[int(np.argmin(projection)), int(np.argmax(projection))]]
    centres, labels = kmeans2(samples, start, minit="matrix", iter=20)
    shares = np.bincount(labels, minlength=2) / len(labels)
    if np.linalg.norm(centres[0] - centres[1]) < COLOUR_SPLIT_SEPARATION or shares.min() < COLOUR_SPLIT_MIN_SHARE:
        return None
    distances = np.linalg.norm(direction[..., None, :] - centres, axis=-1)
    nearest = np.argmin(distances, axis=-1)
    first, second = (mask & (nearest == k) for k in np.argsort(-shares))
    # A part is one piece of the object: stray pixels of one colour inside the other (a highlight,
    # a border pixel blended with the floor) would stretch its convex hull over the other part
    # (one such pixel on the tool's handle put the steel hull along the whole bar), so each part
    # keeps its largest connected region and hands its islands to the other.
    for _ in range(2):
        islands = first & ~_largest_region(first)
        first, second = second | islands, first & ~islands
    return [first, second] if first.sum() >= second.sum() else [second, first]


def _largest_region(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the largest 8-connected region of ``mask``."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))


@dataclass(frozen=True)
class ReconstructedPart:
    """One part of a multi-colour object: ``material`` (the colour table's row name), ``rgb`` (3,)
    its median colour in [0, 1], ``prior`` its property ranges, ``volume`` m^3 of its hull."""

    material: str
    rgb: tuple[float, float, float]
    prior: MaterialPrior
    volume: float


@dataclass(frozen=True)
class ReconstructedObject:
    """One object: ``body`` (a free body, mesh collision, pose = hull centroid with world axes; one
    convex mesh geom per part), ``points`` (n, 3) float64 m world: the gravity-aligned observed
    cloud, ``size`` (3,) m: the axis-aligned extent of the hull, ``volume`` m^3, ``prior``: its
    property ranges (the caller's, for the whole object), ``parts``: the per-material parts, empty
    for a one-colour object."""

    name: str
    body: Body
    points: np.ndarray
    size: np.ndarray
    volume: float
    prior: MaterialPrior
    parts: tuple[ReconstructedPart, ...] = ()

    def mass_range(self) -> tuple[float, float]:
        """kg, from the volumes and the density ranges (per part when there are parts)."""
        if self.parts:
            return (sum(p.volume * p.prior.density[0] for p in self.parts),
                    sum(p.volume * p.prior.density[1] for p in self.parts))
        return self.volume * self.prior.density[0], self.volume * self.prior.density[1]


@dataclass(frozen=True)
class Reconstruction:
    """``objects`` by name; ``plane`` (4,) (a, b, c, d) with a x + b y + c z + d = 0 in the input
    frame, unit normal pointing to the camera; ``world_from_input`` (4, 4): the gravity alignment;
    ``world``: the scene (ground plane + objects)."""

    objects: dict[str, ReconstructedObject]
    plane: np.ndarray
    world_from_input: np.ndarray
    world: World
    extra: dict = field(default_factory=dict)


def back_project(depth: np.ndarray, intrinsics: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(n, 3) float64 m, camera frame (OpenGL: looking along -z) of the pixels in ``mask``.

    depth: (H, W) float m along the viewing axis; intrinsics: (3, 3) K, pixels; pixel (row 0)
    is the top of the image. Pixels with non-finite or non-positive depth are skipped.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ReconstructionError(f"depth must be (H, W), got shape {depth.shape}")
    rows, cols = np.indices(depth.shape)
    valid = np.isfinite(depth) & (depth > 0)
    if mask is not None:
        if mask.shape != depth.shape:
            raise ReconstructionError(f"mask shape {mask.shape} differs from depth shape {depth.shape}")
        valid &= mask.astype(bool)
    z = depth[valid]
    u, v = cols[valid] + 0.5, rows[valid] + 0.5
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    x = (u - cx) / fx * z
    y = -(v - cy) / fy * z
    return np.stack([x, y, -z], axis=1)


def to_world(points: np.ndarray, rotation: np.ndarray, position) -> np.ndarray:
    """(n, 3) camera-frame points to the world, with the camera's world-from-camera rotation (3, 3)
    and position (3,) m."""
    return points @ np.asarray(rotation).T + np.asarray(position)


def fit_plane(points: np.ndarray, rng: np.random.Generator, *, iterations: int = 200,
              inlier_distance: float = PLANE_INLIER_DISTANCE) -> tuple[np.ndarray, float]:
    """RANSAC plane ``(a, b, c, d)`` (unit normal) and its inlier fraction, refined by least
    squares on the inliers. points: (n, 3) m."""
    if len(points) < 3:
        raise ReconstructionError("fewer than 3 background points: no support plane to fit; "
                                  "frame the camera so the floor or table is visible")
    best, best_count = None, -1
    for _ in range(iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = np.linalg.norm(normal)
        if norm < 1e-9:
            continue
        normal /= norm
        count = int((np.abs((points - a) @ normal) < inlier_distance).sum())
        if count > best_count:
            best, best_count = (normal, a), count
    if best is None:
        raise ReconstructionError("all sampled background points are collinear; no plane found")
    normal, a = best
    inliers = points[np.abs((points - a) @ normal) < inlier_distance]
    centre = inliers.mean(axis=0)
    _, _, vt = np.linalg.svd(inliers - centre, full_matrices=False)
    normal = vt[2]
    return np.concatenate([normal, [-normal @ centre]]), len(inliers) / len(points)


def gravity_alignment(plane: np.ndarray, towards: np.ndarray) -> np.ndarray:
    """(4, 4) transform taking the input frame to one where the plane is z = 0 with its normal
    +z (oriented towards the point ``towards`` (3,), e.g. the camera), by the smallest rotation."""
    normal, d = plane[:3] / np.linalg.norm(plane[:3]), plane[3] / np.linalg.norm(plane[:3])
    if normal @ towards + d < 0:
        normal, d = -normal, -d
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(normal, z)
    s, c = np.linalg.norm(axis), float(normal @ z)
    if s < 1e-12:
        rotation = np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        k = axis / s
        skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rotation = np.eye(3) + s * skew + (1 - c) * skew @ skew
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = rotation @ (normal * d)  # a point on the plane, -d n, maps to z = 0
    return transform


def solid_from_points(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Watertight convex solid (vertices (n, 3) m, faces (m, 3)) of a gravity-aligned partial
    cloud: the points plus their shadow on z = 0 (an object rests on the plane)."""
    import trimesh

    points = np.asarray(points, dtype=np.float64)
    shadow = points.copy()
    shadow[:, 2] = 0.0
    hull = trimesh.convex.convex_hull(np.concatenate([points, shadow]))
    vertices = np.asarray(hull.vertices, dtype=np.float64)
    vertices[vertices[:, 2] < GROUND_SNAP, 2] = np.maximum(vertices[vertices[:, 2] < GROUND_SNAP, 2], 0.0)
    hull = trimesh.convex.convex_hull(vertices)
    return np.asarray(hull.vertices, dtype=np.float64), np.asarray(hull.faces, dtype=np.int64)


def reconstruct(depth: np.ndarray, intrinsics: np.ndarray, masks: dict[str, np.ndarray], rng: np.random.Generator,
                *, camera_rotation: np.ndarray | None = None, camera_position=None,
                priors: dict[str, MaterialPrior] | None = None, min_points: int = 30,
                rgb: np.ndarray | None = None,
                colour_materials: dict[str, ColourMaterial] | None = None) -> Reconstruction:
    """Reconstruct a scene from one depth frame (see module doc).

    depth: (H, W) float m. intrinsics: (3, 3). masks: object name -> (H, W) bool. camera_rotation
    (3, 3) world-from-camera and camera_position (3,) m: extrinsics if known (then the result is in
    that world frame, re-levelled by the plane fit); otherwise the camera frame is the input frame.
    priors: per-object material priors (default MaterialPrior()). rgb: (H, W, 3) the same frame's
    colours (uint8, or float in [0, 1]); when given, an object whose pixels form two clearly
    separated colour clusters is built from two parts, each with the prior ``colour_materials``
    (default COLOUR_MATERIALS) gives its colour. Without rgb every object is one hull.
    """
    if not masks:
        raise ReconstructionError("no instance masks given; pass at least one object mask")
    priors = priors or {}
    rotation = np.eye(3) if camera_rotation is None else np.asarray(camera_rotation, dtype=float)
    position = np.zeros(3) if camera_position is None else np.asarray(camera_position, dtype=float)
    if rgb is not None and np.shape(rgb) != (*np.shape(depth), 3):
        raise ReconstructionError(f"rgb must be (H, W, 3) matching depth {np.shape(depth)}, got {np.shape(rgb)}")
    if rgb is not None and np.asarray(rgb).dtype != np.uint8:
        low, high = float(np.min(rgb)), float(np.max(rgb))
        if not 0.0 <= low <= high <= 1.0:
            # 0-255 floats would be clipped to white when matched to the colour table: every part steel
            raise ReconstructionError(f"rgb as floats must lie in [0, 1], got {low:g}..{high:g}; "
                                      "pass uint8 or divide by 255")
    union = np.zeros(depth.shape, dtype=bool)
    clouds, part_clouds = {}, {}
    for name, mask in masks.items():
        cloud = back_project(depth, intrinsics, mask)
        if len(cloud) < min_points:
            raise ReconstructionError(f"mask '{name}' covers {len(cloud)} valid depth pixels (need {min_points}); "
                                      "the object is too small or occluded in this frame")
        clouds[name] = to_world(cloud, rotation, position)
        union |= mask.astype(bool)
        split = split_by_colour(rgb, mask) if rgb is not None else None
        if split is not None:
            colours = np.asarray(rgb).astype(np.float64) / (255.0 if np.asarray(rgb).dtype == np.uint8 else 1.0)
            part_clouds[name] = [(to_world(back_project(depth, intrinsics, part), rotation, position),
                                  tuple(float(c) for c in np.median(colours[part], axis=0))) for part in split]
            if min(len(c) for c, _ in part_clouds[name]) < min_points:
                del part_clouds[name]  # a part too small to span a solid: keep the object whole
    background = to_world(back_project(depth, intrinsics, ~union), rotation, position)
    background = background[rng.choice(len(background), min(len(background), 20000), replace=False)]
    plane, inlier_fraction = fit_plane(background, rng)
    align = gravity_alignment(plane, position)
    objects = {}
    for name, cloud in clouds.items():
        aligned = cloud @ align[:3, :3].T + align[:3, 3]
        prior = priors.get(name, MaterialPrior())
        if name in part_clouds:
            objects[name] = _multi_part_object(name, aligned, part_clouds[name], align, prior, colour_materials)
            continue
        vertices, faces = solid_from_points(aligned)
        import trimesh

        solid = trimesh.Trimesh(vertices, faces, process=False)
        centre = np.asarray(solid.center_mass if solid.is_volume else vertices.mean(0))
        body = Body(name, (Geom(Mesh(vertices=vertices - centre, faces=faces), material=prior.nominal(),
                                rgba=(0.8, 0.35, 0.2, 1.0)),), pose=Pose(tuple(float(v) for v in centre)))
        objects[name] = ReconstructedObject(name, body, aligned, np.ptp(vertices, axis=0), float(abs(solid.volume)),
                                            prior)
    objects = place_without_overlap(objects)
    world = World(bodies=tuple(o.body for o in objects.values()), name="reconstruction")
    return Reconstruction(objects=objects, plane=plane, world_from_input=align, world=world,
                          extra={"plane_inlier_fraction": inlier_fraction})


def _multi_part_object(name: str, aligned: np.ndarray, parts: list[tuple[np.ndarray, tuple]], align: np.ndarray,
                       prior: MaterialPrior, colour_materials) -> ReconstructedObject:
    """One free body with one extruded convex hull per colour part, each with the density of the
    material its colour maps to. The body frame sits at the centroid of the hull of all parts
    (uniform density: the object's geometric centre), as for a one-part object, so everything that
    ranks by geometry sees the same frame either way; the simulator places the centre of mass."""
    import trimesh

    solids = []
    for cloud, colour in parts:
        vertices, faces = solid_from_points(cloud @ align[:3, :3].T + align[:3, 3])
        material, part_prior = material_for_colour(colour, colour_materials)
        solids.append((vertices, faces, material, colour, part_prior))
    everything = np.concatenate([v for v, *_ in solids])
    whole = trimesh.convex.convex_hull(everything)
    centre = np.asarray(whole.center_mass)
    geoms, recorded = [], []
    for vertices, faces, material, colour, part_prior in solids:
        volume = float(abs(trimesh.Trimesh(vertices, faces, process=False).volume))
        geoms.append(Geom(Mesh(vertices=vertices - centre, faces=faces), material=part_prior.nominal(),
                          rgba=(*colour, 1.0)))
        recorded.append(ReconstructedPart(material, colour, part_prior, volume))
    body = Body(name, tuple(geoms), pose=Pose(tuple(float(v) for v in centre)))
    return ReconstructedObject(name, body, aligned, np.ptp(everything, axis=0), float(sum(p.volume for p in recorded)),
                               prior, tuple(recorded))


def place_without_overlap(objects: dict[str, ReconstructedObject], iterations: int = 50
                          ) -> dict[str, ReconstructedObject]:
    """Separate objects whose footprints (axis-aligned, in the plane) overlap by pushing them
    apart along the shallower axis; returns updated objects (bodies moved, points moved)."""
    names = list(objects)
    centres = {n: np.array(objects[n].body.pose.position) for n in names}
    halves = {n: 0.5 * objects[n].size for n in names}
    for _ in range(iterations):
        moved = False
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                gap = np.abs(centres[a][:2] - centres[b][:2]) - (halves[a][:2] + halves[b][:2]) - PLACEMENT_CLEARANCE
                if (gap < 0).all():
                    axis = int(np.argmax(gap))
                    direction = np.sign(centres[b][axis] - centres[a][axis]) or 1.0
                    shift = -gap[axis] / 2
                    centres[a][axis] -= direction * shift
                    centres[b][axis] += direction * shift
                    moved = True
        if not moved:
            break
    out = {}
    for n in names:
        obj = objects[n]
        delta = centres[n] - np.array(obj.body.pose.position)
        body = Body(obj.body.name, obj.body.geoms, pose=Pose(tuple(float(v) for v in centres[n])))
        out[n] = ReconstructedObject(n, body, obj.points + delta, obj.size, obj.volume, obj.prior, obj.parts)
    return out
