"""A trained network as a traced graph: the spatial sizes it accepts, ``torch.export`` with those
sizes dynamic, ONNX and ``.pt2`` files, and running them.

Shared by ``geocnn export`` (:mod:`geocnn.export`, which adds the run's metadata and the file
checks) and by prediction's ONNX Runtime engine (:mod:`geocnn.predict.engines`, which traces the
prediction window once and caches the graph beside the checkpoint). It reads a config and a
built network only, never a run folder, so prediction can use it without an import cycle.

Batch and spatial sizes are dynamic where the network allows them. The allowed sizes come from
the analytic shape walk (:func:`geocnn.model.accepts`): an axis accepts ``min + step·k``, or only
the training size when a dense head after ``flatten`` fixes it. Both formats are traced once with
``torch.export`` using one ``Dim`` per axis, declared as ``step·d + offset``: ``same`` padding and
pooling branch on the size in Python, so an unconstrained ``Dim`` is silently specialised to the
example size by the ONNX exporter, while the legacy TorchScript exporter bakes the padding of the
example size into the graph.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geocnn.config import Config
from geocnn.model import accepts

log = logging.getLogger(__name__)

FORMATS = {".onnx": "onnx", ".pt2": "pt2"}  # suffix → format
TOLERANCE = 1e-4  # largest |graph − PyTorch| accepted, relative to the output's scale (float32 scores)
INPUT_NAME, OUTPUT_NAME = "input", "output"


# ----------------------------------------------------------------------------- sizes

@dataclass(frozen=True)
class AxisSizes:
    """Sizes one spatial axis accepts: ``minimum + step·k`` (k ≥ 0), or only ``minimum`` when fixed."""

    axis: str
    minimum: int
    step: int | None  # None: fixed size
    reason: str = ""

    @classmethod
    def dynamic(cls, axis: str, first: int, step: int) -> AxisSizes:
        """``first + step·k``, from the first size ``torch.export`` keeps symbolic (≥ 2, at least one step)."""
        while first < 2 or (step > 1 and first < step):
            first += step
        return cls(axis, first, step)

    @property
    def fixed(self) -> bool:
        return self.step is None

    def example(self, preferred: int) -> int:
        """An accepted size to trace with: ``preferred`` if allowed and ≥ 2 steps above the minimum."""
        if self.fixed:
            return self.minimum
        k = max((preferred - self.minimum) // self.step, 2)
        return self.minimum + k * self.step

    def dim(self) -> torch.export.Dim | None:
        """The ``torch.export`` dimension (None when fixed): ``step·d + offset``, d ≥ 1."""
        if self.fixed:
            return None
        if self.step == 1:
            return torch.export.Dim(self.axis, min=max(self.minimum, 2))
        offset = self.minimum % self.step
        root = torch.export.Dim(self.axis, min=self.minimum // self.step)  # ≥ 1, see dynamic()
        return self.step * root + offset if offset else self.step * root

    def describe(self) -> str:
        """``crossline ≥ 2``, ``sample 4 + 4k``, ``sample = 64 (reason)``."""
        if self.fixed:
            return f"{self.axis} = {self.minimum} ({self.reason})"
        return f"{self.axis} ≥ {self.minimum}" if self.step == 1 else f"{self.axis} {self.minimum} + {self.step}k"

    def to_json(self) -> dict:
        if self.fixed:
            return {"axis": self.axis, "size": self.minimum, "fixed": True, "reason": self.reason}
        return {"axis": self.axis, "min": self.minimum, "step": self.step, "fixed": False}


def axis_sizes(cfg: Config, patch: tuple[int, ...]) -> list[AxisSizes]:
    """Per model axis, the sizes the network accepts with the other axes at the patch size."""
    spec = cfg.model
    has_flatten = any(n.kind == "flatten" for n in spec.nodes())
    rules = []
    for i, axis in enumerate(spec.axes):
        limit = max(2 * patch[i], 128) + 64
        valid = [n for n in range(1, limit + 1)
                 if accepts(spec, tuple(n if j == i else patch[j] for j in range(spec.dims)), patch)]
        rules.append(_arithmetic(axis, valid, patch[i], limit, has_flatten))
    return rules


def _arithmetic(axis: str, valid: list[int], size: int, limit: int, has_flatten: bool) -> AxisSizes:
    """The sizes ``first + step·k`` through the training size, with the smallest step, all in ``valid``.

    Strided ``same`` layers can accept a union of such sequences (e.g. 3, 4, 7, 8, …); a traced
    dimension is one linear form, so the sequence of the training size's residue is kept.
    """
    ok = set(valid)
    for step in range(1, limit // 2 + 1):
        seq = list(range(size % step or step, limit + 1, step))
        members = [n for n in seq if n in ok]
        if size in ok and len(members) >= 2 and seq[seq.index(members[0]):] == members:
            return AxisSizes.dynamic(axis, members[0], step)
    reason = ("a dense layer after flatten has a fixed input size" if has_flatten
              else "the network accepts no regular set of sizes")
    return AxisSizes(axis, size, None, reason)


# ----------------------------------------------------------------------------- tracing

def example_input(cfg: Config, sizes: list[AxisSizes], batch: int, more: int = 0) -> torch.Tensor:
    """A seeded input: ``batch`` windows, ``more`` steps above the traced size on dynamic axes."""
    spatial = [s.example(p) + (0 if s.fixed else more * s.step) for s, p in zip(sizes, cfg.patch)]
    gen = torch.Generator().manual_seed(0)
    return torch.randn((batch, cfg.model.in_channels, *spatial), generator=gen)


def trace(model: torch.nn.Module, cfg: Config,
          sizes: list[AxisSizes]) -> tuple[torch.export.ExportedProgram, list[AxisSizes]]:
    """``torch.export`` with dynamic batch and spatial axes; spatial axes fixed if tracing refuses them."""
    x = example_input(cfg, sizes, batch=2)
    shapes = {0: torch.export.Dim("batch", min=1)}
    shapes.update({2 + i: s.dim() for i, s in enumerate(sizes) if not s.fixed})
    try:
        return _export_program(model, x, shapes), sizes
    except RuntimeError as exc:  # torch's constraint violations are RuntimeErrors
        first = str(exc).strip().splitlines()[0][:200]
        log.warning("dynamic spatial sizes refused by torch.export (%s); exporting the patch size only", first)
    sizes = [AxisSizes(s.axis, p, None, "torch.export could not keep it dynamic")
             for s, p in zip(sizes, cfg.patch)]
    return trace_fixed(model, example_input(cfg, sizes, batch=2)), sizes


def trace_fixed(model: torch.nn.Module, x: torch.Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` for inputs of ``x``'s spatial size (one prediction window), any batch size."""
    return _export_program(model, x, {0: torch.export.Dim("batch", min=1)})


def _export_program(model: torch.nn.Module, x: torch.Tensor, shapes: dict) -> torch.export.ExportedProgram:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation chatter about pytree internals
        return torch.export.export(model, (x,), dynamic_shapes=(shapes,), strict=False)


def write_onnx(program: torch.export.ExportedProgram, path: Path, meta: dict[str, str]) -> None:
    import onnx

    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)  # "torchvision is not installed" lines that concern no geocnn network
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_program = torch.onnx.export(program, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                             dynamo=True, verbose=False, optimize=True)
    finally:
        registry.setLevel(level)
    onnx_program.save(str(path))
    proto = onnx.load(str(path))
    _name_dims(proto, meta)
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"geocnn {meta['task']} network; metadata_props say how to apply it ({meta['output']})"
    onnx.save(proto, str(path))


def _name_dims(proto, meta: dict[str, str]) -> None:
    """Give the exporter's symbolic sizes (``s77``, ``4*s19``) the layout's names on inputs and outputs."""
    layout = json.loads(meta["layout"])
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    names = {d.dim_param: layout[i] for i, d in enumerate(dims) if d.dim_param}
    for value in (*proto.graph.input, *proto.graph.output):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param in names:
                d.dim_param = names[d.dim_param]


def write_pt2(program: torch.export.ExportedProgram, path: Path, meta: dict[str, str]) -> None:
    torch.export.save(program, str(path), extra_files={"geocnn.json": json.dumps(meta)})


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an exported file (ONNX ``metadata_props`` or a ``.pt2``'s ``geocnn.json``)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    extra = {"geocnn.json": ""}
    torch.export.load(str(path), extra_files=extra)
    return json.loads(extra["geocnn.json"])


def run_exported(path: str | Path, x: np.ndarray, fmt: str | None = None) -> np.ndarray:
    """Run an exported file on ``x`` (onnxruntime for ONNX, ``torch.export.load`` for ``.pt2``)."""
    path = Path(path)
    if (fmt or FORMATS.get(path.suffix.lower())) == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {INPUT_NAME: x.astype(np.float32)})[0]
    with torch.no_grad():
        return torch.export.load(str(path)).module()(torch.from_numpy(x)).numpy()


