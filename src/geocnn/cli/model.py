"""``geocnn summarize`` and ``geocnn schema``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from geocnn import atomic, summary
from geocnn.cli import console
from geocnn.config import json_schema, resolve_model_source
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


def _table(s: summary.Summary) -> Table:
    phys = s.spec.spacing is not None
    t = Table(title=f"{s.spec.name or 'model'} — input {fmt_shape(s.input_shape)} "
              f"(channels × {' × '.join(s.spec.axes)})", title_justify="left", header_style="bold")
    for col, just in (("#", "right"), ("layer", "left"), ("kind", "left"), ("output", "left"),
                      ("params", "right"), ("formula", "left"), ("mult-adds", "right"),
                      ("RF", "left"), ("jump", "left")):
        t.add_column(col, justify=just, no_wrap=col not in ("formula",))
    if phys:
        t.add_column("RF (units)", no_wrap=True)
    t.add_column("notes", overflow="fold")
    for r in s.records:
        row = [str(r.index), summary.display_name(r), r.kind, fmt_shape(r.output_shape),
               f"{r.params:,}" if r.params else "0", r.formula, f"{r.macs:,}" if r.macs else "",
               "×".join(map(str, r.receptive_field)), "×".join(map(str, r.jumps))]
        if phys:
            row.append(" × ".join(f"{n * step:g} {unit}".strip()
                                  for n, (step, unit) in zip(r.receptive_field, s.spec.spacing)))
        note = Text(r.note)
        for w in r.warnings:
            note.append(("; " if note.plain else "") + "⚠ " + w, style="yellow")
        row.append(note)
        t.add_row(*row, style="cyan" if r.role == "shortcut" else None)
    if s.error is not None:
        name, kind = s.error.failed_layer or ("", "")
        cells = [str(s.error.failed_index or "?"), Text(f"✗ {name}", style="bold red"), kind,
                 Text("fails here", style="red"), "", "", "", "", ""]
        if phys:
            cells.append("")
        cells.append(Text(s.error.problem, style="red"))
        t.add_row(*cells)
    return t


def summarize_cmd(
    config: Path = typer.Argument(..., help="Model YAML, full config with a model: section, run folder "
                                  "or checkpoint (.pt).", show_default=False),
    input_shape: str = typer.Option(None, "--input-shape", help="Input as C,D1[,D2[,D3]] (channels "
                                    "first); default: the config's input_shape or training patch."),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Batch size for the memory totals."),
    json_path: Path = typer.Option(None, "--json", help="Also write the summary as JSON here."),
    markdown_path: Path = typer.Option(None, "--markdown", help="Also write the summary as Markdown here."),
    force: bool = typer.Option(False, "--force", help="Replace existing --json/--markdown files."),
) -> None:
    """Show each layer's output shape, parameters (with formula), multiply-adds and receptive field.

    Works before any data or training: shapes are computed from the YAML with
    N_y = floor((N_x + 2·pad − N_h)/stride + 1). A shape error prints the table up to the failing
    layer, then the error with its YAML line, and exits with code 2.
    """
    spec, default_shape = resolve_model_source(config)
    shape = parse_shape(input_shape, "--input-shape") if input_shape else default_shape
    if shape is None:
        raise ConfigError("no input shape: the model has no input_shape", where=str(config),
                          fix="add input_shape to the model section or pass --input-shape C,D1,...")
    if shape[0] != spec.in_channels:
        raise ConfigError(f"--input-shape has {shape[0]} channels but the model has in_channels "
                          f"{spec.in_channels}", where=str(config), fix="make them agree")
    if len(shape) - 1 != spec.dims:
        raise ConfigError(f"input shape {fmt_shape(shape)} has {len(shape) - 1} spatial axes but the model "
                          f"has dims {spec.dims}", where=str(config),
                          fix=f"give the channel count and {spec.dims} sizes")
    for path in (json_path, markdown_path):
        if path is not None:
            atomic.check_new(path, force)
    s = summary.summarize(spec, shape, batch_size)
    console.out.print(_table(s))
    for line in summary.totals_lines(s):
        console.out.print(line)
    for w in s.warnings:
        console.out.print(f"[yellow]warning:[/] {w}")
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
) -> None:
    """Print the JSON Schema of geocnn config files, for editor validation and completion.

    E.g. with the YAML language server: `# yaml-language-server: $schema=geocnn-schema.json`.
    """
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        console.out.file.write(text)
    else:
        atomic.write_text(out, text, force=force)


COMMANDS = [("summarize", summarize_cmd), ("schema", schema_cmd)]
