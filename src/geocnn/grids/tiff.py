"""TIFF files: which of the two families a ``.tif`` is, decided here and nowhere else.

One suffix, two families, told apart by content:

* a **georeferenced** TIFF — its first image carries GeoTIFF tags (``ModelPixelScale``, ``ModelTiepoint``,
  ``ModelTransformation`` or the ``GeoKeyDirectory``) or a world file (``.tfw``) lies beside it — is a
  2D raster with bands, read by rasterio (:mod:`geocnn.grids.geotiff`, extra ``geocnn[geo]``);
* any other TIFF — a multi-page TIFF, an OME-TIFF, an ImageJ hyperstack, a single 2D image — and a
  folder or glob of 2D slices is a volume ``(z, y, x)`` (one page, a 2D image ``(y, x)``), read by
  tifffile (:mod:`geocnn.grids.tiffstack`, extra ``geocnn[tiff]``).

The first image's tags are read here by a small parser of the TIFF header (classic and BigTIFF), so
deciding needs neither library, and a file that is not a TIFF at all is one error naming it. The
libraries themselves are imported only when such a file is opened (:func:`require`).

An output ``.tif`` follows its input: a grid read from a georeferenced TIFF is written as a GeoTIFF with
its CRS and transform, any other as a multi-page OME-TIFF with the input's voxel size (:func:`output_family`).
A name with one number field, ``ct_pred/slice_{:04d}.tif``, asks for a folder of 2D slices instead
(:func:`slice_pattern`): ``ct_pred/slice_0000.tif``, ``slice_0001.tif``... one per ``z``.
"""

from __future__ import annotations

import glob
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocnn.errors import DataError, GeocnnError

EXTRAS = {"rasterio": "geo", "tifffile": "tiff"}
GEO_TAGS = {33550, 33922, 34264, 34735}  # ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory
MAX_TAGS = 4096  # entries of one image directory: more is a damaged file
MAX_SIDE = 1 << 24  # pixels along one axis a TIFF may declare (16.7 million)
MAX_VALUES = 1 << 40  # values a TIFF may declare in all (4 TiB of float32)
MAX_SLICES = 1 << 20  # files of a folder of slices
GLOB_CHARS = re.compile(r"[*?\[]")
NUMBER_FIELD = re.compile(r"\{(:0?[1-9]?d)?\}")  # the slice number of a folder-of-slices output name


class MissingExtra(GeocnnError):
    """rasterio or tifffile is needed for this file and is not installed."""


def require(module: str) -> Any:
    """Import rasterio or tifffile, or say which extra installs it (one line)."""
    extra = EXTRAS[module]
    try:
        return __import__(module)
    except ImportError:
        raise MissingExtra(f"this TIFF needs the Python package '{module}', which is not installed",
                           fix=f"install the extra: pip install 'geocnn[{extra}]'") from None


@dataclass(frozen=True)
class GeoRef:
    """Where a raster lies: its CRS (WKT, None when it has only a transform), the affine transform
    ``(a, b, c, d, e, f)`` (x = a·col + b·row + c, y = d·col + e·row + f) and the value marking no data."""

    crs: str | None
    transform: tuple[float, ...]
    nodata: float | None
    masked: bool  # some pixel may be missing (nodata or an internal mask)


def natural_key(name: str) -> list:
    """Sort key that orders numbers by value: ``slice_2.tif`` before ``slice_10.tif``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def is_slices(path: str | os.PathLike) -> bool:
    """A folder or a glob pattern: a stack of 2D slices, one per file."""
    p = os.fspath(path)
    return os.path.isdir(p) or bool(GLOB_CHARS.search(os.path.basename(p)))


def slice_paths(path: str | os.PathLike) -> list[str]:
    """The files of a folder (its ``.tif``/``.tiff``) or a glob, in natural order; DataError when none."""
    p = os.fspath(path)
    if os.path.isdir(p):
        names = [os.path.join(p, n) for n in os.listdir(p) if n.lower().endswith((".tif", ".tiff"))]
    else:
        names = [n for n in glob.glob(p) if os.path.isfile(n)]
    if not names:
        raise DataError("no TIFF slices found", where=p, fix="give a folder of .tif files or a glob such as 'ct/slice_*.tif'")
    if len(names) > MAX_SLICES:
        raise DataError(f"{len(names):,} slices is more than geocnn reads ({MAX_SLICES:,})", where=p)
    return sorted(names, key=lambda n: natural_key(os.path.basename(n)))


def slice_pattern(path: str | os.PathLike) -> tuple[str, str] | None:
    """A folder-of-slices output name ``DIR/NAME{:04d}.tif`` as (``DIR``, ``NAME{:04d}.tif``); None for
    a name without a ``{...}`` field (one file). DataError for a field that is not one slice number.

    Examples
    --------
    >>> slice_pattern("ct_pred/slice_{:04d}.tif")
    ('ct_pred', 'slice_{:04d}.tif')
    >>> slice_pattern("ct_pred.ome.tif") is None
    True
    """
    folder, name = os.path.split(os.fspath(path))
    if "{" not in name and "}" not in name:
        return None
    if len(NUMBER_FIELD.findall(name)) != 1 or NUMBER_FIELD.sub("", name).count("{") + \
            NUMBER_FIELD.sub("", name).count("}") or not folder:
        raise DataError(f"'{name}' is not a slice name pattern with one number field",
                        where=os.fspath(path), fix="name a folder of slices like ct_pred/slice_{:04d}.tif")
    return folder, name


def first_tags(path: str | os.PathLike) -> set[int]:
    """The tag numbers of a TIFF's first image directory (classic or BigTIFF); DataError when the file
    is not a TIFF or its header is damaged."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as fh:
            head = fh.read(16)
            if head[:2] not in (b"II", b"MM") or len(head) < 8:
                raise DataError("not a TIFF file (no II/MM byte-order mark)", where=where,
                                fix="give a TIFF, or name the file for its format")
            e = "<" if head[:2] == b"II" else ">"
            version = struct.unpack(e + "H", head[2:4])[0]
            if version == 42:
                offset, count_fmt, entry = struct.unpack(e + "I", head[4:8])[0], "H", 12
            elif version == 43 and len(head) == 16:
                offset, count_fmt, entry = struct.unpack(e + "Q", head[8:16])[0], "Q", 20
            else:
                raise DataError(f"not a TIFF file (version {version})", where=where)
            fh.seek(offset)
            raw = fh.read(struct.calcsize(count_fmt))
            if len(raw) != struct.calcsize(count_fmt):
                raise DataError("the TIFF is truncated: its first image directory is missing", where=where)
            count = struct.unpack(e + count_fmt, raw)[0]
            if not 0 < count <= MAX_TAGS:
                raise DataError(f"the TIFF is damaged: its first image directory has {count} entries", where=where)
            body = fh.read(count * entry)
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror or exc})", where=where) from None
    if len(body) != count * entry:
        raise DataError("the TIFF is truncated inside its first image directory", where=where)
    return {struct.unpack(e + "H", body[k:k + 2])[0] for k in range(0, len(body), entry)}


def family(path: str | os.PathLike) -> str:
    """``geotiff`` (a georeferenced TIFF: a 2D raster with bands) or ``stack`` (pages, slices, OME-TIFF).

    The one place the rule lives (see the module docstring)."""
    if is_slices(path):
        return "stack"
    p = Path(os.fspath(path))
    if not p.is_file():
        raise DataError("file not found", where=str(p), fix="check the path")
    if first_tags(p) & GEO_TAGS or p.with_suffix(".tfw").exists():
        return "geotiff"
    return "stack"


def georef_of(like: Any) -> GeoRef | None:
    """The georeferencing of the first georeferenced input of a grid (None: not read from a GeoTIFF)."""
    return next((g for g in (getattr(s, "georef", None) for s in like.inputs) if g is not None), None)


def output_family(like: Any, ndim: int) -> str:
    """``geotiff`` for a 2D output of a grid read from a georeferenced TIFF, else ``stack``."""
    return "geotiff" if ndim == 2 and georef_of(like) is not None else "stack"


def check_declared(shape: tuple[int, ...], where: str) -> None:
    """The sizes a TIFF declares, checked before anything is allocated."""
    if any(n < 1 for n in shape):
        raise DataError(f"the TIFF declares an empty image {shape}", where=where)
    if max(shape) > MAX_SIDE:
        raise DataError(f"the TIFF declares {max(shape):,} pixels along one axis, more than geocnn reads "
                        f"({MAX_SIDE:,}); the file is damaged or not an image", where=where)
    total = 1
    for n in shape:
        total *= n
    if total > MAX_VALUES:
        raise DataError(f"the TIFF declares {total:,} values, more than geocnn reads ({MAX_VALUES:,})", where=where)
