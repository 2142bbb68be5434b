"""The material table: bulk and contact properties of the materials objects are made of.

Densities (kg/m^3), Young's modulus (Pa) and Poisson ratio are handbook values; sliding
friction is a typical dry coefficient against wood/steel; restitution a typical value for a
hard drop. An annotation names a material; the table supplies whatever the annotation does
not (friction and restitution always come from here: a VLM's guess is not trusted for them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MaterialProperties:
    """density kg/m^3; youngs_modulus Pa; poisson_ratio 1; friction sliding coefficient;
    restitution in [0, 1]."""

    name: str
    density: float
    youngs_modulus: float
    poisson_ratio: float
    friction: float
    restitution: float


MATERIALS: dict[str, MaterialProperties] = {m.name: m for m in (
    MaterialProperties("wood", 700.0, 11e9, 0.30, 0.45, 0.40),
    MaterialProperties("plywood", 600.0, 8e9, 0.30, 0.45, 0.40),
    MaterialProperties("steel", 7850.0, 200e9, 0.29, 0.40, 0.50),
    MaterialProperties("aluminium", 2700.0, 69e9, 0.33, 0.45, 0.50),
    MaterialProperties("plastic", 1050.0, 2.5e9, 0.38, 0.40, 0.50),
    MaterialProperties("glass", 2500.0, 70e9, 0.22, 0.35, 0.60),
    MaterialProperties("ceramic", 2400.0, 100e9, 0.25, 0.50, 0.50),
    MaterialProperties("rubber", 1150.0, 0.05e9, 0.49, 0.90, 0.70),
    MaterialProperties("fabric", 300.0, 0.01e9, 0.40, 0.70, 0.10),
    MaterialProperties("leather", 900.0, 0.1e9, 0.40, 0.60, 0.20),
    MaterialProperties("foam", 60.0, 0.001e9, 0.30, 0.80, 0.10),
    MaterialProperties("stone", 2600.0, 50e9, 0.25, 0.55, 0.40),
    MaterialProperties("cardboard", 250.0, 1e9, 0.30, 0.50, 0.20),
    MaterialProperties("brass", 8500.0, 100e9, 0.34, 0.40, 0.50),
)}

#: Loose names found in PhysXNet/PartNet annotations, mapped to a table entry (lower case,
#: first matching keyword wins).
ALIASES: tuple[tuple[str, str], ...] = (
    ("stainless", "steel"), ("iron", "steel"), ("steel", "steel"), ("metal", "steel"), ("alumin", "aluminium"),
    ("brass", "brass"), ("copper", "brass"), ("chrome", "steel"),
    ("plywood", "plywood"), ("mdf", "plywood"), ("wood", "wood"), ("oak", "wood"), ("pine", "wood"),
    ("bamboo", "wood"), ("glass", "glass"), ("ceramic", "ceramic"), ("porcelain", "ceramic"),
    ("rubber", "rubber"), ("silicone", "rubber"), ("fabric", "fabric"), ("cloth", "fabric"),
    ("textile", "fabric"), ("leather", "leather"), ("foam", "foam"), ("sponge", "foam"),
    ("stone", "stone"), ("marble", "stone"), ("granite", "stone"), ("concrete", "stone"),
    ("cardboard", "cardboard"), ("paper", "cardboard"),
    ("plastic", "plastic"), ("abs", "plastic"), ("polypropylene", "plastic"), ("pvc", "plastic"),
    ("nylon", "plastic"), ("acrylic", "plastic"), ("resin", "plastic"), ("polymer", "plastic"),
)

#: Used when a material name matches nothing in the table.
FALLBACK_MATERIAL = "plastic"


def lookup(name: str) -> tuple[MaterialProperties, bool]:
    """``(properties, matched)`` for a material name; unmatched names get FALLBACK_MATERIAL."""
    key = name.strip().lower()
    if key in MATERIALS:
        return MATERIALS[key], True
    for keyword, target in ALIASES:
        if keyword in key:
            return MATERIALS[target], True
    return MATERIALS[FALLBACK_MATERIAL], False
