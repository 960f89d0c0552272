"""``geocnn inspect`` and ``geocnn convert``: what geocnn sees in data files, and format conversion."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from geocnn import atomic
from geocnn.cli import console
from geocnn.errors import ConfigError
from geocnn.grids.convert import convert
from geocnn.grids.headers import MAX_SCAN_TRACES
from geocnn.grids.inspect import inspect_inputs
from geocnn.grids.spec import FILE_FORMATS, InputSpec


def _option(option: Any) -> Any:
    """A :class:`ReadOptions` field, with the typer option that sets it (help= becomes --help)."""
    return field(metadata={"option": option})


@dataclass(frozen=True)
class ReadOptions:
    """How input files are read: the options ``inspect`` and ``convert`` share, declared once and
    checked once (:func:`with_read_options` gives a command these fields as options)."""

    iline: int = _option(typer.Option(189, "--iline", min=1, max=237, metavar="<byte>",
                                      help="SEG-Y trace header byte of the inline number."))
    xline: int = _option(typer.Option(193, "--xline", min=1, max=237, metavar="<byte>",
                                      help="SEG-Y trace header byte of the crossline number."))
    offset: int = _option(typer.Option(37, "--offset", min=1, max=237, metavar="<byte>",
                                       help="SEG-Y trace header byte of the offset number."))
    endian: str = _option(typer.Option("auto", "--endian",
                                       help="SEG-Y byte order: auto (from the binary header), big, little."))
    structured: str = _option(typer.Option("auto", "--structured",
                                           help="SEG-Y geometry: auto, yes (grid even sparse surveys), "
                                                "no (unstructured traces)."))
    axes: str | None = _option(typer.Option(None, "--axes", help="NumPy axis names, comma-separated, e.g. "
                                            "inline,crossline,sample."))
    key: str | None = _option(typer.Option(None, "--key", help="Array name inside a .npz file, Zarr/MDIO group or netCDF/HDF5 file (group/variable)."))
    fmt: str = _option(typer.Option("auto", "--format",
                                    help="Input file format: auto (from the file name), segy, npy, npz, mdio, zarr, tiff, netcdf."))

    def __post_init__(self) -> None:
        _choice("--endian", self.endian, ("auto", "big", "little"))
        _choice("--structured", self.structured, ("auto", "yes", "no"))
        _choice("--format", self.fmt, FILE_FORMATS)

    def spec(self, path: Path) -> InputSpec:
        """How to read the input ``path``."""
        names = tuple(a.strip() for a in self.axes.split(",") if a.strip()) if self.axes else None
        return InputSpec(path=str(path), format=self.fmt, key=self.key, axes=names, iline=self.iline,
                         xline=self.xline, offset=self.offset, endian=self.endian, structured=self.structured)

    def template_spec(self, path: Path) -> InputSpec:
        """How to read a SEG-Y template: the header bytes and byte order, none of the NumPy options."""
        return replace(self, axes=None, key=None, fmt="auto").spec(path)


def with_read_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with the :class:`ReadOptions` fields as options of its own; it gets them as one ``read``.

    Typer reads a command's options from its signature, so the wrapper's signature is the
    command's (less ``read``) plus the shared options; the wrapper packs them into a
    :class:`ReadOptions` (checking them) and calls the command.
    """
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "read"]
    hints = typing.get_type_hints(ReadOptions)
    shared = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.metadata["option"],
                                annotation=hints[f.name]) for f in fields(ReadOptions)]

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        command(read=ReadOptions(**{p.name: kwargs.pop(p.name) for p in shared}), **kwargs)

    run.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in (*own, *shared)}
    return run


def inspect_cmd(
    files: list[Path] = typer.Argument(..., help="SEG-Y (.sgy/.segy), .npy or .npz files."),
    json_path: Path | None = typer.Option(None, "--json",
                                          help="Also write what is shown as JSON to this file."),
    stats_traces: int = typer.Option(200, "--stats-traces", min=1, metavar="<n>",
                                     help="Random traces read for the value statistics."),
    stack: bool = typer.Option(False, "--stack",
                               help="Open the files stacked as channels, as training does "
                                    "(fails if they do not match)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --json file."),
    text: bool = typer.Option(False, "--text", help="Also show each SEG-Y file's textual header."),
    scan: bool = typer.Option(False, "--scan",
                              help="Scan the SEG-Y trace headers: which fields vary and how, and which "
                                   "byte pairs would grid the file (always done when no geometry is found)."),
    scan_traces: int = typer.Option(MAX_SCAN_TRACES, "--scan-traces", min=1, metavar="<n>",
                                    help="Traces whose headers --scan reads (headers only, never samples)."),
    *,
    read: ReadOptions,
) -> None:
    """Show what geocnn sees in data files: format, geometry, ranges, value statistics, stackability."""
    if json_path is not None:
        atomic.check_new(json_path, force)  # before the work, not after it
    specs = [read.spec(f) for f in files]
    infos = inspect_inputs(specs, stats_traces, stack, text=text, scan=scan, scan_traces=scan_traces)
    for info in infos:
        if "error" in info:
            console.print_error(info["error"])
            continue
        width = console.columns()  # COLUMNS, also when piped
        console.out.print(_labels_table(info) if info["kind"] == "labels" else _table(info), width=width)
        if "header_scan" in info:
            console.out.print(_scan_table(info["header_scan"]), width=width)
        if "textual_header" in info:
            console.out.print(Text("\n".join(info["textual_header"])))
    if json_path is not None:
        atomic.write_json(json_path, infos[0] if len(infos) == 1 else infos, force=force)
    failed = [i for i in infos if "error" in i]
    if failed:  # the others were shown; the exit status still says something was wrong
        raise typer.Exit(code=2)


def convert_cmd(
    src: Path = typer.Argument(..., help="Input: SEG-Y, .mdio, .npy/.npz/.zarr or netCDF/HDF5 (.nc/.h5)."),
    dst: Path = typer.Argument(..., help="Output: .npy, .zarr, .mdio, .nc, .tif (DIR/slice_{:04d}.tif: a folder of "
                              "2D slices), or .sgy/.segy (from an array: needs --template)."),
    template: Path | None = typer.Option(None, "--template",
                                         help="SEG-Y whose headers and geometry a NumPy input is "
                                              "written with."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
    *,
    read: ReadOptions,
) -> None:
    """Convert SEG-Y to a memory-mappable .npy (grid axis order), MDIO, Zarr or netCDF, between those, and back to SEG-Y."""
    spec = read.spec(src)
    template_spec = read.template_spec(template) if template else None
    with console.progress() as reporter:
        result = convert(src, dst, template=template, force=force, spec=spec, template_spec=template_spec,
                         reporter=reporter)
    shape = " × ".join(f"{n} {a}" for a, n in zip(result.axes, result.shape))
    console.out.print(f"wrote {result.output}: {shape} ({result.traces} traces)")


def _choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{option} must be one of {', '.join(valid)}, got {value!r}")


def _numbers(r: dict | None) -> str:
    if not r:
        return "—"
    step = f" step {r['step']}" if r["step"] is not None else " (uneven)"
    return f"{r['first']} – {r['last']}{step} ({r['count']})"


def _table(info: dict) -> Table:
    """One file's description as a two-column table."""
    t = Table(title=Text(str(info["path"])), show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    shape = " × ".join(f"{n} {a}" for a, n in zip(info["axes"], info["shape"]))
    dead, interval = info["dead_traces"], info["sample_interval_us"]
    rows = [
        ("format", f"{info['format']} ({info['kind']})"),
        ("shape", shape),
        ("channels", f"{info['channels']}: {', '.join(info['channel_names'])}"),
        ("sample format", f"{info['sample_format']}, {info['endian']}-endian"
         if info["endian"] not in ("", "n/a") else info["sample_format"]),
        ("traces", f"{info['n_traces']}" + (f" ({dead} dead positions)" if dead else "")),
        ("sample interval", f"{interval / 1000:g} ms" if interval else "unknown"),
        ("first sample", f"{info['sample_start_ms']:g} ms"),
        ("inlines", _numbers(info["ilines"])),
        ("crosslines", _numbers(info["xlines"])),
        ("offsets", _numbers(info["offsets"])),
        ("spacing", ", ".join(f"{a} {s['value']:g} {s['unit']}" for a, s in info["spacing"].items())
         or "unknown"),
    ]
    rows += [(name, _value(value)) for name, value in info.get("geometry", {}).items()]
    stats = info.get("stats")
    if stats:
        rows.append(("values", f"min {stats['min']:.4g}, max {stats['max']:.4g}, mean {stats['mean']:.4g}, "
                               f"std {stats['std']:.4g}, p1 {stats['p1']:.4g}, p99 {stats['p99']:.4g} "
                               f"({stats['traces_sampled']} traces)"))
    if "noise" in info:
        rows.append(("noise correlation", "\n".join(info["noise"]["text"])))
    binary = info.get("binary_header")
    if binary:
        rows.append(("binary header", _binary(binary)))
    if "grid_pairs" in info and info["kind"] == "unstructured":
        rows.append(("grid suggestion", "; ".join(_pair(p) for p in info["grid_pairs"])
                     or "no pair of trace header fields grids the traces"))
    if "netcdf" in info:
        rows.extend(_netcdf_rows(info["netcdf"]))
    if "stackable" in info:
        rows.append(("stackable", "yes" if info["stackable"] else f"no: {info['stack_problem']}"))
    for name, value in rows:
        t.add_row(name, Text(value))  # Text: file names and messages are not rich markup
    return t


def _netcdf_rows(nc: dict) -> list[tuple[str, str]]:
    """A netCDF/HDF5 file's variables, the read variable's coordinates, and the attributes."""
    def coordinate(dim: str, c: dict) -> str:
        if "first" not in c:
            return f"{dim} → {c['axis']}: no coordinate variable"
        step = f" step {c['step']:g}" if c["step"] is not None else " (irregular)"
        return f"{dim} → {c['axis']}: {c['first']:g} – {c['last']:g}{step} {c['unit']}".rstrip()

    def attrs(a: dict) -> str:
        short = {k: str(v) if len(str(v)) <= 100 else str(v)[:99] + "…" for k, v in a.items()}
        return "\n".join(f"{k}: {v}" for k, v in short.items()) or "none"

    variables = ", ".join(f"{n} ({', '.join(v['dims'])}; {v['dtype']})" for n, v in nc["variables"].items())
    return [("variable", f"{nc['group'] + '/' if nc['group'] else ''}{nc['variable']} of {variables}"),
            ("coordinates", "\n".join(coordinate(d, c) for d, c in nc["coordinates"].items())),
            ("attributes", attrs(nc["attributes"])), ("file attributes", attrs(nc["global_attributes"]))]


def _value(value: object) -> str:
    """A format's geometry entry (a CRS, bounds, a voxel size) as text."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.12g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(f"{v:.12g}" for v in value)
    return "none" if value is None else str(value)


def _pair(p: dict) -> str:
    offset = f" --offset {p['offset']}" if p["offset"] else ""
    return f"--iline {p['iline']} --xline {p['xline']}{offset} ({p['shape'][0]} × {p['shape'][1]}, " \
           f"{100 * p['fill']:.0f}% filled)"


def _binary(b: dict) -> str:
    return (f"rev {b['revision']}, format {b['format']}, {b['samples']} samples of {b['interval_us']} µs, "
            f"fixed length {b['fixed_length']}, {b['extended_textual_headers']} extended textual header(s), "
            f"sorting {b['sorting']} ({b['sorting_name']}), {b['measurement_name']}")


def _labels_table(info: dict) -> Table:
    """A label file's description as a two-column table."""
    t = Table(title=Text(str(info["path"])), show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    rows = [("format", f"{info['format']} (labels)"), ("labels", f"{info['count']:,}")]
    if "min" in info:
        rows.append(("values", f"{info['min']:g} – {info['max']:g}"
                               + (f", {info['non_finite']} NaN/inf" if info["non_finite"] else "")))
    if "classes" in info:
        rows.append(("classes", ", ".join(f"{c}: {n:,}" for c, n in info["classes"].items())))
    for name, value in rows:
        t.add_row(name, Text(value))
    return t


def _scan_table(scan: dict) -> Table:
    """The trace header fields that vary: byte, name, range, step, distinct values."""
    part = f"first {scan['traces_scanned']:,} of {scan['traces']:,}" if scan["partial"] else f"all {scan['traces']:,}"
    t = Table(title=Text(f"trace header fields that vary ({part} traces; {len(scan['constant'])} constant)"),
              title_justify="left")
    for name in ("byte", "field", "min", "max", "step", "distinct"):
        t.add_column(name, justify="left" if name == "field" else "right")
    for v in scan["varying"]:
        t.add_row(str(v["byte"]), v["name"], str(v["min"]), str(v["max"]),
                  "uneven" if v["step"] is None else str(v["step"]), str(v["distinct"]))
    return t


COMMANDS = [("inspect", with_read_options(inspect_cmd)), ("convert", with_read_options(convert_cmd))]
