"""``geocnn predict``'s library entry: :func:`predict` (keyword options) and :func:`apply` (a request)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from geocnn import device, plots
from geocnn.grids import formats
from geocnn.grids.grid import open_grid
from geocnn.grids.seismoout import WrittenTraces
from geocnn.outputs import AUTO
from geocnn.picking import record_view
from geocnn.predict import runner as runners
from geocnn.predict.dense import predict_dense
from geocnn.predict.job import Job, Report, check_fits, open_job
from geocnn.predict.maps import predict_map
from geocnn.predict.request import PredictRequest
from geocnn.predict.runner import Runner
from geocnn.predict.trained import load_trained
from geocnn.progress import SILENT, Reporter
from geocnn.selfsup import guardband

log = logging.getLogger(__name__)


def predict(run_or_checkpoint: str | Path, inputs: Sequence[str | Path], out: str | Path, *,
            overlap: float = 0.25, blend: str = "gaussian", batch_size: int | None = None,
            device_name: str = "auto", output: str = AUTO, force: bool = False,
            window: Sequence[int] | None = None, both_orientations: bool = False,
            pictures: bool = True, threads: int | None = None, mask: str | Path | None = None,
            fill_all: bool = False, reporter: Reporter = SILENT,
            stride: int | Sequence[int] | Mapping[str, int] | None = None, split_classes: bool = False,
            axes: Mapping[str, str] | None = None, normalize: str = "run", engine: str | None = None,
            picks: str | Path | None = None, threshold: float | Mapping[str, float] = 0.5,
            min_separation: float = 0.5, precision: str | None = None) -> Report:
    """Apply a trained model to whole grids and write the result (see :mod:`geocnn.predict`).

    ``stride`` (patch/trace models): map step per grid axis — one number for every axis, one
    per axis in grid order, or ``{axis: step}``. ``split_classes``: one output per class
    (``NAME.class-K.sgy``/``.npy``). ``axes``: input axis → training patch axis, for a section
    model on a 2D line (``{"trace": "crossline"}``). ``normalize="input"``: normalise with the
    input's own statistics instead of the training data's. ``picks`` (earthquake records): also write
    the peaks of each phase's probability at or above ``threshold`` (one, or ``{phase: value}``), at
    least ``min_separation`` seconds apart, as a CSV or QuakeML pick list (:mod:`geocnn.picking`). ``engine``: what runs the network
    (:mod:`geocnn.predict.engines`: ``torch``, ``onnxruntime`` or ``auto``; None: the run's ``predict.engine``). ``precision``: ``auto``
    (the run's ``train.amp`` on CUDA, fp32 on the CPU), ``fp32`` or ``bf16`` (None: the run's
    ``predict.precision``). Sanity checks on the input's amplitudes
    are logged as warnings and listed in :attr:`Report.warnings`.

    Examples
    --------
    >>> report = predict("runs/denoise", ["noisy.sgy"], "clean.sgy", overlap=0.5)   # doctest: +SKIP
    >>> report.output, report.windows                                                # doctest: +SKIP
    (PosixPath('clean.sgy'), 1240)
    """
    request = PredictRequest(run_or_checkpoint, tuple(inputs), out, overlap=overlap, blend=blend, stride=stride,
                             output=output, window=tuple(window) if window is not None else None,
                             both_orientations=both_orientations, mask=mask, fill_all=fill_all,
                             split_classes=split_classes, axes=axes or {}, device=device_name, threads=threads,
                             batch_size=batch_size, force=force, pictures=pictures, normalize=normalize,
                             engine=engine, picks=picks, threshold=threshold, min_separation=min_separation,
                             precision=precision)
    return apply(request, reporter)


def apply(request: PredictRequest, reporter: Reporter = SILENT) -> Report:
    """Run one :class:`~geocnn.predict.request.PredictRequest`: load the model, open the input, plan
    the windows, run them through the model and write the output (plus its preview)."""
    trained = load_trained(request.run)
    output = trained.cfg.task.output(request.output, trained.classes, formats.match(request.out_path),
                                     probabilities=request.picks is not None)  # picks are found in them
    check_fits(request, trained, output)
    amp, cpu_bf16 = device.prediction_amp(request.precision or trained.cfg.predict.precision, trained.cfg.train.amp)
    rt = device.setup(request.device, amp, request.threads or trained.cfg.train.threads, cpu_bf16=cpu_bf16)
    try:
        job = open_job(request, trained, output, rt)
        log.info("model from %s", trained.description)  # once the input fits it
        t0 = time.perf_counter()
        # hidden traces are set in the input's units, before normalisation: decode on the host then
        raw = None if job.fill is not None else runners.device_decoding(rt, job.grid)
        engine = request.engine or trained.cfg.predict.engine  # --engine, else the run's predict.engine
        model = Runner(job.trained, rt, job.geom.size, request.batch_size, raw, engine)
        if job.fill is not None:  # a guard-trained model fills in passes (geocnn.selfsup.guardband)
            model.model = guardband.wrap(model.model, trained.cfg.data.mask, job.geom.model_axes, request.fill_all)
        report = (predict_dense if trained.cfg.dense else predict_map)(job, model, reporter)
        report.seconds = time.perf_counter() - t0
        report.warnings = list(job.warnings)
        if request.pictures and rt.main:
            report.pictures = _previews(job, report)
        return report
    finally:
        device.teardown(rt)


def _previews(job: Job, report: Report) -> list[Path]:
    """``<out>.preview.png`` (a picture never fails a run: none on an error); a reconstruction's
    filled traces marked (not with ``--all``: every trace is then the model's); earthquake records'
    probabilities as traces with their picks, or their labels as shaded stretches (:func:`_records_preview`)."""
    if job.records is not None and job.output.of_classes:
        return _records_preview(job, report)
    if not job.spec().format.previewed:  # miniSEED traces read back are no grid
        return []
    trained, grid, output_path = job.trained, job.grid, report.output
    filled = job.fill.missing if job.fill is not None and job.fill.keep_live else None
    return plots.prediction_previews(grid, output_path, trained.cfg.task, job.output, plots.Names.of(trained.cfg, grid),
                                     trained.same_units, trained.classes, trained.cfg.model, job.patch_axes,
                                     filled) or []


def _records_preview(job: Job, report: Report) -> list[Path]:
    """The first stations' components, phase probabilities and picks (``--picks``: those just found) over
    a window of at most a minute (:func:`geocnn.picking.record_view`), read back from the written output:
    a miniSEED's records in that window, else the output as a grid. Of labels (``--output labels``): the
    stretches each phase labels instead, over the records' first minute (no picks to centre on)."""
    spec = job.spec()
    pred = open_grid(report.output) if spec.format.previewed else WrittenTraces.of(spec)
    view = record_view(job.records, report.picked)
    if job.output.categorical:
        return plots.labels_preview(job.grid, pred, view, job.class_phases, report.output) or []
    channels = [c for c, phase in enumerate(job.phases) if phase is not None]
    return plots.records_preview(job.grid, pred, view, channels, [job.phases[c] for c in channels],
                                 report.output) or []
