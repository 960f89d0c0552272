"""Per-trace label files: ``.npy`` (any shape) or ``.csv`` (a ``label`` column, else the last one).

Reading only: what the labels must match (shape, classes) is the training data's business. Every
way a file can be unreadable — empty, truncated, not numbers, complex, binary bytes in a CSV — is a
:class:`~geocnn.errors.DataError` naming the file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from geocnn.errors import DataError
from geocnn.grids.npyfile import NPY_ERRORS, check_numbers


def read_labels(path: str | Path) -> np.ndarray:
    """The label values of ``path`` as a NumPy array (float or integer; shape as stored)."""
    p, where = Path(path), str(path)
    if not p.is_file():
        raise DataError("labels file not found", where=where, fix="check data.labels")
    reader = READERS.get(p.suffix.lower())
    if reader is None:
        raise DataError(f"labels must be {' or '.join(READERS)}, not '{p.suffix}'", where=where)
    return reader(p)


def _read_npy(p: Path) -> np.ndarray:
    try:
        labels = np.load(p, allow_pickle=False)
    except NPY_ERRORS as exc:
        raise DataError(f"not a readable .npy file ({exc or 'empty file'})", where=str(p),
                        fix="save the labels with numpy.save") from None
    check_numbers(labels, str(p))
    return labels


def read_csv(p: Path) -> np.ndarray:
    """The label column of a CSV file as floats, with a DataError naming the line for a bad row."""
    try:
        with p.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except UnicodeDecodeError as exc:
        raise DataError(f"not a text CSV file (byte {exc.start} is not UTF-8 text)", where=str(p),
                        fix="give a CSV text file with a label column, or a .npy array") from None
    except csv.Error as exc:
        raise DataError(f"not a readable CSV file ({exc})", where=str(p)) from None
    if not rows:
        raise DataError("labels CSV is empty", where=str(p))
    col, has_header = csv_column(rows[0])
    values = []
    for line, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
        try:
            values.append(float(row[col]))
        except (ValueError, IndexError):
            raise DataError(f"line {line}: '{','.join(row)}' has no number in column {col + 1}",
                            where=str(p)) from None
    return np.asarray(values)


def csv_column(first_row: list[str]) -> tuple[int, bool]:
    """(index of the label column, whether the first row is a header)."""
    header = [c.strip().lower() for c in first_row]
    has_header = not _is_number(first_row[-1])
    return (header.index("label") if has_header and "label" in header else len(first_row) - 1), has_header


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


READERS = {".npy": _read_npy, ".csv": read_csv}  # label-file suffix → reader
