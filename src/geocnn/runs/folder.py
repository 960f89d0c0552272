"""Claiming a run folder: which folder, one process at a time, and replacing an old run safely.

- :func:`choose` picks the folder: ``runs/<name>`` by default, ``runs/<name>-2``, ``-3``, ... when
  that one already holds a run (a new try never needs ``--force``); an explicit ``--out`` is taken
  as given.
- :func:`lock` holds an ``fcntl`` lock on a hidden sibling file (``runs/.<name>.lock``) for the
  whole run, so two ``geocnn train`` on one folder cannot interleave metrics and checkpoints. The
  file names its holder (pid, host, start time); the operating system drops the lock when the
  holder dies, so a lock file left by a killed process is simply taken over.
- :class:`Replacement` (``--force``) moves the old run's files into a hidden folder inside the run
  folder and deletes them only once the new run has written its first checkpoint; if the new run
  fails or is interrupted before that, they are put back.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from geocnn.errors import ConfigError, GeocnnError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"  # the run's effective config: what it trains with, resume reads, summarize shows
# What geocnn train writes into a run folder; --force replaces these and leaves anything else alone.
RUN_ENTRIES = (CONFIG_FILE, "summary.json", "split.json", "metrics.jsonl", "loss.png", "examples.png",
               "confusion.json", "confusion.png", "init.json", "tb", "checkpoints")
ASIDE = ".replaced"  # the old run's entries while a --force run has no checkpoint yet


class RunInUse(GeocnnError):
    """Another geocnn process holds the run folder."""


def holds_a_run(run: Path) -> bool:
    """Whether ``run`` already has something in it (a run, or anything a user put there)."""
    return run.is_dir() and any(run.iterdir())


def choose(default: Path, explicit: bool, resume: bool, force: bool) -> Path:
    """The run folder: ``default`` if free, else the first free ``default-N`` (N ≥ 2).

    An explicit ``--out``, ``--resume`` and ``--force`` keep the folder as given; only the default
    folder of a new run is numbered, so a second try of one config never clobbers or blocks on
    the first. A folder another process holds the lock of (a run being set up) is not free.
    """
    if explicit or resume or force:
        return default
    n = 1
    while True:
        run = default if n == 1 else default.with_name(f"{default.name}-{n}")
        if not holds_a_run(run) and not _locked(lock_path(run)):
            return run
        n += 1


def lock_path(run: Path) -> Path:
    """The lock file of ``run``: a hidden sibling, so it exists before the run folder and survives --force."""
    return run.parent / f".{run.name}.lock"


@dataclass
class RunLock:
    """An held ``fcntl`` lock on a run folder's lock file; :meth:`release` removes the file."""

    path: Path
    fd: int
    made_parent: bool = False  # runs/ was made for this lock: removed again if the run wrote nothing

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # before unlocking: a waiter that opened this file re-checks the inode
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        if self.made_parent:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()  # only when empty

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock(run: Path) -> RunLock:
    """Lock ``run`` for this process, or raise :class:`RunInUse` naming the holder."""
    path = lock_path(run)
    made_parent = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunInUse(f"run folder is in use by geocnn process {holder} (lock file {path})", where=str(run),
                           fix="wait for that run to finish or stop it, or give another --out") from None
        # The holder may have released and unlinked the file between our open and flock: then we
        # locked an orphan inode and must try again on the current file.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_holder(fd)
    if previous != "(unknown)":
        log.warning("%s: took over a lock left by geocnn process %s, which no longer holds it", run, previous)
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    return RunLock(path, fd, made_parent)


def _read_holder(fd: int) -> str:
    """'pid 123 on host since 2026-…' from a lock file, or '(unknown)'."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        return f"pid {int(info['pid'])} on {info['host']} since {info['started']}"
    except (OSError, ValueError, TypeError, KeyError):
        return "(unknown)"


def _locked(path: Path) -> bool:
    """Whether another process holds ``path`` (numbering skips a folder being set up right now)."""
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class Replacement:
    """``--force``: the old run's entries, moved aside until the new run has its first checkpoint.

    ``begin`` moves them into ``run/.replaced/``; ``commit`` (after the first checkpoint) deletes
    them; ``rollback`` (the new run failed or was interrupted first) removes what the new run wrote
    and moves them back. Files a user put in the run folder themselves are left where they are.
    """

    def __init__(self, run: Path) -> None:
        self.run = run
        self.aside = run / ASIDE
        self.moved: list[str] = []
        self.pending = False

    def begin(self) -> None:
        if self.aside.exists():  # a previous --force run died before its first checkpoint
            self._restore()
        names = [n for n in RUN_ENTRIES if (self.run / n).exists()]
        if not names:
            return
        self.aside.mkdir()
        for name in names:
            os.replace(self.run / name, self.aside / name)
        self.moved, self.pending = names, True
        log.info("%s: the previous run is kept in %s until this run's first checkpoint", self.run, self.aside)

    def commit(self) -> None:
        if self.pending:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.pending = False
            log.info("%s: removed the previous run (replaced with --force)", self.run)

    def rollback(self) -> None:
        if self.pending:
            self._restore()
            self.pending = False
            log.warning("%s: the new run stopped before its first checkpoint; the previous run is back in place",
                        self.run)

    def _restore(self) -> None:
        for name in RUN_ENTRIES:  # what the new run wrote goes; the old run's entries come back
            new = self.run / name
            if new.is_dir() and not new.is_symlink():
                shutil.rmtree(new)
            elif new.exists() or new.is_symlink():
                new.unlink()
        for entry in os.listdir(self.aside):
            target = self.run / entry
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(self.aside / entry, target)
        self.aside.rmdir()


def recover(run: Path) -> None:
    """Put back a previous run left aside by a ``--force`` run that died before its first checkpoint
    (called with the lock held, so no live process is using it)."""
    if (run / ASIDE).is_dir():
        log.warning("%s: a --force run stopped before its first checkpoint; the previous run is back in place",
                    run)
        Replacement(run)._restore()


def recover_before_reading(run: Path) -> None:
    """:func:`recover`, for ``--resume``, which reads the run's config and checkpoint before training
    locks the folder: a ``--force`` run killed before its first checkpoint left the run in ``.replaced/``.
    The lock is taken for the move, so the old run of a live ``--force`` run is never touched
    (that one is refused naming its holder)."""
    if (run / ASIDE).is_dir():
        with lock(run):
            recover(run)


def refuse_existing(run: Path) -> None:
    """A new run in an explicit ``--out`` that already holds something: refuse (nothing is touched)."""
    raise ConfigError("run folder already exists", where=str(run),
                      fix="continue it with --resume, choose another --out, or pass --force to start over")
