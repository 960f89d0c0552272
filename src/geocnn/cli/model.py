"""``geocnn summarize`` and ``geocnn schema``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from geocnn import api, atomic, summary
from geocnn.cli import console
from geocnn.config import config_reference, json_schema
from geocnn.errors import ConfigError
from geocnn.fmt import fmt_shape


def parse_shape(text: str, option: str) -> tuple[int, ...]:
    """``3,64,64`` → (3, 64, 64), with a one-line error naming the option."""
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise ConfigError(f"{option} must be integers separated by commas, e.g. 3,64,64; got '{text}'") from None
    if len(shape) < 2 or any(n < 1 for n in shape):
        raise ConfigError(f"{option} needs the channel count and 1 to 3 positive sizes, e.g. 3,64,64; "
                          f"got '{text}'")
    return shape


def _views(s: summary.Summary, wide: bool, width: int) -> tuple[Table, list[Text]]:
    """The terminal view of :func:`summary.rows`: a table and the lines folded out of it.

    Every column when the table fits in ``width`` (or with ``--wide``). Otherwise the columns of
    free text leave the table — the physical receptive field first, then the notes, then the
    formula — and what they said is listed under it, one line per layer, wrapped to the width.
    Still too wide: sizes are spelled short (``8 × 24³``), then output shapes wrap between their
    sizes. Layer names are never broken; counts never wrap and are never cut.
    """
    cols = summary.columns(s)
    drop: list[str] = []
    for key in ("rf_units", "notes", "formula"):
        table = _table(s, [c for c in cols if c.key not in drop])
        if wide or _natural_width(table) <= width:
            return table, _folded(s, [k for k in drop if k != "rf_units"])
        drop.append(key)
    kept = [c for c in cols if c.key not in drop]
    table = _table(s, kept, compact=True)
    if _natural_width(table) > width:
        table = _table(s, kept, compact=True, wrap_sizes=True)
    return table, _folded(s, [k for k in drop if k != "rf_units"])




def _table(s: summary.Summary, cols: list[summary.Column], compact: bool = False, wrap_sizes: bool = False
           ) -> Table:
    t = Table(title=f"{s.spec.name or 'model'} — input {fmt_shape(s.input_shape)} "
              f"(channels × {' × '.join(s.spec.axes)})", title_justify="left", header_style="bold",
              box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0 if compact else 1, 0, 0))
    rows = summary.rows(s, compact)
    for c in cols:
        # free text wraps (and output shapes when nothing else fits); names and counts never do
        wraps = c.text or (wrap_sizes and c.key == "output")
        # a wrapped shape keeps room for its widest size and the × after it ("16 ×"), and its header
        least = max((len(p.strip()) + 2 for r in rows for p in r.cells["output"].split("×")), default=0)
        t.add_column(c.header, justify="right" if c.right else "left", no_wrap=not wraps,
                     overflow="fold" if wraps else "ellipsis", min_width=max(least, len(c.header)) if c.key == "output" else None)
    for row in rows:
        t.add_row(*[_cell(row, c.key, wrap_sizes) for c in cols], style="cyan" if row.shortcut else None)
    return t


def _cell(row: summary.Row, key: str, wrap_sizes: bool = False) -> str | Text:
    """One cell as rich text: warnings in yellow after the notes, the failing layer in red.

    ``wrap_sizes`` spaces the output shape (``8 × 24 × 32``) so it wraps between sizes, never inside one."""
    if key == "notes":
        note = Text(row.cells["notes"], style="red" if row.failed else "")
        for w in row.warnings:
            note.append(("; " if note.plain else "") + "⚠ " + w, style="yellow")
        return note
    if row.failed and key in ("layer", "output"):
        return Text(row.cells[key], style="bold red" if key == "layer" else "red")
    text = row.cells[key]
    if wrap_sizes and key == "output":
        text = " × ".join(part.strip() for part in text.split("×"))
    return Text(text)  # Text: names and formulas are not rich markup


def _folded(s: summary.Summary, keys: list[str]) -> list[Text | Table]:
    """The dropped text columns: one line per layer that has something in them, wrapped under
    its own start (a grid of number, name, text), after a heading that names them."""
    if not keys:
        return []
    heading = Text(" · ".join(summary.COLUMN[k].header for k in reversed(keys)) + " (--wide shows them as columns)",
                   style="bold")
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for row in summary.rows(s):
        parts = [row.cells["formula"]] if "formula" in keys else []
        parts.append(summary.notes_text(row) if "notes" in keys else "")
        text = " · ".join(p for p in parts if p)
        if text:
            grid.add_row(row.cells["index"], Text(row.cells["layer"].lstrip(" │↳")),
                         Text(text, style="red" if row.failed else ""))
    return [heading, grid]


def _natural_width(table: Table) -> int:
    """Width the table takes when nothing is wrapped."""
    wide = Console(width=10_000, file=io.StringIO())
    return Measurement.get(wide, wide.options, table).maximum


def print_summary(s: summary.Summary, wide: bool = False) -> None:
    """The summary table, the text folded out of it, the totals and the warnings, on stdout."""
    width = console.columns()
    table, folded = _views(s, wide, width)
    console.out.print(table, width=max(width, _natural_width(table)) if wide else width, crop=not wide)
    for line in folded:
        console.out.print(line, width=width)
    for line in summary.totals_lines(s):
        console.out.print(line, width=width)
    for w in s.warnings:
        console.out.print(f"[yellow]warning:[/] {w}", width=width)


def summarize_cmd(
    config: Path = typer.Argument(..., help="Model YAML, full config with a model: section, run folder "
                                  "or checkpoint (.pt).", show_default=False),
    input_shape: str = typer.Option(None, "--input-shape", help="Input as C,D1[,D2[,D3]] (channels "
                                    "first); default: the config's input_shape or training patch."),
    batch_size: int = typer.Option(1, "--batch-size", min=1, metavar="<n>", help="Batch size for the memory totals."),
    json_path: Path = typer.Option(None, "--json", help="Also write the summary as JSON here."),
    markdown_path: Path = typer.Option(None, "--markdown", help="Also write the summary as Markdown here."),
    force: bool = typer.Option(False, "--force", help="Replace existing --json/--markdown files."),
    wide: bool = typer.Option(False, "--wide", help="Formula and notes as columns even when the terminal is "
                              "too narrow for them (they fold under each row otherwise)."),
) -> None:
    """Show each layer's output shape, parameters (with formula), multiply-adds and receptive field.

    Works before any data or training: shapes are computed from the YAML with
    N_y = floor((N_x + 2·pad − N_h)/stride + 1). A shape error prints the table up to the failing
    layer, then the error with its YAML line, and exits with code 2.
    """
    s = api.summarize(config, parse_shape(input_shape, "--input-shape") if input_shape else None, batch_size)
    for path in (json_path, markdown_path):
        if path is not None:
            atomic.check_new(path, force)
    print_summary(s, wide)
    if json_path is not None:
        atomic.write_json(json_path, summary.to_json(s), force=force)
        console.out.print(f"wrote {json_path}")
    if markdown_path is not None:
        atomic.write_text(markdown_path, summary.to_markdown(s), force=force)
        console.out.print(f"wrote {markdown_path}")
    if s.error is not None:
        raise s.error


def schema_cmd(
    out: Path = typer.Option(None, "--out", "-o", help="Write to this file instead of standard output."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the config reference instead: every "
                                  "section's keys as Markdown tables (the site's Reference → Config page)."),
) -> None:
    """Print the JSON Schema of geocnn config files, for editor validation and completion.

    E.g. with the YAML language server, as the first line of a config:

    \b
    # yaml-language-server: $schema=geocnn-schema.json
    """
    text = config_reference() if markdown else json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        console.out.file.write(text)
    else:
        atomic.write_text(out, text, force=force)


COMMANDS = [("summarize", summarize_cmd), ("schema", schema_cmd)]
