"""Simulator.set_joint_dynamics against closed-form sliders: viscous damping decays the velocity
exponentially, dry friction decelerates at a constant f/m; reset and restore undo the change."""

import math

import numpy as np
import pytest

from physforge.sim import Simulator
from physforge.world import Body, Box, Geom, Joint, Material, Pose, World

MASS = 2.0  # kg: a 0.1 m box of density 2000
V0 = 0.5  # m/s


def _slider_world() -> World:
    anchor = Body("anchor", (Geom(Box((0.02, 0.02, 0.02)), collide=False),), Pose((0, 0, 1.0)), Joint("fixed"))
    slider = Body("slider", (Geom(Box((0.05, 0.05, 0.05)), material=Material("dense", 2000.0)),),
                  Pose((0, 0, 0)), Joint("prismatic", axis=(1, 0, 0), initial_velocity=V0), parent="anchor")
    return World(bodies=(anchor, slider), ground=None)


def test_damping_decays_velocity_exponentially():
    sim = Simulator(_slider_world())
    assert sim.body_mass("slider") == pytest.approx(MASS)
    sim.set_joint_dynamics("slider", damping=4.0)
    duration = 0.5
    sim.step(int(round(duration / sim.model.opt.timestep)))
    assert sim.joint_velocity("slider") == pytest.approx(V0 * math.exp(-4.0 / MASS * duration), rel=0.01)


def test_dry_friction_stops_the_slider_at_the_closed_form_distance():
    sim = Simulator(_slider_world())
    sim.set_joint_dynamics("slider", frictionloss=5.0)
    sim.step(int(round(0.6 / sim.model.opt.timestep)))
    deceleration = 5.0 / MASS
    assert sim.joint_position("slider") == pytest.approx(V0**2 / (2 * deceleration), rel=0.05)
    assert abs(sim.joint_velocity("slider")) < 0.02


def test_reset_and_restore_undo_it_and_bad_values_name_the_argument():
    sim = Simulator(_slider_world())
    snapshot = sim.snapshot()
    sim.set_joint_dynamics("slider", damping=100.0)
    sim.restore(snapshot)
    sim.step(100)
    assert sim.joint_velocity("slider") == pytest.approx(V0)
    sim.set_joint_dynamics("slider", damping=100.0)
    sim.reset()
    assert np.all(sim.model.dof_damping == 0.0)
    with pytest.raises(ValueError, match="frictionloss of joint 'slider' must be >= 0"):
        sim.set_joint_dynamics("slider", frictionloss=-1.0)
