"""Sim-ready articulated assets: annotation schema, procedural library, geometry tokens,
mesh + annotation -> MJCF/URDF, and the simulation gate that checks every export.

    from physforge.assets import generate, object_rng, build_asset, write_asset
    source = generate("cabinet", object_rng(seed=0, index=3), seed=0)   # annotation + part meshes
    asset = build_asset(source)                                         # .world: a physforge World
    report = write_asset(asset, "runs/cabinet")                         # MJCF, URDF, report.json

Submodules import their heavy dependencies (trimesh, coacd, scikit-image, tokenizers,
yourdfpy, pybullet) only when used.
"""

from importlib import import_module

_EXPORTS = {
    "AssetAnnotation": "schema", "PartAnnotation": "schema", "KinematicGroup": "schema",
    "annotation_json": "schema", "to_physxnet": "schema", "from_physxnet": "schema",
    "SourceAsset": "source", "CATEGORIES": "library", "generate": "library", "object_rng": "library",
    "BuildConfig": "build", "SimAsset": "build", "build_asset": "build",
    "write_asset": "export", "check_asset_dir": "export", "GateConfig": "gate", "run_gate": "gate",
    "ImportConfig": "importers", "load_source": "importers", "export_urdf": "urdf", "import_urdf": "urdf",
    "CoacdConfig": "geometry", "MeshQualityError": "geometry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"physforge.assets.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'physforge.assets' has no attribute {name!r}")
