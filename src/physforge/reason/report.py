"""The evaluation report: a Markdown table per split (question type x model, per-question
accuracy with per-option accuracy for multiple choice), a bar plot per split (PNG, matplotlib),
and a self-contained HTML page embedding the plots."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any


def table_rows(result: dict[str, Any], split: str) -> tuple[list[str], list[str], dict]:
    """(question types, model names, {(type, model): row}) for one split."""
    cells: dict[tuple[str, str], dict] = {}
    types: set[str] = set()
    names = [m["name"] for m in result["models"]]
    for m in result["models"]:
        for row in m["by_type_split"]:
            if row["split"] == split:
                cells[(row["question_type"], m["name"])] = row
                types.add(row["question_type"])
        overall = _split_overall(m, split)
        if overall:
            cells[("all", m["name"])] = overall
    return sorted(types) + (["all"] if types else []), names, cells


def _split_overall(model: dict[str, Any], split: str) -> dict[str, Any] | None:
    rows = [r for r in model["by_type_split"] if r["split"] == split]
    n = sum(r["questions"] for r in rows)
    if not n:
        return None
    return {"questions": n, "accuracy": round(sum(r["accuracy"] * r["questions"] for r in rows) / n, 4)}


def _cell(row: dict | None) -> str:
    if row is None:
        return "–"
    text = f"{100 * row['accuracy']:.1f}"
    if "option_accuracy" in row:
        text += f" ({100 * row['option_accuracy']:.1f})"
    return text


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Evaluation of {result['model']}", "",
             f"Dataset `{result['dataset']}`; {result['questions']} questions "
             f"({', '.join(f'{s}: {n}' for s, n in result['questions_per_split'].items())}). Accuracy in % per "
             "question (per option in parentheses for multiple choice), scored by `physforge.data.grade`.", ""]
    for item in result.get("missing_baselines", []):
        lines.append(f"- baseline not available: {item}")
    speeds = ", ".join(f"{m['name']}: {m['questions_per_second']} q/s" for m in result["models"])
    lines += ["", f"Answering speed: {speeds}.", ""]
    for split in result["splits"]:
        types, names, cells = table_rows(result, split)
        if not types:
            continue
        lines += [f"## {split}", "", "| question type | n | " + " | ".join(names) + " |",
                  "|---|---|" + "---|" * len(names)]
        for t in types:
            n = next((cells[(t, name)]["questions"] for name in names if (t, name) in cells), 0)
            lines.append(f"| {t} | {n} | " + " | ".join(_cell(cells.get((t, name))) for name in names) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], split: str, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    types, names, cells = table_rows(result, split)
    if not types:
        return False
    x = np.arange(len(types))
    width = 0.8 / max(1, len(names))
    figure, axis = plt.subplots(figsize=(max(6.0, 1.1 * len(types) + 2), 3.6), dpi=100)
    for k, name in enumerate(names):
        values = [100 * cells[(t, name)]["accuracy"] if (t, name) in cells else 0.0 for t in types]
        axis.bar(x + (k - (len(names) - 1) / 2) * width, values, width, label=name)
    axis.set_xticks(x, types, rotation=25, ha="right")
    axis.set_ylabel("accuracy per question (%)")
    axis.set_ylim(0, 100)
    axis.set_title(f"{split}: {result['questions_per_split'].get(split, 0)} questions")
    axis.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def write_report(result: dict[str, Any], out: Path) -> None:
    """report.md, accuracy_<split>.png and report.html in ``out``."""
    text = markdown(result)
    (out / "report.md").write_text(text)
    images = []
    for split in result["splits"]:
        path = out / f"accuracy_{split}.png"
        if plot(result, split, path):
            images.append(path)
    body = ["<!doctype html><html><head><meta charset='utf-8'><title>physforge reason eval</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>"]
    for line in text.splitlines():
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            split = line[3:]
            body.append(f"<h2>{html.escape(split)}</h2>")
            png = out / f"accuracy_{split}.png"
            if png in images:
                data = base64.b64encode(png.read_bytes()).decode()
                body.append(f"<img alt='accuracy on {html.escape(split)}' src='data:image/png;base64,{data}'>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            body.append("<table><tr>" if cells[0] == "question type" else "<tr>")
            tag = "th" if cells[0] == "question type" else "td"
            body.append("".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
        elif not line.strip():
            if body and body[-1].endswith("</tr>"):
                body.append("</table>")
        else:
            body.append(f"<p>{html.escape(line)}</p>")
    body.append("</body></html>")
    (out / "report.html").write_text("\n".join(body))
