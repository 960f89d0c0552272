"""``geocnn export``: a trained network as ONNX or a ``torch.export`` program, for other software.

The file holds the network only (normalised input → raw scores); everything needed to apply it
travels in its metadata (ONNX ``metadata_props``; ``geocnn.json`` inside a ``.pt2``): the input
normalisation, channel names, axes and spacing, patch size, task, classes and how to read the
output, and which spatial sizes the network accepts.

Batch and spatial sizes are dynamic where the network allows them (:mod:`geocnn.graph` says
which and traces the network). After export the file is run on another batch and spatial size and
compared with PyTorch.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geocnn import __version__, atomic
from geocnn.errors import ConfigError, GeocnnError
from geocnn.graph import (
    FORMATS,
    TOLERANCE,
    AxisSizes,
    axis_sizes,
    example_input,
    read_metadata,
    run_exported,
    trace,
    write_onnx,
    write_pt2,
)
from geocnn.model.network import build
from geocnn.predict import Trained, load_trained

__all__ = ["ExportMismatch", "ExportReport", "export", "export_format", "metadata", "read_metadata", "run_exported",
           "axis_sizes", "load_trained"]

log = logging.getLogger(__name__)



class ExportMismatch(GeocnnError):
    """The exported file does not reproduce PyTorch's output; nothing was written."""


# ----------------------------------------------------------------------------- sizes

# ----------------------------------------------------------------------------- metadata

def _output_note(trained: Trained) -> str:
    """How to turn the output into what geocnn predict writes."""
    task = trained.cfg.task
    where = "per sample" if task.dense else "per patch"
    if task.classifies:
        return (f"class logits {where}, classes on axis 1: softmax over axis 1 gives probabilities "
                f"(one channel: sigmoid = P(class 1)); argmax gives labels")
    if trained.target_norm is not None:
        return f"values {where} in normalised target units: value = output × scale + center (target_normalization)"
    return f"values {where} in the target's units"


def metadata(trained: Trained, sizes: list[AxisSizes]) -> dict[str, str]:
    """String key → value pairs (JSON for structured values) describing how to apply the network."""
    cfg, spec = trained.cfg, trained.cfg.model
    classes = trained.classes if cfg.task.classifies else None
    names = cfg.data.class_names if classes else None
    record = {
        "producer": f"geocnn {__version__}",
        "task": cfg.task.name,
        "dense": cfg.task.dense,
        "layout": ["batch", "channel", *spec.axes],
        "axes": list(spec.axes),
        "spacing": [{"value": v, "unit": u} for v, u in spec.spacing] if spec.spacing else None,
        "input_channels": list(trained.channel_names),
        "input_normalization": {**trained.norm.to_dict(), "formula": "(x - center) / scale per channel"},
        "target_normalization": trained.target_norm.to_dict() if trained.target_norm else None,
        "patch_size": list(trained.cfg.patch),
        "spatial_sizes": [s.to_json() for s in sizes],
        "classes": classes,
        "class_names": (list(names) if names else [str(k) for k in range(classes)]) if classes else None,
        "output": _output_note(trained),
        "source_checkpoint": "/".join(trained.path.parts[-3:]),  # run/checkpoints/best.pt, no home paths
    }
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in record.items()}


# ----------------------------------------------------------------------------- export

@dataclass(frozen=True)
class ExportReport:
    """What was written and how it was checked."""

    path: Path
    format: str
    sizes: list[AxisSizes]
    checked_shape: tuple[int, ...] | None  # input shape of the self-check
    max_difference: float | None


def export_format(out: Path, fmt: str | None) -> str:
    """The format from ``--format`` or the file's suffix."""
    if fmt is not None:
        if fmt not in FORMATS.values():
            raise ConfigError(f"unknown export format '{fmt}'", fix=f"use one of: {', '.join(FORMATS.values())}")
        return fmt
    found = FORMATS.get(out.suffix.lower())
    if found is None:
        raise ConfigError(f"cannot tell the export format from the suffix '{out.suffix}'", where=str(out),
                          fix="name the file .onnx or .pt2, or pass --format onnx|pt2")
    return found


def export(run_or_checkpoint: str | Path, out: str | Path, fmt: str | None = None, force: bool = False,
           check: bool = True) -> ExportReport:
    """Write the trained network of a run folder or checkpoint to ``out`` (ONNX or ``.pt2``).

    Parameters
    ----------
    run_or_checkpoint
        Run folder (its ``checkpoints/best.pt``) or a checkpoint file.
    out
        Output file; refused when it exists unless ``force``. Written atomically.
    fmt
        ``onnx`` or ``pt2``; default from the suffix.
    check
        Run the written file on another batch and spatial size and compare with PyTorch
        (ONNX needs onnxruntime; skipped with a log line when it is missing).

    Example
    -------
    >>> export("runs/facies2d", "facies2d.onnx")  # doctest: +SKIP
    """
    out = Path(out)
    fmt = export_format(out, fmt)
    atomic.check_new(out, force)
    _require(fmt)
    trained = load_trained(run_or_checkpoint)
    model, _ = build(trained.cfg.model, trained.cfg.patch)
    model.load_state_dict(trained.state)
    model.eval()
    sizes = axis_sizes(trained.cfg, trained.cfg.patch)
    program, sizes = trace(model, trained.cfg, sizes)
    meta = metadata(trained, sizes)
    with atomic.replacing(out, force=force) as tmp:
        (write_onnx if fmt == "onnx" else write_pt2)(program, tmp, meta)
        shape, diff = _check(model, tmp, fmt, trained, sizes) if check else (None, None)
    log.info("spatial sizes: %s", ", ".join(s.describe() for s in sizes))
    return ExportReport(out, fmt, sizes, shape, diff)


def _require(fmt: str) -> None:
    """ONNX export needs the ``export`` extra (onnx, onnxscript)."""
    if fmt != "onnx":
        return
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"ONNX export needs the package '{exc.name}'",
                          fix="pip install 'geocnn[export]' (onnx, onnxscript, onnxruntime)") from None


def _check(model: torch.nn.Module, path: Path, fmt: str, trained: Trained,
           sizes: list[AxisSizes]) -> tuple[tuple[int, ...] | None, float | None]:
    """Compare the written file with PyTorch on a batch and spatial size other than the traced one."""
    if fmt == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            log.warning("onnxruntime is not installed: the exported file was not checked "
                        "(pip install 'geocnn[export]')")
            return None, None
    x = example_input(trained.cfg, sizes, batch=3, more=1)
    with torch.no_grad():
        expected = model(x).numpy()
    got = run_exported(path, x.numpy(), fmt)
    diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else math.inf
    if not diff <= TOLERANCE * max(1.0, float(np.max(np.abs(expected)))):
        raise ExportMismatch(f"the exported {fmt} model differs from PyTorch by {diff:.3g} on an input of "
                             f"shape {tuple(x.shape)} (output {got.shape} vs {expected.shape}); nothing written",
                             fix="report this as a geocnn bug, with the model section of the config")
    log.info("checked on input %s: largest difference from PyTorch %.2g", tuple(x.shape), diff)
    return tuple(x.shape), diff
