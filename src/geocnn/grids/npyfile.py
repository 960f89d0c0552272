"""Reading ``.npy`` files someone else wrote: every failure of a damaged header is one error family.

NumPy parses the header with Python's tokenizer and ``literal_eval``, so a damaged header raises
anything from ``EOFError`` (an empty file: click would print "Aborted.") to ``tokenize.TokenError``.
The dtype rule (:func:`check_dtype`) is every source kind's: ``.npy``/``.npz`` and Zarr/MDIO stores alike.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError

import numpy as np

from geocnn.errors import DataError

# What np.load / np.lib.format raise on a damaged or truncated file.
NPY_ERRORS = (ValueError, OSError, EOFError, SyntaxError, TokenError, TypeError, KeyError, IndexError,
              OverflowError, MemoryError)
# ... and what zipfile adds for a damaged .npz (an unknown "zip version" is NotImplementedError).
NPZ_ERRORS = (*NPY_ERRORS, zipfile.BadZipFile, NotImplementedError, zlib.error, struct.error, RuntimeError)


def check_dtype(dtype: object, where: str) -> None:
    """Real numbers (or booleans) only, for every source kind: a complex array would lose its imaginary
    part silently, and strings, dates or records are not samples."""
    kind = getattr(dtype, "kind", "")
    if kind == "c":
        raise DataError(f"holds complex values ({dtype}); geocnn reads real numbers", where=where,
                        fix="save the real part, or real and imaginary parts (or amplitude and phase) "
                            "as two channels")
    if kind not in ("b", "i", "u", "f"):
        raise DataError(f"holds {dtype} data, not numbers", where=where, fix="store the samples as numbers")


def check_numbers(array: object, where: str) -> None:
    """A NumPy array of real numbers (or booleans): :func:`check_dtype`."""
    dtype = getattr(array, "dtype", None)
    if not isinstance(array, np.ndarray) or dtype is None:
        raise DataError(f"holds {type(array).__name__}, not a NumPy array", where=where)
    check_dtype(dtype, where)


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` file declares, and how many bytes of values it really holds."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    offset: int  # where the values start
    value_bytes: int  # the bytes after the header

    def declared_bytes(self) -> int:
        """The bytes the header's shape and dtype stand for (Python ints: a huge declaration cannot overflow)."""
        n = 1
        for size in self.shape:
            n *= size
        return n * self.dtype.itemsize


def read_header(path: str | Path) -> NpyHeader:
    """The header of a ``.npy`` file, read without its values, so that its declared shape and dtype
    can be checked before anything is allocated (``np.load`` allocates what the header declares)."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(fh)
            offset = fh.tell()
            size = os.fstat(fh.fileno()).st_size
    except NPY_ERRORS as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"not a readable .npy file ({first[:160]})", where=str(path),
                        fix="give a file written by numpy.save") from None
    return NpyHeader(tuple(int(n) for n in shape), bool(fortran), dtype, offset, size - offset)
