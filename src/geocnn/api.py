"""geocnn from Python: the functions ``import geocnn`` exposes, the command line's twin.

``geocnn summarize``, ``geocnn train`` and ``geocnn predict`` call :func:`summarize`, :func:`train`
and :func:`predict`, so a notebook and a shell get the same run folders, the same files and the same
one-line :class:`~geocnn.errors.GeocnnError` messages. Nothing here prints or exits: progress goes to
a :class:`~geocnn.progress.Reporter` (rich bars by default, which draw in Jupyter too), logs to
:mod:`logging`. Grids come in and go out as ``xarray.DataArray`` with survey coordinates
(``pip install 'geocnn[xarray]'``), or as NumPy arrays.

This module imports neither torch nor matplotlib: training and prediction load them when called,
so ``import geocnn`` and the command line's startup stay cheap.

Example
-------
>>> import geocnn                                                              # doctest: +SKIP
>>> run = geocnn.train("configs/denoise.yaml", "runs/demo", train={"epochs": 2})  # doctest: +SKIP
>>> clean = geocnn.predict(run, geocnn.open("noisy.sgy").to_xarray())             # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import extras, machine, summary
from geocnn.config import Config, ModelSource, load_config, model_of_file, model_of_run, model_of_run_folder
from geocnn.errors import ConfigError, DataError
from geocnn.fmt import fmt_shape
from geocnn.grids import sidecar
from geocnn.grids.coords import NUMBERED, SAMPLE, numbers_of, sample_axis_of
from geocnn.grids.grid import Grid, open_grid
from geocnn.grids.spec import InputSpec
from geocnn.outputs import AUTO
from geocnn.progress import SILENT, Reporter, RichReporter
from geocnn.runs import metrics_log
from geocnn.runs.folder import CONFIG_FILE
from geocnn.runs.metrics_log import Best, EpochRecord
from geocnn.summary import Summary
from geocnn.yamlsource import Source

PathLike = str | os.PathLike
Progress = bool | Reporter  # True: rich bars; False: none; or a reporter of your own


# ----------------------------------------------------------------------------- summarize

def summarize(config: PathLike, input_shape: Sequence[int] | None = None, batch_size: int = 1) -> Summary:
    """Layer-by-layer shapes, parameters, multiply-adds and receptive field of a model, before any data.

    ``config``: a model YAML, a full config, a run folder or a checkpoint (``.pt``). ``input_shape``
    (channels first) defaults to the model's ``input_shape`` or the training patch. A shape that does
    not fit is not raised: it is in ``Summary.error``, with the rows up to the failing layer.

    Examples
    --------
    >>> s = summarize("configs/denoise.yaml")                               # doctest: +SKIP
    >>> s.total_params, s.receptive_field_text()                            # doctest: +SKIP
    (93441, '45 × 45 samples (crossline × sample)')
    >>> s.to_json()["totals"]["params"]                                     # doctest: +SKIP
    93441
    """
    path = Path(config)
    source = _model_source(path)
    spec = source.spec
    if not spec.spacing and source.config is not None:  # the data's pixel or voxel size, when its header says it
        spec = summary.with_spacing(spec, summary.data_spacing(source.config))
    shape = tuple(int(n) for n in input_shape) if input_shape is not None else source.input_shape
    if shape is None:
        raise ConfigError("no input shape: the model has no input_shape", where=str(path),
                          fix="add input_shape to the model section or pass --input-shape C,D1,...")
    if shape[0] != spec.in_channels:
        raise ConfigError(f"--input-shape has {shape[0]} channels but the model has in_channels "
                          f"{spec.in_channels}", where=str(path), fix="make them agree")
    if len(shape) - 1 != spec.dims:
        raise ConfigError(f"input shape {fmt_shape(shape)} has {len(shape) - 1} spatial axes but the model "
                          f"has dims {spec.dims}", where=str(path), fix=f"give the channel count and {spec.dims} sizes")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    return summary.summarize(spec, shape, batch_size, source.freeze)


def _model_source(path: Path) -> ModelSource:
    """The model of a YAML file, of a run folder (its config.yaml) or of a checkpoint.

    Only a checkpoint imports torch: a ``.pt`` file is a torch file, read by the checkpoint loader."""
    if path.suffix == ".pt":
        from geocnn.runs.checkpoint import load_checkpoint, resolve_checkpoint

        return model_of_run(load_checkpoint(resolve_checkpoint(path)).config, Source(str(path)))
    return model_of_run_folder(path) if path.is_dir() else model_of_file(path)


# ----------------------------------------------------------------------------- grids

def open(path: PathLike, **input_options: Any) -> Grid:  # geocnn.open, like xarray's open_dataarray
    """A file or store as a lazy :class:`~geocnn.grids.grid.Grid`: the reader training and prediction use.

    ``input_options`` are those of a config's ``data.inputs`` entry: ``axes`` (a NumPy array's axis
    names), ``channels_from``, ``key``, ``iline``/``xline``/``offset`` (SEG-Y header bytes),
    ``endian``, ``structured``, ``format``. Nothing big is read until ``read`` or ``to_xarray``.

    Examples
    --------
    >>> g = open("data_samples/seismic_noisy.sgy")
    >>> g.axes, g.shape
    (('inline', 'crossline', 'sample'), (64, 48, 100))
    >>> open("data_samples/traces3c.npy", axes=["trace", "component", "sample"], channels_from="component").channels
    3
    """
    fields = {f.name for f in InputSpec.__dataclass_fields__.values()} - {"path"}
    unknown = sorted(set(input_options) - fields)
    if unknown:
        raise ConfigError(f"geocnn.open: unknown input option {', '.join(unknown)}",
                          fix=f"use {', '.join(sorted(fields))}")
    if input_options.get("axes") is not None:
        input_options["axes"] = tuple(input_options["axes"])
    return open_grid(InputSpec(os.fspath(path), **input_options))


# ----------------------------------------------------------------------------- runs

@dataclass(frozen=True)
class Run:
    """A run folder written by :func:`train` (or ``geocnn train``): its config, metrics and checkpoints.

    Examples
    --------
    >>> run = Run("runs/denoise")                                      # doctest: +SKIP
    >>> run.metrics[-1].val_loss, run.best.epoch                       # doctest: +SKIP
    (0.412, 7)
    >>> run.to_dataframe()[["epoch", "train_loss", "val_loss"]]        # doctest: +SKIP
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if not (self.path / CONFIG_FILE).is_file():
            raise ConfigError(f"this folder has no {CONFIG_FILE}, so it is not a run folder", where=str(self.path),
                              fix="give a run folder written by geocnn train")

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        best = self.best
        said = f", best {best.metric} {best.value:.4g} at epoch {best.epoch}" if best and best.value is not None else ""
        return f"Run('{self.path}', {len(self.metrics)} epochs{said})"

    @property
    def config(self) -> Config:
        """The run's effective config (its ``config.yaml``)."""
        return load_config(self.path / CONFIG_FILE)

    @property
    def metrics(self) -> list[EpochRecord]:
        """One typed record per epoch line of ``metrics.jsonl`` (empty before the first epoch ends)."""
        return metrics_log.read(self.path) if (self.path / metrics_log.FILE).exists() else []

    @property
    def best(self) -> Best | None:
        """The epoch ``checkpoints/best.pt`` holds, by ``train.best_metric`` (None before one is chosen)."""
        return next((r.best for r in reversed(self.metrics) if r.best is not None), None)

    def to_dataframe(self) -> Any:
        """The metrics as a ``pandas.DataFrame``, one row per epoch: losses, learning rate, speed, each
        validation metric (``val_<name>``) and each compared method's score (``<method>_<name>``)."""
        pd = extras.require("pandas", "pandas", "run metrics as a DataFrame")
        return pd.DataFrame([_row(r) for r in self.metrics])

    def predict(self, inputs: Any, out: PathLike | None = None, **options: Any) -> Any:
        """:func:`predict` with this run's model."""
        return predict(self, inputs, out, **options)


def _row(r: EpochRecord) -> dict[str, Any]:
    """One epoch as flat columns (lists such as a confusion matrix left out)."""
    row: dict[str, Any] = {"epoch": r.epoch, "step": r.step, "partial": r.partial, "train_loss": r.train_loss,
                           "val_loss": r.val_loss}
    row.update({f"val_{n}": r.val.value(n) for n in r.val.names})
    for method, scores in r.val.baselines.items():
        row.update({f"{method}_{n}": r.val.baseline(n, method) for n in scores if r.val.baseline(n, method) is not None})
    row.update(lr=r.lr, patches_per_s=r.patches_per_s, data_wait_fraction=r.data_wait_fraction, time_s=r.time_s)
    return row


# ----------------------------------------------------------------------------- train

def overrides_of(sets: Sequence[str] | str = (), nested: Mapping[str, Any] | None = None) -> list[str]:
    """Overrides as ``--set`` items: ``sets`` as written (``"train.lr=1e-3"``), then ``nested``
    mappings flattened (``{"train": {"lr": 1e-3}}`` → ``train.lr=0.001``; a dotted key is a path too).

    Examples
    --------
    >>> overrides_of(["train.seed=3"], {"train": {"lr": 1e-3, "early_stop": {"patience": 2}}, "data.patch": [32, 32]})
    ['train.seed=3', 'train.lr=0.001', 'train.early_stop.patience=2', 'data.patch=[32, 32]']
    """
    items = [sets] if isinstance(sets, str) else list(sets)
    for key, value in (nested or {}).items():
        items.extend(_flatten(str(key), value))
    return items


def _flatten(key: str, value: Any) -> list[str]:
    if isinstance(value, Mapping) and value:
        return [item for k, v in value.items() for item in _flatten(f"{key}.{k}", v)]
    try:  # JSON is YAML: the --set grammar parses it back to the same value
        text = json.dumps(value, allow_nan=False, default=_plain)
    except ValueError:
        raise ConfigError(f"override {key}: {value!r} is not a finite number") from None
    return [f"{key}={text}"]


def _plain(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise ConfigError(f"an override cannot be a {type(value).__name__}", fix="give text, numbers, lists or mappings")


def training_config(config: PathLike, out: PathLike | None, resume: bool, overrides: list[str],
                    recover: bool = True) -> tuple[Config, Path | None]:
    """The config a run trains with and its folder (None: the default ``runs/<name>``).

    With ``resume``, ``config`` is the run folder (or the config that started it) and the run's own
    ``config.yaml`` wins; ``recover=False`` (a dry run) touches no folder."""
    path, folder = Path(config), Path(out) if out is not None else None
    if resume:
        from geocnn.runs.resume import resume_target  # torch: only a resume reads a checkpoint

        return resume_target(path, folder, overrides, recover=recover)
    if path.is_dir():
        raise ConfigError("this is a folder, not a config file", where=str(path),
                          fix=f"continue the run with: geocnn train {path} --resume, or give a config file "
                              "to start a new run")
    return load_config(path, overrides), folder


def check_train_flags(resume: bool, force: bool, reset_optimizer: bool) -> None:
    """The flag combinations training refuses, before any file is read."""
    if reset_optimizer and not resume:
        raise ConfigError("--reset-optimizer is for --resume", fix="add --resume, or drop --reset-optimizer")
    if resume and force:
        raise ConfigError("--resume continues a run and --force replaces it", fix="give one of them")


def train(config: PathLike, out: PathLike | None = None, *, resume: bool = False, force: bool = False,
          reset_optimizer: bool = False, set: Sequence[str] | str = (), progress: Progress = True,
          **overrides: Any) -> Run:
    """Train the CNN of a config file; the same run folder, lock, resume and errors as ``geocnn train``.

    Parameters
    ----------
    config
        A full config YAML; with ``resume``, the run folder (or the config that started it).
    out
        The run folder (default ``runs/<name>``, numbered ``-2``, ``-3``... when that one holds a run).
    resume, force, reset_optimizer
        As ``--resume`` (continue from ``checkpoints/last.pt``), ``--force`` (replace the run in
        ``out``), ``--reset-optimizer``.
    set
        Overrides in the ``--set`` grammar: ``["train.lr=1e-3", "data.patch=[32, 32]"]``.
    progress
        True: rich progress bars (on stderr; in Jupyter, in the cell); False: none; or a
        :class:`~geocnn.progress.Reporter`.
    **overrides
        Sections as mappings, ``train={"epochs": 2, "max_steps": 10}``, or dotted keys,
        ``**{"train.lr": 1e-3}``; applied after ``set``.

    Examples
    --------
    >>> run = train("configs/denoise.yaml", "runs/demo", train={"epochs": 1, "threads": 1})   # doctest: +SKIP
    >>> run.best                                                                           # doctest: +SKIP
    Best(metric='val_loss', value=0.41, epoch=1, headline='snr_db')
    """
    from geocnn.train import train as train_run  # torch

    check_train_flags(resume, force, reset_optimizer)
    cfg, folder = training_config(config, out, resume, overrides_of(set, overrides))
    with reporting(progress) as reporter:
        path = train_run(cfg, folder, resume=resume, force=force, reporter=reporter,
                         reset_optimizer=reset_optimizer)
    return Run(path)


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Reporter]:
    """The reporter ``progress`` asks for; rich bars are stopped on the way out, an error included."""
    if progress is False:
        yield SILENT
    elif progress is True:
        bars = RichReporter()
        try:
            yield bars
        finally:
            bars.stop()
    else:
        yield progress


# ----------------------------------------------------------------------------- predict

def predict(run: PathLike, inputs: Any, out: PathLike | None = None, *, axes: Sequence[str] | None = None,
            max_bytes: int | None = None, progress: Progress = True, **options: Any) -> Any:
    """Apply a trained model to whole grids, as ``geocnn predict``.

    Parameters
    ----------
    run
        A :class:`Run`, a run folder or a checkpoint ``.pt``.
    inputs
        A file path, a list of them (one per training input, stacked as channels), an
        ``xarray.DataArray`` (its dims name the axes, e.g. ``inline, crossline, sample``) or a NumPy
        array (``axes`` name its axes; default: as a ``.npy`` file's).
    out
        Where to write (``.sgy``, ``.npy``, ``.mdio``...): the same file the command line writes, and
        the :class:`~geocnn.predict.job.Report` is returned. Without it the prediction comes back in
        memory — a ``DataArray`` with the input's coordinates for a ``DataArray`` or a file input
        when xarray is installed, else a NumPy array — refused, with its size, past ``max_bytes``
        (default: half the available memory).
    **options
        ``geocnn predict``'s options by their Python names: ``overlap``, ``blend``, ``batch_size``,
        ``device_name``, ``output``, ``force``, ``window``, ``both_orientations``, ``threads``,
        ``mask``, ``fill_all``, ``stride``, ``split_classes``, ``axes_map`` (``--axes``),
        ``normalize``, ``pictures``, ``engine`` (``torch``, ``onnxruntime``, ``auto``), ``precision``
        (``auto``, ``fp32``, ``bf16``).

    Examples
    --------
    >>> report = predict("runs/denoise", "noisy.sgy", "clean.sgy", overlap=0.5)     # doctest: +SKIP
    >>> clean = predict("runs/denoise", geocnn.open("noisy.sgy").to_xarray())       # doctest: +SKIP
    >>> clean.sel(inline=1032).plot(x="crossline", y="sample", yincrease=False)     # doctest: +SKIP
    """
    from geocnn.predict import predict as predict_files  # torch

    run = Path(os.fspath(run))
    if "axes_map" in options:
        options["axes"] = options.pop("axes_map")
    with contextlib.ExitStack() as stack:
        files, like = _input_files(inputs, axes, stack)
        reporter = stack.enter_context(reporting(progress))
        if out is not None:
            return predict_files(run, files, out, reporter=reporter, **options)
        if options.get("split_classes"):
            raise ConfigError("split_classes writes one file per class", fix="give out=... to write them")
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="geocnn-predict-")))
        _check_fits_in_memory(run, files, folder / "prediction.npy", options, max_bytes)  # before any work
        options.setdefault("pictures", False)
        report = predict_files(run, files, folder / "prediction.npy", reporter=reporter, **options)
        return _in_memory(report.output, like, max_bytes)


def _check_fits_in_memory(run: Path, files: list[Any], out: Path, options: dict[str, Any],
                          max_bytes: int | None) -> None:
    """Refuse a prediction meant for memory that would not fit, from the input's header and the model."""
    from geocnn.predict.job import largest_output_bytes  # the predict package imports torch
    from geocnn.predict.request import PredictRequest
    from geocnn.predict.trained import load_trained

    trained = load_trained(run)
    output = trained.cfg.task.output(options.get("output", AUTO), trained.classes)
    request = PredictRequest(run, tuple(files), out, axes=options.get("axes") or {})
    nbytes, what = largest_output_bytes(request, trained, output)
    machine.check_in_memory(nbytes, what, max_bytes)


def _input_files(inputs: Any, axes: Sequence[str] | None, stack: contextlib.ExitStack) -> tuple[list[Any], Any]:
    """The prediction's input files, and the DataArray whose coordinates the result takes (None
    for files: the output's sidecar carries theirs). An array in memory is written to a temporary
    ``.npy`` with a sidecar (its axes, sample axis and inline/crossline/offset numbers)."""
    if isinstance(inputs, (str, os.PathLike)):
        return [inputs], None
    if isinstance(inputs, np.ndarray) or _is_dataarray(inputs):
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="geocnn-input-")))
        return [_write_array(inputs, axes, folder / "input.npy")], inputs if _is_dataarray(inputs) else None
    if isinstance(inputs, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in inputs):
        return list(inputs), None
    raise ConfigError(f"geocnn.predict: inputs must be a file, a list of files, an xarray.DataArray or a NumPy "
                      f"array, not {type(inputs).__name__}")


def _is_dataarray(value: Any) -> bool:
    return type(value).__name__ == "DataArray" and hasattr(value, "dims") and hasattr(value, "coords")


def _write_array(array: Any, axes: Sequence[str] | None, path: Path) -> Path:
    """``array`` as ``path`` (.npy) and its sidecar; the axes from ``axes``, else a DataArray's dims."""
    values = np.asarray(array.values if _is_dataarray(array) else array)
    if _is_dataarray(array) and axes is None:
        axes = tuple(str(d) for d in array.dims)
    if axes is not None and len(axes) != values.ndim:
        raise DataError(f"the array has {values.ndim} axes {values.shape} but axes names {len(axes)}: "
                        f"[{', '.join(axes)}]", fix="give one name per array axis")
    if values.dtype.kind not in "iuf":
        raise DataError(f"the array holds {values.dtype} values", fix="give real numbers (float32 is best)")
    np.save(path, values)
    if axes is not None:
        numbers, samples = _numbers_and_samples(array, tuple(axes))
        side = sidecar.make(axes=tuple(axes), shape=values.shape, dtype=str(values.dtype), channel_names=[],
                            kind="numpy", sources=[], **samples, **numbers)
        sidecar.path_for(path).write_text(json.dumps(side), encoding="utf-8")
    return path


def _numbers_and_samples(array: Any, axes: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A DataArray's inline/crossline/offset numbers and sample axis, for the input's sidecar."""
    coords = getattr(array, "coords", {})
    numbers = {field: numbers_of(np.asarray(coords[a].values)) if a in axes and a in coords else None
               for a, field in NUMBERED.items()}
    sampled = sample_axis_of(np.asarray(coords[SAMPLE].values)) if SAMPLE in axes and SAMPLE in coords else None
    interval, start = sampled if sampled is not None else (None, 0.0)
    return numbers, {"sample_interval_us": interval, "sample_start_ms": start}


def _in_memory(path: Path, like: Any, max_bytes: int | None) -> Any:
    """The written ``.npy`` read into memory (its size checked first): a DataArray with ``like``'s
    coordinates (else the sidecar's) when xarray is installed, else the array."""
    header = np.load(path, mmap_mode="r")
    nbytes = int(header.nbytes)
    what = f"the prediction ({fmt_shape(header.shape)} {header.dtype})"
    del header
    machine.check_in_memory(nbytes, what, max_bytes)
    try:
        extras.require("xarray", "xarray", "xarray grids")
    except extras.MissingExtra:
        if like is not None:
            raise
        return np.load(path)
    result = open_grid(InputSpec(os.fspath(path))).labelled(np.load(path))
    if like is not None:  # the caller's coordinates, where the prediction has the axis at full length
        same = {d: like.coords[d] for d in result.dims if d in like.coords and like.sizes.get(d) == result.sizes[d]}
        result = result.assign_coords(same)
        result.name = like.name
    return result


__all__ = ["Run", "open", "predict", "summarize", "train"]
