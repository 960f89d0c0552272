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
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from geocnn.summary import human_bytes

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, a rare double decode
    fcntl = None

log = logging.getLogger(__name__)

CACHE_ENV = "GEOCNN_CACHE"
VERSION = 1  # bump when the cached layout changes
SPARE_BYTES = 256 << 20


def cache_dir() -> Path:
    """``$GEOCNN_CACHE``, else ``~/.cache/geocnn``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "geocnn")


def cache_path(spec) -> Path:
    """Where the decoded copy of ``spec``'s file lives (the key changes when the file does)."""
    src = Path(spec.path).resolve()
    st = src.stat()
    options = {k: v for k, v in asdict(spec).items() if k not in ("path", "cache", "channels_from")}
    key = json.dumps([VERSION, str(src), st.st_size, st.st_mtime_ns, options], sort_keys=True, default=str)
    return cache_dir() / f"{src.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"


def decoded(spec, shape: tuple[int, ...], sample_format: str) -> Path | None:
    """The cached float32 copy of a SEG-Y file (made now if missing), or None when there is no room."""
    path = cache_path(spec)
    if _valid(path, shape):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):  # torchrun ranks: one decodes, the others wait and reuse
        if _valid(path, shape):
            return path
        return _decode(spec, path, shape, sample_format)


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


def _decode(spec, path: Path, shape: tuple[int, ...], sample_format: str) -> Path | None:
    need = int(np.prod(shape, dtype=np.int64)) * 4
    folder = path.parent
    free = shutil.disk_usage(folder).free
    if free < need + SPARE_BYTES:
        log.warning("not caching %s: %s decoded would leave too little of %s free in %s "
                    "(random patches stay slower; set GEOCNN_CACHE elsewhere or cache: no)",
                    spec.path, human_bytes(need), human_bytes(free), folder)
        return None
    from geocnn.convert import convert  # convert reads through grid, which uses this module

    log.info("decoding %s (%s) once into %s (%s): random patches read about 3× faster from it",
             Path(spec.path).name, sample_format, path, human_bytes(need))
    raw = spec.__class__(**{**asdict(spec), "cache": "no", "channels_from": None})  # the file's own axes
    convert(spec.path, path, spec=raw, force=True)
    return path


def _valid(path: Path, shape: tuple[int, ...]) -> bool:
    if not path.is_file():
        return False
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError):
        return False
    return array.shape == tuple(shape) and array.dtype == np.float32
