"""Write-then-rename, so nothing is ever half-written or silently clobbered.

Every output geocnn writes (SEG-Y, ``.npy``, checkpoints, JSON, pictures) goes to a temporary file
in the destination folder and is renamed into place only when complete. An existing output is
replaced only when the caller says so (``--force``).

Outputs get the permissions any new file would get (0666 less the umask): ``mkstemp`` makes its
files private (0600), which would hide predictions and runs from colleagues on a shared server.
A temporary name carries the writing process (``.pred.geocnn-tmp-<host>-<pid>-<random>.npy``), so
one left by ``kill -9`` is recognised and removed by the next write to that folder, while one
still being written by a live process is never touched. Store outputs (``.mdio``/``.zarr``
folders) take the same kind of name, so readers refuse them (:func:`is_temp`) and a dead
process's folder is cleaned like a file.

Every output kind goes through the same checks before work starts (:func:`check_new`: not replaced
without ``--force``, its folder not below a regular file, the folder writable) and the same error
wrapping while it is created (:func:`writing`: what the operating system refuses is one
:class:`~geocnn.errors.OutputError` naming the output).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geocnn.errors import ConfigError, OutputError, OutputExistsError

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


def is_temp(path: str | Path) -> bool:
    """Is ``path`` a geocnn temporary output (a file or store folder still being written, or left by a
    killed process)? Readers refuse these: their contents are incomplete."""
    return _TMP_NAME.match(Path(os.fspath(path).rstrip("/")).name) is not None


def _size(entry: os.DirEntry) -> int:
    """Bytes held by a file, or by every file under a folder (a store)."""
    if entry.is_file(follow_symlinks=False):
        return entry.stat(follow_symlinks=False).st_size
    return sum(f.stat().st_size for f in Path(entry.path).rglob("*") if f.is_file() and not f.is_symlink())


def clean_stale(folder: str | Path) -> list[Path]:
    """Remove geocnn temporary files and store folders in ``folder`` whose writing process on this host has died.

    Only names of geocnn's own form, made on this host (the pid means nothing elsewhere) by a
    process that no longer runs; each removal is logged with its size.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = _TMP_NAME.match(entry.name)
            if not m or m["host"] != _HOST or _alive(int(m["pid"])) or entry.is_symlink():
                continue
            folder = entry.is_dir(follow_symlinks=False)
            try:
                size = _size(entry)
                if folder:
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue
            log.warning("removed %s (%.1f MB), a temporary %s left by geocnn process %s, which no longer runs",
                        entry.path, size / 1e6, "folder" if folder else "file", m["pid"])
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


def writable(folder: Path) -> bool:
    """Can this process create files in ``folder`` (or, if it does not exist yet, in the nearest folder above)?"""
    for q in (folder, *folder.parents):
        if q.exists():
            return os.access(q, os.W_OK | os.X_OK)
    return True


def check_output(path: str | Path) -> Path:
    """The folder checks every output kind goes through before work starts: the folder is not below a
    regular file (``--out result.npy/p.mdio``) and this process may write in it."""
    p = Path(path)
    check_folder(p.parent)
    if not writable(p.parent.absolute()):
        raise OutputError(f"cannot write in the folder '{p.parent}' (permission denied or read-only)",
                          where=str(p), fix="choose an output path in a folder you can write to")
    return p


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """What the operating system refuses while an output is created (permissions, a full disk, a
    name too long) as one :class:`OutputError` naming the output, whatever its kind."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise OutputError(f"cannot write the output ({reason})", where=os.fspath(path),
                          fix="check the folder exists, can be written to and has room") from None


def reserve(path: str | Path, size: int) -> None:
    """Give a file written through memory maps its ``size`` bytes of disk now, so that a full disk
    is an ``OSError`` here (wrapped by :func:`writing`) rather than a SIGBUS when a mapped page is
    first written. File systems that cannot reserve space keep the sparse file."""
    if not hasattr(os, "posix_fallocate") or size <= 0:
        return
    with open(path, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, size)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                return
            raise


def temp_name(final: Path, suffix: str | None = None) -> Path:
    """An unused temporary name beside ``final`` marking this process as its writer (``.pred.geocnn-tmp-<host>-<pid>-<random>.mdio``):
    for outputs that are folders (stores); files take theirs from :func:`temp_path`."""
    while True:
        candidate = final.parent / (f".{final.stem}{TMP_MARK}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
                                    f"{suffix if suffix is not None else final.suffix}")
        if not candidate.exists():
            return candidate


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
    """Refuse to replace an existing ``path`` unless ``force``, and a path no output can take (:func:`check_output`)."""
    with writing(path):  # a name the system refuses (too long) is the output's problem too
        p = check_output(path)
        exists = p.exists()
    if exists and not force:
        raise OutputExistsError("output already exists", where=str(p),
                                fix="choose another path or pass --force to replace it")
    return p


@contextlib.contextmanager
def replacing(path: str | Path, *, force: bool = True, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    final = check_new(path, force)
    with writing(final):
        tmp_path = temp_path(final, suffix)
    try:
        yield tmp_path
        with writing(final):
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
