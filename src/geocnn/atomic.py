"""Write-then-rename, so nothing is ever half-written or silently clobbered.

Every output geocnn writes (SEG-Y, ``.npy``, checkpoints, JSON, pictures) goes to a temporary file
in the destination folder and is renamed into place only when complete. An existing output is
replaced only when the caller says so (``--force``).

Outputs get the permissions any new file would get (0666 less the umask): ``mkstemp`` makes its
files private (0600), which would hide predictions and runs from colleagues on a shared server.
A temporary name carries the writing process (``.pred.geocnn-tmp-<host>-<pid>-<random>.npy``), so
one left by ``kill -9`` is recognised and removed by the next write to that folder, while one
still being written by a live process is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geocnn.errors import ConfigError, OutputExistsError

log = logging.getLogger(__name__)

TMP_MARK = ".geocnn-tmp-"
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TMP_NAME = re.compile(r"^\..*" + re.escape(TMP_MARK) + r"(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-")


def umask() -> int:
    """The process umask, read without changing it (``os.umask`` can only set it)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc (macOS): set and restore at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new output file: what ``open()`` would give it."""
    return 0o666 & ~umask()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def clean_stale(folder: str | Path) -> list[Path]:
    """Remove geocnn temporary files in ``folder`` whose writing process on this host has died.

    Only names of geocnn's own form, made on this host (the pid means nothing elsewhere) by a
    process that no longer runs; each removal is logged with its size.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = _TMP_NAME.match(entry.name)
            if not m or m["host"] != _HOST or _alive(int(m["pid"])) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                size = entry.stat(follow_symlinks=False).st_size
                os.unlink(entry.path)
            except OSError:
                continue
            log.warning("removed %s (%.1f MB), a temporary file left by geocnn process %s, which no longer runs",
                        entry.path, size / 1e6, m["pid"])
            removed.append(Path(entry.path))
    return removed


def check_folder(folder: str | Path) -> Path:
    """Refuse a folder path that runs into an existing file (``--out result.npy/run``), before work starts."""
    p = Path(folder)
    for q in (p, *p.parents):
        if q.exists():  # False, not an error, below a file (ENOTDIR)
            if not q.is_dir():
                raise ConfigError(f"'{q}' is a file, so no folder can be made there", where=str(p),
                                  fix="choose an output path in a folder")
            break
    return p


def temp_path(final: Path, suffix: str | None = None) -> Path:
    """A new empty temporary file beside ``final``, named for this process, with output permissions.

    The temporary name keeps the final suffix (``.npy``, ``.sgy``) so libraries that look at
    extensions behave. Stale temporary files of dead geocnn processes in the folder go first.
    """
    check_folder(final.parent).mkdir(parents=True, exist_ok=True)
    clean_stale(final.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}{TMP_MARK}{_HOST}-{os.getpid()}-",
                               suffix=suffix if suffix is not None else final.suffix, dir=final.parent)
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    return Path(tmp)


def check_new(path: str | Path, force: bool) -> Path:
    """Refuse to replace an existing ``path`` unless ``force``."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError("output already exists", where=str(p),
                                fix="choose another path or pass --force to replace it")
    return p


@contextlib.contextmanager
def replacing(path: str | Path, *, force: bool = True, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    final = check_new(path, force)
    tmp_path = temp_path(final, suffix)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())  # in case the writer replaced the file rather than filling it
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text(path: str | Path, text: str, *, force: bool = True) -> Path:
    """Atomically write a text file."""
    with replacing(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj: Any, *, force: bool = True) -> Path:
    """Atomically write JSON (indented, UTF-8, trailing newline)."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n", force=force)
