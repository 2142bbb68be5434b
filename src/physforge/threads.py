"""torch's CPU thread count for the length of one recipe, then the caller's again.

The count is process-wide, and float sums (so the bytes a training run writes) depend on it: a
recipe that set it and left it would change every later run in the same process. torch is
imported only when a count is set, so importing this module costs nothing."""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch CPU threads set to ``threads`` inside the block and restored on exit, whatever
    happens; ``threads`` None or 0 leaves the count as it is."""
    if not threads:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def with_config_threads(function):
    """Run a recipe ``function(config, ...)`` inside ``torch_threads(config.threads)``."""

    @functools.wraps(function)
    def wrapper(config, *args, **kwargs):
        with torch_threads(config.threads):
            return function(config, *args, **kwargs)

    return wrapper
