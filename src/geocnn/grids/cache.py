"""Decoded-sample cache: a float32 ``.npy`` copy of a SEG-Y survey, for fast random patches.

IBM floats (the most common SEG-Y sample format) and integer formats must be decoded on every
read, which makes a random 64³ patch about 3× as costly as the same patch from a ``.npy`` memmap.
Training reads thousands of random patches per epoch, so with ``cache: auto`` (the default) the
first training run decodes such a file once, block by block in bounded memory, into
``$GEOCNN_CACHE`` (default ``~/.cache/geocnn``), in the grid's axis order; every later read — in
this run and the next ones — is a plain memmap read. The cache costs disk (4 bytes per sample)
and is skipped, with a warning, when the disk lacks the room. Files are keyed by path, size,
modification time and reading options, so an edited survey is decoded again. IEEE files need no
cache; prediction reads slabs sequentially and decodes them fast, so it only uses ``cache: yes``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from geocnn import atomic
from geocnn.fmt import human_bytes
from geocnn.grids.npyfile import NPY_ERRORS
from geocnn.grids.segy import SegyFile
from geocnn.grids.spec import InputSpec

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, a rare double decode
    fcntl = None

log = logging.getLogger(__name__)

CACHE_ENV = "GEOCNN_CACHE"
VERSION = 1  # bump when the cached layout changes
SPARE_BYTES = 256 << 20
BLOCK_BYTES = 16 << 20  # decoded values held in memory at a time


def cache_dir() -> Path:
    """``$GEOCNN_CACHE``, else ``~/.cache/geocnn``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "geocnn")


def file_key(spec: InputSpec) -> str:
    """A short hash of the file's path, size, modification time and reading options.

    Anything derived from a file's values (its decoded copy, its finiteness check) is stored under
    this key, so an edited file, or the same file read with other options, is looked at again.
    """
    src = Path(spec.path).resolve()
    if src.exists():
        st = src.stat()
        files = [str(src), st.st_size, st.st_mtime_ns]
    else:  # a glob (slices, a day of records): every file it matches
        files = [[n, os.stat(n).st_size, os.stat(n).st_mtime_ns] for n in sorted(glob.glob(str(src)))]
    options = {k: v for k, v in asdict(spec).items() if k not in ("path", "cache", "channels_from")}
    key = json.dumps([VERSION, *files, options], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def cache_path(spec: InputSpec) -> Path:
    """Where the decoded copy of ``spec``'s file lives (the key changes when the file does)."""
    return cache_dir() / f"{Path(spec.path).resolve().stem}-{file_key(spec)}.npy"


def decoded(spec: InputSpec, file: SegyFile) -> Path | None:
    """The cached float32 copy of ``file`` (made now if missing), or None when there is no room.

    ``file`` is ``spec``'s SEG-Y file, already open: the copy is decoded straight from it, in its
    own axis order (channels not split off), so a window of the file is the same window of the copy.
    """
    path = cache_path(spec)
    if _valid(path, file.shape):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):  # torchrun ranks: one decodes, the others wait and reuse
        if _valid(path, file.shape):
            return path
        return _decode(file, path)


@contextlib.contextmanager
def _locked(lock: Path):
    with open(lock, "a") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _decode(file: SegyFile, path: Path) -> Path | None:
    shape = file.shape
    need = int(np.prod(shape, dtype=np.int64)) * 4
    folder = path.parent
    free = shutil.disk_usage(folder).free
    if free < need + SPARE_BYTES:
        log.warning("not caching %s: %s decoded would leave too little of %s free in %s "
                    "(random patches stay slower; set GEOCNN_CACHE elsewhere or cache: no)",
                    file.path, human_bytes(need), human_bytes(free), folder)
        return None
    log.info("decoding %s (%s) once into %s (%s): random patches read about 3× faster from it",
             Path(file.path).name, file.layout.sample_format, path, human_bytes(need))
    row_bytes = 4 * int(np.prod(shape[1:], dtype=np.int64))
    rows = max(1, BLOCK_BYTES // max(row_bytes, 1))
    with atomic.replacing(path, force=True) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        try:
            for start in range(0, shape[0], rows):
                window = (slice(start, min(start + rows, shape[0])), *(slice(0, n) for n in shape[1:]))
                file.read(window, out=out[window])  # decoded straight into the map: no slab in between
                file.release()  # what this block mapped leaves memory with it
            out.flush()
        finally:
            del out
    return path


def _valid(path: Path, shape: tuple[int, ...]) -> bool:
    if not path.is_file():
        return False
    try:
        array = np.load(path, mmap_mode="r")
    except NPY_ERRORS:
        return False
    return array.shape == tuple(shape) and array.dtype == np.float32
