"""Per-frame body states of a simulation run, and their Parquet form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAJECTORY_COLUMNS = {
    "frame": "int32, frame index",
    "time": "float64, s",
    "body": "string, body name",
    "position": "3 x float64, m, world frame, body origin",
    "quaternion": "4 x float64, (w, x, y, z), world frame",
    "linear_velocity": "3 x float64, m/s, world frame, body origin",
    "angular_velocity": "3 x float64, rad/s, world frame",
    "kinetic_energy": "float64, J, this body",
    "potential_energy": "float64, J, whole world (gravity + joint springs), repeated per body",
}


@dataclass(frozen=True)
class Trajectory:
    """States of every world body at each recorded frame.

    time: (n_frames,) float64 s. position: (n_frames, n_bodies, 3) float64 m, world frame,
    body origin. quaternion: (n_frames, n_bodies, 4) (w, x, y, z). linear_velocity:
    (n_frames, n_bodies, 3) m/s at the body origin, world frame. angular_velocity: same shape,
    rad/s. kinetic_energy: (n_frames, n_bodies) J. potential_energy: (n_frames,) J, gravity
    (relative to z = 0) plus joint springs.
    """

    body_names: tuple[str, ...]
    time: np.ndarray
    position: np.ndarray
    quaternion: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray
    kinetic_energy: np.ndarray
    potential_energy: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.time)

    def body(self, name: str) -> dict[str, np.ndarray]:
        """The arrays of one body, by name (``position`` (n_frames, 3) …)."""
        index = self.body_names.index(name)
        return {"position": self.position[:, index], "quaternion": self.quaternion[:, index],
                "linear_velocity": self.linear_velocity[:, index],
                "angular_velocity": self.angular_velocity[:, index],
                "kinetic_energy": self.kinetic_energy[:, index]}

    @property
    def total_energy(self) -> np.ndarray:
        """(n_frames,) J, kinetic plus potential."""
        return self.kinetic_energy.sum(axis=1) + self.potential_energy

    def to_arrow(self):
        """A long-format ``pyarrow.Table``: one row per (frame, body); columns in TRAJECTORY_COLUMNS."""
        import pyarrow as pa

        n_frames, n_bodies = self.num_frames, len(self.body_names)

        def vectors(array: np.ndarray, width: int):
            flat = pa.array(np.ascontiguousarray(array, dtype=np.float64).reshape(-1))
            return pa.FixedSizeListArray.from_arrays(flat, width)

        return pa.table({
            "frame": pa.array(np.repeat(np.arange(n_frames, dtype=np.int32), n_bodies)),
            "time": pa.array(np.repeat(self.time, n_bodies)),
            "body": pa.array(np.tile(np.array(self.body_names, dtype=object), n_frames), pa.string()),
            "position": vectors(self.position, 3),
            "quaternion": vectors(self.quaternion, 4),
            "linear_velocity": vectors(self.linear_velocity, 3),
            "angular_velocity": vectors(self.angular_velocity, 3),
            "kinetic_energy": pa.array(self.kinetic_energy.reshape(-1)),
            "potential_energy": pa.array(np.repeat(self.potential_energy, n_bodies)),
        })

    def write_parquet(self, path: str | Path) -> Path:
        import pyarrow.parquet as pq

        path = Path(path)
        temporary = path.with_name(f".{path.name}.tmp")
        pq.write_table(self.to_arrow(), temporary)
        temporary.replace(path)
        return path

    @classmethod
    def read_parquet(cls, path: str | Path) -> "Trajectory":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        frames = table.column("frame").to_numpy()
        n_frames = int(frames.max()) + 1 if len(frames) else 0
        n_bodies = len(frames) // max(n_frames, 1)
        names = tuple(table.column("body").to_pylist()[:n_bodies])

        def stacked(column: str, width: int) -> np.ndarray:
            values = table.column(column).combine_chunks().flatten().to_numpy()
            return values.reshape(n_frames, n_bodies, width)

        return cls(
            body_names=names,
            time=table.column("time").to_numpy()[::n_bodies].copy(),
            position=stacked("position", 3), quaternion=stacked("quaternion", 4),
            linear_velocity=stacked("linear_velocity", 3), angular_velocity=stacked("angular_velocity", 3),
            kinetic_energy=table.column("kinetic_energy").to_numpy().reshape(n_frames, n_bodies),
            potential_energy=table.column("potential_energy").to_numpy()[::n_bodies].copy(),
        )
