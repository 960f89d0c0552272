"""Reading ``.npy`` files someone else wrote: every failure of a damaged header is one error family.

NumPy parses the header with Python's tokenizer and ``literal_eval``, so a damaged header raises
anything from ``EOFError`` (an empty file: click would print "Aborted.") to ``tokenize.TokenError``.
The dtype rule (:func:`check_dtype`) is every source kind's: ``.npy``/``.npz`` and Zarr/MDIO stores alike.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
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
