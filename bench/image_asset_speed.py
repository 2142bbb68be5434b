"""Single-image asset generation benchmark: prints one JSON object.

    .venv/bin/python bench/image_asset_speed.py                       # built-in model, examples/images
    .venv/bin/python bench/image_asset_speed.py --model runs/vlm/model --repeats 1 --train-steps 3

Measures, on the CPU (``--threads`` torch threads; 1 is fastest on a loaded 2-core machine):
- per generated asset: seconds of VLM generation (all rounds), generated tokens, and seconds of
  the whole ``asset_from_image`` pipeline (load image, generate, decode voxels, meshes, build,
  write MJCF + URDF, gate), over the example images, ``--repeats`` times each. The pipeline seconds
  include the retries of ``--attempts`` (default: as ``asset from-image``); the generation seconds
  and tokens are the kept attempt's, and each image's row has ``attempts`` made and
  ``attempts_s`` (their generation, decoding and gate seconds); ``--attempts 1`` measures greedy alone;
- training images/s of the built-in model's configuration (``train-vlm`` on a freshly rendered
  small dataset, ``--train-steps`` optimiser steps of 8 conversations; one image per conversation);
- peak resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model/ folder (default: the built-in model)")
    parser.add_argument("--images", default=str(ROOT / "examples" / "images"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=6, help="0 skips the training measurement")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attempts", type=int, default=None, help="as asset from-image --attempts (default: its default)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from physforge.assets.from_image import DEFAULT_ATTEMPTS, asset_from_image
    from physforge.assets.image_model import BUILTIN_MODEL, AssetGenerator
    from physforge.errors import PhysforgeError

    torch.set_num_threads(args.threads)
    images = sorted(Path(args.images).glob("*.png"))
    attempts = DEFAULT_ATTEMPTS if args.attempts is None else args.attempts
    generator = AssetGenerator(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for image in images:
                start = time.perf_counter()
                try:
                    result = asset_from_image(image, Path(tmp) / f"{image.stem}_{repeat}", generator=generator,
                                              attempts=attempts)
                    g = result["generation"]
                    rows.append({"image": image.name, "total_s": time.perf_counter() - start,
                                 "generate_s": g["seconds"], "tokens": g["tokens"],
                                 "passed": result["report"]["passed"], "attempts": len(g["attempts"]),
                                 "attempts_s": g["seconds_all_attempts"]})
                except PhysforgeError as err:
                    rows.append({"image": image.name, "total_s": time.perf_counter() - start, "error": str(err)})
        ok = [r for r in rows if "error" not in r]
        report = {
            "model": str(args.model or BUILTIN_MODEL), "threads": args.threads, "attempts": attempts,
            "assets": len(rows),
            "failed_generations": len(rows) - len(ok),
            "gate_pass_rate": sum(r["passed"] for r in ok) / len(rows) if rows else None,
            "generate_seconds_per_asset": statistics.median(r["generate_s"] for r in ok) if ok else None,
            "pipeline_seconds_per_asset": statistics.median(r["total_s"] for r in ok) if ok else None,
            "tokens_per_asset": statistics.median(r["tokens"] for r in ok) if ok else None,
            "tokens_per_second": (sum(r["tokens"] for r in ok) / sum(r["generate_s"] for r in ok)) if ok else None,
            "per_image": rows,
        }
        if args.train_steps:
            report["training"] = _training(Path(tmp), args.train_steps)
    report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(report, sys.stdout, indent=1)
    print()


def _training(work: Path, steps: int) -> dict:
    from physforge.assets.image_data import ImageDataConfig, write_image_dataset
    from physforge.assets.image_model import BUILTIN_MODEL, AssetVLMConfig, train_asset_vlm

    data = work / "data"
    write_image_dataset(ImageDataConfig(out=str(data), train_objects=2, test_objects=0, test_category_objects=0,
                                        views=1, image_size=64))
    builtin = json.loads((BUILTIN_MODEL / "train_config.json").read_text())
    builtin.update(data=str(data), out=str(work / "run"), steps=steps, batch_size=8)
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the trainer logs to stdout; ours is the JSON
        summary = train_asset_vlm(AssetVLMConfig.from_dict(builtin))
    return {"steps": steps, "batch_size": 8, "train_images_per_second": summary["train_images_per_second"],
            "seconds_per_step": summary["train_seconds"] / steps, "wall_s_including_setup":
            time.perf_counter() - start, "parameters": summary["parameters"]}


if __name__ == "__main__":
    main()
