"""One error family for every user mistake.

The library raises these with the problem, where it is (file, YAML ``line:col``, layer, header
field, shape) and how to fix it; only the command line catches them, prints one line on stderr
and exits with code 2. Anything else escaping is a bug in geocnn and keeps its traceback.
"""

from __future__ import annotations


class GeocnnError(Exception):
    """A user's mistake: bad config, bad data, bad command-line value.

    The command line prints :attr:`message` and exits with :attr:`exit_code` (2).

    Parameters
    ----------
    problem
        What is wrong, with the expected versus actual values.
    where
        Location prefix such as ``model.yaml:14:7`` or a file path; printed first.
    fix
        What to do about it; printed after an em dash.

    Examples
    --------
    >>> GeocnnError("file not found", where="cube.sgy", fix="check the path").message
    'cube.sgy: file not found — check the path'
    """

    exit_code = 2

    def __init__(self, problem: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.problem = problem
        self.where = where
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.fix:
            text += f" — {self.fix}"
        # One line, whatever the pieces contained; other control characters (ANSI escapes in a file
        # name, a damaged file's bytes) are shown escaped, never sent raw to the terminal.
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                       for c in " ".join(text.split()))


class ConfigError(GeocnnError):
    """The YAML config (or a command-line override of it) is wrong."""


class ShapeError(ConfigError):
    """Shapes do not fit; carries the layer records computed before the failure."""

    def __init__(self, problem: str, *, where: str | None = None, fix: str | None = None,
                 records: list | None = None, failed_index: int | None = None,
                 failed_layer: tuple[str, str] | None = None) -> None:
        super().__init__(problem, where=where, fix=fix)
        self.records = records or []
        self.failed_index = failed_index
        self.failed_layer = failed_layer  # (name, kind)


class DataError(GeocnnError):
    """An input file (SEG-Y, NumPy, labels) is missing, corrupt or does not match."""


class OutputExistsError(GeocnnError):
    """An output would be overwritten without ``--force``."""


class OutputError(GeocnnError):
    """An output cannot be written where it was asked for (a read-only folder, a full disk)."""
