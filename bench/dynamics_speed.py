"""Dynamics speed on the CPU: generator samples/s, verifier throughput (scored trajectories/s,
without and with mask IoU renders; with IoU is what the preference oracle's default cost needs), and
the time of one DPO optimiser step. Each is reported in wall-clock and in process CPU time (steadier
on a shared machine).

    python bench/dynamics_speed.py                               # generates a 24-scene 64 px dataset
    python bench/dynamics_speed.py --dataset runs/dyn_data --checkpoint runs/x/sft/checkpoint

Without --checkpoint a freshly initialised generator of the default size is timed (speed does not
depend on the weights). Numbers on a shared machine are indications, not guarantees.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("MUJOCO_GL", "egl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--split", default="train")
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--samples", type=int, default=8, help="motions per image")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per DPO step")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from physforge.dynamics.config import GeneratorConfig, ScoreConfig
    from physforge.dynamics.data import load_examples
    from physforge.dynamics.model import batch_tensors, build_generator, load_generator
    from physforge.dynamics.recipe import VerifierCache, dpo_loss, sample_motions, trainable_parameters

    torch.set_num_threads(args.threads)
    temporary = None
    dataset = args.dataset
    if dataset is None:
        from physforge.data import DataConfig, generate_dataset

        temporary = tempfile.TemporaryDirectory()
        dataset = str(Path(temporary.name) / "data")
        generate_dataset(DataConfig(seed=0, width=64, height=64, families={"projectiles": 1, "collisions": 1,
                                                                            "containment": 1}, heldout_families=(),
                                    num_frames=2, fps=4.0, state_fps=20.0, predict_horizon=1.5,
                                    plausibility_fraction=0.0, perturbation_trials=0), dataset, args.scenes)
    model = load_generator(args.checkpoint) if args.checkpoint else build_generator(
        GeneratorConfig(image_size=32, channels=(16, 32, 32), encoder_channels=(16, 32, 32), use_properties=True),
        torch.Generator().manual_seed(0))
    config = model.config
    examples = load_examples(dataset, args.split, horizon=config.horizon, dt=config.dt, max_objects=config.max_objects,
                             image_size=config.image_size, limit=args.scenes, with_properties=config.use_properties)
    generator = torch.Generator().manual_seed(0)

    sample_motions(model, examples[:2], 2, generator)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    motions = sample_motions(model, examples, args.samples, generator)
    sampling, sampling_cpu = time.perf_counter() - start, time.process_time() - cpu

    verifiers = VerifierCache(ScoreConfig(), config.horizon, config.dt)
    for e in examples:
        verifiers(e)  # build (compile) outside the timing
    rates, cpu_rates = {}, {}
    for iou in (False, True):
        start, cpu = time.perf_counter(), time.process_time()
        count = 0
        for i, e in enumerate(examples):
            n = len(e.bodies)
            for m in motions[i][: 2 if iou else None]:
                verifiers(e).score(m[:, :n], iou=iou)
                count += 1
        rates[iou] = count / (time.perf_counter() - start)
        cpu_rates[iou] = count / (time.process_time() - cpu)

    b = args.batch_size
    index = np.arange(b) % len(examples)
    batch = batch_tensors([examples[i] for i in index])
    chosen = torch.from_numpy(motions[index, 0]).float()
    rejected = torch.from_numpy(motions[index, 1]).float()
    parameters = trainable_parameters(model, "generator")
    optimiser = torch.optim.Adam(parameters, lr=1e-4)
    times, cpu_times = [], []
    for step in range(6):
        start, cpu = time.perf_counter(), time.process_time()
        params = model.condition(batch)
        lp_c = model.log_prob(params, chosen, batch["mask"])
        lp_r = model.log_prob(params, rejected, batch["mask"])
        loss, _ = dpo_loss(lp_c, lp_r, lp_c.detach() - 1, lp_r.detach() + 1, beta=0.05)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
    print(json.dumps({
        "scenes": len(examples), "samples_per_image": args.samples, "image_size": config.image_size,
        "horizon": config.horizon, "parameters": sum(p.numel() for p in model.parameters()),
        "samples_per_s": round(len(examples) * args.samples / sampling, 1),
        "verifier_trajectories_per_s": round(rates[False], 1),
        "verifier_trajectories_per_s_with_iou": round(rates[True], 1),
        "dpo_step_s": round(float(np.median(times)), 4), "dpo_batch_pairs": b, "threads": args.threads,
        "cpu": {"samples_per_s": round(len(examples) * args.samples / sampling_cpu, 1),
                "verifier_trajectories_per_s": round(cpu_rates[False], 1),
                "verifier_trajectories_per_s_with_iou": round(cpu_rates[True], 1),
                "dpo_step_s": round(float(np.median(cpu_times)), 4)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
    }))
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()
