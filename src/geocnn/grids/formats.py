"""File formats geocnn reads and writes: one :class:`Format` record each, the only place that knows suffixes.

Readers (:mod:`geocnn.grids.kinds`), outputs (:mod:`geocnn.grids.writer`), input specs and
``geocnn convert`` ask these records rather than comparing suffix strings themselves.

Example
-------
>>> format_from_suffix("survey.mdio")
'mdio'
>>> FORMATS["zarr"].store
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath

from geocnn.errors import DataError


@dataclass(frozen=True)
class Format:
    """One data format.

    ``suffixes`` name it (SEG-Y also matches inside a name: ``x.sgy.1``); ``output`` says geocnn can
    write it; ``store`` marks a chunked Zarr store (a folder, or a URL fsspec understands);
    ``members`` says a file holds named arrays (an input's ``key`` picks one); ``channels`` that an
    output holds several values per position (a SEG-Y holds one value per sample); ``header_geometry``
    that opening it reads a header, not every trace (``geocnn summarize`` may then ask it its spacing);
    ``outputs`` names the ``--output`` kinds (:mod:`geocnn.outputs`) it can hold when not every kind;
    ``previewed`` that an output read back is the prediction's grid (a preview picture is drawn from it).
    """

    name: str
    suffixes: tuple[str, ...]
    help: str
    output: bool
    store: bool = False
    members: bool = False
    anywhere: bool = False  # the suffix may be followed by others (x.sgy.1)
    channels: bool = True  # an output holds several channels per position
    header_geometry: bool = False  # shape and spacing come from a header in bounded time (no trace scan)
    outputs: tuple[str, ...] = ()  # the --output kinds it holds, the first by default (empty: every kind)
    previewed: bool = True  # geocnn reads an output back as the prediction's grid for its preview picture


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("segy", (".sgy", ".segy"), "SEG-Y", output=True, anywhere=True, channels=False),
    Format("npy", (".npy",), "NumPy array (+ JSON sidecar)", output=True, header_geometry=True),
    Format("npz", (".npz",), "NumPy archive member", output=False, members=True, header_geometry=True),
    Format("mdio", (".mdio",), "MDIO v1 dataset (Zarr)", output=True, store=True, members=True, header_geometry=True),
    Format("zarr", (".zarr",), "Zarr array or group", output=True, store=True, members=True, header_geometry=True),
    # One suffix, two families, told apart by content in geocnn.grids.tiff (GeoTIFF or page stack).
    Format("tiff", (".tif", ".tiff"), "GeoTIFF/COG, or a multi-page/OME-TIFF stack or a folder of slices",
           output=True, header_geometry=True),
    Format("netcdf", (".nc", ".nc4", ".h5", ".hdf5"), "netCDF/HDF5 variable", output=True, members=True,
           header_geometry=True),
    # Earthquake records through ObsPy (geocnn.grids.waveforms); format: seismo reads names without these suffixes.
    # Written as miniSEED probability traces, one per station and class (geocnn.grids.seismoout).
    Format("seismo", (".mseed", ".miniseed", ".ms", ".sac", ".gse2"),
           "earthquake records ObsPy reads (miniSEED, SAC, GSE2; a file, a folder or a glob)", output=True,
           outputs=("probabilities",), previewed=False),
)}


def _suffixes(path: str | os.PathLike) -> list[str]:
    # PurePosixPath: URLs (s3://bucket/survey.mdio/) have their suffix after the last slash too.
    return [s.lower() for s in PurePosixPath(os.fspath(path).rstrip("/")).suffixes]


def match(path: str | os.PathLike) -> Format | None:
    """The format the name says, or None."""
    suffixes = _suffixes(path)
    for fmt in FORMATS.values():
        if any(s in fmt.suffixes for s in (suffixes if fmt.anywhere else suffixes[-1:])):
            return fmt
    return None


def _names(formats: list[Format]) -> str:
    return ", ".join("/".join(f.suffixes) + f" ({f.help})" for f in formats)


# Files people hand geocnn that are not grids: what they are, and what to do instead.
NOT_GRIDS: dict[str, tuple[str, str]] = {
    ".su": ("a Seismic Unix file (.su: traces without SEG-Y's textual and binary headers) is not read by geocnn",
            "convert it to SEG-Y first, e.g. with Seismic Unix: segyhdrs < FILE.su; segywrite tape=FILE.sgy < FILE.su"),
    ".csv": ("a .csv file is a label file, not a grid",
             "give it as data.labels in the config (one label per trace), and a SEG-Y or NumPy grid as the input"),
}


def _slice_folder(path: str | os.PathLike) -> bool:
    """A local folder holding ``.tif``/``.tiff`` slices (a TIFF stack, one 2D image per file)."""
    p = os.fspath(path)
    if is_url(p) or not os.path.isdir(p):
        return False
    with os.scandir(p) as entries:
        return any(_suffixes(e.name)[-1:] in ([".tif"], [".tiff"]) for e in entries if e.is_file())


def _record_folder(path: str | os.PathLike) -> bool:
    """A local folder holding earthquake records (files named for the ``seismo`` format)."""
    p = os.fspath(path)
    if is_url(p) or not os.path.isdir(p):
        return False
    with os.scandir(p) as entries:
        return any(_suffixes(e.name)[-1:] and _suffixes(e.name)[-1] in FORMATS["seismo"].suffixes
                   for e in entries if e.is_file())


def format_from_suffix(path: str | os.PathLike) -> str:
    """The input format the name says (a folder of TIFF slices is ``tiff``, of records ``seismo``); DataError
    listing the known suffixes otherwise."""
    fmt = match(path)
    if fmt is not None:
        return fmt.name
    if _slice_folder(path):
        return "tiff"
    if _record_folder(path):
        return "seismo"
    suffixes = _suffixes(path)
    if suffixes and suffixes[-1] in NOT_GRIDS:
        problem, fix = NOT_GRIDS[suffixes[-1]]
        raise DataError(problem, where=str(path), fix=fix)
    raise DataError(f"cannot tell the file format from the name (suffix {''.join(suffixes) or 'none'})",
                    where=str(path), fix=f"use {_names(list(FORMATS.values()))}, or say the format: "
                                         f"--format {'|'.join(FORMATS)} on the command line, format: in a config")


def output_format(path: str | os.PathLike) -> str:
    """The output format the name says; DataError listing the writable suffixes otherwise."""
    fmt = match(path)
    if fmt is None or not fmt.output:
        raise DataError(f"cannot tell the output format from the name (suffix {''.join(_suffixes(path)) or 'none'})",
                        where=str(path),
                        fix=f"name the output {_names([f for f in FORMATS.values() if f.output])}")
    return fmt.name


def is_url(path: str | os.PathLike) -> bool:
    """An fsspec URL such as ``s3://bucket/survey.mdio`` (not a local path)."""
    return "://" in os.fspath(path)
