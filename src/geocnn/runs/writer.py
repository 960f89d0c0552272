"""What a training run writes: its folder's files, one line per epoch, and its log.

Before the first step (:meth:`RunWriter.begin`): ``config.yaml``, ``summary.json``, ``split.json``,
the log's header (device, folder, data and split, model, weights loaded, what a resume changed);
``init.json`` when the run starts from another run's weights. After each epoch
(:meth:`RunWriter.epoch`): its :class:`~geocnn.runs.metrics_log.EpochRecord` in ``metrics.jsonl``, the
log and TensorBoard, ``loss.png``, ``examples.png``, the confusion matrix, and ``best.pt`` when
the epoch is the best so far; ``last.pt`` whenever training saves (:meth:`RunWriter.last`). Only
the main process writes; on the others every method does nothing.

:func:`epoch_line` and :func:`outcome_line` say an epoch and a whole run in one line each.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from geocnn import data as data_mod
from geocnn import device, plots, summary
from geocnn.atomic import write_json
from geocnn.config import Config
from geocnn.runs import checkpoint as runs
from geocnn.runs import folder as runfolder
from geocnn.runs import metrics_log, transfer
from geocnn.runs import tensorboard as tensorboard_log
from geocnn.runs.metrics_log import EpochRecord, Validation, strict_json
from geocnn.runs.resume import Start

log = logging.getLogger(__name__)

INIT = "init.json"


class RunWriter:
    """The files of one run folder, written by the main process."""

    def __init__(self, run: Path, cfg: Config, d: data_mod.TrainingData, rt: device.Runtime,
                 replacement: runfolder.Replacement | None, headline: str) -> None:
        self.run, self.cfg, self.d, self.rt = run, cfg, d, rt
        self.main = rt.main
        self.replacement = replacement
        self.headline = headline  # the metric the log and loss.png show beside the losses
        self.history: list[EpochRecord] = []  # every epoch's line so far (loss.png draws them all)
        self.tb: tensorboard_log.TensorBoardLog | None = None

    def begin(self, start: Start, force: bool, reset_optimizer: bool, counts: tuple[int, int],
              receptive_field: tuple[int, ...], init: transfer.InitReport | None) -> None:
        """The run folder before the first step; a resume drops the lines of epochs it will run again."""
        if not self.main:
            return
        cfg, run, ckpt = self.cfg, self.run, start.ckpt
        if force and ckpt is None:
            self.replacement.begin()  # the old run's files move aside; deleted after the first checkpoint
        runs.checkpoint_dir(run).mkdir(parents=True, exist_ok=True)
        runs.write_config(run, cfg.raw)
        spec = summary.with_spacing(cfg.model, summary.patch_spacing(self.d.grid.spacing(), self.d.geom.model_axes))
        table = summary.summarize(spec, (cfg.model.in_channels, *cfg.patch), cfg.train.batch_size, cfg.train.freeze)
        write_json(run / "summary.json", summary.to_json(table))
        write_json(run / "split.json", data_mod.split_record(self.d))
        if ckpt is not None:
            metrics_log.truncate(run, ckpt.epoch)
        self._header(start, reset_optimizer, counts, receptive_field, init)
        self.history = metrics_log.read(run)

    def start_tensorboard(self, start: Start) -> None:
        """``tb/`` with ``train.tensorboard``: on resume, the events after the checkpoint's last
        logged step are dropped (they are logged again)."""
        if self.main and self.cfg.train.tensorboard:
            self.tb = tensorboard_log.TensorBoardLog(self.run, start.ckpt.step + 1 if start.ckpt else None)

    def _header(self, start: Start, reset_optimizer: bool, counts: tuple[int, int],
                receptive_field: tuple[int, ...], init: transfer.InitReport | None) -> None:
        d, (n_total, n_trainable) = self.d, counts
        log.info("device: %s", self.rt.describe())
        log.info("run folder: %s", self.run)
        log.info("data: %s → patches %s along (%s); %s", " + ".join(d.grid.channel_names),
                 "×".join(map(str, d.geom.size)), ", ".join(d.geom.model_axes), data_mod.describe_split(d))
        log.info("model: %s parameters (%s trainable), receptive field %s", f"{n_total:,}", f"{n_trainable:,}",
                 "×".join(map(str, receptive_field)))
        if init is not None:
            log.info("weights from %s: %d layers loaded, %d skipped (shapes differ), %d new, %d unused", init.source,
                     init.count("loaded"), init.count("skipped"), init.count("new"), init.count("unused"))
            for line in init.lines():
                log.info("  %s", line)
        if start.ckpt is not None:
            log.info("resuming after epoch %d (step %d)%s", start.ckpt.epoch, start.ckpt.step,
                     "".join(f"; {c.key} {c.old} → {c.new}" for c in start.changed))
            if reset_optimizer:
                log.info("optimizer state restarted (--reset-optimizer)")

    def before_training(self, init: transfer.InitReport, val_loss: float | None, val: Validation) -> None:
        """``init.json``: the layer table and what the loaded weights scored before the first step."""
        if not self.main:
            return
        write_json(self.run / INIT, strict_json({**init.to_json(),
                                                 "before_training": {"val_loss": val_loss, "val": val.to_dict()}}))
        if val_loss is not None:
            score = val.value(self.headline)
            text = f", {with_baselines(val, self.headline, score)}" if score is not None else ""
            log.info("before training (weights from train.init_from): val loss %.4g%s", val_loss, text)

    def last(self, state: runs.Checkpoint) -> None:
        """``last.pt``; the first one makes a ``--force`` replacement final."""
        if not self.main:
            return
        runs.save_checkpoint(runs.checkpoint_dir(self.run) / "last.pt", state)
        if self.replacement is not None:
            self.replacement.commit()

    def best(self, state: runs.Checkpoint) -> None:
        if self.main:
            runs.save_checkpoint(runs.checkpoint_dir(self.run) / "best.pt", state)

    def epoch(self, record: EpochRecord, examples: plots.Examples | None, best: runs.Checkpoint | None) -> None:
        """An epoch is done: ``best.pt`` (when ``best`` is given), its line, pictures, TensorBoard, the log."""
        if not self.main:
            return
        if best is not None:
            self.best(best)
        metrics_log.append(self.run, record)
        self.history.append(record)
        self._pictures(examples)
        if self.tb is not None:
            self.tb.epoch(record)
            if examples is not None:
                self.tb.picture("examples", self.run / "examples.png", record.step)
        log.info("epoch %d: %s", record.epoch, epoch_line(record, self.headline))

    def _pictures(self, examples: plots.Examples | None) -> None:
        """loss.png, examples.png and (classes) confusion.json with confusion.png; a picture never stops the run."""
        d, run, last = self.d, self.run, self.history[-1]
        names = plots.Names.of(d.cfg, d.grid)
        plots.loss_curve(self.history, run / "loss.png", self.headline if last.val else None)
        if examples is not None:
            plots.examples(examples, d.task, run / "examples.png", names, d.grid, d.geom, d.cfg.model)
        matrix = last.val.confusion
        if matrix is not None:
            write_json(run / "confusion.json", {"epoch": last.epoch, "classes": names.class_names(len(matrix)),
                                                "rows": "true class", "columns": "predicted class", "matrix": matrix})
            plots.confusion_matrix(matrix, run / "confusion.png", names,
                                   f"validation confusion matrix, epoch {last.epoch}")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# ----------------------------------------------------------------------------- one line each

def with_baselines(val: Validation, name: str, value: float) -> str:
    """``snr_db 5.1 (baseline 1.3, f-x deconvolution 4.2)``: a metric beside what each compared
    method scored on it (the trivial baseline, the field's own method when the task reports one)."""
    scored = [(val.label(method), val.baseline(name, method)) for method in val.baselines]
    shown = [f"{label} {v:.4g}" for label, v in scored if v is not None]
    return f"{name} {value:.4g}" + (f" ({', '.join(shown)})" if shown else "")


def epoch_line(record: EpochRecord, headline: str) -> str:
    """One human line per epoch: losses, headline metric vs baseline, speed."""
    parts = [f"train loss {record.train_loss:.4g}"]
    if record.val_loss is not None:
        parts.append(f"val loss {record.val_loss:.4g}")
    value = record.val.value(headline)
    if value is not None:
        parts.append(with_baselines(record.val, headline, value))
    parts.append(f"{record.patches_per_s:.0f} patches/s, waiting on data {100 * record.data_wait_fraction:.0f}%")
    return ", ".join(parts)


def outcome_line(run: Path) -> str:
    """The last line of a run: the best epoch and its metric next to the baseline (epoch 0: the
    starting weights of ``train.init_from``), whether it stopped early, and which checkpoint
    ``geocnn predict RUN`` uses (best.pt, else last.pt)."""
    lines = [r for r in metrics_log.read(run) if not r.partial]
    ckpts = runs.checkpoint_dir(run)
    if not lines:
        return f"no epoch finished; predict uses {ckpts / 'last.pt'}"
    last = lines[-1]
    best = last.best or metrics_log.Best("val_loss", None, None)
    parts = []
    if best.epoch is not None and best.value is not None:
        parts.append(_best_text(run, lines, best.epoch, best.metric, best.value, best.headline))
    if last.stopped_early:
        es = last.early_stop
        parts.append(f"stopped early: {es.waited} epochs without a {best.metric} gain over {es.min_delta:g} "
                     f"since epoch {es.best_epoch}")
    if (ckpts / "best.pt").is_file():
        parts.append(f"predict uses {ckpts / 'best.pt'} (epoch {best.epoch}, the best {best.metric}; last.pt is "
                     f"epoch {last.epoch})")
    else:
        parts.append(f"predict uses {ckpts / 'last.pt'} (epoch {last.epoch}; no {best.metric} value selected a "
                     "best epoch)")
    return "; ".join(parts)


def _best_text(run: Path, lines: list[EpochRecord], epoch: int, name: str, value: float, headline: str | None) -> str:
    """``best epoch 3 of 4: f1 0.6 (baseline 0)``, with the headline metric there when it is another
    (``clean_snr_db`` beside its baseline and f-x deconvolution, for a run with a clean twin)."""
    last = lines[-1]
    if epoch == 0:
        source, val = _starting_scores(run)
        text = (f"best epoch 0 (the starting weights from {source}), not beaten in {last.epoch} epochs of training: "
                f"{with_baselines(val, name, value)}")
    else:
        val = next((r for r in reversed(lines) if r.epoch == epoch), last).val
        text = f"best epoch {epoch} of {last.epoch}: {with_baselines(val, name, value)}"
    there = val.value(headline) if headline and headline != name else None
    if there is not None:  # e.g. the clean twin's figure of a self-supervised run chosen by val_loss
        text += f"; {with_baselines(val, headline, there)} there"
    return text


def _starting_scores(run: Path) -> tuple[str, Validation]:
    """Where the starting weights came from and what they scored before training (``init.json``)."""
    path = run / INIT
    record = metrics_log.loose_json(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}
    return record.get("source", "train.init_from"), Validation(record.get("before_training", {}).get("val") or {})
