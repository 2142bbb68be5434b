"""(image, target text) pairs for single-image asset generation, rendered from library objects.

Each library object is built into its sim-ready world (``assets.build``) and rendered through
``physforge.sim`` (the one renderer) from randomised viewpoints, lighting, ground and backdrop
colours and joint states. The target is the multi-round conversation of ``image_text``: the
global physical answer for the object at rest, then one round per part with its voxel tokens.

Splits: ``train``; ``test_objects`` (the training categories, objects from another run seed:
unseen seeds); ``test_categories`` (categories never trained on). Output folder::

    meta/info.json            format version, features (dtype, unit), counts, config, splits
    {split}/data.parquet      Hugging Face datasets Parquet: messages + images (TRL conversational
                              form), object_id, category, seed, index, view, annotation (JSON, SI),
                              camera, joint_state (JSON)
    config.json

    from datasets import load_dataset
    ds = load_dataset("parquet", data_files={"train": "runs/img/train/data.parquet"})["train"]
"""

from __future__ import annotations

import io
import json
import logging
import math
import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from physforge.configs import ConfigError, JsonConfig, check_float, check_int

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SPLITS = ("train", "test_objects", "test_categories")
#: Offsets of each split's run seed from the config's seed: splits never share an object.
SPLIT_SEED_OFFSET = {"train": 0, "test_objects": 1_000_003, "test_categories": 2_000_003}


class ImageDataConfigError(ConfigError):
    """An image-data config holds a bad value; ``path`` names the field."""


@dataclass(frozen=True)
class ImageDataConfig(JsonConfig):
    """What ``physforge asset image-data`` renders.

    out: dataset folder. seed: run seed (object i of split s uses SeedSequence([seed + offset(s), i])).
    train_objects / test_objects: objects per training category in train / test_objects.
    test_category_objects: objects per held-out category. views: images per object (each its
    own joint state, camera, light and colours). image_size: px (square). holdout_categories:
    categories only in test_categories. categories: the categories to use (empty: every library
    category). resolution: voxel grid edge of the geometry rounds. ground_checker_m: edge (m) of
    the ground's checker squares drawn under every object, a metric scale cue (the camera is framed
    on the object, so without it the image barely shows the object's size); null keeps the
    world's default faint 0.25 m pattern. ground_checker_shade: the dark squares' colour as a
    fraction of the ground colour (used with ground_checker_m; lower is higher contrast).
    """

    out: str
    seed: int = 0
    train_objects: int = 40
    test_objects: int = 4
    test_category_objects: int = 4
    views: int = 2
    image_size: int = 96
    holdout_categories: tuple[str, ...] = ("microwave", "laptop")
    categories: tuple[str, ...] = ()
    resolution: int = 16
    ground_checker_m: float | None = None
    ground_checker_shade: float = 0.4

    error_type = ImageDataConfigError

    def __post_init__(self):
        from physforge.assets.library import CATEGORIES

        if not isinstance(self.out, str) or not self.out:
            raise ImageDataConfigError("out", "expected a folder path")
        check_int("seed", self.seed, 0, 2**31, ImageDataConfigError)
        check_int("train_objects", self.train_objects, 1, 100_000, ImageDataConfigError)
        check_int("test_objects", self.test_objects, 0, 100_000, ImageDataConfigError)
        check_int("test_category_objects", self.test_category_objects, 0, 100_000, ImageDataConfigError)
        check_int("views", self.views, 1, 1000, ImageDataConfigError)
        check_int("image_size", self.image_size, 16, 1024, ImageDataConfigError)
        if self.resolution not in (16, 32):
            raise ImageDataConfigError("resolution", f"expected 16 or 32 cells, got {self.resolution!r}")
        if self.ground_checker_m is not None:
            check_float("ground_checker_m", self.ground_checker_m, 0.005, 10.0, ImageDataConfigError)
        check_float("ground_checker_shade", self.ground_checker_shade, 0.0, 1.0, ImageDataConfigError)
        object.__setattr__(self, "holdout_categories", tuple(self.holdout_categories))
        object.__setattr__(self, "categories", tuple(self.categories))
        for name in ("holdout_categories", "categories"):
            for c in getattr(self, name):
                if c not in CATEGORIES:
                    raise ImageDataConfigError(name, f"unknown category {c!r}; choose from {sorted(CATEGORIES)}")
        if not self.train_categories():
            raise ImageDataConfigError("holdout_categories", "holds out every category; keep at least one to train on")

    def all_categories(self) -> tuple[str, ...]:
        from physforge.assets.library import CATEGORIES

        return tuple(sorted(self.categories or CATEGORIES))

    def train_categories(self) -> tuple[str, ...]:
        return tuple(c for c in self.all_categories() if c not in self.holdout_categories)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(getattr(self, f.name)) if isinstance(getattr(self, f.name), tuple)
                else getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ObjectSpec:
    split: str
    category: str
    index: int
    run_seed: int

    @property
    def object_id(self) -> str:
        return f"{self.split}-{self.category}-{self.index:04d}"


def object_specs(config: ImageDataConfig) -> list[ObjectSpec]:
    specs = []
    counts = {"train": (config.train_categories(), config.train_objects),
              "test_objects": (config.train_categories(), config.test_objects),
              "test_categories": (tuple(c for c in config.all_categories() if c in config.holdout_categories),
                                  config.test_category_objects)}
    for split in SPLITS:
        categories, per = counts[split]
        run_seed = config.seed + SPLIT_SEED_OFFSET[split]
        for c_index, category in enumerate(categories):
            for i in range(per):
                # index folds in the category so each category's objects come from their own streams
                specs.append(ObjectSpec(split, category, c_index * 100_000 + i, run_seed))
    return specs


def library_object(spec: ObjectSpec):
    """(SourceAsset, SimAsset) of one object of the dataset."""
    from physforge.assets.build import build_asset
    from physforge.assets.library import generate, object_rng

    source = generate(spec.category, object_rng(spec.run_seed, spec.index), seed=spec.run_seed,
                      name=f"{spec.category}_{spec.run_seed}_{spec.index}")
    return source, build_asset(source)


def part_voxels(source, resolution: int) -> dict[int, np.ndarray]:
    """Part label -> (n, n, n) bool occupancy in the object's normalised grid (``tokens.Grid.around``)."""
    from physforge.assets.tokens import Grid, voxelize

    points = np.concatenate([v for v, _ in source.meshes.values()])
    grid = Grid.around(points, resolution)
    return {label: voxelize(v, f, grid) for label, (v, f) in source.meshes.items()}


def random_joint_state(annotation, rng: np.random.Generator) -> dict[str, float]:
    """Body name -> joint position (rad or m): rest (0) half of the time, else uniform in range."""
    state = {}
    for group in annotation.groups:
        if group.joint_type not in ("revolute", "prismatic", "revolute_prismatic") or group.range is None:
            continue
        low, high = group.range
        value = 0.0 if rng.random() < 0.5 else float(rng.uniform(low, high))
        state[annotation.body_name(group)] = float(np.clip(value, low, high))
    return state


def scene_world(asset, joint_state: dict[str, float], rng: np.random.Generator, *,
                ground_checker_m: float | None = None, ground_checker_shade: float = 0.4):
    """The asset's world at ``joint_state`` with a random camera, light, ground and backdrop
    (``(world, camera)``). ground_checker_m: the ground's checker square edge, m, drawn at
    ``ground_checker_shade`` contrast (None: the world's default faint pattern); it does not
    change what is drawn from ``rng``."""
    from physforge.assets.build import make_world
    from physforge.world import Body, Box, Camera, Geom, Ground, Joint, Light, Pose

    world = make_world(asset.annotation, asset.parts, asset.body_origins, asset.config, joint_positions=joint_state)
    dims = np.array(asset.annotation.dimensions)
    centre = np.array([0.0, 0.0, dims[2] / 2])
    radius = 0.5 * float(np.linalg.norm(dims))
    fovy = math.radians(45.0)
    azimuth = math.radians(90.0 + rng.uniform(-65.0, 65.0))  # the library's front is +y
    elevation = math.radians(rng.uniform(12.0, 45.0))
    distance = radius / math.sin(fovy / 2) * rng.uniform(1.0, 1.3)
    direction = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                          math.sin(elevation)])
    camera = Camera("view", position=tuple(centre + distance * direction), look_at=tuple(centre), fovy=fovy)
    light_dir = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), -rng.uniform(0.6, 1.0)])
    light = Light("key", position=tuple(centre - 3 * radius * light_dir / np.linalg.norm(light_dir)),
                  direction=tuple(light_dir), diffuse=tuple([float(rng.uniform(0.45, 0.95))] * 3))
    fill = Light("fill", position=tuple(centre + distance * direction), direction=tuple(-direction),
                 diffuse=tuple([float(rng.uniform(0.1, 0.35))] * 3), directional=True)
    ground = Ground(rgba=(*rng.uniform(0.25, 0.95, 3).round(3).tolist(), 1.0))
    if ground_checker_m is not None:
        ground = dataclasses.replace(ground, checker_square=ground_checker_m, checker_shade=ground_checker_shade)
    # a backdrop behind the object, facing the camera, so the background is not always black
    back = centre - 2.5 * radius * np.array([math.cos(azimuth), math.sin(azimuth), 0.0])
    half = 0.5 * (azimuth - math.pi / 2)
    backdrop = Body("backdrop", (Geom(Box((6 * radius, 0.01, 6 * radius)), collide=False,
                                      rgba=(*rng.uniform(0.2, 0.95, 3).round(3).tolist(), 1.0)),),
                    Pose(tuple(back), (math.cos(half), 0.0, 0.0, math.sin(half))), Joint("fixed"))
    world = world.replace(cameras=(camera,), lights=(light, fill), ground=ground, bodies=world.bodies + (backdrop,))
    return world, camera


class ViewRenderer:
    """Renders scene worlds through one ``physforge.sim.SceneRenderer`` (one GL context)."""

    def __init__(self, size: int):
        from physforge.sim import RenderConfig, SceneRenderer

        self.renderer = SceneRenderer(None, RenderConfig(size, size))

    def render(self, world) -> np.ndarray:
        """(size, size, 3) uint8 from the world's first camera."""
        from physforge.sim import Simulator

        sim = Simulator(world, check_stability=False)
        self.renderer.bind(sim.compiled)
        return self.renderer.rgb(sim.data, world.cameras[0].name)

    def close(self) -> None:
        self.renderer.close()


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def iter_rows(config: ImageDataConfig, specs: list[ObjectSpec]) -> Iterator[dict[str, Any]]:
    """One row per (object, view), deterministic in the config's seed."""
    from physforge.assets.image_text import conversation
    from physforge.assets.schema import annotation_to_dict

    renderer = ViewRenderer(config.image_size)
    try:
        for spec in specs:
            source, asset = library_object(spec)
            voxels = part_voxels(source, config.resolution)
            messages = conversation(source.annotation, voxels)
            annotation = json.dumps(annotation_to_dict(source.annotation), sort_keys=True)
            for view in range(config.views):
                rng = np.random.default_rng(np.random.SeedSequence([spec.run_seed, spec.index, 7919, view]))
                joint_state = random_joint_state(source.annotation, rng)
                world, camera = scene_world(asset, joint_state, rng, ground_checker_m=config.ground_checker_m,
                                            ground_checker_shade=config.ground_checker_shade)
                image = renderer.render(world)
                yield {"object_id": spec.object_id, "split": spec.split, "category": spec.category,
                       "seed": spec.run_seed, "index": spec.index, "view": view,
                       "messages": messages, "images": [{"bytes": png_bytes(image), "path": None}],
                       "annotation": annotation, "joint_state": json.dumps(joint_state, sort_keys=True),
                       "camera": {"position": list(camera.position), "look_at": list(camera.look_at),
                                  "fovy": camera.fovy}}
    finally:
        renderer.close()


def _schema():
    import pyarrow as pa

    from physforge.data.schema import IMAGE, with_hf_features

    content = pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))
    message = pa.struct([("role", pa.string()), ("content", content)])
    vec = pa.list_(pa.float64())
    schema = pa.schema([("object_id", pa.string()), ("split", pa.string()), ("category", pa.string()),
                        ("seed", pa.int64()), ("index", pa.int64()), ("view", pa.int64()),
                        ("messages", pa.list_(message)), ("images", pa.list_(IMAGE)), ("annotation", pa.string()),
                        ("joint_state", pa.string()),
                        ("camera", pa.struct([("position", vec), ("look_at", vec), ("fovy", pa.float64())]))])
    schema = with_hf_features(schema)
    meta = json.loads(schema.metadata[b"huggingface"])
    meta["info"]["features"]["images"] = {"feature": {"_type": "Image"}, "_type": "List"}
    return schema.with_metadata({"huggingface": json.dumps(meta)})


FEATURES = {
    "object_id": ("string", "", "split-category-index"),
    "messages": ("list<message>", "", "TRL conversational: image + global answer, then one round per part"),
    "images": ("list<Image>", "(1,)", "PNG, image_size x image_size RGB"),
    "annotation": ("string", "", "the ground-truth annotation JSON, SI units (m, kg/m^3, rad)"),
    "joint_state": ("string", "", "JSON body -> joint position shown in the image (rad or m)"),
    "camera": ("struct", "", "position m, look_at m (world frame = object frame), fovy rad"),
    "seed": ("int64", "", "run seed of the split"), "index": ("int64", "", "object index in the run"),
    "view": ("int64", "", "view number of the object"),
}


def write_image_dataset(config: ImageDataConfig, *, overwrite: bool = False, progress=None) -> dict[str, Any]:
    """Render the dataset into ``config.out`` (written atomically); returns meta/info.json's content."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import physforge
    from physforge.outputs import staged_directory, write_json

    specs = object_specs(config)
    schema = _schema()
    counts: dict[str, int] = {}
    with staged_directory(config.out, overwrite=overwrite) as staging:
        for split in SPLITS:
            chosen = [s for s in specs if s.split == split]
            rows = []
            for row in iter_rows(config, chosen):
                rows.append(row)
                if progress is not None:
                    progress(row)
            counts[split] = len(rows)
            if not rows:
                continue
            (staging / split).mkdir()
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), staging / split / "data.parquet")
        info = {"format": "physforge.asset_images", "format_version": FORMAT_VERSION,
                "physforge_version": physforge.__version__, "splits": counts,
                "objects": {s: sum(1 for p in specs if p.split == s) for s in SPLITS},
                "categories": {"train": list(config.train_categories()), "held_out": list(config.holdout_categories)},
                "resolution": config.resolution, "image_size": config.image_size,
                "features": {k: {"dtype": d, "shape": s, "meaning": m} for k, (d, s, m) in FEATURES.items()}}
        (staging / "meta").mkdir()
        write_json(staging / "meta" / "info.json", info)
        write_json(staging / "config.json", config.to_dict())
    return info


def read_split(folder: str | Path, split: str) -> list[dict[str, Any]]:
    """Rows of one split (images as PNG bytes); a clear error if the folder or split is missing."""
    import pyarrow.parquet as pq

    from physforge.errors import InputFileError

    folder = Path(folder)
    if not (folder / "meta" / "info.json").is_file():
        raise InputFileError(folder, "not an image-asset dataset (no meta/info.json); write one with "
                             "'physforge asset image-data'")
    path = folder / split / "data.parquet"
    if not path.is_file():
        raise InputFileError(path, f"split {split!r} is missing; splits here: "
                             f"{json.loads((folder / 'meta' / 'info.json').read_text())['splits']}")
    return pq.read_table(path).to_pylist()
