"""The ``physforge`` command line: a thin layer over the Python API."""

from physforge.cli.main import app, main

__all__ = ["app", "main"]
