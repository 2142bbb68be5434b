"""Error types of the data engine (each also a ValueError, so ``except ValueError`` works)."""

from __future__ import annotations

from physforge.errors import PhysforgeError


class DataConfigError(PhysforgeError, ValueError):
    """A data-generation config holds a bad value; ``path`` names the field."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")


class DatasetValidationError(PhysforgeError, ValueError):
    """A dataset folder is incomplete or inconsistent; ``problems`` lists every finding."""

    def __init__(self, folder, problems: list[str]):
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5]) + (f"; ... ({len(self.problems)} in all)" if len(self.problems) > 5 else "")
        super().__init__(f"{folder}: dataset is not valid: {shown}. Regenerate it with `physforge data generate`.")


class PredictionsError(PhysforgeError, ValueError):
    """A predictions file cannot be graded; the message names the file and line."""
