"""Totals and documents of a model summary: what ``geocnn summarize`` shows and writes.

Rows come from the analytic records (:mod:`geocnn.model.shapes`); this module adds the totals
(parameters, multiply-adds, memory for a batch), the valid input sizes, the receptive field in
physical units, and renders the JSON and Markdown documents. The table's rows and columns are
computed once here (:func:`rows`, :data:`COLUMNS`): the Markdown below and the rich table in
the CLI are two views of them, so their columns cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from geocnn.errors import GeocnnError, ShapeError
from geocnn.fmt import fmt_shape, fmt_shape_compact, fmt_sizes_compact, human_bytes
from geocnn.grids.formats import FORMATS
from geocnn.grids.grid import open_stack
from geocnn.model import ModelSpec, infer, size_rules
from geocnn.model.shapes import Inference, LayerRecord, _downsampling
from geocnn.model.spec import frozen_layers
from geocnn.patches import patch_geometry

if TYPE_CHECKING:
    from geocnn.config import Config

log = logging.getLogger(__name__)

BYTES_PER_VALUE = 4  # float32
# The valid-size search walks the network once per size and axis; each node costs about 600
# positions' worth of overhead plus the positions it holds. Past this much work (~2 s) it is
# skipped and the summary says so (an input of 2000², a stride of 10⁶).
MAX_RULE_WORK = 50_000_000
ADAM_STATES = 2  # Adam keeps two running moments per parameter


@dataclass
class Summary:
    """A model summary for one input shape and batch size; ``error`` is set when shapes fail.

    Examples
    --------
    >>> import geocnn
    >>> s = geocnn.summarize("configs/denoise2d.yaml")
    >>> s.total_params, s.output_shape, s.to_json()["receptive_field"]["samples"]
    (21385, (1, 32, 64), [13, 13])
    """

    spec: ModelSpec
    input_shape: tuple[int, ...]  # (C, ...spatial)
    batch_size: int
    records: list[LayerRecord]
    inference: Inference | None = None
    error: ShapeError | None = None
    size_rules: list[str] = field(default_factory=list)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.inference.output.shape if self.inference else None

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.records)

    @property
    def trainable_params(self) -> int:
        return sum(r.params for r in self.records if r.trainable)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.records)

    @property
    def activation_values(self) -> int:
        """Values of all layer outputs for the batch (what the forward pass keeps for backward)."""
        return self.batch_size * sum(r.numel for r in self.records if r.new_tensor)

    @property
    def memory(self) -> dict[str, int]:
        """Bytes: parameters, forward activations, forward+backward, and training with Adam."""
        params = self.total_params * BYTES_PER_VALUE
        forward = self.activation_values * BYTES_PER_VALUE
        return {
            "parameters": params,
            "activations_forward": forward,
            "activations_forward_backward": 2 * forward,
            "training_adam": params * (2 + ADAM_STATES) + 2 * forward,
        }

    @property
    def warnings(self) -> list[str]:
        return [f"layer {r.index} '{r.name}': {w}" for r in self.records for w in r.warnings]

    def physical_receptive_field(self) -> list[str] | None:
        """Receptive field of the output per axis in physical units (None without spacing)."""
        if self.inference is None or not self.spec.spacing:
            return None
        rf = self.inference.output_record.receptive_field
        return [f"{_num(n * step)} {unit}".strip() for n, (step, unit) in zip(rf, self.spec.spacing)]

    def receptive_field_text(self) -> str | None:
        """Receptive field of the output in samples, and in physical units when spacing is known."""
        if self.inference is None:
            return None
        rf = self.inference.output_record.receptive_field
        text = " × ".join(map(str, rf)) + f" samples ({' × '.join(self.spec.axes)})"
        phys = self.physical_receptive_field()
        if phys:
            text += " = " + " × ".join(phys)
        return text

    def to_json(self) -> dict:
        """The JSON document ``geocnn summarize --json`` writes (see :func:`to_json`)."""
        return to_json(self)

    def to_markdown(self) -> str:
        """The Markdown document ``geocnn summarize --markdown`` writes (see :func:`to_markdown`)."""
        return to_markdown(self)

    def _repr_html_(self) -> str:
        """The table in a notebook (see :func:`to_html`)."""
        return to_html(self)

    def __repr__(self) -> str:
        state = f"error {self.error.message!r}" if self.error is not None else \
            f"{self.total_params:,} parameters, output {fmt_shape(self.output_shape or ())}"
        return f"Summary({self.spec.name or 'model'}, input {fmt_shape(self.input_shape)}: {state})"


def patch_spacing(grid_spacing: dict[str, tuple[float, str]], model_axes: Sequence[str]
                  ) -> tuple[tuple[float, str], ...] | None:
    """The data's spacing (a GeoTIFF's pixel size, a TIFF stack's voxel size) per patch axis, in
    model order; None unless the data gives every one."""
    if not model_axes or any(a not in grid_spacing for a in model_axes):
        return None
    return tuple(grid_spacing[a] for a in model_axes)


def data_spacing(cfg: Config) -> tuple[tuple[float, str], ...] | None:
    """The patch axes' spacing from the config's input files, when their headers give it (a GeoTIFF's
    pixel size, a TIFF stack's voxel size, a sidecar's spacing).

    Only formats whose geometry is a header (:attr:`~geocnn.grids.formats.Format.header_geometry`) are
    opened, so ``summarize`` stays quick; inputs that cannot be opened give None (the summary is of the
    model, and works before the data exists).
    """
    try:
        if not all(FORMATS[spec.resolved_format].header_geometry for spec in cfg.inputs):
            return None
        grid = open_stack(cfg.inputs)
        geom = patch_geometry(grid.axes, grid.shape, cfg.patch, cfg.data.patch_axes, cfg.data.section)
    except GeocnnError as exc:
        log.debug("no spacing from the data: %s", exc)
        return None
    return patch_spacing(grid.spacing(), geom.model_axes)


def with_spacing(spec: ModelSpec, spacing: tuple[tuple[float, str], ...] | None) -> ModelSpec:
    """``spec`` with the data's ``spacing`` when the config gives none (``model.spacing`` wins)."""
    if spec.spacing or spacing is None or len(spacing) != spec.dims:
        return spec
    return dataclasses.replace(spec, spacing=spacing)


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:g}"


def summarize(spec: ModelSpec, input_shape: tuple[int, ...], batch_size: int = 1,
              freeze: Sequence[str] = ()) -> Summary:
    """Records and totals of ``spec`` for ``input_shape`` = (C, ...spatial).

    Never raises for shape problems: they are returned in ``error`` with the records computed
    before the failing layer, so the table can still be shown up to it. ``freeze`` (the
    config's ``train.freeze``) marks layers not trained, so the totals say what is trained.
    """
    spatial = tuple(input_shape[1:])
    rules = _rules(spec, spatial) if _has_stride(spec) or _has_flatten(spec) else []
    try:
        inf = infer(spec, spatial)
    except ShapeError as exc:
        return Summary(spec, tuple(input_shape), batch_size, _frozen(list(exc.records), freeze), None, exc, rules)
    return Summary(spec, tuple(input_shape), batch_size, _frozen(inf.records, freeze), inf, None, rules)


def _frozen(records: list[LayerRecord], freeze: Sequence[str]) -> list[LayerRecord]:
    """Copies of ``records`` with the layers ``freeze`` selects marked not trainable."""
    names = {n for hits in frozen_layers(freeze, [r.name for r in records]).values() for n in hits}
    return [dataclasses.replace(r, trainable=False) if r.name in names else r for r in records]


def _rules(spec: ModelSpec, spatial: tuple[int, ...]) -> list[str]:
    """The valid input sizes, unless the brute-force search would take more than a moment."""
    limit = max(96, 4 * max(_downsampling(spec)) + 64, *spatial)
    nodes = sum(1 for _ in spec.nodes())
    if limit * spec.dims * nodes * (600 + sum(spatial)) > MAX_RULE_WORK:
        return [f"not computed (trying every size up to {limit:,} would take long; summarize with a smaller "
                "--input-shape to see them)"]
    return size_rules(spec, spatial)


def _has_stride(spec: ModelSpec) -> bool:
    return any(node.kind in ("pool", "conv_transpose", "upsample") or
               (node.kind == "conv" and any(s > 1 for s in node.args["stride"]))
               for node in spec.nodes())


def _has_flatten(spec: ModelSpec) -> bool:
    return any(node.kind == "flatten" for node in spec.nodes())


def to_json(s: Summary) -> dict:
    """The summary document; the schema is fixed (tests and other tools read it).

    ``layers`` are in summary order (a residual block, its body, then its shortcut), so the last
    one need not be the network's output: ``output`` names the layer that is, and
    ``receptive_field`` is that layer's (in samples, and in physical units when spacing is known).
    """
    out = s.inference.output_record if s.inference is not None else None
    return {
        "input_shape": list(s.input_shape),
        "output_shape": list(s.output_shape) if s.output_shape else None,
        "total_params": s.total_params,
        "trainable_params": s.trainable_params,
        "total_macs": s.total_macs,
        "output": {"index": out.index, "name": out.name, "kind": out.kind} if out else None,
        "receptive_field": {"samples": out.receptive_field, "axes": list(s.spec.axes),
                            "physical": s.physical_receptive_field()} if out else None,
        "layers": [
            {"index": r.index, "name": r.name, "kind": r.kind, "output_shape": list(r.output_shape),
             "params": r.params, "macs": r.macs, "receptive_field": r.receptive_field, "jump": r.jumps}
            for r in s.records
        ],
    }


def display_name(r: LayerRecord) -> str:
    """Indented name showing residual structure (body and shortcut under their block)."""
    mark = "↳ " if r.role == "shortcut" else ("│ " if r.depth else "")
    return "  " * max(r.depth - 1, 0) + mark + r.name


# ----------------------------------------------------------------------------- the table's rows

@dataclass(frozen=True)
class Column:
    """One column of the summary table. ``text`` columns hold free text (formula, notes) that a
    narrow terminal folds below the row; ``units`` is the per-layer receptive field in physical
    units, shown only where the spacing is known and the view asks for it."""

    key: str
    header: str
    right: bool = False
    text: bool = False
    units: bool = False


COLUMNS = (
    Column("index", "#", right=True), Column("layer", "layer"), Column("kind", "kind"), Column("output", "output"),
    Column("params", "params", right=True), Column("formula", "formula", text=True),
    Column("macs", "mult-adds", right=True), Column("rf", "RF"), Column("jump", "jump"),
    Column("rf_units", "RF (units)", units=True), Column("notes", "notes", text=True),
)
COLUMN = {c.key: c for c in COLUMNS}


@dataclass(frozen=True)
class Row:
    """The cells of one table row (``cells[column.key]``), computed once for every view.

    ``warnings`` follow the notes (views mark them); ``shortcut`` rows are a residual's skip
    path; a ``failed`` row is the layer where the shapes stopped fitting (its notes say why).
    """

    cells: dict[str, str]
    warnings: tuple[str, ...] = ()
    shortcut: bool = False
    failed: bool = False


def columns(s: Summary, units: bool = True) -> list[Column]:
    """The columns a view shows: the physical-units column only when asked and spacing is known."""
    return [c for c in COLUMNS if not c.units or (units and s.spec.spacing)]


def rows(s: Summary, compact: bool = False) -> list[Row]:
    """Every row of the table, plus the failing layer's row when the shapes fail.

    ``compact`` spells sizes short for a narrow terminal (``8 × 24³``, RF ``5³``), so layer names
    need not be broken (counts stay exact).
    """
    out = [Row(_cells(s, r, compact), tuple(r.warnings), shortcut=r.role == "shortcut") for r in s.records]
    if s.error is not None:
        name, kind = s.error.failed_layer or ("", "")
        cells = dict.fromkeys((c.key for c in COLUMNS), "")
        cells.update(index=str(s.error.failed_index or "?"), layer=f"✗ {name}", kind=kind, output="fails here",
                     notes=s.error.problem)
        out.append(Row(cells, failed=True))
    return out


def _cells(s: Summary, r: LayerRecord, compact: bool = False) -> dict[str, str]:
    shape, sizes = (fmt_shape_compact, fmt_sizes_compact) if compact else (fmt_shape, "×".join)
    units = ""
    if s.spec.spacing:
        units = " × ".join(f"{n * step:g} {unit}".strip() for n, (step, unit) in zip(r.receptive_field, s.spec.spacing))
    return {"index": str(r.index), "layer": display_name(r), "kind": r.kind, "output": shape(r.output_shape),
            "params": f"{r.params:,}", "formula": r.formula, "macs": f"{r.macs:,}",
            "rf": sizes(map(str, r.receptive_field)), "jump": sizes(map(str, r.jumps)),
            "rf_units": units, "notes": r.note}


def notes_text(row: Row) -> str:
    """The notes cell with the row's warnings after it (plain text)."""
    return "; ".join([row.cells["notes"]] * bool(row.cells["notes"]) + [f"⚠ {w}" for w in row.warnings])


def totals_lines(s: Summary) -> list[str]:
    """The totals under the table, as plain text lines."""
    mem = s.memory
    lines = [
        f"parameters: {s.total_params:,} (trainable {s.trainable_params:,}); "
        f"multiply-adds per sample: {s.total_macs:,}",
        f"memory for batch {s.batch_size}: parameters {human_bytes(mem['parameters'])}, "
        f"activations forward {human_bytes(mem['activations_forward'])}, "
        f"forward+backward {human_bytes(mem['activations_forward_backward'])}, "
        f"training with Adam ≈ {human_bytes(mem['training_adam'])}",
    ]
    rf = s.receptive_field_text()
    if rf:
        lines.append(f"receptive field of the output: {rf}")
    if s.size_rules:
        lines.append("valid input sizes: " + "; ".join(s.size_rules))
    return lines


def to_markdown(s: Summary) -> str:
    """The summary as a Markdown document (table, totals, warnings): a view of :func:`rows`."""
    title = s.spec.name or "model"
    cols = columns(s, units=False)
    head = [f"# {title}", "", f"input {fmt_shape(s.input_shape)} (channels × {' × '.join(s.spec.axes)})", "",
            "| " + " | ".join(c.header for c in cols) + " |",
            "|" + "|".join("---:" if c.right and c.key != "index" else "---" for c in cols) + "|"]  # numbers right
    body = []
    for row in rows(s):
        cells = {**row.cells, "notes": notes_text(row)}
        body.append("| " + " | ".join(cells[c.key].replace("|", "¦") for c in cols) + " |")
    tail = [""] + [f"- {line}" for line in totals_lines(s)]
    tail += [f"- warning: {w}" for w in s.warnings]
    if s.error is not None:
        tail.append(f"- **error**: {s.error.message}")
    return "\n".join(head + body + tail) + "\n"


def to_html(s: Summary) -> str:
    """The summary as an HTML table (notebooks): a view of :func:`rows`, failing layer in red."""
    cols = columns(s)
    esc = html.escape
    head = "".join(f"<th style='text-align:{'right' if c.right else 'left'}'>{esc(c.header)}</th>" for c in cols)
    body = []
    for row in rows(s):
        cells = {**row.cells, "notes": notes_text(row)}
        style = " style='color:#c00'" if row.failed else " style='color:#077'" if row.shortcut else ""
        tds = "".join(f"<td style='text-align:{'right' if c.right else 'left'};white-space:pre'>{esc(cells[c.key])}</td>"
                      for c in cols)
        body.append(f"<tr{style}>{tds}</tr>")
    notes = [esc(line) for line in totals_lines(s)] + [f"warning: {esc(w)}" for w in s.warnings]
    if s.error is not None:
        notes.append(f"<b style='color:#c00'>error</b>: {esc(s.error.message)}")
    title = f"{esc(s.spec.name or 'model')} — input {esc(fmt_shape(s.input_shape))} (channels × {esc(' × '.join(s.spec.axes))})"
    return (f"<div><b>{title}</b><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<ul>{''.join(f'<li>{n}</li>' for n in notes)}</ul></div>")
