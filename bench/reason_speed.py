"""Reasoning-model speed on the CPU: PhysEncoder training images/s, questions/s at evaluation,
and the training process's peak RSS (goal: <= 8 GiB).

    python bench/reason_speed.py                              # generates a 48-scene 64 px dataset
    python bench/reason_speed.py --data runs/data --steps 100 --batch-size 32

Training runs in a child process so that its peak RSS (getrusage of the children) is the
recipe's own, dataset loading included. Numbers are wall-clock on a shared machine; read them as
indications, not guarantees. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("MUJOCO_GL", "egl")


def child_train(data: str, out: str, steps: int, batch_size: int, image_size: int, clip_frames: int) -> None:
    from physforge.reason.config import EncoderConfig, TrainConfig
    from physforge.reason.recipe_encoder import train_encoder

    summary = train_encoder(TrainConfig(data=data, out=out, steps=steps, batch_size=batch_size, val_split="",
                                        model=EncoderConfig(image_size=image_size, clip_frames=clip_frames)))
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: generate a small one)")
    parser.add_argument("--scenes", type=int, default=48, help="scenes of the generated dataset")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--clip-frames", type=int, default=4)
    parser.add_argument("--eval-questions", type=int, default=500, help="questions answered for questions/s")
    parser.add_argument("--child-train", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_train:
        child_train(*args.child_train, args.steps, args.batch_size, args.image_size, args.clip_frames)
        return

    import numpy as np
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from physforge.data import DataConfig
            from physforge.data.generate import generate_dataset

            data = str(Path(tmp) / "data")
            generate_dataset(DataConfig(seed=0, width=args.image_size, height=args.image_size, num_frames=4,
                                        shard_size=16), data, args.scenes, workers=1)
        run = str(Path(tmp) / "run")
        start = time.perf_counter()
        child = subprocess.run([sys.executable, __file__, "--child-train", data, run, "--steps", str(args.steps),
                                "--batch-size", str(args.batch_size), "--image-size", str(args.image_size),
                                "--clip-frames", str(args.clip_frames)], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        summary = json.loads(child.stdout.strip().splitlines()[-1])
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

        from physforge.reason.data import dataset_splits, load_split
        from physforge.reason.encoder import load_encoder

        model = load_encoder(Path(run) / "checkpoint")
        splits = [s for s in dataset_splits(data) if s not in ("train", "val")]
        split = load_split(data, splits, image_size=args.image_size, max_questions=args.eval_questions,
                           rng=np.random.default_rng(0), with_targets=False)
        model.answer(split, split.questions[:8])  # warm-up
        start = time.perf_counter()
        model.answer(split, split.questions)
        answer_seconds = time.perf_counter() - start

    print(json.dumps({
        "train_images_per_second": summary["train_images_per_second"],
        "train_steps": args.steps, "batch_size": args.batch_size, "image_size": args.image_size,
        "clip_frames": args.clip_frames, "train_questions": summary["train_questions"],
        "train_wall_seconds_with_loading": round(wall, 2),
        "train_peak_rss_gib": round(peak_kib / 2**20, 3), "train_peak_rss_limit_gib": 8.0,
        "eval_questions": len(split.questions),
        "eval_questions_per_second": round(len(split.questions) / answer_seconds, 2),
        "parameters": summary["parameters"], "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "dataset": data if args.data else f"generated ({args.scenes} scenes)",
    }, indent=1))


if __name__ == "__main__":
    main()
