"""Sim-ready articulated assets: annotation schema, procedural library, geometry tokens,
mesh + annotation -> MJCF/URDF, and the simulation gate that checks every export."""
