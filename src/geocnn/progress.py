"""Progress reporting without printing.

Long-running library functions take a :class:`Reporter`; the command line passes one that draws
rich progress bars, tests and library users get :data:`SILENT`.
"""

from __future__ import annotations

from typing import Protocol


class Task(Protocol):
    """One unit of long work (an epoch, a prediction, a conversion)."""

    def advance(self, n: float = 1, **fields: object) -> None: ...

    def close(self) -> None: ...


class Reporter(Protocol):
    """Creates tasks; ``total`` is None when unknown."""

    def task(self, description: str, total: float | None, unit: str = "it") -> Task: ...


class _SilentTask:
    def advance(self, n: float = 1, **fields: object) -> None:
        pass

    def close(self) -> None:
        pass


class _Silent:
    def task(self, description: str, total: float | None, unit: str = "it") -> Task:
        return _SilentTask()


SILENT: Reporter = _Silent()
