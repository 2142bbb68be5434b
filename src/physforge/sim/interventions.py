"""Interventions that keep the current state exactly (additive helpers over ``Simulator``).

``Simulator.set_mass`` calls ``mj_setConst``, which recomputes the model's constants at the
reference configuration and leaves ``data.qpos`` at ``qpos0``: a hinged body (a pendulum
released at an angle) jumps back to its reference angle. ``scale_mass`` changes the mass the
same way and then puts the state back.
"""

from __future__ import annotations

import math

import mujoco

from physforge.sim.simulator import Simulator


def scale_mass(sim: Simulator, name: str, factor: float) -> None:
    """Multiply body ``name``'s mass and inertia by ``factor`` (> 0) without touching the state
    (positions, velocities, time)."""
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"mass factor must be a positive number, got {factor}")
    qpos, qvel, act, time = sim.data.qpos.copy(), sim.data.qvel.copy(), sim.data.act.copy(), sim.data.time
    sim.set_mass(name, sim.body_mass(name) * factor)
    sim.data.qpos[:], sim.data.qvel[:], sim.data.act[:] = qpos, qvel, act
    sim.data.time = time
    mujoco.mj_forward(sim.model, sim.data)
    sim._after_intervention()  # energy reference of the restored state
