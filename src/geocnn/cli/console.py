"""Terminal output for the command line: rich consoles, log handler, progress bars, errors."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.logging import RichHandler

from geocnn.progress import SILENT, Reporter, RichReporter

# Wide tables stay readable when piped to a file or a pager (a terminal keeps its own width).
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def columns() -> int:
    """Width to lay tables out for: ``COLUMNS`` when set (read now, so a test or a wrapper script
    can set it), else the terminal's width, else 200 (wide tables stay readable in a file)."""
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and int(value) > 0 else out.width


def is_main_rank() -> bool:
    """Under torchrun only rank 0 talks to the terminal."""
    return os.environ.get("RANK", "0") == "0"


def setup_logging(verbose: bool = False) -> None:
    """Route the library's log records to stderr through rich (rank 0 only)."""
    root = logging.getLogger("geocnn")
    root.handlers[:] = [h for h in root.handlers if isinstance(h, logging.NullHandler)]
    if is_main_rank():
        handler = RichHandler(console=err, show_path=False, show_time=False, markup=False,
                              rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def print_error(message: str) -> None:
    """One line on stderr, no markup interpretation, no wrapping."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def progress() -> Iterator[Reporter]:
    """The progress reporter of one command: rich bars on rank 0, silent on the other ranks.

    The live display is stopped on the way out — after an error or Ctrl-C too — so the error
    line and the shell prompt never land inside a bar.
    """
    reporter = RichReporter(err) if is_main_rank() else SILENT
    try:
        yield reporter
    finally:
        if isinstance(reporter, RichReporter):
            reporter.stop()
