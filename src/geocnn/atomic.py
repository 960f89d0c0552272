"""Write-then-rename, so nothing is ever half-written or silently clobbered.

Every output geocnn writes (SEG-Y, ``.npy``, checkpoints, JSON, pictures) goes to a temporary file
in the destination folder and is renamed into place only when complete. An existing output is
replaced only when the caller says so (``--force``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geocnn.errors import OutputExistsError


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

    The temporary name keeps the final suffix (``.npy``, ``.sgy``) so libraries that look at
    extensions behave. On any exception the temporary file is removed and ``path`` is untouched.
    """
    final = check_new(path, force)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.tmp-",
                               suffix=suffix if suffix is not None else final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
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
