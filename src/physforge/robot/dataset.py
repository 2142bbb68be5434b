"""A LeRobot-style dataset of successful rollouts: Parquet frames, MP4 videos, meta/info.json.

Layout (LeRobot v2-style)::

    meta/info.json        format version, fps, features (dtype, shape, unit, names)
    meta/episodes.jsonl   one line per episode: index, task, length, seed, physics
    meta/tasks.jsonl      task index -> task text
    data/chunk-000/episode_000000.parquet
    videos/chunk-000/observation.images.view/episode_000000.mp4

``action`` holds the executable joint-space command of each step: 7 arm joint targets (rad)
and the per-finger opening target (m), which ``replay_joint_trajectory`` re-executes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physforge.robot.env import OBSERVATION_FIELDS, OBSERVATION_SIZE
from physforge.robot.panda import ARM_JOINTS
from physforge.robot.tasks import CONTROL_DT

FORMAT_VERSION = "physforge-lerobot-1.0"
CHUNK = "chunk-000"
VIDEO_KEY = "observation.images.view"
TASK_TEXT = {"push": "push the block to the target", "pick_place": "pick up the block and place it at the target",
             "stack": "stack the small block on the large block", "open_drawer": "open the top drawer",
             "pick_wedge": "pick up the wedge and place it at the target",
             "pick_tool": "pick up the tool and place it at the target"}


class DatasetWriter:
    """Collects successful episodes (``add``) and writes the folder (``finish``)."""

    def __init__(self, root: str | Path, *, video: bool = True, image_size: int = 128):
        self.root = Path(root)
        self.video = video
        self.image_size = image_size
        self.episodes: list[dict] = []
        self.total_frames = 0
        self.tasks: dict[str, int] = {}
        (self.root / "data" / CHUNK).mkdir(parents=True, exist_ok=True)
        (self.root / "meta").mkdir(parents=True, exist_ok=True)

    def add(self, task: str, seed: int, steps: list[dict], summary: dict, frames: list[np.ndarray] | None) -> int:
        """Write one episode; ``steps`` as recorded by ``learn.evaluate``; ``frames`` (n, H, W, 3)
        uint8 for the video (one per step). Returns the episode index."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        index = len(self.episodes)
        task_index = self.tasks.setdefault(task, len(self.tasks))
        n = len(steps)
        table = pa.table({
            "observation.state": pa.array([s["observation"].astype(np.float32).tolist() for s in steps],
                                          type=pa.list_(pa.float32(), OBSERVATION_SIZE)),
            "action": pa.array([s["joint_command"].astype(np.float32).tolist() for s in steps],
                               type=pa.list_(pa.float32(), 8)),
            "policy_action": pa.array([s["action"].astype(np.float32).tolist() for s in steps],
                                      type=pa.list_(pa.float32(), 4)),
            "next.reward": pa.array([float(s["reward"]) for s in steps], type=pa.float32()),
            "next.done": pa.array([bool(s["done"]) for s in steps]),
            "timestamp": pa.array(np.arange(n, dtype=np.float32) * CONTROL_DT, type=pa.float32()),
            "frame_index": pa.array(np.arange(n), type=pa.int64()),
            "episode_index": pa.array(np.full(n, index), type=pa.int64()),
            "index": pa.array(self.total_frames + np.arange(n), type=pa.int64()),
            "task_index": pa.array(np.full(n, task_index), type=pa.int64()),
        })
        path = self.root / "data" / CHUNK / f"episode_{index:06d}.parquet"
        temporary = path.with_name("." + path.name + ".tmp")
        pq.write_table(table, temporary)
        temporary.replace(path)
        if self.video and frames:
            from physforge.sim import write_video

            folder = self.root / "videos" / CHUNK / VIDEO_KEY
            folder.mkdir(parents=True, exist_ok=True)
            write_video(np.asarray(frames), folder / f"episode_{index:06d}.mp4", fps=1.0 / CONTROL_DT)
        self.episodes.append({"episode_index": index, "tasks": [TASK_TEXT[task]], "length": n, "seed": seed,
                              "success": bool(summary["success"]), "physics": summary.get("physics", {})})
        self.total_frames += n
        return index

    def finish(self) -> Path:
        from physforge.outputs import write_json

        features = {
            "observation.state": {"dtype": "float32", "shape": [OBSERVATION_SIZE],
                                  "names": [f"{name}[{k}]" for name, size in OBSERVATION_FIELDS for k in range(size)],
                                  "unit": "m, rad, quaternion (w, x, y, z), phase in [0, 1]; world frame"},
            "action": {"dtype": "float32", "shape": [8], "names": list(ARM_JOINTS) + ["finger_opening"],
                       "unit": "rad (arm joint position targets), m (per-finger opening target)"},
            "policy_action": {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "gripper"],
                              "unit": "normalised [-1, 1] residual or scratch action"},
            "next.reward": {"dtype": "float32", "shape": [1]},
            "next.done": {"dtype": "bool", "shape": [1]},
            "timestamp": {"dtype": "float32", "shape": [1], "unit": "s"},
            "frame_index": {"dtype": "int64", "shape": [1]},
            "episode_index": {"dtype": "int64", "shape": [1]},
            "index": {"dtype": "int64", "shape": [1]},
            "task_index": {"dtype": "int64", "shape": [1]},
        }
        if self.video:
            features[VIDEO_KEY] = {"dtype": "video", "shape": [self.image_size, self.image_size, 3],
                                   "names": ["height", "width", "channel"], "video_info": {"video.fps": 1 / CONTROL_DT,
                                                                                          "video.codec": "h264"}}
        info = {"codebase_version": "v2.0", "format_version": FORMAT_VERSION, "robot_type": "franka_panda",
                "fps": 1.0 / CONTROL_DT, "total_episodes": len(self.episodes), "total_frames": self.total_frames,
                "total_tasks": len(self.tasks), "chunks_size": 1000, "total_chunks": 1,
                "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
                "video_path": ("videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
                               if self.video else None),
                "features": features}
        write_json(self.root / "meta" / "info.json", info)
        with open(self.root / "meta" / "episodes.jsonl", "w") as handle:
            for episode in self.episodes:
                handle.write(json.dumps(episode) + "\n")
        with open(self.root / "meta" / "tasks.jsonl", "w") as handle:
            for task, index in self.tasks.items():
                handle.write(json.dumps({"task_index": index, "task": TASK_TEXT[task]}) + "\n")
        return self.root


def validate_dataset(root: str | Path) -> dict:
    """Check the folder against its meta/info.json (files present, columns, shapes, frame counts);
    returns info. Raises ValueError naming the first problem."""
    import pyarrow.parquet as pq

    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise ValueError(f"{root} has no meta/info.json; it is not a physforge robot dataset")
    info = json.loads(info_path.read_text())
    if info.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format_version {info.get('format_version')!r}, expected {FORMAT_VERSION!r}")
    frames = 0
    for index in range(info["total_episodes"]):
        path = root / info["data_path"].format(episode_chunk=0, episode_index=index)
        if not path.is_file():
            raise ValueError(f"episode {index}: {path} is missing")
        table = pq.read_table(path)
        for name, feature in info["features"].items():
            if feature["dtype"] == "video":
                video = root / info["video_path"].format(episode_chunk=0, video_key=name, episode_index=index)
                if not video.is_file():
                    raise ValueError(f"episode {index}: video {video} is missing")
                continue
            if name not in table.column_names:
                raise ValueError(f"episode {index}: column {name!r} is missing")
            if feature["shape"][0] > 1:
                lengths = {len(v) for v in table.column(name).to_pylist()}
                if lengths != {feature["shape"][0]}:
                    raise ValueError(f"episode {index}: column {name!r} rows have lengths {lengths}, "
                                     f"expected {feature['shape'][0]}")
        frames += table.num_rows
    if frames != info["total_frames"]:
        raise ValueError(f"info.json says {info['total_frames']} frames, the Parquet files hold {frames}")
    return info


def replay_joint_trajectory(env, seed: int, commands: np.ndarray) -> dict:
    """Reset ``env`` with ``seed`` (the same physics) and execute the joint-space ``commands``
    (n, 8) open loop; returns the episode summary (success, tracking error)."""
    env.reset(seed=seed)
    for command in commands:
        env.apply_joint_command(command)
        env.t += 1
        obj = env.object_pose()
        env.errors.append(float(np.linalg.norm(obj[:3, 3] - env.reference[env.t][:3, 3])))
    return env.episode_summary(env.success())
