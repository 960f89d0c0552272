"""Progress reporting: the library reports, the caller chooses how it shows.

Long-running library functions take a :class:`Reporter` and never print. :data:`SILENT` shows
nothing (tests, the library's default); :class:`RichReporter` draws rich bars on the console it is
given: the command line's stderr, or in a notebook a console rich finds Jupyter on (it draws there
through ipywidgets; on a file or a pipe it writes the final bars once, without escape codes).
"""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


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


class _RichTask:
    """One bar; shows ``n unit/s`` from rich's own speed estimate."""

    def __init__(self, progress: Progress, task_id: int, unit: str) -> None:
        self._progress, self._id, self._unit = progress, task_id, unit

    def advance(self, n: float = 1, **fields: object) -> None:
        speed = self._progress.tasks[self._id].speed
        update: dict = {"advance": n, "rate": f"{speed:,.1f} {self._unit}/s" if speed else ""}
        if "info" in fields:
            update["info"] = str(fields["info"])
        self._progress.update(self._id, **update)

    def close(self) -> None:
        self._progress.stop_task(self._id)


class RichReporter:
    """Progress bars with rate and ETA on ``console`` (default: a new stderr console); one live
    display shared by all tasks. Call :meth:`stop` when the work ends (an error included)."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console if console is not None else Console(stderr=True),
            transient=False,
            refresh_per_second=4,
        )
        self._started = False

    def task(self, description: str, total: float | None, unit: str = "it") -> Task:
        if not self._started:
            self._progress.start()
            self._started = True
        task_id = self._progress.add_task(description, total=total, rate="", info="", unit=unit)
        return _RichTask(self._progress, task_id, unit)

    def stop(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False
