"""Fuzzing the world JSON parser: whatever the input, it succeeds or raises physforge's own error."""

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from physforge.errors import PhysforgeError
from physforge.world import world_from_dict, world_to_dict
from physforge.world import load_world

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)

BASE = world_to_dict(load_world("examples/collision.json"))
BASE["bodies"][0]["inertial"] = {"mass": 1.0, "inertia": [0.01, 0.01, 0.01], "center_of_mass": [0, 0, 0]}
BASE["bodies"][1]["joint"] = {"type": "revolute", "range": [0, 1], "axis": [0, 0, 1]}
BASE["bodies"][1]["parent"] = BASE["bodies"][2]["name"]
KEYS = ["center_of_mass", "slide_range", "damping", "stiffness", "voxel_size", "occupied", "vertices", "faces",
        "bodies", "geoms", "shape", "joint", "pose", "material", "type", "radius", "half_extents", "position",
        "quaternion", "parent", "name", "density", "friction", "restitution", "inertial", "mass", "inertia",
        "cameras", "fovy", "gravity", "timestep", "ground", "velocity", "range", "axis"]


def _mutate(data, path, value):
    target = data
    for key in path[:-1]:
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif isinstance(target, list) and isinstance(key, int) and key < len(target):
            target = target[key]
        else:
            return data
    last = path[-1]
    if isinstance(target, dict):
        target[last if isinstance(last, str) else str(last)] = value
    elif isinstance(target, list) and isinstance(last, int) and last < len(target):
        target[last] = value
    return data


def _parse(data):
    try:
        world_from_dict(data)
    except PhysforgeError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_never_crashes_the_parser(data):
    _parse(data)
    _parse({"bodies": [data]})
    _parse({"bodies": [{"name": "a", "geoms": [data]}]})
    _parse({"bodies": [{"name": "a", "geoms": [{"shape": data}]}]})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(KEYS) | st.integers(0, 4), min_size=1, max_size=6), json_values)
def test_mutated_valid_worlds_never_crash_the_parser(path, value):
    _parse(_mutate(copy.deepcopy(BASE), path, value))


def test_json_round_trip_of_every_example_is_stable():
    for name in ("ramp", "collision", "pendulum"):
        data = world_to_dict(load_world(f"examples/{name}.json"))
        assert world_to_dict(world_from_dict(json.loads(json.dumps(data)))) == data
