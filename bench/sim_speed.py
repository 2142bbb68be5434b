"""Physics steps/s through physforge vs raw MuJoCo on the identical model, side by side.

    python bench/sim_speed.py            # prints JSON

Ways to step the same compiled model, alternated within each repeat; the ratios use the
median time over REPEATS (this VM's timings jitter by ±30 % run to run), from wall time and,
steadier when other work shares the machine, from this thread's CPU time:
  raw_loop      for _ in range(n): mujoco.mj_step(m, d)      (what a MuJoCo user writes)
  raw_nstep     mujoco.mj_step(m, d, nstep=n)                 (MuJoCo's fastest Python path)
  physforge     Simulator.step(n) (recording off; stability check at the end)
  physforge_run Simulator.run(..., fps=30) with full recording: per-frame poses, velocities,
                energies, contact events at every physics step, stability checks per frame
                (contacts through per-pair MuJoCo sensors in a C rollout for worlds with few body
                pairs, through the contact list read with numpy for many; see contact_tracking)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import mujoco
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from physforge.sim import Simulator  # noqa: E402
from physforge.world import Body, Box, Geom, Pose, Sphere, World, load_world  # noqa: E402

REPEATS = 11
SIM_SECONDS = 5.0


def pile(n: int) -> World:
    rng = np.random.default_rng(0)
    bodies = []
    for i in range(n):
        shape = Sphere(0.04) if i % 2 else Box((0.04, 0.04, 0.04))
        x, y = rng.uniform(-0.3, 0.3, 2)
        bodies.append(Body(f"b{i}", (Geom(shape),), Pose((float(x), float(y), 0.05 + 0.1 * i))))
    return World(name=f"pile{n}", bodies=tuple(bodies))


def measure(world: World) -> dict:
    sim = Simulator(world)
    model = sim.model
    steps = int(round(SIM_SECONDS / model.opt.timestep))
    start = sim.snapshot()
    # raw MuJoCo steps the very same MjData from the very same restored state (warm start
    # included), so both paths simulate bit-identical trajectories
    times: dict[str, list[float]] = {"raw_loop": [], "raw_nstep": [], "physforge": [], "physforge_run": []}
    cpu_times: dict[str, list[float]] = {key: [] for key in times}
    data = sim.data

    def raw_loop():
        for _ in range(steps):
            mujoco.mj_step(model, data)

    ways = {"raw_loop": raw_loop, "raw_nstep": lambda: mujoco.mj_step(model, data, nstep=steps),
            "physforge": lambda: sim.step(steps), "physforge_run": lambda: sim.run(SIM_SECONDS, fps=30)}
    for _ in range(REPEATS):
        for key, way in ways.items():
            sim.restore(start)
            t0, c0 = time.perf_counter(), time.thread_time()
            rollout = way()
            cpu_times[key].append(time.thread_time() - c0)
            times[key].append(time.perf_counter() - t0)
    rate = {k: steps / float(np.median(v)) for k, v in times.items()}
    cpu_rate = {k: steps / float(np.median(v)) for k, v in cpu_times.items()}
    return {
        "world": world.name, "bodies": len(world.bodies), "physics_steps": steps,
        "contact_pairs": len(sim.compiled.contact_pairs),
        "contact_tracking": "sensors" if sim.compiled.has_contact_sensors else "batched",
        "steps_per_s": {k: round(v) for k, v in rate.items()},
        "ratio_recording_off_vs_raw_loop": round(rate["physforge"] / rate["raw_loop"], 3),
        "ratio_recording_off_vs_raw_nstep": round(rate["physforge"] / rate["raw_nstep"], 3),
        "ratio_full_recording_vs_raw_loop": round(rate["physforge_run"] / rate["raw_loop"], 3),
        "ratio_full_recording_vs_raw_nstep": round(rate["physforge_run"] / rate["raw_nstep"], 3),
        # the same ratios from this thread's CPU time: steadier than wall time on a shared machine
        "cpu_ratio_recording_off_vs_raw_loop": round(cpu_rate["physforge"] / cpu_rate["raw_loop"], 3),
        "cpu_ratio_full_recording_vs_raw_loop": round(cpu_rate["physforge_run"] / cpu_rate["raw_loop"], 3),
        "cpu_ratio_full_recording_vs_raw_nstep": round(cpu_rate["physforge_run"] / cpu_rate["raw_nstep"], 3),
        "events_recorded": len(rollout.events),
    }


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    worlds = [load_world(root / "examples" / "collision.json"), load_world(root / "examples" / "pendulum.json"),
              pile(20)]
    results = [measure(world) for world in worlds]
    print(json.dumps({"benchmark": "sim_speed", "mujoco": mujoco.__version__, "sim_seconds": SIM_SECONDS,
                      "repeats": REPEATS, "results": results}, indent=1))


if __name__ == "__main__":
    main()
