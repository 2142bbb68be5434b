"""``physforge asset build|check|tokens|library``: sim-ready articulated assets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from physforge.cli.common import cli_errors, console

asset_app = typer.Typer(help="Sim-ready articulated assets: build, check, tokens, library.", no_args_is_help=True)


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
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one asset folder per object."),
    seed: int = typer.Option(0, help="Run seed; object i uses SeedSequence([seed, i])."),
    collision: str = typer.Option("auto", help="auto (exact primitive pieces), coacd or hull."),
    cache_dir: Optional[Path] = typer.Option(None, help="CoACD cache (default ~/.cache/physforge)."),
    overwrite: bool = typer.Option(False, help="Replace the output folder if it exists."),
) -> None:
    """Generate, build and gate N seeded library objects; writes summary.json with the pass rate."""
    from physforge.assets.library import CATEGORIES, generate, object_rng
    from physforge.assets.build import BuildConfig, build_asset
    from physforge.assets.export import write_asset
    from physforge.outputs import staged_directory, write_json

    with cli_errors():
        if category != "all" and category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; choose one of all, {', '.join(sorted(CATEGORIES))}")
        if num < 1:
            raise ValueError(f"--num must be >= 1, got {num}")
        config = BuildConfig(collision=collision, cache_dir=cache_dir or default_cache_dir())
        names = sorted(CATEGORIES)
        rows = []
        with staged_directory(out, overwrite=overwrite) as staging:
            for i in range(num):
                chosen = names[i % len(names)] if category == "all" else category
                source = generate(chosen, object_rng(seed, i), seed=seed, name=f"{chosen}_{seed}_{i:04d}")
                report = write_asset(build_asset(source, config), staging / source.annotation.name)
                rows.append({"index": i, "name": source.annotation.name, "category": chosen,
                             "passed": report["passed"], "failed": report["failed"]})
                console.print(f"  {source.annotation.name:<28} {_summary(report)}")
            passed = sum(r["passed"] for r in rows)
            write_json(staging / "summary.json", {"seed": seed, "num": num, "passed": passed,
                                                  "pass_rate": passed / num, "objects": rows})
        console.print(f"wrote {out}: {passed}/{num} passed the gate")
        if passed < num:
            raise typer.Exit(code=1)
