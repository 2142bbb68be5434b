"""Writing a command's report.html once its outputs are in place."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from physforge.cli.common import console

log = logging.getLogger(__name__)


def write_report(builder: Callable[..., Path], folder: Path, **kwargs) -> Path | None:
    """Build ``folder``/report.html with ``builder``; a failure is reported but does not fail the
    command, because the run's real outputs are already written (rebuild with the same builder)."""
    try:
        path = builder(folder, **kwargs)
    except Exception as error:  # noqa: BLE001 - any report bug must not throw away an hour of results
        log.debug("report for %s failed", folder, exc_info=True)
        console.print(f"[yellow]warning:[/yellow] could not write {folder}/report.html: "
                      f"{type(error).__name__}: {error}")
        return None
    console.print(f"[green]report[/green] {path}  (view: physforge view {folder})")
    return path
