"""What every CLI subcommand shares: the stderr console and turning physforge's errors into one
red line and exit code 2 (a user sees what is wrong and what to do, not a traceback)."""

from __future__ import annotations

import typer
from rich.console import Console

from physforge.errors import PhysforgeError

console = Console(stderr=True)

#: Errors a user can cause and fix: bad values, missing or existing files.
USER_ERRORS = (PhysforgeError, ValueError, FileNotFoundError, FileExistsError)


class cli_errors:
    """``with cli_errors(): ...`` — physforge's and bad-input errors become one line and exit code 2."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, typer.Exit):
            return False
        if isinstance(error, USER_ERRORS):
            console.print(f"[red]error:[/red] {error}", highlight=False)
            raise typer.Exit(code=2)
        return False
