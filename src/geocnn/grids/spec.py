"""Input specs: one entry of a config's ``data.inputs`` (or one file on the command line).

An :class:`InputSpec` says which file and how to read it (format, ``.npz`` member, NumPy axis
names, channel axis, SEG-Y header bytes, byte order, geometry and cache options). It is plain data:
opening the file is :mod:`geocnn.grids.grid`'s job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from geocnn import schema
from geocnn.errors import DataError
from geocnn.grids.formats import FORMATS
from geocnn.grids.formats import format_from_suffix as format_from_suffix
from geocnn.grids.segy import ILINE_BYTE, OFFSET_BYTE, XLINE_BYTE
from geocnn.schema import REQUIRED, Choice, Ctx, Field, Float, Int, ListOf, Record, Str

FILE_FORMATS = ("auto", *FORMATS)


# --------------------------------------------------------------------------------------------
# Input specs (one entry of a config's data.inputs)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputSpec:
    """One input file as the config names it.

    A bare string in YAML means ``{path: ...}``. ``axes`` name a NumPy array's axes (defaults for
    1-3D arrays: ``sample``; ``trace, sample``; ``inline, crossline, sample``); ``channels_from``
    turns one axis into channels; ``iline``/``xline``/``offset`` are SEG-Y trace header bytes.
    """

    path: str
    format: str = "auto"
    key: str | None = None
    axes: tuple[str, ...] | None = None
    channels_from: str | None = None
    iline: int = ILINE_BYTE
    xline: int = XLINE_BYTE
    offset: int = OFFSET_BYTE
    endian: str = "auto"
    structured: str = "auto"
    cache: str = "auto"
    sampling_rate: float | None = None

    @property
    def resolved_format(self) -> str:
        """A :data:`~geocnn.grids.formats.FORMATS` name (from the suffix when ``format`` is ``auto``)."""
        return self.format if self.format != "auto" else format_from_suffix(self.path)


def _validate_spec(value: dict, ctx: Ctx) -> None:
    fmt = value["format"]
    if fmt == "auto":
        try:
            fmt = format_from_suffix(value["path"])
        except DataError as exc:
            raise ctx.at("path").error(exc.problem, exc.fix) from None
    if value["key"] is not None and not FORMATS[fmt].members:
        raise ctx.at("key").error(f"key names a member of a .npz file, but this input is {fmt}",
                                  "remove key")
    if value["sampling_rate"] is not None and fmt != "seismo":
        raise ctx.at("sampling_rate").error(f"sampling_rate resamples earthquake records, but this input is {fmt}",
                                            "remove sampling_rate")
    axes = value["axes"]
    if axes is not None:
        if fmt == "segy":
            raise ctx.at("axes").error("axes are read from SEG-Y headers, not given",
                                       "remove axes (use iline/xline/offset for custom header bytes)")
        if len(set(axes)) != len(axes):
            raise ctx.at("axes").error(f"axes repeat a name: {', '.join(axes)}",
                                       "give each axis its own name")
    ch = value["channels_from"]
    if ch is not None:
        if fmt == "segy" and ch != "offset":
            raise ctx.at("channels_from").error(f"a SEG-Y file can give channels from its offset axis only, "
                                                f"not '{ch}'", "use channels_from: offset")
        if axes is not None and ch not in axes:
            raise ctx.at("channels_from").error(f"'{ch}' is not one of the axes ({', '.join(axes)})",
                                                schema.suggest(ch, list(axes)))


INPUT_SPEC = Record(
    [
        Field("path", Str(), REQUIRED,
              "input file: SEG-Y (.sgy/.segy), NumPy (.npy), .npz, an MDIO (.mdio) or Zarr (.zarr) store, a (Geo)TIFF (.tif) or a folder/glob of TIFF slices, "
              "netCDF/HDF5 (.nc/.nc4/.h5/.hdf5), or earthquake records ObsPy reads (.mseed/.sac...; a file, folder or glob)"),
        Field("format", Choice(*FILE_FORMATS), "auto", "file format; auto = from the file name"),
        Field("key", Str(), None,
              "member of a .npz file, Zarr/MDIO group or netCDF/HDF5 file (group/variable; needed when it holds several)"),
        Field("axes", ListOf(Str(), min_len=1, max_len=6), None,
              "names of a NumPy array's axes in order, e.g. [inline, crossline, sample]"),
        Field("channels_from", Str(), None,
              "axis used as channels, e.g. offset (pre-stack SEG-Y) or component"),
        Field("iline", Int(1, 237), ILINE_BYTE, "SEG-Y trace header byte of the inline number"),
        Field("xline", Int(1, 237), XLINE_BYTE, "SEG-Y trace header byte of the crossline number"),
        Field("offset", Int(1, 237), OFFSET_BYTE, "SEG-Y trace header byte of the offset (or angle) number"),
        Field("endian", Choice("auto", "big", "little"), "auto",
              "SEG-Y byte order; auto = from the binary header"),
        Field("structured", Choice("auto", "yes", "no"), "auto",
              "SEG-Y geometry: auto, yes (grid even a sparse survey) or no (unstructured traces)"),
        Field("cache", Choice("auto", "yes", "no"), "auto",
              "SEG-Y: decode the samples once into a float32 cache ($GEOCNN_CACHE) for fast random "
              "patches; auto = when training on IBM or integer samples"),
        Field("sampling_rate", Float(0, exclusive_min=True), None,
              "earthquake records: resample every trace to this rate (Hz) with ObsPy; needed when records "
              "have different rates"),
    ],
    title="input",
    shorthand="path",
    validate=_validate_spec,
)


def input_spec(value: Any, ctx: Ctx) -> InputSpec:
    """Validate one YAML input entry (a path string or a mapping) into an :class:`InputSpec`."""
    checked = INPUT_SPEC.check(value, ctx)
    if checked["axes"] is not None:
        checked["axes"] = tuple(checked["axes"])
    return InputSpec(**checked)


def as_spec(value: InputSpec | str | os.PathLike) -> InputSpec:
    return value if isinstance(value, InputSpec) else InputSpec(path=os.fspath(value))
