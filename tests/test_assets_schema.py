"""Annotation schema: JSON round trips, PhysXNet units at the edge, determinism by seed, clear errors."""

import json
import math

import numpy as np
import pytest

from physforge.assets.library import CATEGORIES, generate, object_rng
from physforge.assets.materials import MATERIALS, lookup
from physforge.assets.schema import (AssetAnnotation, KinematicGroup, PartAnnotation, annotation_from_dict,
                                     annotation_json, from_physxnet, to_physxnet)
from physforge.errors import WorldValidationError


def part(label, name="p"):
    return PartAnnotation(label=label, name=f"{name}{label}", material="wood", density=700.0, youngs_modulus=11e9,
                          poisson_ratio=0.3, affordance_rank=5)


def test_library_has_at_least_twelve_categories_all_fully_annotated():
    assert len(CATEGORIES) >= 12
    for category in CATEGORIES:
        source = generate(category, object_rng(11, 0), seed=11)
        a = source.annotation
        assert a.category == category and a.seed == 11
        assert all(d > 0 for d in a.dimensions)
        for p in a.parts:
            assert 1 <= p.affordance_rank <= 10
            assert p.basic_description and p.functional_description and p.movement_description and p.grasp_description
            assert lookup(p.material)[1] and p.material in MATERIALS
        # dimensions are the extents of the part meshes (metres)
        points = np.concatenate([v for v, _ in source.meshes.values()])
        assert np.allclose(np.ptp(points, axis=0), a.dimensions, atol=1e-6)
        assert points[:, 2].min() == pytest.approx(0.0, abs=1e-9)


def test_joint_types_cover_the_physx_kinds():
    kinds = {g.joint_type for c in CATEGORIES for g in generate(c, object_rng(0, 0), seed=0).annotation.groups}
    assert {"revolute", "prismatic", "ball", "revolute_prismatic", "fixed"} <= kinds


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_same_seed_same_bytes_other_seed_other_object(category):
    one = annotation_json(generate(category, object_rng(7, 3), seed=7).annotation)
    two = annotation_json(generate(category, object_rng(7, 3), seed=7).annotation)
    other = annotation_json(generate(category, object_rng(7, 4), seed=7).annotation)
    assert one == two
    assert one != other


def test_json_round_trip_is_exact():
    for category in CATEGORIES:
        annotation = generate(category, object_rng(1, 1), seed=1).annotation
        again = annotation_from_dict(json.loads(annotation_json(annotation)))
        assert again == annotation


def test_physxnet_form_uses_cm_grams_gpa_degrees_and_reads_back():
    annotation = generate("laptop", object_rng(2, 0), seed=2).annotation
    data = to_physxnet(annotation)
    dims = [float(v) for v in data["dimension"].split("*")]
    assert dims == pytest.approx([d * 100 for d in annotation.dimensions], rel=1e-6)
    lid = annotation.group(1)
    entry = data["group_info"]["1"]
    assert entry[3] == "C" and entry[1] == "0"
    assert entry[2][6:8] == pytest.approx([math.degrees(v) for v in lid.range])
    base_part = data["parts"][0]
    assert float(base_part["density"].split()[0]) == pytest.approx(annotation.parts[0].density / 1000)
    assert base_part["Young's Modulus (GPa)"] == pytest.approx(annotation.parts[0].youngs_modulus / 1e9)
    again = from_physxnet(json.loads(json.dumps(data)), mesh_scale=1.0, base=annotation.base)
    for g_in, g_out in zip(annotation.groups, again.groups):
        assert g_out.joint_type == g_in.joint_type and g_out.parts == g_in.parts
        assert np.allclose(g_out.axis, g_in.axis) and np.allclose(g_out.pivot, g_in.pivot)
        if g_in.range is not None:
            assert np.allclose(g_out.range, g_in.range)
    for p_in, p_out in zip(annotation.parts, again.parts):
        assert p_out.density == pytest.approx(p_in.density) and p_out.affordance_rank == p_in.affordance_rank


def test_physxnet_screw_joint_and_prismatic_units():
    bottle = generate("bottle", object_rng(3, 0), seed=3).annotation
    data = to_physxnet(bottle)
    assert data["group_info"]["1"][3] == "CB"
    again = from_physxnet(data, mesh_scale=0.5)  # mesh units are half metres: slides halve
    assert again.group(1).slide_range == pytest.approx(tuple(0.5 * v for v in bottle.group(1).slide_range))


def test_group_naming_an_unknown_part_is_refused_with_the_label():
    with pytest.raises(WorldValidationError, match="group 1 refers to part 9, which does not exist"):
        AssetAnnotation("thing", "box", (0.1, 0.1, 0.1), (part(0), part(1)),
                        (KinematicGroup(0, (0,)), KinematicGroup(1, (9,), 0, "revolute")))


def test_part_in_two_groups_and_orphan_parts_are_refused():
    with pytest.raises(WorldValidationError, match="each part belongs to one group"):
        AssetAnnotation("thing", "box", (0.1, 0.1, 0.1), (part(0), part(1)),
                        (KinematicGroup(0, (0, 1)), KinematicGroup(1, (1,), 0, "revolute")))
    with pytest.raises(WorldValidationError, match=r"parts \[1\] belong to no group"):
        AssetAnnotation("thing", "box", (0.1, 0.1, 0.1), (part(0), part(1)), (KinematicGroup(0, (0,)),))


def test_bad_part_fields_name_the_field():
    with pytest.raises(WorldValidationError, match="affordance_rank"):
        PartAnnotation(label=0, name="x", material="wood", density=700, youngs_modulus=1e9, poisson_ratio=0.3,
                       affordance_rank=11)
    data = json.loads(annotation_json(generate("chair", object_rng(0, 0), seed=0).annotation))
    data["parts"][2]["density"] = -5
    with pytest.raises(WorldValidationError, match=r"parts\[2\]\.density"):
        annotation_from_dict(data)


def test_screw_joint_with_a_different_slide_direction_is_refused():
    data = {"object_name": "jar", "category": "jar", "dimension": "10*10*10",
            "parts": [{"label": 0, "name": "body"}, {"label": 1, "name": "lid"}],
            "group_info": {"0": [0], "1": [[1], "0", [0, 0, 1, 0, 0, 0.1, 0, 360, 1, 0, 0, 0, 0, 0, 0, 0.02], "CB"]}}
    with pytest.raises(WorldValidationError, match="slide direction differs"):
        from_physxnet(data, mesh_scale=1.0)
