"""``physforge asset build|check|tokens|library``: sim-ready articulated assets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from physforge.cli.common import cli_errors, console

asset_app = typer.Typer(help="Sim-ready articulated assets: build, check, tokens, library, from-image.", no_args_is_help=True)


def default_cache_dir() -> Path:
    """PHYSFORGE_CACHE_DIR, else ~/.cache/physforge (CoACD results, trained tokenizers)."""
    return Path(os.environ.get("PHYSFORGE_CACHE_DIR") or Path.home() / ".cache" / "physforge")


def _summary(report: dict) -> str:
    rest = report["checks"].get("rest", {}).get("worst", {})
    sweep = report["checks"].get("sweep", {})
    status = "[green]PASS[/green]" if report["passed"] else f"[red]FAIL[/red] {', '.join(report['failed'])}"
    return (f"{status}  drift {rest.get('drift_m', float('nan')) * 1000:.2f} mm, turn {rest.get('turn_deg', 0):.2f} deg, "
            f"max overlap {sweep.get('max_overlap_m', 0) * 1000:.2f} mm")


@asset_app.command("build")
def build(
    input_path: Path = typer.Argument(..., metavar="INPUT",
                                      help="annotation JSON (+ parts/ or objs/ meshes), a URDF, or one mesh file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output asset folder (must not exist unless --overwrite)."),
    base: Optional[str] = typer.Option(None, help="fixed or free; default: the input's choice."),
    collision: str = typer.Option("auto", help="auto (exact pieces if known, else CoACD), coacd, or hull."),
    repair: str = typer.Option("strict", help="strict, hull or voxel: what to do with a non-watertight mesh."),
    material: str = typer.Option("plastic", help="Material of inputs without one (mesh, URDF)."),
    up_axis: str = typer.Option("z", help="z, or y for y-up meshes (PartNet/PhysXNet)."),
    scale: float = typer.Option(1.0, help="Metres per file unit (mesh, URDF)."),
    coacd_threshold: float = typer.Option(0.05, help="CoACD concavity threshold."),
    max_hulls: int = typer.Option(16, help="CoACD hull cap per part (-1: none)."),
    cache_dir: Optional[Path] = typer.Option(None, help="CoACD cache (default ~/.cache/physforge)."),
    overwrite: bool = typer.Option(False, help="Replace the output folder if it exists."),
) -> None:
    """Build a sim-ready asset folder (MJCF, URDF, annotation, meshes) and run the gate on it."""
    from physforge.assets.build import BuildConfig, build_asset
    from physforge.assets.export import write_asset
    from physforge.assets.geometry import CoacdConfig
    from physforge.assets.importers import ImportConfig, load_source

    with cli_errors():
        config = BuildConfig(base=base, collision=collision, repair=repair,
                             coacd=CoacdConfig(threshold=coacd_threshold, max_convex_hull=max_hulls),
                             cache_dir=cache_dir or default_cache_dir())
        source = load_source(input_path, ImportConfig(material=material, up_axis=up_axis, scale=scale, base=base))
        with console.status(f"building {source.annotation.name}"):
            report = write_asset(build_asset(source, config), out, overwrite=overwrite)
        console.print(f"wrote {out}: {_summary(report)}")
        from physforge.cli.reporting import write_report
        from physforge.report import asset_report

        write_report(asset_report, out)
        if not report["passed"]:
            raise typer.Exit(code=1)


@asset_app.command("check")
def check(folder: Path = typer.Argument(..., help="An asset folder written by 'physforge asset build'.")) -> None:
    """Re-run the gate on an asset folder; writes its report.json; exit 1 if it fails."""
    from physforge.assets.export import check_asset_dir

    with cli_errors():
        report = check_asset_dir(folder)
        console.print(f"{folder}: {_summary(report)}")
        typer.echo(json.dumps({"asset": report["asset"], "passed": report["passed"], "failed": report["failed"]}))
        if not report["passed"]:
            raise typer.Exit(code=1)


@asset_app.command("tokens")
def tokens(
    input_path: Path = typer.Argument(..., metavar="MESH_OR_ASSET", help="A mesh file, asset folder or annotation."),
    resolution: int = typer.Option(32, help="Voxel grid N (N^3 cells): 16, 32, 64 or 128."),
    vocab_size: int = typer.Option(4096, help="BPE vocabulary of the locally trained tokenizer."),
    split_digits: bool = typer.Option(False, help="Single-digit number tokens (as Qwen2/LLaMA)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Where the trained tokenizer is kept."),
    up_axis: str = typer.Option("z", help="z, or y for y-up meshes."),
) -> None:
    """Tokens per part: raw OBJ text vs the PhysX-Anything baseline vs our encodings (JSON on stdout)."""
    from physforge.assets.importers import ImportConfig, load_source
    from physforge.assets.token_stats import TokenizerConfig, geometry_tokenizer, token_report

    with cli_errors():
        source = load_source(input_path, ImportConfig(up_axis=up_axis))
        with console.status("loading or training the geometry BPE tokenizer"):
            tokenizer = geometry_tokenizer(TokenizerConfig(vocab_size=vocab_size, split_digits=split_digits),
                                           (cache_dir or default_cache_dir()) / "tokenizers")
        report = token_report(source, tokenizer, resolution)
        for part in report["parts"]:
            t = part["tokens"]
            console.print(f"  {part['name']:<24} raw {t['raw_obj']:>8}  baseline {t['baseline']:>7}  "
                          f"boxes {t['boxes']:>6}  zruns {t['zruns']:>6}  ours {t['ours']:>6}")
        console.print(f"raw/ours {report['ratio_raw_over_ours']:.1f}x, baseline/ours "
                      f"{report['ratio_baseline_over_ours']:.1f}x")
        typer.echo(json.dumps(report))


@asset_app.command("library")
def library(
    category: str = typer.Option("all", help="A category, or 'all' to cycle through every category."),
    num: int = typer.Option(1, "--num", "-n", help="Number of objects."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one asset folder per object; rerun the "
                                                       "same command to resume."),
    seed: int = typer.Option(0, help="Run seed; object i uses SeedSequence([seed, i])."),
    collision: str = typer.Option("auto", help="auto (exact primitive pieces), coacd or hull."),
    cache_dir: Optional[Path] = typer.Option(None, help="CoACD cache (default ~/.cache/physforge)."),
    overwrite: bool = typer.Option(False, help="Replace the output folder if it exists."),
) -> None:
    """Generate, build and gate N seeded library objects; writes summary.json with the pass rate.

    Each object's folder appears only when complete; a killed run resumes where it stopped."""
    import shutil

    from physforge.assets.batch import LibraryBatchConfig, build_library
    from physforge.assets.library import CATEGORIES

    with cli_errors():
        if category != "all" and category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; choose one of all, {', '.join(sorted(CATEGORIES))}")
        if num < 1:
            raise ValueError(f"--num must be >= 1, got {num}")
        batch = LibraryBatchConfig(category=category, num=num, seed=seed, collision=collision)
        if overwrite and out.exists():
            shutil.rmtree(out)

        def show(row: dict) -> None:
            report = json.loads((out / row["name"] / "report.json").read_text())
            console.print(f"  {row['name']:<28} {_summary(report)}")

        summary = build_library(batch, out, cache_dir=cache_dir or default_cache_dir(), on_object=show)
        passed = summary["passed"]
        console.print(f"wrote {out}: {passed}/{num} passed the gate")
        if passed < num:
            raise typer.Exit(code=1)


@asset_app.command("image-data")
def image_data(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder (must not exist unless --overwrite)."),
    config: Optional[Path] = typer.Option(None, help="ImageDataConfig JSON; options below override it."),
    train_objects: Optional[int] = typer.Option(None, help="Objects per training category."),
    test_objects: Optional[int] = typer.Option(None, help="Unseen-seed objects per training category."),
    test_category_objects: Optional[int] = typer.Option(None, help="Objects per held-out category."),
    views: Optional[int] = typer.Option(None, help="Rendered views per object."),
    seed: Optional[int] = typer.Option(None, help="Run seed."),
    overwrite: bool = typer.Option(False, help="Replace the output folder if it exists."),
) -> None:
    """Render library objects into (image, multi-round target text) pairs as HF Parquet."""
    from physforge.assets.image_data import ImageDataConfig, write_image_dataset

    with cli_errors():
        base = ImageDataConfig.load(config).to_dict() if config else {}
        base["out"] = str(out)
        for key, value in (("train_objects", train_objects), ("test_objects", test_objects),
                           ("test_category_objects", test_category_objects), ("views", views), ("seed", seed)):
            if value is not None:
                base[key] = value
        cfg = ImageDataConfig.from_dict(base)
        with console.status("rendering library objects"):
            info = write_image_dataset(cfg, overwrite=overwrite)
        console.print(f"[green]wrote[/green] {out}: {info['splits']}")


@asset_app.command("train-vlm")
def train_vlm(
    data: Path = typer.Option(..., "--data", "-d", help="Image-asset dataset folder (asset image-data)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, model/, summary.json."),
    base_model: Optional[Path] = typer.Option(None, help="Local transformers VLM folder to fine-tune with LoRA."),
    config: Optional[Path] = typer.Option(None, help="AssetVLMConfig JSON; options below override it."),
    steps: Optional[int] = typer.Option(None, help="Optimiser steps."),
    batch_size: Optional[int] = typer.Option(None, help="Conversations per step."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    seed: Optional[int] = typer.Option(None, help="Seed."),
    overwrite: bool = typer.Option(False, help="Replace a non-empty run folder."),
) -> None:
    """Train the image-to-asset VLM with TRL SFT (tiny Idefics3 from scratch, or LoRA on --base-model)."""
    from physforge.assets.image_model import AssetVLMConfig, train_asset_vlm

    with cli_errors():
        base = AssetVLMConfig.load(config).to_dict() if config else {}
        base.update(data=str(data), out=str(out))
        for key, value in (("base_model", str(base_model) if base_model else None), ("steps", steps),
                           ("batch_size", batch_size), ("lr", lr), ("seed", seed)):
            if value is not None:
                base[key] = value
        summary = train_asset_vlm(AssetVLMConfig.from_dict(base), overwrite=overwrite)
        console.print(f"[green]wrote[/green] {summary['model']}: {summary['steps']} steps, "
                      f"{summary['train_images_per_second']} images/s, final loss {summary['final_loss']}")


@asset_app.command("from-image")
def from_image(
    image: Path = typer.Argument(..., help="An image of one object (PNG/JPEG)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output asset folder (must not exist unless --overwrite)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="model/ folder from 'asset train-vlm' "
                                         "(default: the built-in model)."),
    overwrite: bool = typer.Option(False, help="Replace the output folder if it exists."),
    attempts: int = typer.Option(4, help="Generations to try: the greedy one, then sampled ones (seeds 1, 2, ...) "
                                 "while the simulation gate rejects the asset; 1: greedy only."),
) -> None:
    """Image -> text -> schema -> voxels -> meshes -> MJCF + URDF -> gate report card; exit 1 if the gate fails."""
    from physforge.assets.from_image import asset_from_image, check_attempts, describe

    with cli_errors():
        check_attempts(attempts, "--attempts")  # before the model loads: a ValueError, one red line
        with console.status(f"generating an asset from {image}"):
            result = asset_from_image(image, out, model, overwrite=overwrite, attempts=attempts)
        console.print(f"wrote {out}: {_summary(result['report'])}"
                      + ("  [yellow]low confidence[/yellow]" if result["low_confidence"] else ""))
        from physforge.cli.reporting import write_report
        from physforge.report import asset_report

        write_report(asset_report, out)
        typer.echo(describe(result))
        if not result["report"]["passed"]:
            raise typer.Exit(code=1)


@asset_app.command("eval")
def eval_command(
    data: Path = typer.Option(..., "--data", "-d", help="Image-asset dataset folder with test splits."),
    out: Path = typer.Option(..., "--out", "-o", help="Result folder: result.json, config.json."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="model/ folder (default: built-in)."),
    max_objects: int = typer.Option(0, help="Per split, the first N objects (0: all)."),
    max_per_category: int = typer.Option(0, help="Per split and category, the first N objects (0: all)."),
    no_gate: bool = typer.Option(False, help="Skip the simulation gate on predictions."),
    overwrite: bool = typer.Option(False, help="Replace the output folder if it exists."),
    attempts: int = typer.Option(4, help="VLM generations per object, as 'asset from-image --attempts' "
                                 "(greedy, then sampled while the gate rejects); 1: greedy only."),
) -> None:
    """Score the VLM against nearest-neighbour retrieval and the category-mean object on held-out objects
    and held-out categories (voxel IoU, Chamfer, F-score, joints, scale, materials, gate)."""
    from physforge.assets.image_eval import AssetEvalConfig, evaluate_assets, format_table

    with cli_errors():
        cfg = AssetEvalConfig(data=str(data), out=str(out), model=str(model) if model else None,
                              max_objects=max_objects, max_per_category=max_per_category, gate=not no_gate,
                              attempts=attempts)
        with console.status("evaluating"):
            result = evaluate_assets(cfg, overwrite=overwrite)
        console.print(format_table(result), highlight=False, soft_wrap=True)
        from physforge.assets.image_eval_paired import verdict_lines

        for line in verdict_lines(result["paired"]):
            console.print(line, highlight=False, soft_wrap=True)
        console.print(f"[green]wrote[/green] {out}/result.json")
        from physforge.cli.reporting import write_report
        from physforge.report import asset_eval_report

        write_report(asset_eval_report, out)
