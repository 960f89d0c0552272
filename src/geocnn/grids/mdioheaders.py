"""SEG-Y headers in MDIO datasets, laid out as ``mdio.segy_to_mdio`` lays them out (the ``segy`` package of ``geocnn[mdio]``).

An MDIO v1 dataset made from SEG-Y holds, beside its data variable: ``headers`` (one structured
record per trace position, the SEG-Y rev 1 fields by name), ``cdp_x``/``cdp_y`` (float64 map
coordinates, the coordinate scalar applied, NaN where no trace is), and ``segy_file_header`` (its
attributes hold the textual header as 40 lines of text and the binary header by field name). With
them ``mdio.mdio_to_segy`` writes the SEG-Y back on its own.

:func:`segy_spec` is the ``segy`` package's spec for a survey's header bytes (both directions of
``geocnn convert``); :func:`carry_headers` writes a prediction's headers — the very headers its
SEG-Y output would carry (:class:`~geocnn.grids.segyout.HeaderEdits`: the sample axis, IEEE float,
a stacked or mapped output's chosen traces) — a block of first-axis rows at a time, never the whole survey.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from geocnn.errors import DataError
from geocnn.grids.pending import OutputSpec
from geocnn.grids.segyout import BIN_START, HeaderEdits, header_edits, output_headers, trace_selection
from geocnn.grids.sources import SegySource
from geocnn.grids.spec import InputSpec
from geocnn.grids.stores import MASK, MissingExtra, require

log = logging.getLogger(__name__)

HEADERS, FILE_HEADER = "headers", "segy_file_header"
COORDINATES = ("cdp_x", "cdp_y")
BLOCK_TRACES = 1 << 16  # trace headers read, edited and written at once (≈ 16 MB of records)
UNITS = {1: "m", 2: "ft"}  # binary header measurement system code → MDIO length unit


def segy_spec(spec: InputSpec, endian: str, offsets: bool, format_code: int | None = None,
              reading: bool = False) -> Any:
    """The SEG-Y rev 1 standard with the number fields where this survey keeps them.

    ``format_code`` (the binary header's sample format) sets how samples are encoded on export:
    the standard says IBM float, and mdio writes samples in the spec's format whatever the stored
    binary header says. ``reading``: a coordinate scalar of 0 (common in rev 1 field data) means 1,
    as segyio and most readers take it; mdio does so only for files it takes for rev 2, so the
    reading spec says rev 2 (the header fields stay rev 1's).
    """
    require("mdio")
    from segy.schema import Endianness, HeaderField, ScalarType, SegyStandard, TraceDataSpec
    from segy.standards import get_segy_standard
    from segy.standards.codes import DataSampleFormatCode

    fields = [HeaderField(name="inline", byte=spec.iline, format="int32"),
              HeaderField(name="crossline", byte=spec.xline, format="int32")]
    if offsets:
        fields.append(HeaderField(name="offset", byte=spec.offset, format="int32"))
    data = None
    if format_code is not None:
        data = TraceDataSpec(format=ScalarType[DataSampleFormatCode(format_code).name])
    custom = get_segy_standard(1.0).customize(trace_header_fields=fields, trace_data_spec=data)
    if endian == "little":
        custom.endianness = Endianness.LITTLE
    if reading:
        custom.segy_standard = SegyStandard.REV2
    return custom


def ascii_text(text: str) -> str:
    """Characters outside ASCII as spaces: mdio_to_segy can only write ASCII back."""
    return "".join(c if c.isascii() else " " for c in text)


def carry_headers(root: Any, spec: OutputSpec, dims: tuple[str, ...], chunks: tuple[int, ...]) -> bool:
    """Write the trace headers, ``cdp_x``/``cdp_y``, the file headers and the trace mask of an MDIO output
    into the group ``root``, as its SEG-Y output would carry them; False (nothing written) when the input
    has no SEG-Y headers, the output does not line up with its traces, or the ``segy`` package is missing.

    ``dims`` are the output's dimension names (trace axes, then samples), ``chunks`` its trace axes' chunks.
    """
    template = spec.like.segy_template()
    trace_shape = tuple(spec.shape[:-1])
    if template is None or (spec.positions is None and trace_shape != spec.like.shape[:-1]):
        return False
    try:
        require("mdio")
    except MissingExtra:
        log.info("%s: the trace headers are not carried (the 'segy' package of geocnn[mdio] is missing)", spec.path)
        return False
    src = template[0]
    reading = next(s.spec for s in spec.like.inputs if isinstance(s, SegySource))
    header_spec = segy_spec(reading, src.layout.endian, "offset" in spec.like.axes)
    try:
        edits = header_edits(src, spec.shape[-1], spec.sample_interval_us, spec.sample_start_ms,
                             trace_selection(spec.like, _positions(spec, 0, min(1, trace_shape[0])),
                                             clear_offsets=spec.clear_offsets), spec.path)
    except DataError as exc:  # a value the SEG-Y fields cannot hold: the dataset goes without headers
        log.warning("%s: the trace headers are not carried (%s)", spec.path, exc.problem)
        return False
    with warnings.catch_warnings():
        # Zarr 3 has no specification yet for structured and string types; mdio's datasets use them as these do.
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification")
        _file_header(root, src, header_spec, edits)
        _write_traces(root, spec, src, header_spec, edits, dims, chunks)
    return True


def _positions(spec: OutputSpec, a: int, b: int) -> tuple[np.ndarray, ...]:
    """The grid trace positions of output rows a..b (one index array per grid trace axis)."""
    if spec.positions is not None:
        return tuple(np.asarray(p)[a:b] for p in spec.positions)
    index = np.indices((b - a, *spec.shape[1:-1]))
    index[0] += a
    return tuple(index)


def _file_header(root: Any, src: Any, header_spec: Any, edits: HeaderEdits) -> None:
    """``segy_file_header``: the textual header (40 lines) and the output's binary header by field name."""
    from segy.inference import infer_text_header_encoding

    with open(src.path, "rb") as fh:
        head = fh.read(BIN_START + 400)
    text_spec = header_spec.text_header
    text_spec.encoding = infer_text_header_encoding(head[:BIN_START])
    binary = np.frombuffer(edits.binary(head[BIN_START:]), dtype=header_spec.binary_header.dtype)
    node = root.create_array(FILE_HEADER, shape=(), dtype="<U1", fill_value="")
    fields = {name: binary[name].item() for name in binary.dtype.names}
    revision = fields.pop("segy_revision", 0)  # mdio keeps it as two numbers (bytes 3501 and 3502)
    fields.update(segy_revision_major=revision >> 8 & 0xFF, segy_revision_minor=revision & 0xFF)
    node.attrs.update({"textHeader": ascii_text(text_spec.decode(head[:BIN_START])), "binaryHeader": fields})


def _write_traces(root: Any, spec: OutputSpec, src: Any, header_spec: Any, edits: HeaderEdits,
                  dims: tuple[str, ...], chunks: tuple[int, ...]) -> None:
    """``headers``, ``trace_mask`` and ``cdp_x``/``cdp_y``, a block of first-axis rows at a time."""
    file_dtype = header_spec.trace.header.dtype  # 240 bytes, the file's byte order, fields at their bytes
    stored = np.dtype([(n, file_dtype.fields[n][0].newbyteorder("<")) for n in file_dtype.names])  # as mdio keeps them
    trace_shape, trace_dims = tuple(spec.shape[:-1]), dims[:-1]
    planar = tuple(d for d in trace_dims if d != "offset")  # cdp_x/cdp_y: one per bin
    coords = {"coordinates": " ".join(COORDINATES)}
    headers = root.create_array(HEADERS, shape=trace_shape, chunks=chunks, dtype=stored, fill_value=None,
                                dimension_names=trace_dims)
    mask = root.create_array(MASK, shape=trace_shape, chunks=chunks, dtype=bool, fill_value=False,
                             dimension_names=trace_dims)
    headers.attrs.update(coords)
    mask.attrs.update(coords)
    binary = root[FILE_HEADER].attrs["binaryHeader"]
    unit = UNITS.get(int(binary.get("measurement_system_code", 0)))
    cdp = {}
    for name in COORDINATES:
        cdp[name] = root.create_array(name, shape=tuple(n for n, d in zip(trace_shape, trace_dims) if d != "offset"),
                                      chunks=tuple(c for c, d in zip(chunks, trace_dims) if d != "offset"),
                                      dtype="f8", fill_value=np.nan, dimension_names=planar)
        if unit is not None:
            cdp[name].attrs["unitsV1"] = {"length": unit}
    per_row = max(1, int(np.prod(trace_shape[1:], dtype=np.int64)))
    rows = chunks[0] * max(1, BLOCK_TRACES // (per_row * chunks[0]))  # whole chunk rows: each block its own chunks
    offset_axis = trace_dims.index("offset") if "offset" in trace_dims else None
    for a in range(0, trace_shape[0], rows):
        b = min(a + rows, trace_shape[0])
        numbers = trace_selection(spec.like, _positions(spec, a, b), clear_offsets=spec.clear_offsets).numbers
        live = numbers >= 0
        records = np.zeros(numbers.shape, stored)
        if live.any():
            picked = numbers[live]
            raw = np.ascontiguousarray(output_headers(src, 0, len(picked), picked, edits))
            records[live] = raw.view(file_dtype).reshape(-1).astype(stored)
        headers[a:b] = records
        mask[a:b] = live
        for name, values in zip(COORDINATES, _coordinates(records, live)):
            if offset_axis is not None:  # every trace of a bin has the bin's coordinates: the first live one's
                values = np.fmax.reduce(values, axis=offset_axis)
            cdp[name][a:b] = values


def _coordinates(records: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cdp_x and cdp_y with the coordinate scalar applied (SEG-Y: negative divides, 0 means 1); NaN where no trace is."""
    scalar = records["coordinate_scalar"].astype(np.float64)
    factor = np.where(scalar < 0, 1.0 / np.where(scalar < 0, -scalar, 1.0), np.where(scalar > 0, scalar, 1.0))
    return tuple(np.where(live, records[n].astype(np.float64) * factor, np.nan) for n in COORDINATES)
