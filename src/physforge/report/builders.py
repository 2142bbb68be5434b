"""``report.html`` for each long command's output folder, built from what the command wrote there
(so a report can be rebuilt for an old folder): datasets, assets, reasoning evaluations, DPO runs,
robot evaluations, and the demo's index."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from physforge.report.html import Report

REPORT_FILE = "report.html"


def _json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; is {path.parent} a finished output folder?")
    return json.loads(path.read_text())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bar(labels: Sequence[str], series: dict[str, Sequence[float]], ylabel: str, title: str = "", ylim=None):
    plt = _pyplot()
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    figure, axis = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 2), 3.2))
    for k, (name, values) in enumerate(series.items()):
        axis.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    axis.set_xticks(x, labels, rotation=25, ha="right")
    axis.set_ylabel(ylabel)
    if ylim is not None:
        axis.set_ylim(*ylim)
    if title:
        axis.set_title(title)
    if len(series) > 1:
        axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def decode_frames(images: list[dict]) -> np.ndarray:
    """Dataset image structs ({"bytes": PNG}) -> (n, H, W, 3) uint8 (through the guarded reader:
    a dataset may come from anywhere)."""
    from physforge.images import load_image

    return np.stack([load_image(image["bytes"], min_side=1, name="dataset frame (PNG)") for image in images])


# -- datasets ----------------------------------------------------------------------------------------
def dataset_report(folder: str | Path, *, command=None, examples: int = 3) -> Path:
    """The dataset card as a page: counts per split/family/question type, and a few example scenes
    (their clip, questions with the correct option marked, events and latent properties)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    info = _json(folder / "meta" / "info.json")
    report = Report(f"Dataset {folder.name}", command=command,
                    subtitle=f"{info['num_scenes']} scenes, {info['num_questions']} questions, format "
                             f"{info['format_version']}, content hash {info['content_hash'][:16]}")
    report.add_heading("Splits")
    report.add_table([{"split": s, "scenes": v["scenes"], "questions": v["questions"]}
                      for s, v in info["splits"].items()])
    by_type: Counter = Counter()
    by_family: Counter = Counter()
    for key, count in info["stats"].items():
        parts = key.split(".")
        if parts[0] == "questions" and len(parts) == 4:
            by_type[parts[3]] += count
            by_family[parts[2]] += count
    if by_type:
        types = sorted(by_type)
        report.add_plot(_bar(types, {"questions": [by_type[t] for t in types]}, "questions"),
                        caption="questions per type")
        families = sorted(by_family)
        report.add_plot(_bar(families, {"questions": [by_family[f] for f in families]}, "questions"),
                        caption="questions per family")
    report.add_text(f"{info['rejected_unstable']} unstable scenes rejected, {info['near_threshold_dropped']} "
                    "near-threshold questions dropped.")
    report.add_heading("Example scenes")
    shown = 0
    for path in sorted((folder / "scenes").glob("*/*.parquet")):
        if shown >= examples:
            break
        handle = pq.ParquetFile(path)
        columns = ["scene_id", "split", "family", "frames", "fps", "events", "latent", "objects"]
        rows = handle.read_row_group(0, columns=columns).slice(0, examples - shown).to_pylist()
        questions = _questions_of(folder, {r["scene_id"] for r in rows})
        for row in rows:
            report.add_text(f"{row['scene_id']}: {row['family']} ({row['split']})")
            report.add_clip(decode_frames(row["frames"]), fps=max(row["fps"], 1.0), caption=row["scene_id"], width=192)
            for q in questions.get(row["scene_id"], [])[:3]:
                correct = [o["label"] for o in q["options"] if o["correct"]]
                report.add_text(f"[{q['question_type']}] {q['question']} — answer: {q['answer']}"
                                + (f" (correct option {', '.join(correct)})" if correct else ""))
            if row["latent"]:
                report.add_table(row["latent"], columns=["key", "value", "unit"], caption="latent properties")
            if row["events"]:
                report.add_table([{k: e[k] for k in ("type", "time", "bodies")} for e in row["events"][:8]],
                                 caption="events (first 8)")
            shown += 1
    card = folder / "README.md"
    if card.is_file():
        report.add_heading("Dataset card (README.md)")
        report.add_json(card.read_text())
    return report.write(folder / REPORT_FILE)


def _questions_of(folder: Path, scene_ids: set[str]) -> dict[str, list[dict]]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: dict[str, list[dict]] = {}
    for path in sorted((folder / "questions").glob("*/*.parquet")):
        table = pq.read_table(path, columns=["scene_id", "question_type", "question", "answer", "options"])
        mask = pc.is_in(table.column("scene_id"), value_set=pa.array(sorted(scene_ids)))
        for row in table.filter(mask).to_pylist():
            out.setdefault(row["scene_id"], []).append(row)
        if len(out) == len(scene_ids):
            break
    return out


# -- assets ------------------------------------------------------------------------------------------
def asset_report(folder: str | Path, *, command=None, size: int = 192) -> Path:
    """The gate's report card, parts (mass, volume, collision pieces), a turntable and a joint sweep."""
    from physforge.sim.preview import joint_sweep, turntable
    from physforge.world import load_world

    folder = Path(folder)
    gate = _json(folder / "report.json")
    annotation = _json(folder / "annotation.json")
    world = load_world(folder / "world.json")
    report = Report(f"Asset {gate.get('asset', folder.name)}", command=command)
    report.add_heading("Gate")
    report.add_status(bool(gate["passed"]), "all checks passed" if gate["passed"] else
                      f"failed: {', '.join(gate['failed'])}")
    report.add_table(gate_rows(gate))
    report.add_heading("Previews")
    report.add_clip(turntable(world, size=size), fps=12, caption="turntable")
    sweep, joints = joint_sweep(world, size=size)
    if len(sweep):
        report.add_clip(sweep, fps=12, caption=f"joint sweep: {', '.join(joints)}")
    if gate.get("parts"):
        report.add_heading("Parts")
        report.add_table(gate["parts"])
    report.add_json(annotation, caption="annotation.json")
    return report.write(folder / REPORT_FILE)


def gate_rows(gate: dict) -> list[dict]:
    """One row per gate check: name, passed, and its headline numbers."""
    rows = []
    for name, check in gate.get("checks", {}).items():
        row: dict[str, Any] = {"check": name, "passed": name not in gate.get("failed", [])}
        values = check.get("worst", check) if isinstance(check, dict) else {"value": check}
        for key, value in values.items():
            if isinstance(value, (int, float, str, bool)) and len(row) < 8:
                row[key] = value
        rows.append(row)
    return rows


# -- reasoning evaluations -----------------------------------------------------------------------
def asset_eval_report(folder: str | Path, *, command=None) -> Path:
    """`asset eval`: every metric per split for the VLM and both baselines (tables and a plot),
    and the objects with what each method made of them."""
    from physforge.assets.image_eval import METHODS, METRICS

    folder = Path(folder)
    result = _json(folder / "result.json")
    config = result.get("config", {})
    report = Report("Image-to-asset evaluation", command=command,
                    subtitle=f"dataset {config.get('data')}; model {config.get('model') or 'built-in'}; "
                             f"{result.get('seconds', 0):.0f} s")
    for split, by_method in result["table"].items():
        report.add_heading(split)
        report.add_table([{"method": method, "objects": by_method[method]["objects"],
                           **{name: None if by_method[method].get(name) is None else round(by_method[method][name], 3)
                              for name in METRICS}}
                          for method in METHODS if method in by_method],
                         caption="mean over objects (IoU, F-score, accuracies and gate rate: higher is better; "
                                 "errors and distances: lower)")
        shown = ("voxel_iou", "fscore", "joint_type_accuracy", "material_accuracy", "gate_pass")
        report.add_plot(_bar(list(shown), {m: [by_method[m].get(k) or 0.0 for k in shown]
                                           for m in METHODS if m in by_method}, "score", split, ylim=(0, 1)),
                        caption=f"{split}: higher is better")
        paired = result.get("paired", {}).get("splits", {}).get(split)
        if paired:
            from physforge.assets.image_eval_paired import PAIRED_METRICS, SHORT, format_cell

            report.add_table([{"VLM − baseline": method,
                               **{SHORT[m]: format_cell(cells.get(m)) for m in PAIRED_METRICS}}
                              for method, cells in paired.items()],
                             caption="VLM − baseline: mean per-object difference [95 % paired bootstrap interval, "
                                     f"{result['paired']['resamples']} resamples]; an interval holding 0 is a tie")
    rows = [{"split": r["split"], "object": r["object_id"], "category": r["category"], "method": r["method"],
             "predicted": r.get("predicted_category") or r.get("retrieved") or "", "IoU": r.get("voxel_iou"),
             "gate": r.get("gate_pass"), "error": r.get("error", "")}
            for r in result.get("objects", [])]
    if rows:
        report.add_heading("Objects")
        report.add_table(rows[:300], caption=f"{len(rows)} rows" + (" (first 300)" if len(rows) > 300 else ""))
    return report.write(folder / REPORT_FILE)


def reason_eval_report(folder: str | Path, *, command=None) -> Path:
    """Accuracy per question type and split for the model and each baseline (table and plot)."""
    from physforge.reason.report import plot, table_rows

    folder = Path(folder)
    result = _json(folder / "result.json")
    report = Report(f"Reasoning evaluation of {result['model']}", command=command,
                    subtitle=f"dataset {result['dataset']}; {result['questions']} questions scored by "
                             "physforge.data.grade (accuracy per question; per option in parentheses)")
    for item in result.get("missing_baselines", []):
        report.add_text(f"baseline not available: {item}")
    report.add_table([{"model": m["name"], "questions/s": m["questions_per_second"],
                       **{k: v for k, v in m["grade"]["overall"].items() if not isinstance(v, dict)}}
                      for m in result["models"]], caption="overall")
    for split in result["splits"]:
        types, names, cells = table_rows(result, split)
        if not types:
            continue
        report.add_heading(split)
        rows = []
        for t in types:
            row: dict[str, Any] = {"question type": t}
            for name in names:
                cell = cells.get((t, name))
                row[name] = None if cell is None else round(100 * cell["accuracy"], 1)
            rows.append(row)
        report.add_table(rows, caption="accuracy per question, %")
        png = folder / f"accuracy_{split}.png"
        if png.is_file() or plot(result, split, png):
            report.add_image(png, caption=f"accuracy on {split}")
    return report.write(folder / REPORT_FILE)


# -- DPO runs ------------------------------------------------------------------------------------
def dpo_report(folder: str | Path, *, command=None, samples: dict[str, Path] | None = None) -> Path:
    """The DPO run's rounds (pairs, verifier cost of chosen vs rejected), its loss curve, and
    optionally sampled motions before/after (``samples``: name -> a `dynamics sample` folder)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    config = _json(folder / "config.json")
    lines = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
    report = Report(f"DPO run {folder.name} (train: {config.get('train', '?')})", command=command,
                    subtitle=f"starting/reference checkpoint {config.get('checkpoint')}")
    rounds = [line for line in lines if "pairs" in line]
    steps = [line for line in lines if "step" in line and "loss" in line]
    if rounds:
        report.add_heading("Rounds: verifier-ranked pairs")
        report.add_table(rounds)
    if steps:
        plt = _pyplot()
        figure, axis = plt.subplots(figsize=(5, 3))
        axis.plot([s["step"] for s in steps], [s["loss"] for s in steps])
        axis.set_xlabel("step")
        axis.set_ylabel("DPO loss")
        figure.tight_layout()
        report.add_plot(figure, caption="DPO loss")
    for path in sorted(folder.glob("pairs-round*.parquet")):
        table = pq.read_table(path, columns=["chosen_cost", "rejected_cost"])
        if table.num_rows:
            plt = _pyplot()
            figure, axis = plt.subplots(figsize=(5, 3))
            axis.hist([table.column("chosen_cost").to_numpy(), table.column("rejected_cost").to_numpy()], bins=20,
                      label=["chosen", "rejected"])
            axis.set_xlabel("verifier cost")
            axis.legend()
            figure.tight_layout()
            report.add_plot(figure, caption=f"{path.stem}: {table.num_rows} pairs")
    for name, sample_dir in (samples or {}).items():
        add_samples(report, name, Path(sample_dir))
    report.add_json(config, caption="config.json")
    return report.write(folder / REPORT_FILE)


def add_samples(report: Report, name: str, folder: Path) -> None:
    """A `dynamics sample` folder: its clips and the verifier's scores per sample."""
    payload = _json(folder / "trajectory.json")
    report.add_heading(f"Samples: {name}")
    for video in payload.get("videos", []):
        report.add_clip(folder / video, caption=f"{name}: {video}", width=192)
    scores = payload.get("scores") or payload.get("reports")
    if scores:
        report.add_table([{k: v for k, v in s.items() if not isinstance(v, (dict, list))} for s in scores],
                         caption="verifier scores per sample")


# -- robot evaluations ---------------------------------------------------------------------------
#: The issue's names for the methods a robot evaluation compares, in the report's tables and plots.
ROBOT_METHOD_LABELS = {"retarget": "(a) retarget", "base": "grounded base", "scratch": "(b) scratch",
                       "residual": "(c) base + residual", "feedback": "hand-written feedback"}

#: What a learning curve's success is measured on, by its key in the training history.
_CURVE_SOURCES = {"validation_success": "validation seeds", "success_rate": "training episodes (last 20)"}


def _percent(value) -> float | None:
    return None if value is None else round(100 * value, 1)


def robot_result_rows(results: dict) -> list[dict]:
    """One row per task and method of a robot ``results.json``, in % and cm; grasp failures are
    None (shown as –) for a task without a grasp (push)."""
    rows = []
    for r in results["results"]:
        low, high = r.get("success_ci95") or (None, None)
        rows.append({"task": r["task"], "method": ROBOT_METHOD_LABELS.get(r["method"], r["method"]),
                     "episodes": r["episodes"], "train steps": r.get("train_steps", 0),
                     "success (%)": _percent(r["success_rate"]),
                     "95 % CI (%)": None if low is None or high is None else f"{100 * low:.0f}–{100 * high:.0f}",
                     # absent from results written before the held-success metric existed
                     "success, held (%)": _percent(r.get("held_success_rate")),
                     "tracking error (cm)": None if r.get("tracking_error_m") is None
                     else round(100 * r["tracking_error_m"], 2),
                     "grasp failures (%)": _percent(r.get("grasp_failure_rate"))})
    return rows


def robot_learning_curve(task: str, speed: dict):
    """Success vs PPO environment steps of (b) scratch and (c) residual for one task of a robot
    ``results.json``'s ``speed``, with (a) retargeting's success as a horizontal line. The curve
    is the quantity steps-to-target was measured by: validation success (``--curve-every``), else
    the exploring policy's success over its last 20 training episodes. None when there is no
    point to plot."""
    key = speed.get("steps_to_target_measured_by", "success_rate")
    lines = {}
    for method in ("scratch", "residual"):
        points = [(h["steps"], 100 * h[key]) for h in speed.get(f"{method}_history") or [] if h.get(key) is not None]
        if points:
            lines[method] = points
    if not lines:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.2))
    for method, points in lines.items():
        steps, success = zip(*points)
        axis.plot(steps, success, marker="o", markersize=3, label=ROBOT_METHOD_LABELS[method])
    if speed.get("retarget_success") is not None:
        axis.axhline(100 * speed["retarget_success"], color="k", linestyle="--", label=ROBOT_METHOD_LABELS["retarget"])
    axis.set_xlabel("PPO environment steps")
    axis.set_ylabel("validation success (%)" if key == "validation_success" else "training success, last 20 (%)")
    axis.set_ylim(-3, 103)
    axis.set_title(task)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def robot_eval_report(folder: str | Path, *, command=None, clips: int = 2) -> Path:
    """Success rate (95 % Wilson interval), tracking error and grasp-failure rate per task and
    method; per task the learning curves of (b) and (c) against (a)'s success and the steps each
    took to reach it; clips of successful rollouts. A folder from ``robot eval --policy`` (its
    results.json names the ``policy``) has one method, no comparison and no curves: the page then
    names the checkpoint and the configuration it was trained with instead."""
    folder = Path(folder)
    results = _json(folder / "results.json")
    rows = results["results"]
    checkpoint = results.get("policy")
    if checkpoint is None:
        report = Report(f"Robot evaluation {folder.name}", command=command,
                        subtitle="(a) direct retargeting, (b) PPO from scratch, (c) grounded base + residual PPO")
        table = robot_result_rows(results)
    else:
        trained = results.get("policy_config") or {}
        report = Report(f"Robot checkpoint evaluation {folder.name}", command=command,
                        subtitle="one saved policy on seeded episodes, no (a)/(b)/(c) comparison")
        report.add_text(f"checkpoint {checkpoint}: {ROBOT_METHOD_LABELS.get(trained.get('method'), '?')} policy "
                        f"trained on {trained.get('task', '?')} for {trained.get('total_steps', '?')} PPO steps "
                        f"(seed {trained.get('seed', '?')}), evaluated on "
                        f"{', '.join(dict.fromkeys(r['task'] for r in rows))}")
        # the rows carry no step count of their own (EvalResult.train_steps is 0 for a loaded policy)
        table = [{**row, "train steps": trained.get("total_steps")} for row in robot_result_rows(results)]
    report.add_table(table, caption="grasp failures: – where the task has no grasp (push); success, held: a "
                     "success whose object was also in the gripper mid-motion (not dragged to the goal)")
    tasks = sorted({r["task"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))  # every method the run compared, in its order
    series = {m: [next((100 * r["success_rate"] for r in rows if r["task"] == t and r["method"] == m), 0.0)
                  for t in tasks] for m in methods}
    report.add_plot(_bar(tasks, series, "success rate (%)", ylim=(0, 100)), caption="success rate per method")
    grasping = [t for t in tasks if any(r["task"] == t and r.get("grasp_failure_rate") is not None for r in rows)]
    if grasping:
        failures = {m: [next((_percent(r.get("grasp_failure_rate")) for r in rows
                              if r["task"] == t and r["method"] == m), None) for t in grasping] for m in methods}
        report.add_table([{"method": ROBOT_METHOD_LABELS.get(m, m), **dict(zip(grasping, values)),
                           "mean": round(float(np.mean(known)), 1) if (known := [v for v in values if v is not None])
                           else None} for m, values in failures.items()],
                         caption="grasp failure rate per method (%), over the tasks with a grasp", digits=3)
    if "residual_minus_retarget_points" in results:  # only a comparison has (a) and (c) to subtract
        report.add_text(f"mean success {json.dumps(results['mean_success'])}; residual - retarget: "
                        f"{results['residual_minus_retarget_points']:+.1f} points")
        if "held_residual_minus_retarget_points" in results:
            report.add_text(f"mean success with the object held mid-motion {json.dumps(results['mean_held_success'])}; "
                            f"residual - retarget: {results['held_residual_minus_retarget_points']:+.1f} points")
    speed = results.get("speed") or {}
    curves = [(task, robot_learning_curve(task, speed[task])) for task in tasks if task in speed]
    if any(figure is not None for _, figure in curves):
        report.add_heading("Learning curves")
        report.add_table([{"task": task, "(a)'s success (%)": _percent(entry.get("retarget_success")),
                           "measured on": _CURVE_SOURCES.get(entry.get("steps_to_target_measured_by", "success_rate"),
                                                             entry.get("steps_to_target_measured_by", "success_rate")),
                           "(b) steps to it": entry.get("scratch_steps_to_retarget_success"),
                           "(c) steps to it": entry.get("residual_steps_to_retarget_success"),
                           "(b) train wall (s)": entry.get("scratch_train_wall_s"),
                           "(c) train wall (s)": entry.get("residual_train_wall_s")}
                          for task, entry in speed.items()],
                         caption="environment steps until each reached (a)'s success, measured on the same "
                                 "episodes as the curve (–: not within the budget)",
                         digits=3)
        for task, figure in curves:
            if figure is not None:
                report.add_plot(figure, caption=f"learning curve: {task}")
    videos = sorted((folder / "dataset").rglob("*.mp4"))[:clips]
    if videos:
        report.add_heading("Successful residual rollouts")
        for video in videos:
            report.add_clip(video, caption=video.name, width=256)
    return report.write(folder / REPORT_FILE)


# -- the demo's index ----------------------------------------------------------------------------
def index_report(folder: str | Path, steps: Sequence[dict], *, command=None, title: str = "physforge demo") -> Path:
    """One page linking each step's report; ``steps``: dicts with name, folder (relative to
    ``folder``), seconds and a one-line summary."""
    folder = Path(folder)
    report = Report(title, command=command)
    report.add_table([{"step": s["name"], "seconds": round(s["seconds"], 1), "result": s["summary"]} for s in steps])
    for step in steps:
        report.add_heading(step["name"])
        report.add_text(step["summary"])
        if (folder / step["folder"] / REPORT_FILE).is_file():
            report.add_link(f"{step['folder']}/{REPORT_FILE}", f"open the {step['name']} report")
        if step.get("image") is not None:
            report.add_image(step["image"], width=320)
    return report.write(folder / REPORT_FILE)
