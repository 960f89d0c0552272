"""``geocnn train``: the training loop, top to bottom.

setup (device, run folder, data, model, optimizer) → for each epoch: draw patches, step,
validate against the baseline, log a line, draw pictures, checkpoint → done. The same code runs
on one CPU, one GPU, or many processes under ``torchrun`` (DistributedDataParallel; the batch
size is per process, so the global batch is ``batch_size × processes``; ``patches_per_epoch``
is the total over all processes, each drawing a different share of one seeded draw).

What is not the loop lives in one place each: what a run starts from (a resumed checkpoint, or
the weights of ``train.init_from``) in :class:`geocnn.runs.resume.Start`; the run folder's files and
the log in :class:`geocnn.runs.writer.RunWriter`; an epoch's line of ``metrics.jsonl`` in
:class:`geocnn.runs.metrics_log.EpochRecord`; the best epoch and early stopping in
:class:`geocnn.runs.early_stop.BestTracker`; Ctrl-C in :class:`geocnn.runs.interrupt.CtrlC`.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from geocnn import data as data_mod
from geocnn import device, machine, plots
from geocnn.atomic import check_folder
from geocnn.config import Config
from geocnn.errors import ConfigError, GeocnnError
from geocnn.losses import make_loss
from geocnn.metric_names import pick_metric
from geocnn.metrics import ACCUMULATORS, PickMetrics
from geocnn.model import infer
from geocnn.model.blind import apply_posterior, posterior_applied
from geocnn.model.budget import check_fits
from geocnn.model.network import build
from geocnn.progress import SILENT, Reporter
from geocnn.runs import checkpoint as runs
from geocnn.runs import folder as runfolder
from geocnn.runs import tensorboard as tensorboard_log
from geocnn.runs import transfer
from geocnn.runs.early_stop import BestTracker
from geocnn.runs.interrupt import CtrlC, ignore_in_worker
from geocnn.runs.metrics_log import EpochRecord, Resumed, StepLosses, Validation
from geocnn.runs.resume import Start, rng_state
from geocnn.runs.writer import RunWriter
from geocnn.selfsup import blindplan
from geocnn.selfsup import scoring as selfsup
from geocnn.tasks import class_probabilities

log = logging.getLogger(__name__)


class TrainingInterrupted(GeocnnError):
    """Ctrl-C: a checkpoint was saved; the message says how to resume."""

    exit_code = 130  # the shell's code for SIGINT


class TrainingDiverged(GeocnnError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Progress:
    """Where training stands (saved in checkpoints), and this process's sums of the unfinished epoch."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps
    batch_in_epoch: int = 0  # batches done in the current (unfinished) epoch
    loss_sum: float = 0.0  # Σ loss × patches over the unfinished epoch's steps
    seen: int = 0  # patches of the unfinished epoch

    @classmethod
    def of(cls, start: Start, main: bool) -> Progress:
        """A fresh run's, or the checkpoint's (its sums cover every process: the main one carries them)."""
        c = start.ckpt
        if c is None:
            return cls()
        return cls(c.epoch, c.step, c.batch_in_epoch, c.epoch_loss_sum if main else 0.0, c.epoch_patches if main else 0)

    def count(self, loss: float, patches: int) -> None:
        """One optimizer step is done."""
        self.step += 1
        self.batch_in_epoch += 1
        self.loss_sum += loss * patches
        self.seen += patches

    def finish_epoch(self, epoch: int) -> None:
        self.epoch, self.batch_in_epoch, self.loss_sum, self.seen = epoch, 0, 0.0, 0


@dataclass
class EpochSteps:
    """One epoch's steps on this process, for its line of metrics.jsonl."""

    epoch: int
    partial: bool = False  # --max-steps stopped it inside the epoch (the next invocation finishes it)
    seen: int = 0  # patches
    wait: float = 0.0  # seconds spent waiting for batches
    elapsed: float = 0.0  # seconds of the whole epoch's steps
    losses: list[float] = field(default_factory=list)


@dataclass
class Network:
    """What is trained: the model (wrapped for DDP and compile), optimizer, schedule, gradient scaler,
    loss, and where batches go."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: Any
    loss_fn: torch.nn.Module
    place: device.Placement
    buffers: list[torch.Tensor]  # the bare module's: what a forward pass updates (BatchNorm statistics)
    counts: tuple[int, int]  # parameters: total, trainable
    receptive_field: tuple[int, ...]


@dataclass
class Session:
    """Everything the loop works with, set up once by :func:`_set_up`."""

    cfg: Config
    run: Path
    rt: device.Runtime
    d: data_mod.TrainingData
    net: Network
    sampler: data_mod.EpochSampler
    loader: Any  # DataLoader, or DeviceBatches (patches cut on the device)
    val_loader: torch.utils.data.DataLoader
    prog: Progress
    tracker: BestTracker
    writer: RunWriter
    ctrl_c: CtrlC
    init_report: transfer.InitReport | None = None
    saved: tuple[int, int] | None = None  # (epoch, step) that checkpoints/last.pt holds
    resumed: Resumed | None = None  # recorded in the first line after a resume


def default_run_folder(cfg: Config) -> Path:
    return Path("runs") / cfg.name


def _check_folder(run: Path, resume: bool, force: bool) -> None:
    """Refuse to clobber a run, or to resume one that has no checkpoint (called before any work)."""
    last = runs.checkpoint_dir(run) / "last.pt"
    if resume:
        if not last.is_file():
            raise ConfigError("--resume, but this run folder has no checkpoints/last.pt", where=str(run),
                              fix="start a new run (without --resume) or give the run's --out folder")
        return
    if runfolder.holds_a_run(run) and not force:
        runfolder.refuse_existing(run)


def _optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    t = cfg.train
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=t.lr, weight_decay=t.weight_decay)


def _schedule(cfg: Config, steps_per_epoch: int):
    """Learning-rate factor per optimizer step."""
    t = cfg.train
    # The plan is train.epochs; --max-steps and Ctrl-C stop early without changing it, so a
    # resumed run follows the same learning rates as an uninterrupted one.
    total = max(1, t.epochs * steps_per_epoch)
    if t.scheduler == "cosine":
        return lambda step: 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    if t.scheduler == "step":
        return lambda step: t.step_gamma ** ((step // max(steps_per_epoch, 1)) // t.step_epochs)
    return lambda step: 1.0


def _workers(cfg: Config, rt: device.Runtime) -> int:
    workers = cfg.train.workers
    if workers != "auto":
        return workers
    # On a small CPU machine workers would steal cores from the convolutions; a GPU wants several.
    cpus = machine.cpu_count()
    if rt.device.type == "cpu":
        return 0 if cpus <= 2 else min(4, cpus // 2)
    return min(8, max(cpus // max(rt.world_size, 1) - 1, 1))


def _loader(dataset, cfg: Config, rt: device.Runtime, sampler=None):
    """One DataLoader for the whole run: persistent workers, pinned memory on CUDA."""
    workers = _workers(cfg, rt)
    return torch.utils.data.DataLoader(
        dataset, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=workers,
        pin_memory=rt.device.type == "cuda", persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None, worker_init_fn=ignore_in_worker if workers else None,
        # its own generator: creating iterators must not draw from the global RNG (exact resume)
        generator=torch.Generator().manual_seed(cfg.train.seed))


def _training_loader(d: data_mod.TrainingData, cfg: Config, rt: device.Runtime, sampler: data_mod.EpochSampler):
    """The training batches: cut, augmented and batched on the device from grids held there when
    they fit (``data.on_device``), else by a DataLoader."""
    patches = d.training_set(rt.rank, rt.world_size)
    if data_mod.keep_on_device(d, rt.device, device.free_memory(rt)):
        return data_mod.DeviceBatches(data_mod.DeviceGrids(d, rt.device), patches, cfg.train.batch_size, sampler)
    return _loader(patches, cfg, rt, sampler)


def _close(*loaders) -> None:
    """Stop persistent workers now (left to the garbage collector they can take seconds each)."""
    for loader in loaders:
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()


def train(cfg: Config, out: Path | None = None, resume: bool = False, force: bool = False,
          reporter: Reporter = SILENT, reset_optimizer: bool = False) -> Path:
    """Train ``cfg``; returns the run folder. See the module docstring for the flow.

    Without ``out`` the run folder is ``runs/<name>``, or ``runs/<name>-2``, ``-3``, ... when that
    one already holds a run (and neither ``resume`` nor ``force`` is given). The folder is locked
    for the whole call. On ``resume``, ``cfg`` may differ from the run's checkpoint only in the keys
    :mod:`geocnn.runs.resume` allows (optimizer keys with ``reset_optimizer``).
    """
    if cfg.train.tensorboard:
        tensorboard_log.require()
    rt = device.setup(cfg.train.device, cfg.train.amp, cfg.train.threads, cpu_bf16=True)
    default = default_run_folder(cfg)
    run = check_folder(Path(out) if out is not None else default)
    lock = replacement = None
    try:
        if rt.main:
            run, lock = _claim(run, out is not None, resume, force)
            replacement = runfolder.Replacement(run)
        return _train(cfg, run, resume, force, reporter, rt, reset_optimizer, replacement)
    finally:
        if replacement is not None:
            replacement.rollback()  # --force, stopped before the first checkpoint: the old run comes back
        if lock is not None:
            lock.release()
        device.teardown(rt)


def _claim(run: Path, explicit: bool, resume: bool, force: bool) -> tuple[Path, runfolder.RunLock]:
    """Choose (numbering the default folder) and lock the run folder; say which one when it is not the default."""
    default, numbered = run, not (explicit or resume or force)
    while True:
        run = runfolder.choose(default, explicit, resume, force)
        try:
            lock = runfolder.lock(run)
        except runfolder.RunInUse:
            if not numbered:
                raise
            continue  # another process took this folder a moment ago: the next number
        if numbered and runfolder.holds_a_run(run):
            lock.release()  # a run was written there between choosing and locking
            continue
        break
    if run != default:
        log.info("%s holds a previous run: this run is %s", default, run)
    runfolder.recover(run)
    return run, lock


def _train(cfg: Config, run: Path, resume: bool, force: bool, reporter: Reporter, rt: device.Runtime,
           reset_optimizer: bool = False, replacement: runfolder.Replacement | None = None) -> Path:
    s = _set_up(cfg, run, resume, force, rt, reset_optimizer, replacement)
    try:
        with s.ctrl_c:
            try:
                _fit(s, reporter)
            except KeyboardInterrupt:  # a second Ctrl-C (or one outside the main thread): stop at once
                raise _interrupted(s, at_once=True) from None
    finally:
        _close(s.loader, s.val_loader)
        s.writer.close()
    return run


def _set_up(cfg: Config, run: Path, resume: bool, force: bool, rt: device.Runtime, reset_optimizer: bool,
            replacement: runfolder.Replacement | None) -> Session:
    """Everything before the first step. The checks come first: the run folder is written only once
    the checkpoint, data and model check out."""
    if rt.main:
        _check_folder(run, resume, force)
    device.barrier(rt)
    start = Start.of(cfg, run, resume, reset_optimizer)  # a bad checkpoint or init_from path fails first
    torch.manual_seed(cfg.train.seed)
    # memory: refuse a network the device cannot hold before any array or module is built
    check_fits(infer(cfg.model, cfg.patch, receptive=False), cfg.train.batch_size, rt.device, training=True)
    # data: grids, checks, split, normalisation (reused from the checkpoint on resume)
    d = data_mod.build(cfg, stored=start.normalization())
    headline = cfg.task.headline(d.classes, clean=cfg.data.clean is not None)
    if d.picks is not None:  # phase picks: the field's figure, the first phase's pick F1, heads every view
        headline = pick_metric("f1", d.picks.phases[0])
    tracker = BestTracker.of(cfg.train.best_metric, headline.name, cfg.train.early_stop)
    net, init_report = _network(cfg, d, rt, start, tracker, reset_optimizer, run)
    writer = RunWriter(run, cfg, d, rt, replacement, tracker.headline)
    writer.begin(start, force, reset_optimizer, net.counts, net.receptive_field, init_report)
    net.model.train()
    sampler = data_mod.EpochSampler(d.per_process(rt.world_size))
    loader = _training_loader(d, cfg, rt, sampler)
    val_loader = _loader(d.validation_set(rt.rank, rt.world_size), cfg, rt)
    writer.start_tensorboard(start)
    saved = (start.ckpt.epoch, start.ckpt.step) if start.ckpt is not None else None
    return Session(cfg, run, rt, d, net, sampler, loader, val_loader, Progress.of(start, rt.main), tracker, writer,
                   CtrlC(net.buffers), init_report, saved, start.resumed())


def _network(cfg: Config, d: data_mod.TrainingData, rt: device.Runtime, start: Start, tracker: BestTracker,
             reset_optimizer: bool, run: Path) -> tuple[Network, transfer.InitReport | None]:
    """The model and what trains it, with the state the run starts from, then wrapped (DDP, compile)."""
    model, inf = build(cfg.model, cfg.patch)
    apply_posterior(model, False)  # training and the validation loss see the blind prediction alone
    init = transfer.init_weights(model, cfg.model, start.init[0], str(start.init[1])) if start.init else None
    transfer.freeze(model, cfg.model, cfg.train.freeze)  # before the optimizer and DDP see the parameters
    n_trainable, n_total = transfer.parameter_counts(model)
    place = device.placement(rt, cfg.model.dims, cfg.train.channels_last)
    model = place.model(model)
    per_process = cfg.data.sampling.patches_per_epoch // rt.world_size
    opt = _optimizer(cfg, transfer.trainable(model))
    factor = _schedule(cfg, max(1, math.ceil(per_process / cfg.train.batch_size)))  # steps per epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    scaler = rt.grad_scaler()
    loss_fn = make_loss(cfg.task.classifies, cfg.train.loss, d.class_freq,
                        hidden_only=cfg.task.self_supervised, masked=d.masked).to(rt.device)
    start.restore(model, opt, sched, factor, scaler, tracker, reset_optimizer, run)
    buffers = list(model.buffers())  # before wrapping
    if rt.distributed:
        model = DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    if cfg.train.compile:
        model = torch.compile(model)
    network = Network(model, opt, sched, scaler, loss_fn, place, buffers, (n_total, n_trainable),
                      tuple(inf.output_record.receptive_field))
    return network, init


# ----------------------------------------------------------------------------- the loop

def _fit(s: Session, reporter: Reporter) -> None:
    """Epochs, until the plan, --max-steps, early stopping or Ctrl-C ends them."""
    if s.init_report is not None:
        _before_training(s)
    while not _finished(s):
        steps = _train_epoch(s, reporter)
        if steps is None:  # Ctrl-C between two steps
            raise _interrupted(s, at_once=False)
        _end_epoch(s, steps)
        if s.prog.epoch < s.cfg.train.epochs and s.ctrl_c.agreed(s.rt):
            raise _interrupted(s, at_once=False)


def _finished(s: Session) -> bool:
    t = s.cfg.train
    return s.prog.epoch >= t.epochs or bool(t.max_steps and s.prog.step >= t.max_steps) or s.tracker.stopped


def _train_epoch(s: Session, reporter: Reporter) -> EpochSteps | None:
    """The steps of one epoch (the rest of it, on resume); None when Ctrl-C stopped it between steps."""
    epoch, max_steps = s.prog.epoch + 1, s.cfg.train.max_steps
    s.sampler.set_epoch(epoch, s.prog.batch_in_epoch * s.cfg.train.batch_size)
    bar = reporter.task(f"epoch {epoch}/{s.cfg.train.epochs}", total=len(s.sampler), unit="patch")
    steps = EpochSteps(epoch)
    t0 = ready = time.perf_counter()
    for x, y in s.loader:
        steps.wait += time.perf_counter() - ready
        if s.ctrl_c.agreed(s.rt):  # Ctrl-C: stop between steps, never inside one
            bar.close()
            return None
        loss = _step(s, x, y, epoch)
        steps.seen += len(x)
        steps.losses.append(loss)
        bar.advance(len(x), info=f"loss {loss:.4g}")
        ready = time.perf_counter()
        if max_steps and s.prog.step >= max_steps:
            steps.partial = steps.seen < len(s.sampler)  # stopped inside the epoch: --resume goes on from here
            break
    bar.close()
    steps.elapsed = time.perf_counter() - t0
    return steps


def _step(s: Session, x: torch.Tensor, y: torch.Tensor, epoch: int) -> float:
    """One optimizer step on a batch; its loss. A second Ctrl-C inside the forward pass is undone (CtrlC)."""
    net, ctrl_c = s.net, s.ctrl_c
    ctrl_c.begin()
    x, y = net.place.batch(x), net.place.target(y)
    with s.rt.autocast():
        loss = net.loss_fn(net.model(x), y)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDiverged(f"loss became {value} at epoch {epoch}, step {s.prog.step + 1}; training stopped, "
                               f"{_last_good(s.saved)}", where=str(s.run),
                               fix="lower train.lr, add train.grad_clip, or check the data for extreme values")
    net.opt.zero_grad(set_to_none=True)
    net.scaler.scale(loss).backward()
    if s.cfg.train.grad_clip:
        net.scaler.unscale_(net.opt)
        torch.nn.utils.clip_grad_norm_(net.model.parameters(), s.cfg.train.grad_clip)
    ctrl_c.updating()
    net.scaler.step(net.opt)
    net.scaler.update()
    net.sched.step()
    s.prog.count(value, len(x))
    ctrl_c.end()
    return value


def _end_epoch(s: Session, steps: EpochSteps) -> None:
    """Validate; then the epoch's line, best.pt, last.pt and pictures (every process takes part)."""
    net, prog = s.net, s.prog
    _fit_posterior(s)
    val_loss, scores, examples = _validate(net.model, s.d, s.val_loader, net.loss_fn, s.rt, net.place,
                                           s.cfg.train.examples)
    val = Validation(scores)
    # [Σ loss × patches, patches, seconds, seconds waiting, patches this epoch] over all processes
    totals = torch.tensor([prog.loss_sum, prog.seen, steps.elapsed, steps.wait, steps.seen], dtype=torch.float64)
    device.all_reduce_(totals, s.rt)
    train_loss = float(totals[0] / max(totals[1], 1))
    if not steps.partial:
        prog.finish_epoch(steps.epoch)
    verdict = s.tracker.judge(steps.epoch, val_loss, val, train_loss, steps.partial)
    record = EpochRecord(
        epoch=steps.epoch, step=prog.step, partial=steps.partial, resumed=s.resumed, train_loss=train_loss,
        val_loss=val_loss, val=val, step_loss=StepLosses.thinned(prog.step - len(steps.losses) + 1, steps.losses),
        lr=net.opt.param_groups[0]["lr"], patches_per_s=float(totals[4] / max(steps.elapsed, 1e-9)),
        data_wait_fraction=float(totals[3] / max(totals[2], 1e-9)), time_s=steps.elapsed,
        best=s.tracker.record(), stopped_early=verdict.stopped_early, early_stop=verdict.early_stop)
    s.resumed = None
    state = _save(s, partial=steps.partial)
    s.writer.epoch(record, examples, state if verdict.improved else None)
    device.barrier(s.rt)


def _before_training(s: Session) -> None:
    """Score the weights of ``train.init_from`` on the validation block before the first step (what
    the pretrained network does on this data as it is): init.json, and epoch 0 — the first
    candidate for best.pt, so training never hands predict worse weights than it started from."""
    net = s.net
    _fit_posterior(s)
    val_loss, scores, _ = _validate(net.model, s.d, s.val_loader, net.loss_fn, s.rt, net.place, 0)
    val = Validation(scores)
    s.writer.before_training(s.init_report, val_loss, val)
    if val_loss is None:  # no validation block: nothing to compare the epochs with
        return
    improved = s.tracker.judge(0, val_loss, val, None).improved  # on every process: the trackers agree
    if improved and s.rt.main:
        s.writer.best(_checkpoint_state(s))


# ----------------------------------------------------------------------------- Ctrl-C and divergence

def _interrupted(s: Session, at_once: bool) -> TrainingInterrupted:
    """Ctrl-C: save last.pt when the state is whole, and say how to resume. ``at_once``: a second
    Ctrl-C, which may have landed inside a step (a forward pass is undone; an update cannot be)."""
    prog, run = s.prog, s.run
    if s.saved is None and prog.step == 0:
        return TrainingInterrupted("interrupted before the first optimizer step; no checkpoint was saved",
                                   where=str(run), fix="start the run again")
    if at_once and not s.ctrl_c.whole:
        return TrainingInterrupted(f"interrupted inside an optimizer step at step {prog.step + 1}; "
                                   f"{_last_good(s.saved)}", fix=f"resume with: geocnn train {run} --resume"
                                   if s.saved else "start the run again")
    if at_once:
        s.ctrl_c.rewind()  # a forward pass may have updated BatchNorm statistics: undo it
        _save(s, partial=prog.batch_in_epoch > 0, collective=False)
    elif s.saved != (prog.epoch, prog.step):
        _save(s, partial=prog.batch_in_epoch > 0)
    return TrainingInterrupted(
        f"interrupted at epoch {prog.epoch + 1}, step {prog.step}; saved {runs.checkpoint_dir(run) / 'last.pt'}",
        fix=f"resume with: geocnn train {run} --resume")


def _last_good(saved: tuple[int, int] | None) -> str:
    """What checkpoints/last.pt holds, in words (the truth: it may not exist yet)."""
    if saved is None:
        return "no checkpoint was saved yet (checkpoints/last.pt is written at the end of the first epoch)"
    return f"checkpoints/last.pt holds the last good state (epoch {saved[0]}, step {saved[1]})"


# ----------------------------------------------------------------------------- validation

def _core(model: torch.nn.Module) -> torch.nn.Module:
    """The bare network inside the torch.compile and DDP wrappers."""
    core = getattr(model, "_orig_mod", model)  # torch.compile wraps the (DDP-wrapped) model
    return core.module if isinstance(core, DistributedDataParallel) else core


def _fit_posterior(s: Session) -> None:
    """Refit a posterior layer's taps to the weights as they are now (every process, the same patches)."""
    fit = blindplan.fit_posterior(_core(s.net.model), s.d, s.net.place.batch)
    if fit is not None and s.rt.main:
        log.info("%s", fit.describe())


def _checkpoint_state(s: Session, sums: tuple[float, int] = (0.0, 0)) -> runs.Checkpoint:
    """What last.pt and best.pt hold now; ``sums``: the unfinished epoch's loss sum and patches."""
    cfg, d, net, prog = s.cfg, s.d, s.net, s.prog
    core = _core(net.model)
    stopper = s.tracker.stopper
    return runs.Checkpoint(
        config=cfg.raw, config_hash=cfg.hash(),
        model_state={k: v.detach().cpu() for k, v in core.state_dict().items()},
        normalization=d.norm, target_normalization=d.target_norm,
        channel_names=tuple(d.grid.channel_names), channel_sources=tuple(d.grid.sources), grid_axes=tuple(d.grid.axes),
        patch_size=tuple(d.geom.size), patch_axes=tuple(d.geom.model_axes), classes=d.classes,
        class_frequencies=tuple(d.class_freq.tolist()) if d.class_freq is not None else None,
        epoch=prog.epoch, step=prog.step, batch_in_epoch=prog.batch_in_epoch,
        best_metric=cfg.train.best_metric, best_value=s.tracker.best, best_epoch=s.tracker.best_epoch,
        optimizer_state=net.opt.state_dict(), scheduler_state=net.sched.state_dict(),
        scaler_state=net.scaler.state_dict(), rng=rng_state(), epoch_loss_sum=sums[0], epoch_patches=sums[1],
        early_stop=stopper.to_dict() if stopper is not None else {})


def _save(s: Session, partial: bool, collective: bool = True) -> runs.Checkpoint | None:
    """last.pt (every process calls it when ``collective``: the partial sums are summed over them);
    the state saved, on the main process."""
    sums = _epoch_sums(s.prog.loss_sum, s.prog.seen, s.rt, collective) if partial else (0.0, 0)
    state = _checkpoint_state(s, sums) if s.rt.main else None
    if state is not None:
        s.writer.last(state)
    s.saved = (s.prog.epoch, s.prog.step)
    return state


def _epoch_sums(loss_sum: float, seen: int, rt: device.Runtime, collective: bool) -> tuple[float, int]:
    """The unfinished epoch's loss sum and patch count over all processes (this process's alone if not collective)."""
    t = torch.tensor([loss_sum, seen], dtype=torch.float64)
    if collective:
        device.all_reduce_(t, rt)
    return float(t[0]), int(t[1])


def _metrics(d: data_mod.TrainingData):
    """The task's validation accumulator, with its baseline's numbers from the training data."""
    return ACCUMULATORS[d.task.accumulator](d.classes, d.majority, d.cfg.train.loss.ignore_index, d.train_mean)


def _input_baseline(x: torch.Tensor, y: torch.Tensor, d: data_mod.TrainingData) -> torch.Tensor | None:
    """The input itself as a prediction, when the task is scored against it and it is in the target's units."""
    if not d.task.input_baseline:
        return None
    same_units = d.target_norm is d.norm or (d.target_norm is None and d.norm.method == "none")
    return d.norm.invert(x, channel_axis=1) if x.shape[1] == y.shape[1] and same_units else None


def _validate(model, d: data_mod.TrainingData, loader, loss_fn, rt: device.Runtime, place: device.Placement,
              n_examples: int) -> tuple[float | None, dict, plots.Examples | None]:
    """Validation loss and the task's metrics (summed over processes; see :class:`Validation`), and a
    few examples for pictures."""
    if len(d.val_origins) == 0:
        return None, {}, None
    metric = _metrics(d)
    picks = PickMetrics(d.picks) if d.picks is not None else None
    origins = iter(d.val_origins[rt.rank::rt.world_size])
    loss_sum = torch.zeros(2, dtype=torch.float64)
    examples = None
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            batch_origins = [next(origins) for _ in range(len(x))]
            xd, yd = place.batch(x), place.target(y)
            with rt.autocast():
                out = model(xd)
            loss_sum += torch.tensor([float(loss_fn(out, yd)) * len(x), len(x)], dtype=torch.float64)
            pred = d.task.predictions(out, d.target_norm).cpu()
            predict = functools.partial(_predict_batch, model, d=d, rt=rt, place=place)
            if d.task.self_supervised:
                selfsup.score(metric, x, y, pred, d, predict)
            else:
                metric.update(pred, _target_units(y, d), _input_baseline(x, y, d))
            if picks is not None:
                picks.update(class_probabilities(out.float()), batch_origins)
            if examples is None and n_examples:
                part = slice(0, n_examples)
                examples = _examples(x[part], y[part], out[part], pred[part], d, rt, predict)
    device.all_reduce_(loss_sum, rt)
    device.all_reduce_(metric.sums, rt)
    scores = metric.compute()
    if picks is not None:
        device.all_reduce_(picks.sums, rt)
        scores = _with_picks(scores, picks.compute())
    model.train()
    return float(loss_sum[0] / max(loss_sum[1], 1)), scores, examples


def _with_picks(scores: dict, picks: dict) -> dict:
    """The task's scores with the pick scores after its metrics, STA/LTA's as the ``classical`` method."""
    methods = {k: v for k, v in scores.items() if isinstance(v, dict)}
    numbers = {k: v for k, v in scores.items() if k not in methods}
    return {**numbers, **{k: v for k, v in picks.items() if k != "classical"}, **methods,
            "classical": picks["classical"]}


def _predict_batch(model, x: torch.Tensor, d: data_mod.TrainingData, rt: device.Runtime,
                   place: device.Placement) -> torch.Tensor:
    """The model's predictions (target units, CPU) on a normalised CPU batch, as ``geocnn predict``
    makes them (a posterior layer applied)."""
    with rt.autocast(), posterior_applied(model):
        out = model(place.batch(x))
    return d.task.predictions(out, d.target_norm).cpu()


def _target_units(y: torch.Tensor, d: data_mod.TrainingData) -> torch.Tensor:
    """Targets back in their own units (values); labels unchanged."""
    return d.task.units(y, d.target_norm)


def _examples(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor, pred: torch.Tensor, d: data_mod.TrainingData,
              rt: device.Runtime, predict: Callable[[torch.Tensor], torch.Tensor]) -> plots.Examples:
    """The first validation patches of this process for examples.png, in their own units, with their
    origins; self-supervised, as :func:`geocnn.selfsup.scoring.pictured` gives them."""
    origins = d.val_origins[rt.rank::rt.world_size][:len(x)]
    if d.task.self_supervised:
        shown = selfsup.pictured(x, y, pred, d, predict)
        return plots.Examples(d.norm.invert(x, channel_axis=1).numpy(), shown.target.numpy(), shown.pred.numpy(),
                              origins=origins, same_units=True, hidden=shown.hidden.numpy(),
                              clean=None if shown.clean is None else shown.clean.numpy())
    probs = None
    if d.task.classifies:
        probs = class_probabilities(out.float()).cpu()
        if probs.shape[1] == 1:  # one logit channel holds P(class 1)
            probs = torch.cat([1 - probs, probs], dim=1)
        probs = probs.numpy()
    return plots.Examples(d.norm.invert(x, channel_axis=1).numpy(), _target_units(y, d).numpy(), pred.numpy(), probs,
                          origins=origins, same_units=_input_baseline(x, y, d) is not None)
