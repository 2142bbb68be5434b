"""Asset pipeline benchmark: prints one JSON object.

    .venv/bin/python bench/asset_speed.py                  # defaults below, a few minutes on 2 cores
    .venv/bin/python bench/asset_speed.py --num 30 --coacd-objects 2 --token-objects 1   # quick

Measures
- seconds per library asset through the whole pipeline (generate, build, write MJCF + URDF +
  meshes, gate with both URDF consumers), with the default exact collision pieces;
- the same with CoACD forced on every part, cold cache (fresh folder) and warm (second run);
- the gate pass rate over ``--num`` seeded library objects (seed 0, indices 0..num-1, every
  category in turn);
- tokens per part for raw OBJ text, the PhysX-Anything baseline and our encodings, with a BPE
  tokenizer trained locally on library objects of another seed (GPT-2-style digit groups, and
  single-digit splitting as in Qwen2), on held-out library objects and on real CAD/scan meshes
  shipped with pybullet_data (Franka Panda visual links, bunny, duck) when present;
- peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _pipeline(category: str, index: int, out: Path, config) -> tuple[float, dict]:
    from physforge.assets.build import build_asset
    from physforge.assets.export import write_asset
    from physforge.assets.library import generate, object_rng

    start = time.perf_counter()
    source = generate(category, object_rng(0, index), seed=0, name=f"{category}_0_{index:04d}")
    report = write_asset(build_asset(source, config), out / source.annotation.name)
    return time.perf_counter() - start, report


def gate_run(num: int, work: Path) -> dict:
    from physforge.assets.build import BuildConfig
    from physforge.assets.library import CATEGORIES
    from physforge.errors import PhysforgeError

    names = sorted(CATEGORIES)
    config = BuildConfig(cache_dir=work / "cache")
    seconds, failures, by_category = [], [], {}
    for i in range(num):
        category = names[i % len(names)]
        try:
            elapsed, report = _pipeline(category, i, work / "gate", config)
        except PhysforgeError as err:  # a build error counts as a failed asset
            elapsed, report = float("nan"), {"passed": False, "failed": [f"build: {err}"]}
        seconds.append(elapsed)
        stats = by_category.setdefault(category, [0, 0])
        stats[0] += 1
        stats[1] += int(report["passed"])
        if not report["passed"]:
            failures.append({"index": i, "category": category, "failed": report["failed"]})
    passed = num - len(failures)
    return {"objects": num, "passed": passed, "pass_rate": passed / num, "failures": failures[:20],
            "by_category": {k: {"objects": v[0], "passed": v[1]} for k, v in sorted(by_category.items())},
            "seconds_per_asset_mean": float(np.nanmean(seconds)), "seconds_per_asset_max": float(np.nanmax(seconds))}


def coacd_run(count: int, work: Path) -> dict:
    from physforge.assets.build import BuildConfig
    from physforge.assets.library import CATEGORIES

    names = sorted(CATEGORIES)
    config = BuildConfig(collision="coacd", cache_dir=work / "coacd-cache")
    cold, warm, passed, hulls = [], [], 0, []
    for i in range(count):
        category = names[(i * 5) % len(names)]
        elapsed, report = _pipeline(category, 10_000 + i, work / "coacd-cold", config)
        cold.append(elapsed)
        passed += int(report["passed"])
        hulls += [p["collision_pieces"] for p in report["parts"]]
        elapsed, report = _pipeline(category, 10_000 + i, work / "coacd-warm", config)
        assert all(p["coacd_cache_hit"] for p in report["parts"])
        warm.append(elapsed)
    return {"objects": count, "seconds_per_asset_cold_mean": statistics.mean(cold),
            "seconds_per_asset_cold_max": max(cold), "seconds_per_asset_warm_mean": statistics.mean(warm),
            "seconds_per_asset_warm_max": max(warm), "gate_passed": passed, "hulls_per_part_mean":
            statistics.mean(hulls)}


def token_run(objects_per_category: int, work: Path) -> dict:
    from physforge.assets import tokens as T
    from physforge.assets.importers import load_single_mesh
    from physforge.assets.library import CATEGORIES, generate, object_rng
    from physforge.assets.token_stats import TokenizerConfig, geometry_tokenizer, token_report

    out = {}
    for split in (False, True):
        start = time.perf_counter()
        tokenizer = geometry_tokenizer(TokenizerConfig(split_digits=split), work / "tokenizers")
        train_seconds = time.perf_counter() - start
        label = "single_digit_bpe" if split else "gpt2_style_bpe"
        for resolution in (32, 64):
            per_part = {k: [] for k in ("raw_obj", *T.ENCODINGS)}
            for c, category in enumerate(sorted(CATEGORIES)):
                for i in range(objects_per_category):
                    report = token_report(generate(category, object_rng(77, c * 100 + i), seed=77), tokenizer,
                                          resolution)
                    for part in report["parts"]:
                        for k, v in part["tokens"].items():
                            per_part[k].append(v)
            means = {k: statistics.mean(v) for k, v in per_part.items()}
            out[f"{label}/library/N{resolution}"] = {
                "parts": len(per_part["raw_obj"]), "tokens_per_part": means,
                "raw_over_ours": means["raw_obj"] / means["ours"],
                "baseline_over_ours": means["baseline"] / means["ours"],
                "raw_over_baseline": means["raw_obj"] / means["baseline"]}
        real = _real_meshes()
        if real:
            for resolution in (32, 64):
                rows = {}
                for path in real:
                    source = load_single_mesh(path)
                    report = token_report(source, tokenizer, resolution)
                    rows[path.name if "franka" not in str(path) else f"franka/{path.name}"] = report["parts"][0]["tokens"]
                means = {k: statistics.mean(r[k] for r in rows.values()) for k in ("raw_obj", *T.ENCODINGS)}
                out[f"{label}/real_meshes/N{resolution}"] = {
                    "meshes": rows, "tokens_per_part": means, "raw_over_ours": means["raw_obj"] / means["ours"],
                    "baseline_over_ours": means["baseline"] / means["ours"],
                    "raw_over_baseline": means["raw_obj"] / means["baseline"]}
        out[f"{label}/train_seconds"] = train_seconds
    return out


def _real_meshes() -> list[Path]:
    try:
        import pybullet_data
    except ImportError:
        return []
    root = Path(pybullet_data.getDataPath())
    names = [f"franka_panda/meshes/visual/link{i}.obj" for i in range(1, 8)] + ["bunny.obj", "duck.obj"]
    return [root / n for n in names if (root / n).is_file()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=210, help="library objects through the gate")
    parser.add_argument("--coacd-objects", type=int, default=6, help="objects built with CoACD (cold + warm)")
    parser.add_argument("--token-objects", type=int, default=2, help="held-out objects per category for tokens")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    result: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="physforge-asset-bench-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        result["gate"] = gate_run(args.num, work)
        result["gate"]["wall_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        result["coacd"] = coacd_run(args.coacd_objects, work)
        result["coacd"]["wall_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        result["tokens"] = token_run(args.token_objects, work)
        result["tokens"]["wall_seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
