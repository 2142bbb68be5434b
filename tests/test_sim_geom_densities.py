"""Simulator.set_geom_densities against MuJoCo's own compile of the same body with those densities,
and against the closed-form mass properties of two boxes; snapshot/restore and reset undo it."""

import numpy as np
import pytest
import trimesh

from physforge.sim import Simulator
from physforge.world import Body, Box, Geom, Joint, Material, Mesh, Pose, Sphere, World

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


def _stack(lower: float, upper: float, visual: bool = False) -> World:
    """Two equal boxes stacked on the body origin (at equal densities the centre of mass is the origin
    and the principal axes are the body's: MuJoCo compiles the body as "simple"), optionally with a
    visual-only sphere off to one side."""
    geoms = (Geom(Box((0.05, 0.05, 0.05)), Pose((0.0, 0.0, -0.05)), material=Material("a", lower)),
             Geom(Box((0.05, 0.05, 0.05)), Pose((0.0, 0.0, 0.05)), material=Material("b", upper)))
    if visual:
        geoms += (Geom(Sphere(0.04), Pose((0.3, 0.0, 0.0)), collide=False),)
    return World(bodies=(Body("stack", geoms, Pose((0.0, 0.0, 0.5)), Joint("free")),), ground=None)


def test_a_body_compiled_with_its_centre_of_mass_at_its_origin_takes_densities_that_keep_it_there():
    sim = Simulator(_stack(1000.0, 1000.0))
    body_id = sim.compiled.body_id("stack")
    assert sim.model.body_simple[body_id]  # the case under test: MuJoCo keeps its mass matrix diagonal
    sim.set_geom_densities("stack", (7800.0, 7800.0))
    oracle = Simulator(_stack(7800.0, 7800.0))
    assert sim.model.body_mass[body_id] == pytest.approx(oracle.model.body_mass[body_id], rel=1e-6)
    np.testing.assert_allclose(_tensor(sim.model, body_id), _tensor(oracle.model, body_id), rtol=1e-6)
    # oracle: MuJoCo's own model at those densities, spun and tumbling for 300 steps
    for s in (sim, oracle):
        s.data.qvel[:] = (0.1, 0.2, 0.0, 1.0, 2.0, 3.0)
        s.step(300)
    np.testing.assert_allclose(sim.data.qpos, oracle.data.qpos, atol=1e-6)
    # densities that move its centre of mass: a named error before anything changes (MuJoCo would
    # abort in mj_setConst, and the diagonal mass matrix would give the wrong motion)
    sim.reset()
    with pytest.raises(ValueError, match="would move the centre of mass of body 'stack' 0.0429 m off its origin"):
        sim.set_geom_densities("stack", (7800.0, 600.0))
    assert sim.model.body_mass[body_id] == pytest.approx(oracle.model.body_mass[body_id] / 7.8)
    assert np.all(sim.model.body_ipos[body_id] == 0.0)
    sim.step(10)


def test_visual_geoms_stay_massless():
    sim = Simulator(_stack(1000.0, 700.0, visual=True))
    body_id = sim.compiled.body_id("stack")
    sim.set_geom_densities("stack", (7800.0, 600.0, 0.0))
    oracle = Simulator(_stack(7800.0, 600.0, visual=True))  # World: a visual geom has no mass
    assert sim.model.body_mass[body_id] == pytest.approx(oracle.model.body_mass[body_id], rel=1e-6)
    np.testing.assert_allclose(sim.model.body_ipos[body_id], oracle.model.body_ipos[body_id], atol=1e-7)
    with pytest.raises(ValueError, match=r"geom 2 of body 'stack' is visual only \(collide=False\)"):
        sim.set_geom_densities("stack", (7800.0, 600.0, 500.0))
