"""Data-engine speed: seconds per scene per core with all annotations and questions, the overhead
of annotation + questions + writing over bare simulate + render of the same scenes (side by
side in one run), and peak RSS of a worker at two dataset sizes.

    python bench/data_speed.py                       # 256², 8 frames; prints JSON
    python bench/data_speed.py --scenes 40 --rss-sizes 200 1000
    python bench/data_speed.py --rss-only --rss-sizes 10000 --rss-log rss.jsonl   # RSS as it grows

One core: llvmpipe's render threads are pinned to 1 (LP_NUM_THREADS=1) and one worker runs.
Wall-clock numbers on a shared machine swing with the load of other processes; the CPU-time
numbers (process CPU seconds, every thread of the process) are the per-core cost. The peak
RSS children log (scenes done, peak RSS, current RSS) after every shard with --rss-log, so one
long run gives the whole curve.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from physforge.data import DataConfig  # noqa: E402
from physforge.data.families import FAMILIES  # noqa: E402
from physforge.data.generate import collect_stats, generate_dataset, generate_shard  # noqa: E402
from physforge.data.programs import TIMINGS  # noqa: E402
from physforge.data.scene import assign, scene_rng  # noqa: E402
from physforge.errors import SimulationUnstable  # noqa: E402
from physforge.sim import Simulator  # noqa: E402
from physforge.sim.render import RenderConfig, SceneRenderer  # noqa: E402


def config(seed: int, size: int = 256, frames: int = 8) -> DataConfig:
    return DataConfig(seed=seed, width=size, height=size, num_frames=frames, fps=4.0, state_fps=20.0, shard_size=16)


def bare(cfg: DataConfig, indices: range) -> tuple[float, float]:
    """Simulate and render (RGB, depth, segmentation to arrays) the same scenes; no questions,
    no encoding, no writing. Returns (wall s, CPU s)."""
    renderer = SceneRenderer(config=RenderConfig(cfg.width, cfg.height))
    start, cpu = time.perf_counter(), time.process_time()
    for index in indices:
        rng = scene_rng(cfg.seed, index)
        family, _, variant = assign(cfg, rng)
        scene_cfg = cfg.for_family(family)  # the clip timing the full path uses for this family
        spec = FAMILIES[family].build(rng, scene_cfg.params[family], variant)
        sim = Simulator(spec.world)
        renderer.bind(sim.compiled)

        def on_frame(simulator, frame, c=scene_cfg):
            if frame % c.frame_stride == 0 and frame // c.frame_stride < c.num_frames:
                renderer.rgb_depth_segmentation(simulator.data, spec.camera)
        try:
            sim.run(scene_cfg.duration, scene_cfg.state_fps, on_frame=on_frame)
        except SimulationUnstable:
            pass
        renderer.release()
    return time.perf_counter() - start, time.process_time() - cpu


def full_and_bare(cfg: DataConfig, num_scenes: int) -> tuple[float, float, float, float, dict]:
    """Shard by shard, the full pipeline (generate_shard: simulate, render, questions,
    counterfactuals, near-threshold checks, encoding, writing) and then bare simulate + render
    of the same scenes, alternating which goes first, so that load from other processes hits
    both alike. Returns wall and CPU seconds of each, and the shard stats."""
    full_seconds = bare_seconds = full_cpu = bare_cpu = 0.0
    shards = math.ceil(num_scenes / cfg.shard_size)
    with tempfile.TemporaryDirectory() as folder:
        data = cfg.to_dict()
        for shard in range(shards):
            indices = range(shard * cfg.shard_size, min(num_scenes, (shard + 1) * cfg.shard_size))
            for step in ((0, 1) if shard % 2 == 0 else (1, 0)):
                start, cpu = time.perf_counter(), time.process_time()
                if step == 0:
                    generate_shard(data, folder, shard, num_scenes)
                    full_seconds += time.perf_counter() - start
                    full_cpu += time.process_time() - cpu
                else:
                    wall, cpu = bare(cfg, indices)
                    bare_seconds += wall
                    bare_cpu += cpu
        start, cpu = time.perf_counter(), time.process_time()
        info = collect_stats(Path(folder))  # includes the dataset-wide answer balancing of the full path
        full_seconds += time.perf_counter() - start
        full_cpu += time.process_time() - cpu
    return full_seconds, bare_seconds, full_cpu, bare_cpu, info


def _rss_now_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_child(num_scenes: int, size: int, frames: int, log: str | None) -> None:
    """Run in a subprocess: generate num_scenes (one worker, in-process) and print peak RSS;
    with ``log``, append (scenes done, peak RSS, current RSS) after every shard."""
    done = 0
    started = time.perf_counter()

    def on_shard(summary: dict) -> None:
        nonlocal done
        done += summary["scenes"][1] - summary["scenes"][0]
        if log is not None:
            with open(log, "a") as handle:
                handle.write(json.dumps({"scenes": done, "peak_rss_mib": round(_peak_rss_mib(), 1),
                                         "rss_mib": round(_rss_now_mib(), 1),
                                         "elapsed_s": round(time.perf_counter() - started, 1)}) + "\n")

    with tempfile.TemporaryDirectory() as folder:
        generate_dataset(config(1, size, frames), Path(folder) / "ds", num_scenes, workers=1, on_shard=on_shard)
    print(json.dumps({"scenes": num_scenes, "resolution": [size, size], "frames": frames,
                      "peak_rss_mib": round(_peak_rss_mib(), 1)}))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=32)
    parser.add_argument("--rss-sizes", type=int, nargs=2, default=(100, 400))
    parser.add_argument("--rss-resolution", type=int, default=256, help="image size (px) of the RSS runs")
    parser.add_argument("--rss-frames", type=int, default=8, help="frames per clip of the RSS runs")
    parser.add_argument("--rss-log", default=None, help="append the RSS of each RSS run after every shard (JSONL)")
    parser.add_argument("--rss-only", action="store_true", help="skip the speed measurement")
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        rss_child(args.rss_child, args.rss_resolution, args.rss_frames, args.rss_log)
        return
    rss = []
    for size in args.rss_sizes:
        command = [sys.executable, __file__, "--rss-child", str(size), "--rss-resolution", str(args.rss_resolution),
                   "--rss-frames", str(args.rss_frames)] + (["--rss-log", args.rss_log] if args.rss_log else [])
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:  # report a crashed worker instead of hiding the other numbers
            rss.append({"scenes": size, "error": f"exit status {out.returncode}", "stderr_tail": out.stderr[-2000:]})
        else:
            rss.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.rss_only:
        print(json.dumps({"benchmark": "data_speed", "peak_rss_per_worker": rss}, indent=1))
        return
    cfg = config(0)
    bare(cfg, range(2))  # warm up: imports, GL context
    TIMINGS.clear()
    load_before = os.getloadavg()[0]
    full_seconds, bare_seconds, full_cpu, bare_cpu, info = full_and_bare(cfg, args.scenes)
    load_after = os.getloadavg()[0]
    stages = {k: round(v / args.scenes, 4) for k, v in sorted(TIMINGS.items())}
    print(json.dumps({
        "benchmark": "data_speed", "gl": os.environ.get("MUJOCO_GL", "egl"),
        "lp_num_threads": os.environ.get("LP_NUM_THREADS"), "resolution": [cfg.width, cfg.height],
        "frames": cfg.num_frames, "scenes": args.scenes,
        "load_average_1min": [round(load_before, 2), round(load_after, 2)], "cores": os.cpu_count(),
        "written_scenes": sum(v for k, v in info["stats"].items() if k.startswith("scenes.")),
        "questions": sum(v for k, v in info["stats"].items() if k.startswith("questions.") and k.count(".") == 3),
        "rejected_unstable": info["stats"].get("rejected_unstable", 0),
        "near_threshold_dropped": info["stats"].get("near_threshold_dropped", 0),
        "balance_dropped": info["stats"].get("balance_dropped", 0),
        "balance_trimmed": info["stats"].get("balance_trimmed", 0),
        "seconds_per_scene_per_core": round(full_seconds / args.scenes, 4),
        "bare_simulate_render_seconds_per_scene": round(bare_seconds / args.scenes, 4),
        "overhead_percent": round(100.0 * (full_seconds - bare_seconds) / bare_seconds, 1),
        "cpu_seconds_per_scene": round(full_cpu / args.scenes, 4),
        "bare_simulate_render_cpu_seconds_per_scene": round(bare_cpu / args.scenes, 4),
        "overhead_percent_cpu": round(100.0 * (full_cpu - bare_cpu) / bare_cpu, 1),
        "overhead_cpu_seconds_per_scene_by_stage": stages | {
            "other (sampling, perturbations, table building, unmatched noise)": round(
                (full_cpu - bare_cpu) / args.scenes - sum(stages.values()), 4)},
        "peak_rss_per_worker": rss,
        "target": {"seconds_per_scene_per_core": 0.3, "overhead_percent": 30},
    }, indent=1))


if __name__ == "__main__":
    main()
