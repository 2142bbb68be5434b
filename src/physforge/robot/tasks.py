"""The six tasks, their demonstrations, and the perception that grounds them.

Each task has a ground-truth scene (objects only, no robot: what a demonstration video shows)
and a scripted object motion standing in for a generated video. ``render_demo`` renders that
motion as an RGB-D video with instance masks; ``prepare_task`` runs the pipeline on it:
reconstruct the first frame (rigid objects) and track the object through the video, and
returns the object-centric reference motion, the scene bodies for the robot world, and the
measured reconstruction/tracking errors against the simulator's ground truth.

The drawer task uses the library's articulated chest of drawers as its scene model (a
single-view reconstruction of an articulated object is out of scope); its motion is still
tracked from the video.

Poses are (4, 4) float64 world-from-object transforms; positions in m, world frame (robot
base at the origin, +x forward, z up).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from physforge.world import Body, Box, Camera, Geom, Material, Mesh, Pose, World

TASKS = ("push", "pick_place", "stack", "open_drawer", "pick_wedge", "pick_tool")
#: Control period of the robot environment and frame period of demonstrations, s.
CONTROL_DT = 0.05
VIDEO_SIZE = 192

CUBE_MATERIAL = Material(name="plastic", density=600.0, friction=(0.9, 0.005, 0.0001))


@dataclass(frozen=True)
class TaskDefinition:
    """name; kind: push, grasp (pick-and-place, stack) or drawer; object: the body the robot moves;
    horizon: control steps; contact_step: step at which the base policy holds (grasp) or touches
    (push) the object and the demonstrated motion starts; motion_steps: its duration in steps;
    release_step: step the gripper opens (None: never)."""

    name: str
    kind: str
    object: str
    horizon: int
    contact_step: int
    motion_steps: int
    release_step: int | None
    camera: Camera


def _cube_camera() -> Camera:
    return Camera("demo", position=(1.05, 0.0, 0.62), look_at=(0.48, 0.0, 0.02), fovy=math.radians(42))


DEFINITIONS = {
    "push": TaskDefinition("push", "push", "cube", horizon=40, contact_step=14, motion_steps=22, release_step=None,
                           camera=_cube_camera()),
    "pick_place": TaskDefinition("pick_place", "grasp", "cube", horizon=48, contact_step=18, motion_steps=22,
                                 release_step=42, camera=_cube_camera()),
    "stack": TaskDefinition("stack", "grasp", "cube", horizon=48, contact_step=18, motion_steps=22, release_step=42,
                            camera=_cube_camera()),
    "open_drawer": TaskDefinition("open_drawer", "drawer", "drawer", horizon=44, contact_step=18, motion_steps=22,
                                  release_step=None,
                                  camera=Camera("demo", position=(0.1, -0.6, 0.8), look_at=(0.55, 0.0, 0.22),
                                                fovy=math.radians(50))),
    "pick_wedge": TaskDefinition("pick_wedge", "grasp", "wedge", horizon=48, contact_step=18, motion_steps=22,
                                 release_step=42, camera=_cube_camera()),
    "pick_tool": TaskDefinition("pick_tool", "grasp", "tool", horizon=48, contact_step=18, motion_steps=22,
                                release_step=42, camera=_cube_camera()),
}

#: Opening of the demonstrated drawer motion, m.
DRAWER_OPENING = 0.12


#: The pick_wedge task's object: a tapered solid-rubber block (a wheel chock), long axis along y,
#: heavy end at +y: (length, (width, height) at the heavy end, (width, height) at the thin end), m.
#: Uniform density (0.72 kg at 1200 kg/m^3), so its centre of mass sits 5.1 cm from the middle of
#: its length, where a mass-blind grasp (the footprint's centre) would land. 4.4 cm wide at its
#: centre of mass (the cubes of pick_place and stack are 4 cm).
WEDGE_SHAPE = (0.28, (0.055, 0.09), (0.02, 0.012))
WEDGE_MATERIAL = Material(name="rubber", density=1200.0, friction=(0.9, 0.005, 0.0001))


def wedge_mesh() -> Mesh:
    """The wedge as a convex mesh, vertices relative to its centre of mass (body frame = world axes)."""
    import trimesh

    length, heavy, thin = WEDGE_SHAPE
    corners = [(x * width / 2, y * length / 2, z * height)
               for y, (width, height) in ((1, heavy), (-1, thin)) for x in (-1, 1) for z in (0, 1)]
    hull = trimesh.convex.convex_hull(np.array(corners, dtype=np.float64))
    return Mesh(vertices=np.asarray(hull.vertices) - hull.center_mass, faces=np.asarray(hull.faces, dtype=np.int64))


#: The pick_tool task's object: a straight bar of one square cross-section (a mallet-like tool), long
#: axis along y: a steel head at the +y end and a wooden handle, each a box (length along y, m), and
#: the side of the square cross-section, m. Steel 7850 kg/m^3, wood 600 kg/m^3: 0.68 kg in all, the
#: centre of mass 8.4 cm from the middle of its length towards the head, so a grasp at the
#: geometric middle (where the hull's centroid is) tilts it out of the fingers. Only colour tells
#: the two parts apart; the geometry is one uniform bar. Measured over 50 episodes (README, robot):
#: success (a) retarget 64 %, base 84 %, (c) residual 98 %; grasp failures 92 / 18 / 2 %.
TOOL_HEAD_LENGTH, TOOL_HANDLE_LENGTH, TOOL_SECTION = 0.08, 0.22, 0.03
TOOL_HEAD_MATERIAL = Material(name="steel", density=7850.0, friction=(0.8, 0.005, 0.0001))
TOOL_HANDLE_MATERIAL = Material(name="wood", density=600.0, friction=(0.9, 0.005, 0.0001))
TOOL_HEAD_RGBA, TOOL_HANDLE_RGBA = (0.42, 0.43, 0.46, 1.0), (0.62, 0.42, 0.2, 1.0)


def tool_body(position) -> Body:
    """The pick_tool bar, its body frame at the middle of its length (the geometric centroid)."""
    total, half = TOOL_HEAD_LENGTH + TOOL_HANDLE_LENGTH, TOOL_SECTION / 2
    head_centre = total / 2 - TOOL_HEAD_LENGTH / 2
    handle_centre = -total / 2 + TOOL_HANDLE_LENGTH / 2
    return Body("tool", (Geom(Box((half, TOOL_HEAD_LENGTH / 2, half)), pose=Pose((0.0, head_centre, 0.0)),
                              material=TOOL_HEAD_MATERIAL, rgba=TOOL_HEAD_RGBA),
                         Geom(Box((half, TOOL_HANDLE_LENGTH / 2, half)), pose=Pose((0.0, handle_centre, 0.0)),
                              material=TOOL_HANDLE_MATERIAL, rgba=TOOL_HANDLE_RGBA)),
                Pose(tuple(float(v) for v in position)))


def material_prior(task: str, name: str):
    """The material prior a user gives for ``name`` in ``task`` (density kg/m^3 and friction ranges):
    hard rubber for the wedge, the generic plastic prior otherwise (also for the tool: its parts get
    theirs from the reconstruction's colour-keyed table, ``reconstruct.COLOUR_MATERIALS``)."""
    from physforge.robot.reconstruct import MaterialPrior

    if task == "pick_wedge" and name == "wedge":
        return MaterialPrior(name="rubber", density=(1000.0, 1400.0), friction=(0.8, 1.2))
    return MaterialPrior()


def geom_points(geom: Geom) -> np.ndarray | None:
    """(n, 3) m, body frame: a box geom's 8 corners or an array mesh geom's scaled vertices, placed
    by the geom's pose; None for any other shape."""
    shape = geom.shape
    if isinstance(shape, Box):
        points = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * shape.half_extents
    elif isinstance(shape, Mesh) and shape.vertices is not None:
        points = np.asarray(shape.vertices) * np.array(shape.scale)
    else:
        return None
    transform = matrix_of(geom.pose.position, geom.pose.quaternion)
    return points @ transform[:3, :3].T + transform[:3, 3]


def extent(body: Body) -> np.ndarray | None:
    """(3,) m, the axis-aligned size, body frame, of the body's colliding geoms that are boxes or array
    meshes together, else None."""
    corners = [points for points in (geom_points(g) for g in body.geoms if g.collide) if points is not None]
    return np.ptp(np.concatenate(corners), axis=0) if corners else None


def definition(task: str) -> TaskDefinition:
    if task not in DEFINITIONS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return DEFINITIONS[task]


def min_jerk(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10 - 15 * u + 6 * u**2)


def _pose_matrix(position, yaw: float = 0.0) -> np.ndarray:
    transform = np.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    transform[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    transform[:3, 3] = position
    return transform


#: The chest of drawers used by the drawer task (library seed; two drawers, 0.3 m high) and the
#: top drawer's opening in the demonstration's first frame, m (ajar, so the fingers fit behind
#: its front panel).
DRAWER_CHEST_SEED = 11
DRAWER_START = 0.06


@functools.lru_cache(maxsize=4)
def drawer_chest(seed: int = DRAWER_CHEST_SEED):
    """(chest bodies placed in front of the robot, name of the drawer to open): a library chest
    of drawers, turned so its drawers slide towards the robot (-x); the top drawer, renamed
    ``drawer`` and left ``DRAWER_START`` ajar, is the task's."""
    import dataclasses

    from physforge.assets import build, library

    asset = build.build_asset(library.generate("drawer_chest", library.object_rng(seed, 0), seed=seed),
                              build.BuildConfig(base="fixed"))
    depth = asset.annotation.dimensions[1]
    placement = Pose.from_axis_angle((0.50 + depth / 2, 0.0, 0.0), (0, 0, 1), math.pi / 2)
    drawers = [b for b in asset.world.bodies if b.joint.type == "prismatic"]
    top = max(drawers, key=lambda b: b.pose.position[2])

    def rename(name: str | None) -> str | None:
        return None if name is None else ("drawer" if name == top.name else "chest_" + name)

    bodies = []
    for body in asset.world.bodies:
        joint = dataclasses.replace(body.joint, initial_position=DRAWER_START) if body.name == top.name else body.joint
        bodies.append(Body(rename(body.name), body.geoms, pose=placement if body.parent is None else body.pose,
                           joint=joint, inertial=body.inertial, parent=rename(body.parent)))
    return tuple(bodies), "drawer"


def ground_truth_scene(task: str) -> tuple[tuple[Body, ...], dict[str, np.ndarray]]:
    """(bodies, named goal positions (3,) m) of the task's scene as the demonstration shows it."""
    spec = definition(task)
    if spec.name == "push":
        cube = Body("cube", (Geom(Box((0.025, 0.025, 0.025)), material=CUBE_MATERIAL, rgba=(0.85, 0.3, 0.2, 1)),),
                    Pose((0.5, -0.08, 0.025)))
        return (cube,), {"goal": np.array([0.5, 0.08, 0.025])}
    if spec.name == "pick_place":
        cube = Body("cube", (Geom(Box((0.02, 0.02, 0.02)), material=CUBE_MATERIAL, rgba=(0.85, 0.3, 0.2, 1)),),
                    Pose((0.5, -0.12, 0.02)))
        return (cube,), {"goal": np.array([0.48, 0.12, 0.02])}
    if spec.name == "stack":
        cube = Body("cube", (Geom(Box((0.02, 0.02, 0.02)), material=CUBE_MATERIAL, rgba=(0.85, 0.3, 0.2, 1)),),
                    Pose((0.48, -0.12, 0.02)))
        base = Body("base_block", (Geom(Box((0.03, 0.03, 0.025)), material=Material("wood", 700.0, (0.9, 0.005, 1e-4)),
                                         rgba=(0.3, 0.5, 0.85, 1)),), Pose((0.5, 0.1, 0.025)))
        return (cube, base), {"goal": np.array([0.5, 0.1, 0.05 + 0.02])}
    if spec.name == "pick_wedge":
        mesh = wedge_mesh()
        centre_height = float(-np.asarray(mesh.vertices)[:, 2].min())
        wedge = Body("wedge", (Geom(mesh, material=WEDGE_MATERIAL, rgba=(0.2, 0.2, 0.22, 1)),),
                     Pose((0.5, -0.06, centre_height)))
        return (wedge,), {"goal": np.array([0.48, 0.14, centre_height])}
    if spec.name == "pick_tool":
        height = TOOL_SECTION / 2
        return (tool_body((0.5, -0.06, height)),), {"goal": np.array([0.48, 0.14, height])}
    bodies, drawer = drawer_chest()
    return bodies, {}


def demo_motion(task: str, initial: np.ndarray, goal: np.ndarray | None = None) -> np.ndarray:
    """(horizon + 1, 4, 4) world-from-object poses of the demonstrated motion from ``initial``:
    still until ``contact_step``, then a min-jerk move (an arc for pick-and-place and stack, a
    straight slide for push and drawer), then still."""
    spec = definition(task)
    steps = np.arange(spec.horizon + 1)
    u = (steps - spec.contact_step) / spec.motion_steps
    s = min_jerk(u)
    p0 = initial[:3, 3]
    poses = np.repeat(initial[None], len(steps), axis=0)
    if spec.kind == "drawer":
        poses[:, :3, 3] = p0 + s[:, None] * np.array([-DRAWER_OPENING, 0.0, 0.0])
        return poses
    delta = goal - p0
    poses[:, :3, 3] = p0 + s[:, None] * delta
    if spec.kind == "grasp":
        poses[:, 2, 3] += 0.10 * np.sin(math.pi * np.clip(u, 0, 1))
        yaw = 0.4 * s if task == "pick_place" else 0.0 * s
        for k, angle in enumerate(yaw):
            poses[k, :3, :3] = _pose_matrix((0, 0, 0), float(angle))[:3, :3] @ initial[:3, :3]
    return poses


@dataclass
class DemoVideo:
    """rgb: (n, H, W, 3) uint8; depth: (n, H, W) float32 m; segmentation: (n, H, W) int32 (body index
    + 1); intrinsics (3, 3); camera_rotation (3, 3) world-from-camera; camera_position (3,) m;
    true_poses: (n, 4, 4) the object's simulated poses; body_index: name -> segmentation id."""

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray
    intrinsics: np.ndarray
    camera_rotation: np.ndarray
    camera_position: np.ndarray
    true_poses: np.ndarray
    body_index: dict[str, int]
    true_initial: dict[str, np.ndarray] = field(default_factory=dict)


def matrix_of(position, quaternion) -> np.ndarray:
    w, x, y, z = quaternion
    transform = np.eye(4)
    transform[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    transform[:3, 3] = position
    return transform


def quaternion_of(rotation: np.ndarray) -> np.ndarray:
    from physforge.assets.robot_urdf import _quaternion

    return np.array(_quaternion(rotation))


def render_demo(task: str, *, size: int = VIDEO_SIZE, rgb: bool = True, rgb_frames: int | None = None) -> DemoVideo:
    """Render the demonstration of ``task`` (the object moving as demonstrated, no robot); with
    ``rgb``, colour for the first ``rgb_frames`` frames (None: all of them)."""
    from physforge.sim import RenderConfig, SceneRenderer, Simulator
    from physforge.sim import kinematics

    spec = definition(task)
    bodies, goals = ground_truth_scene(task)
    world = World(bodies=bodies, cameras=(spec.camera,), name=f"demo_{task}")
    sim = Simulator(world, check_stability=False)
    initial = {b.name: matrix_of(kinematics.body_pose(sim, b.name)[0], kinematics.body_quaternion(sim, b.name))
               for b in bodies if b.parent is None or b.name == spec.object}
    poses = demo_motion(task, initial[spec.object], goals.get("goal"))
    frames_rgb, depths, segs, true = [], [], [], []
    renderer = SceneRenderer(sim.compiled, RenderConfig(size, size))
    try:
        for pose in poses:
            if spec.kind == "drawer":
                opening = DRAWER_START + float(initial[spec.object][0, 3] - pose[0, 3])
                kinematics.set_joint_positions(sim, {spec.object: opening})
            else:
                sim.set_body_pose(spec.object, pose[:3, 3], quaternion_of(pose[:3, :3]))
            position, rotation = kinematics.body_pose(sim, spec.object)
            actual = np.eye(4)
            actual[:3, :3], actual[:3, 3] = rotation, position
            true.append(actual)
            depths.append(renderer.depth(sim.data, "demo"))
            segs.append(renderer.segmentation(sim.data, "demo"))
            if rgb and (rgb_frames is None or len(frames_rgb) < rgb_frames):
                frames_rgb.append(renderer.rgb(sim.data, "demo"))
    finally:
        renderer.close()
    camera = spec.camera
    return DemoVideo(rgb=np.array(frames_rgb) if rgb else np.zeros((0, size, size, 3), np.uint8),
                     depth=np.array(depths), segmentation=np.array(segs),
                     intrinsics=camera.intrinsics(size, size), camera_rotation=camera.rotation_matrix(),
                     camera_position=np.array(camera.position), true_poses=np.array(true),
                     body_index={b.name: i + 1 for i, b in enumerate(bodies)}, true_initial=initial)


@dataclass(frozen=True)
class TaskContext:
    """A task grounded by perception.

    scene_bodies: the bodies of the robot's world (reconstructed rigid objects, or the chest).
    reference: (horizon + 1, 4, 4) demonstrated object motion relative to its first frame, world
        frame (Δ[t] = T[t] T[0]^-1), from tracking (or ground truth when perception is off).
    demo_initial: (4, 4) the object's first-frame pose as perceived (what direct retargeting uses).
    goals: named positions (3,) m (e.g. the stack base) for success checks; sizes: object -> (3,) m.
    priors: object -> MaterialPrior; confidence: (horizon + 1,) tracking confidence.
    errors: measured perception errors against ground truth (m, rad).
    part_priors: object -> one MaterialPrior per geom, for a reconstructed multi-part object (its
        parts' colour-keyed priors, in its geoms' order); empty otherwise (and with perception off).
    """

    task: TaskDefinition
    scene_bodies: tuple[Body, ...]
    reference: np.ndarray
    demo_initial: np.ndarray
    sizes: dict[str, np.ndarray]
    priors: dict
    confidence: np.ndarray
    errors: dict[str, float]
    perception: bool
    part_priors: dict = field(default_factory=dict)


def model_points(body: Body, rng: np.random.Generator, spacing: float = 0.003) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, 3) m, outward normals (n, 3)), body frame: samples of the surfaces of the body's
    colliding geoms, about one per ``spacing``^2 of area (2,000 to 60,000 points)."""
    import trimesh

    from physforge.world import Mesh

    meshes = []
    for geom in body.geoms:
        if not geom.collide:
            continue
        if isinstance(geom.shape, Box):
            mesh = trimesh.creation.box(extents=2 * np.array(geom.shape.half_extents))
        elif isinstance(geom.shape, Mesh) and geom.shape.vertices is not None:
            mesh = trimesh.Trimesh(geom.shape.vertices * np.array(geom.shape.scale), geom.shape.faces, process=False)
        else:
            continue
        mesh.apply_transform(matrix_of(geom.pose.position, geom.pose.quaternion))
        meshes.append(mesh)
    combined = trimesh.util.concatenate(meshes)
    count = int(np.clip(combined.area / spacing**2, 2000, 60000))
    points, faces = trimesh.sample.sample_surface(combined, count, seed=int(rng.integers(2**31)))
    return np.asarray(points, dtype=np.float64), np.asarray(combined.face_normals[faces], dtype=np.float64)


@functools.lru_cache(maxsize=16)
def prepare_task(task: str, perception: bool = True, seed: int = 0) -> TaskContext:
    """Ground ``task``: render its demonstration, reconstruct the first frame, track the object
    (perception=True), or take both from the simulator (perception=False). Cached."""
    from physforge.robot.reconstruct import reconstruct
    from physforge.robot.tracking import rotation_angle, track_object

    spec = definition(task)
    rng = np.random.default_rng(np.random.SeedSequence([seed, TASKS.index(task)]))
    bodies, goals = ground_truth_scene(task)
    # colour only for the first frame: reconstruction reads the parts' materials from it
    demo = render_demo(task, rgb_frames=1)
    truth = demo.true_poses
    true_reference = truth @ np.linalg.inv(truth[0])
    sizes = {b.name: extent(b) for b in bodies if b.parent is None and extent(b) is not None}
    priors = {name: material_prior(task, name) for name in sizes}
    errors: dict[str, float] = {}
    if not perception:
        return TaskContext(spec, bodies, true_reference, truth[0], sizes, priors, np.ones(len(truth)), errors, False)
    if spec.kind == "drawer":
        scene = bodies
        obj = next(b for b in bodies if b.name == spec.object)
        points, _ = model_points(obj, rng)
        initial = truth[0]  # the articulated model is registered to the first frame as given
    else:
        masks = {name: demo.segmentation[0] == demo.body_index[name] for name in sizes}
        recon = reconstruct(demo.depth[0], demo.intrinsics, masks, rng, camera_rotation=demo.camera_rotation,
                            camera_position=demo.camera_position, priors=priors, rgb=demo.rgb[0])
        scene = tuple(o.body for o in recon.objects.values())
        for name, o in recon.objects.items():
            true_centre = demo.true_initial[name][:3, 3]
            errors[f"{name}_position_error_m"] = float(np.linalg.norm(np.array(o.body.pose.position) - true_centre))
            errors[f"{name}_size_error_m"] = float(np.abs(o.size - sizes[name]).max())
        errors["plane_normal_error_rad"] = float(math.acos(min(1.0, abs(recon.plane[2]) / np.linalg.norm(recon.plane[:3]))))
        obj = recon.objects[spec.object].body
        points, _ = model_points(obj, rng)
        initial = matrix_of(obj.pose.position, obj.pose.quaternion)
        sizes = {name: o.size for name, o in recon.objects.items()}
    track = track_object(demo.depth, demo.segmentation == demo.body_index[spec.object], demo.intrinsics,
                         demo.camera_rotation, demo.camera_position, points, initial, rng)
    reference = track.relative()
    position_errors = np.linalg.norm(reference[:, :3, 3] - true_reference[:, :3, 3], axis=1)
    rotation_errors = np.array([rotation_angle(a[:3, :3], b[:3, :3]) for a, b in zip(reference, true_reference)])
    errors["track_position_error_mean_m"] = float(position_errors.mean())
    errors["track_position_error_max_m"] = float(position_errors.max())
    errors["track_rotation_error_mean_rad"] = float(rotation_errors.mean())
    errors["track_confidence_mean"] = float(track.confidence.mean())
    part_priors = ({name: tuple(part.prior for part in o.parts) for name, o in recon.objects.items() if o.parts}
                   if spec.kind != "drawer" else {})
    return TaskContext(spec, scene, reference, initial, sizes, priors, track.confidence, errors, True, part_priors)


def reconstruct_to_folder(task: str, out_dir, *, overwrite: bool = False) -> dict:
    """Render ``task``'s demonstration, reconstruct its first frame and track the object; write
    first_frame.png, depth.npy, masks.npz, demo.mp4, world.json (the reconstructed scene),
    track.json (poses, confidence, ground truth) and errors.json. Returns the errors."""
    from physforge.outputs import staged_directory, write_json
    from physforge.sim import write_png, write_video
    from physforge.world import save_world

    context = prepare_task(task, True)
    demo = render_demo(task)
    with staged_directory(out_dir, overwrite=overwrite) as staging:
        write_png(demo.rgb[0], staging / "first_frame.png")
        np.save(staging / "depth.npy", demo.depth[0])
        np.savez_compressed(staging / "masks.npz", **{name: demo.segmentation[0] == index
                                                      for name, index in demo.body_index.items()})
        write_video(demo.rgb, staging / "demo.mp4", fps=1.0 / CONTROL_DT)
        save_world(World(bodies=context.scene_bodies, name=f"reconstruction_{task}"), staging / "world.json")
        write_json(staging / "track.json", {"reference_relative_poses": context.reference.tolist(),
                                            "confidence": context.confidence.tolist(),
                                            "true_poses": demo.true_poses.tolist(),
                                            "intrinsics": demo.intrinsics.tolist(),
                                            "camera_rotation": demo.camera_rotation.tolist(),
                                            "camera_position": demo.camera_position.tolist()})
        write_json(staging / "errors.json", context.errors)
    return context.errors
