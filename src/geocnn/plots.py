"""Pictures people look at instead of reading numbers: loss curves, predictions beside targets.

Matplotlib with the non-interactive Agg backend; every PNG is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from geocnn import atomic  # noqa: E402

if TYPE_CHECKING:  # the record only: drawing needs no torch
    from geocnn.tasks import Task

SEISMIC = "gray"


def _save(fig, path: Path) -> None:
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def loss_curve(records: list[dict], path: Path, metric: str | None = None) -> None:
    """Training and validation loss per epoch, and the headline metric against its baseline."""
    epochs = [r["epoch"] for r in records]
    panels = 2 if metric else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, [r.get("train_loss") for r in records], "o-", label="train")
    if any(r.get("val_loss") is not None for r in records):
        ax.plot(epochs, [r.get("val_loss") for r in records], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    if all((r.get("train_loss") or 0) > 0 for r in records):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if metric:
        ax = axes[0, 1]
        vals = [r.get("val", {}).get(metric) for r in records]
        ax.plot(epochs, vals, "s-", color="C2", label=metric)
        base = [r.get("val", {}).get("baseline", {}).get(metric) for r in records]
        if any(b is not None for b in base):
            ax.plot(epochs, base, "--", color="0.5", label="baseline")
        ax.set_xlabel("epoch")
        ax.set_title(f"validation {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def _image(patch: np.ndarray) -> np.ndarray:
    """A 2D view of one channel: the patch itself (2D), its middle slice (3D)."""
    if patch.ndim == 3:
        return patch[patch.shape[0] // 2]
    return patch


def _show(ax, img: np.ndarray, title: str, kind: str, vmax: float | None = None) -> None:
    if kind == "labels":
        ax.imshow(img.T, cmap="tab10", vmin=0, vmax=9, aspect="auto", interpolation="nearest")
    elif kind == "prob":
        ax.imshow(img.T, cmap="magma", vmin=0, vmax=1, aspect="auto")
    else:
        v = vmax if vmax else float(np.percentile(np.abs(img), 99)) or 1.0
        ax.imshow(img.T, cmap=SEISMIC, vmin=-v, vmax=v, aspect="auto")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def examples(x: np.ndarray, y: np.ndarray, pred: np.ndarray, task: Task, path: Path,
             axes_names: tuple[str, ...] = ()) -> None:
    """Validation examples: input, target and prediction side by side (one row each).

    ``x`` (B, C, ...) inputs in their units, ``y`` targets, ``pred`` predictions in target units: values (regression),
    class labels or positive-class probability (segmentation), class/values per patch.
    """
    n = len(x)
    if n == 0:
        return
    one_d = x.ndim == 3
    cols = 3 if task.dense else 1
    fig, axes = plt.subplots(n, cols, figsize=(3.2 * cols + (2 if one_d else 0), 2.6 * n), squeeze=False)
    for i in range(n):
        if one_d:
            _traces(axes[i], x[i], y[i], pred[i], task)
            continue
        inp = _image(x[i, 0])
        ref = _image(y[i, 0]) if task.grid_target else inp  # one colour scale for input, target, prediction
        vmax = float(np.percentile(np.abs(ref), 99)) or 1.0
        _show(axes[i, 0], inp, "input" + (f" (ch 0 of {x.shape[1]})" if x.shape[1] > 1 else ""), "values", vmax)
        if task.grid_target:
            _show(axes[i, 1], _image(y[i, 0]), "target", "values", vmax)
            _show(axes[i, 2], _image(pred[i, 0]), "prediction", "values", vmax)
        elif task.dense:
            _show(axes[i, 1], _image(y[i]), "labels", "labels")
            p = _image(pred[i])
            _show(axes[i, 2], p, "prediction", "prob" if p.dtype.kind == "f" else "labels")
        else:
            axes[i, 0].set_title(f"target {_fmt(y[i])} — predicted {_fmt(pred[i])}", fontsize=9)
    if axes_names and not one_d:
        axes[-1, 0].set_xlabel(axes_names[-2] if len(axes_names) > 1 else axes_names[0])
        axes[-1, 0].set_ylabel(axes_names[-1])
    fig.suptitle("validation examples", fontsize=10)
    _save(fig, path)


def _fmt(v) -> str:
    v = np.asarray(v)
    if v.size == 1:
        f = float(v)
        return f"{int(f)}" if f == int(f) else f"{f:.3g}"
    return np.array2string(v, precision=2)


def _traces(row, x: np.ndarray, y, pred, task: Task) -> None:
    ax = row[0]
    t = np.arange(x.shape[-1])
    for c in range(x.shape[0]):
        scale = np.abs(x[c]).max() or 1.0
        ax.plot(t, x[c] / scale / 2 + c, lw=0.6, color=f"C{c}")
    if task.dense:
        target = np.asarray(y).reshape(-1, x.shape[-1])[0]
        p = np.asarray(pred).reshape(-1, x.shape[-1])[0]
        ax.plot(t, target / (np.abs(target).max() or 1) / 2 - 1, lw=0.8, color="k", label="target")
        ax.plot(t, p / (np.abs(p).max() or 1) / 2 - 1, lw=0.8, color="C3", ls="--", label="prediction")
        ax.legend(fontsize=7, loc="upper right")
    else:
        ax.set_title(f"target {_fmt(y)} — predicted {_fmt(pred)}", fontsize=9)
    ax.set_yticks(range(x.shape[0]))
    ax.set_yticklabels([f"ch {c}" for c in range(x.shape[0])], fontsize=7)
    for extra in row[1:]:
        extra.axis("off")


def preview_path(output: Path) -> Path:
    """``faults.sgy`` → ``faults.preview.png``."""
    return output.with_name(output.name.split(".")[0] + ".preview.png")


def _middle_slices(shape: tuple[int, ...], axes: tuple[str, ...]) -> list[tuple[str, tuple[slice, ...]]]:
    """Middle inline, crossline and time slice of a 3D grid (the middle section of a 2D one)."""
    full = [slice(0, n) for n in shape]
    if len(shape) == 3:
        out = []
        for a, label in enumerate((f"{axes[0]} (middle)", f"{axes[1]} (middle)", f"{axes[2]} slice (middle)")):
            w = list(full)
            w[a] = slice(shape[a] // 2, shape[a] // 2 + 1)
            out.append((label, tuple(w)))
        return out
    return [("section", tuple(full))]


def prediction_previews(grid, output: Path, task: Task, kind: str) -> list[Path]:
    """Input and prediction side by side on a middle inline, crossline and time slice (3D), the
    section (2D) or the traces (1D); or the score map of a patch/trace model. Reads only slices."""
    from geocnn.grids.grid import open_grid

    output = Path(output)
    pred = open_grid(output)
    path = preview_path(output)
    style = "labels" if kind == "labels" else ("prob" if kind == "probabilities" else "values")
    if pred.shape != grid.shape:  # a map of window scores
        fig, ax = plt.subplots(figsize=(6, 4))
        values = pred.read(tuple(slice(0, n) for n in pred.shape))[0]
        if values.ndim == 1:
            ax.plot(values, ".-", lw=0.8)
            ax.set_xlabel(pred.axes[0])
            ax.set_ylabel(kind)
        else:
            img = values if values.ndim == 2 else values[..., values.shape[-1] // 2]
            im = ax.imshow(img.T, aspect="auto", cmap="tab10" if style == "labels" else "viridis")
            fig.colorbar(im, ax=ax, label=kind)
            ax.set_xlabel(pred.axes[0])
            ax.set_ylabel(pred.axes[1])
        ax.set_title(f"{task.name}: {kind} per window")
        _save(fig, path)
        return [path]
    if grid.ndim == 1:
        fig, ax = plt.subplots(figsize=(8, 3))
        x = grid.read((slice(0, grid.shape[0]),))[0]
        y = pred.read((slice(0, grid.shape[0]),))[0]
        ax.plot(x / (np.abs(x).max() or 1), lw=0.7, label="input")
        ax.plot(y / (np.abs(y).max() or 1) - 1.5, lw=0.7, label="prediction")
        ax.legend(fontsize=8)
        _save(fig, path)
        return [path]
    views = _middle_slices(grid.shape, grid.axes)
    fig, axes = plt.subplots(len(views), 2, figsize=(9, 3.2 * len(views)), squeeze=False)
    for row, (label, window) in enumerate(views):
        x = np.squeeze(grid.read(window)[0])
        y = np.squeeze(pred.read(window)[0])
        vmax = float(np.percentile(np.abs(x), 99)) or 1.0
        _show(axes[row, 0], x, f"input — {label}", "values", vmax)
        pv = float(np.percentile(np.abs(y), 99)) or 1.0 if style == "values" else None
        _show(axes[row, 1], y, f"prediction ({kind}) — {label}", style, vmax if task.grid_target else pv)
    _save(fig, path)
    return [path]
