"""Simulator.set_geom_densities against MuJoCo's own compile of the same body with those densities,
and against the closed-form mass properties of two boxes; snapshot/restore and reset undo it."""

import numpy as np
import pytest
import trimesh

from physforge.sim import Simulator
from physforge.world import Body, Box, Geom, Joint, Material, Mesh, Pose, World

HEAD = (0.03, 0.02, 0.015)    # box half-sizes, m
HANDLE = (0.12, 0.012, 0.01)
HEAD_AT, HANDLE_AT = (0.15, 0.0, 0.005), (0.0, 0.0, 0.0)


def _tool(head_density: float, handle_density: float, prism_density: float) -> World:
    # a rotated, off-centre mesh part as well, so the per-geom frames and mesh inertia are exercised
    prism = trimesh.creation.box((0.04, 0.03, 0.02))
    geoms = (Geom(Box(HANDLE), Pose(HANDLE_AT), material=Material("wood", handle_density)),
             Geom(Box(HEAD), Pose(HEAD_AT), material=Material("steel", head_density)),
             Geom(Mesh(vertices=np.asarray(prism.vertices), faces=np.asarray(prism.faces)),
                  Pose((-0.1, 0.02, 0.01), (0.9238795, 0.0, 0.3826834, 0.0)), material=Material("rubber", prism_density)))
    return World(bodies=(Body("tool", geoms, Pose((0.0, 0.0, 0.3)), Joint("free")),), ground=None)


def _tensor(model, body_id) -> np.ndarray:
    import mujoco

    rotation = np.empty(9)
    mujoco.mju_quat2Mat(rotation, model.body_iquat[body_id])
    rotation = rotation.reshape(3, 3)
    return rotation @ np.diag(model.body_inertia[body_id]) @ rotation.T


@pytest.mark.parametrize("densities", [(7900.0, 400.0, 1200.0), (7000.0, 900.0, 900.0), (500.0, 500.0, 500.0)])
def test_densities_give_what_mujoco_compiles_for_them(densities):
    sim = Simulator(_tool(7500.0, 650.0, 1000.0))
    body_id = sim.compiled.body_id("tool")
    sim.set_geom_densities("tool", (densities[1], densities[0], densities[2]))
    oracle = Simulator(_tool(*densities))
    model, expected = sim.model, oracle.model
    assert model.body_mass[body_id] == pytest.approx(expected.body_mass[body_id], rel=1e-6)
    np.testing.assert_allclose(model.body_ipos[body_id], expected.body_ipos[body_id], atol=1e-7)
    np.testing.assert_allclose(_tensor(model, body_id), _tensor(expected, body_id), rtol=1e-5, atol=1e-10)
    # and the derived constants follow (mj_setConst ran): the same free fall of the centre of mass
    assert sim.data.xipos[body_id] == pytest.approx(oracle.data.xipos[body_id], abs=1e-7)


def test_two_boxes_match_the_closed_form():
    sim = Simulator(_tool(7500.0, 650.0, 1000.0))
    body_id = sim.compiled.body_id("tool")
    steel, wood = 7800.0, 450.0
    sim.set_geom_densities("tool", (wood, steel, 0.0))
    parts = [(wood, np.array(HANDLE), np.array(HANDLE_AT)), (steel, np.array(HEAD), np.array(HEAD_AT))]
    masses = [rho * 8 * np.prod(half) for rho, half, _ in parts]
    mass = sum(masses)
    centre = sum(m * at for m, (_, _, at) in zip(masses, parts)) / mass
    inertia = np.zeros((3, 3))
    for m, (_, half, at) in zip(masses, parts):
        full = 2 * half
        own = m / 12 * np.diag([full[1]**2 + full[2]**2, full[0]**2 + full[2]**2, full[0]**2 + full[1]**2])
        d = at - centre
        inertia += own + m * (d @ d * np.eye(3) - np.outer(d, d))
    assert sim.model.body_mass[body_id] == pytest.approx(mass, rel=1e-6)
    np.testing.assert_allclose(sim.model.body_ipos[body_id], centre, atol=1e-7)
    np.testing.assert_allclose(_tensor(sim.model, body_id), inertia, rtol=1e-5, atol=1e-10)


def test_restore_and_reset_undo_it_and_bad_input_is_named():
    sim = Simulator(_tool(7500.0, 650.0, 1000.0))
    body_id = sim.compiled.body_id("tool")
    before = sim.model.body_ipos[body_id].copy(), sim.model.body_mass[body_id]
    snapshot = sim.snapshot()
    sim.set_geom_densities("tool", (900.0, 7000.0, 900.0))
    assert np.linalg.norm(sim.model.body_ipos[body_id] - before[0]) > 0.005
    sim.restore(snapshot)
    np.testing.assert_allclose(sim.model.body_ipos[body_id], before[0])
    sim.set_geom_densities("tool", (900.0, 7000.0, 900.0))
    sim.reset()
    np.testing.assert_allclose(sim.model.body_ipos[body_id], before[0])
    assert sim.model.body_mass[body_id] == before[1]
    with pytest.raises(ValueError, match="densities for body 'tool' must be 3"):
        sim.set_geom_densities("tool", (900.0, 7000.0))
    with pytest.raises(ValueError, match=">= 0 kg/m"):
        sim.set_geom_densities("tool", (900.0, -1.0, 5.0))
