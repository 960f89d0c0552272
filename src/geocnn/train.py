"""``geocnn train``: the training loop, top to bottom.

setup (device, run folder, data, model, optimizer) → for each epoch: draw patches, step,
validate against the baseline, log a line, draw pictures, checkpoint → done. The same code runs
on one CPU, one GPU, or many processes under ``torchrun`` (DistributedDataParallel; the batch
size is per process, so the global batch is ``batch_size × processes``; ``patches_per_epoch``
is the total over all processes, each drawing a different share of one seeded draw).
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from geocnn import data as data_mod
from geocnn import device, machine, plots, runfolder, runs, selfsup, summary, tensorboard_log, transfer
from geocnn import resume as resume_mod
from geocnn.atomic import check_folder, write_json
from geocnn.config import Config
from geocnn.early_stop import EarlyStopping
from geocnn.errors import ConfigError, GeocnnError
from geocnn.losses import make_loss
from geocnn.metrics import METRICS
from geocnn.model import build, infer
from geocnn.model.budget import check_fits
from geocnn.progress import SILENT, Reporter
from geocnn.tasks import class_probabilities

log = logging.getLogger(__name__)


class TrainingInterrupted(GeocnnError):
    """Ctrl-C: a checkpoint was saved; the message says how to resume."""

    exit_code = 130  # the shell's code for SIGINT


class TrainingDiverged(GeocnnError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Progress:
    """Where training stands (saved in checkpoints)."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps
    batch_in_epoch: int = 0  # batches done in the current (unfinished) epoch
    best: float | None = None
    best_epoch: int | None = None
    history: list = field(default_factory=list)


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


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
        prefetch_factor=4 if workers else None, worker_init_fn=_ignore_ctrl_c if workers else None,
        # its own generator: creating iterators must not draw from the global RNG (exact resume)
        generator=torch.Generator().manual_seed(cfg.train.seed))


def _ignore_ctrl_c(worker_id: int) -> None:
    """DataLoader workers ignore Ctrl-C (the terminal sends it to the whole process group): the
    main process stops at a step boundary and still needs them for that step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _close(*loaders) -> None:
    """Stop persistent workers now (left to the garbage collector they can take seconds each)."""
    for loader in loaders:
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()




def _metrics(d: data_mod.TrainingData):
    """The task's validation accumulator, with its baseline's numbers from the training data."""
    return d.task.make_metrics(d.classes, d.majority, d.cfg.train.loss.ignore_index, d.train_mean)


def _input_baseline(x: torch.Tensor, y: torch.Tensor, d: data_mod.TrainingData) -> torch.Tensor | None:
    """The input itself as a prediction, when the task is scored against it and it is in the target's units."""
    if not d.task.input_baseline:
        return None
    same_units = d.target_norm is d.norm or (d.target_norm is None and d.norm.method == "none")
    return d.norm.invert(x, channel_axis=1) if x.shape[1] == y.shape[1] and same_units else None


def _validate(model, d: data_mod.TrainingData, loader, loss_fn, rt: device.Runtime, place: device.Placement,
              n_examples: int) -> tuple[float | None, dict, tuple | None]:
    """Validation loss and metrics (summed over processes), and a few examples for pictures."""
    if len(d.val_origins) == 0:
        return None, {}, None
    metric = _metrics(d)
    loss_sum = torch.zeros(2, dtype=torch.float64)
    examples = None
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            xd, yd = place.batch(x), place.target(y)
            with rt.autocast():
                out = model(xd)
            loss_sum += torch.tensor([float(loss_fn(out, yd)) * len(x), len(x)], dtype=torch.float64)
            pred = d.task.predictions(out, d.target_norm).cpu()
            if d.task.self_supervised:
                selfsup.score(metric, x, y, pred, d, lambda t: _predict_batch(model, t, d, rt, place))
                y = selfsup.unmasked(y, x.shape[1])  # the pictures show the unmasked input as the target
            else:
                metric.update(pred, _target_units(y, d), _input_baseline(x, y, d))
            if examples is None and n_examples:
                examples = _examples(x[:n_examples], y[:n_examples], out[:n_examples], pred[:n_examples], d, rt)
    device.all_reduce_(loss_sum, rt)
    device.all_reduce_(metric.sums, rt)
    model.train()
    return float(loss_sum[0] / max(loss_sum[1], 1)), metric.compute(), examples


def _predict_batch(model, x: torch.Tensor, d: data_mod.TrainingData, rt: device.Runtime,
                   place: device.Placement) -> torch.Tensor:
    """The model's predictions (target units, CPU) on a normalised CPU batch."""
    with rt.autocast():
        out = model(place.batch(x))
    return d.task.predictions(out, d.target_norm).cpu()


def _target_units(y: torch.Tensor, d: data_mod.TrainingData) -> torch.Tensor:
    """Targets back in their own units (values); labels unchanged."""
    return d.task.units(y, d.target_norm)


def _examples(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor, pred: torch.Tensor, d: data_mod.TrainingData,
              rt: device.Runtime) -> plots.Examples:
    """The first validation patches of this process for examples.png, in their own units, with their origins."""
    probs = None
    if d.task.classifies:
        probs = class_probabilities(out.float()).cpu()
        if probs.shape[1] == 1:  # one logit channel holds P(class 1)
            probs = torch.cat([1 - probs, probs], dim=1)
        probs = probs.numpy()
    return plots.Examples(d.norm.invert(x, channel_axis=1).numpy(), _target_units(y, d).numpy(), pred.numpy(), probs,
                          origins=d.val_origins[rt.rank::rt.world_size][:len(x)],
                          same_units=_input_baseline(x, y, d) is not None)


def _checkpoint_state(cfg: Config, d: data_mod.TrainingData, model, opt, sched, scaler,
                      prog: Progress, sums: tuple[float, int] = (0.0, 0),
                      stopper: EarlyStopping | None = None) -> runs.Checkpoint:
    core = getattr(model, "_orig_mod", model)  # torch.compile wraps the (DDP-wrapped) model
    core = core.module if isinstance(core, DistributedDataParallel) else core
    return runs.Checkpoint(
        config=cfg.raw, config_hash=cfg.hash(),
        model_state={k: v.detach().cpu() for k, v in core.state_dict().items()},
        normalization=d.norm, target_normalization=d.target_norm,
        channel_names=tuple(d.grid.channel_names), channel_sources=tuple(d.grid.sources), grid_axes=tuple(d.grid.axes),
        patch_size=tuple(d.geom.size), patch_axes=tuple(d.geom.model_axes), classes=d.classes,
        class_frequencies=tuple(d.class_freq.tolist()) if d.class_freq is not None else None,
        epoch=prog.epoch, step=prog.step, batch_in_epoch=prog.batch_in_epoch,
        best_metric=cfg.train.best_metric, best_value=prog.best, best_epoch=prog.best_epoch,
        optimizer_state=opt.state_dict(), scheduler_state=sched.state_dict(), scaler_state=scaler.state_dict(),
        rng=_rng_state(), epoch_loss_sum=sums[0], epoch_patches=sums[1],
        early_stop=stopper.to_dict() if stopper is not None else {})


def train(cfg: Config, out: Path | None = None, resume: bool = False, force: bool = False,
          reporter: Reporter = SILENT, reset_optimizer: bool = False) -> Path:
    """Train ``cfg``; returns the run folder. See the module docstring for the flow.

    Without ``out`` the run folder is ``runs/<name>``, or ``runs/<name>-2``, ``-3``, ... when that
    one already holds a run (and neither ``resume`` nor ``force`` is given). The folder is locked
    for the whole call. On ``resume``, ``cfg`` may differ from the run's checkpoint only in the keys
    :mod:`geocnn.resume` allows (optimizer keys with ``reset_optimizer``).
    """
    if cfg.train.tensorboard:
        tensorboard_log.require()
    rt = device.setup(cfg.train.device, cfg.train.amp, cfg.train.threads)
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
    # --- run folder and checkpoint to resume from (the folder is written once data and model check out)
    if rt.main:
        _check_folder(run, resume, force)
    device.barrier(rt)
    ckpt = runs.load_checkpoint(runs.checkpoint_dir(run) / "last.pt") if resume else None
    changed = (resume_mod.changes(ckpt.config, cfg.raw, run, ckpt.epoch, reset_optimizer)
               if ckpt is not None else [])
    # a fresh run may start from another run's weights: read them now, so a bad path fails first
    init = transfer.load_source(cfg.train.init_from) if cfg.train.init_from and ckpt is None else None
    seed = cfg.train.seed
    torch.manual_seed(seed)

    # --- memory: refuse a network the device cannot hold before any array or module is built
    check_fits(infer(cfg.model, cfg.patch, receptive=False), cfg.train.batch_size, rt.device, training=True)

    # --- data: grids, checks, split, normalisation (reused from the checkpoint on resume)
    d = data_mod.build(cfg, stored=_stored_normalization(ckpt) if ckpt else None)

    # --- model, optimizer, schedule, loss
    model, inf = build(cfg.model, cfg.patch)
    init_report = transfer.init_weights(model, cfg.model, init[0], str(init[1])) if init else None
    transfer.freeze(model, cfg.model, cfg.train.freeze)  # before the optimizer and DDP see the parameters
    n_trainable, n_total = transfer.parameter_counts(model)
    place = device.placement(rt, cfg.model.dims, cfg.train.channels_last)
    model = place.model(model)
    bs = cfg.train.batch_size
    per_rank = (cfg.data.sampling.patches_per_epoch // rt.world_size)
    steps_per_epoch = max(1, math.ceil(per_rank / bs))
    opt = _optimizer(cfg, transfer.trainable(model))
    factor = _schedule(cfg, steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    scaler = rt.grad_scaler()
    loss_fn = make_loss(cfg.task.classifies, cfg.train.loss, d.class_freq,
                        hidden_only=cfg.task.self_supervised).to(rt.device)
    prog = Progress()
    carried = (0.0, 0)  # the unfinished epoch's loss sum and patches from before the resume
    stopper = _early_stopping(cfg)
    if ckpt is not None:
        model.load_state_dict(ckpt.model_state)
        _restore_optimizer(opt, sched, factor, ckpt, reset_optimizer, run)
        if ckpt.scaler_state and scaler.is_enabled():
            scaler.load_state_dict(ckpt.scaler_state)
        prog = Progress(ckpt.epoch, ckpt.step, ckpt.batch_in_epoch, ckpt.best_value, ckpt.best_epoch)
        carried = (ckpt.epoch_loss_sum, ckpt.epoch_patches) if rt.main else (0.0, 0)
        if stopper is not None:
            stopper.restore(ckpt.early_stop)
        _set_rng_state(ckpt.rng)
    core_buffers = list(model.buffers())  # before wrapping: what a forward pass updates (BatchNorm statistics)
    if rt.distributed:
        model = DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    if cfg.train.compile:
        model = torch.compile(model)

    # --- what the run folder says before the first step
    headline = cfg.task.headline(d.classes).name
    best_name = cfg.train.best_metric
    best_metric = METRICS[best_name]
    if rt.main:
        if force and not resume:
            replacement.begin()  # the old run's files move aside; deleted after the first checkpoint
        runs.checkpoint_dir(run).mkdir(parents=True, exist_ok=True)
        runs.write_config(run, cfg.raw)
        shape = (cfg.model.in_channels, *cfg.patch)
        write_json(run / "summary.json", summary.to_json(summary.summarize(cfg.model, shape, bs, cfg.train.freeze)))
        write_json(run / "split.json", data_mod.split_record(d))
        if ckpt is not None:
            runs.truncate_metrics(run, prog.epoch)
        log.info("device: %s", rt.describe())
        log.info("run folder: %s", run)
        log.info("data: %s → patches %s along (%s); %s", " + ".join(d.grid.channel_names),
                 "×".join(map(str, d.geom.size)), ", ".join(d.geom.model_axes), data_mod.describe_split(d))
        log.info("model: %s parameters (%s trainable), receptive field %s", f"{n_total:,}", f"{n_trainable:,}",
                 "×".join(map(str, inf.output_record.receptive_field)))
        if init_report is not None:
            _log_init(init_report)
        if ckpt is not None:
            log.info("resuming after epoch %d (step %d)%s", prog.epoch, prog.step,
                     "".join(f"; {c.key} {c.old} → {c.new}" for c in changed))
            if reset_optimizer:
                log.info("optimizer state restarted (--reset-optimizer)")

    # --- epochs
    model.train()
    max_steps = cfg.train.max_steps
    history = runs.read_metrics(run) if rt.main else []
    sampler = data_mod.EpochSampler(d.per_process(rt.world_size))
    if data_mod.keep_on_device(d, rt.device, device.free_memory(rt)):
        # patches cut, augmented and batched on the device from the grids held there
        loader = data_mod.DeviceBatches(data_mod.DeviceGrids(d, rt.device), d.training_set(rt.rank, rt.world_size),
                                        bs, sampler)
    else:
        loader = _loader(d.training_set(rt.rank, rt.world_size), cfg, rt, sampler)
    val_loader = _loader(d.validation_set(rt.rank, rt.world_size), cfg, rt)
    # on resume, events after the checkpoint's last logged step are dropped (they are logged again)
    tb = tensorboard_log.TensorBoardLog(run, prog.step + 1 if ckpt else None) \
        if cfg.train.tensorboard and rt.main else None
    saved = (ckpt.epoch, ckpt.step) if ckpt is not None else None  # what checkpoints/last.pt holds
    resumed = ({"resumed": {"step": prog.step, **({"changed": {c.key: c.record() for c in changed}}
                                                  if changed else {})}} if ckpt is not None else {})
    loss_sum, seen = carried
    step = _StepState(core_buffers)

    def save(partial: bool, collective: bool = True) -> runs.Checkpoint | None:
        """last.pt (every process calls it when ``collective``: the partial sums are summed over them)."""
        nonlocal saved
        sums = _epoch_sums(loss_sum, seen, rt, collective) if partial else (0.0, 0)
        state = None
        if rt.main:
            state = _checkpoint_state(cfg, d, model, opt, sched, scaler, prog, sums, stopper)
            runs.save_checkpoint(runs.checkpoint_dir(run) / "last.pt", state)
            if replacement is not None:
                replacement.commit()
        saved = (prog.epoch, prog.step)
        return state

    ctrl_c = _DeferredInterrupt()
    ctrl_c.install()
    if init_report is not None:
        _before_training(init_report, model, d, val_loader, loss_fn, rt, place, run, headline)
    try:
        while (prog.epoch < cfg.train.epochs and not (max_steps and prog.step >= max_steps)
               and not (stopper is not None and stopper.stopped)):
            epoch = prog.epoch + 1
            sampler.set_epoch(epoch, prog.batch_in_epoch * bs)
            task = reporter.task(f"epoch {epoch}/{cfg.train.epochs}", total=len(sampler), unit="patch")
            epoch_seen, wait, t0 = 0, 0.0, time.perf_counter()
            step_losses: list[float] = []  # this process's, for loss.png
            t_last = t0
            stopped = interrupted = False
            for x, y in loader:
                wait += time.perf_counter() - t_last
                if ctrl_c.agreed(rt):  # Ctrl-C: stop between steps, never inside one
                    stopped = interrupted = True
                    break
                step.begin()
                x, y = place.batch(x), place.target(y)
                with rt.autocast():
                    out = model(x)
                    loss = loss_fn(out, y)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"loss became {value} at epoch {epoch}, step {prog.step + 1}; training stopped, "
                        f"{_last_good(saved)}", where=str(run),
                        fix="lower train.lr, add train.grad_clip, or check the data for extreme values")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.train.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                step.updating()
                scaler.step(opt)
                scaler.update()
                sched.step()
                prog.step += 1
                prog.batch_in_epoch += 1
                loss_sum += value * len(x)
                step_losses.append(value)
                seen += len(x)
                epoch_seen += len(x)
                step.end()
                task.advance(len(x), info=f"loss {value:.4g}")
                t_last = time.perf_counter()
                if max_steps and prog.step >= max_steps:
                    # stopped inside the epoch: the checkpoint remembers where, so --resume goes on
                    stopped = epoch_seen < len(sampler)
                    break
            task.close()
            if interrupted:
                break
            elapsed = time.perf_counter() - t0
            val_loss, val, examples = _validate(model, d, val_loader, loss_fn, rt, place,
                                                cfg.train.examples)
            if not stopped:
                prog.epoch, prog.batch_in_epoch = epoch, 0
            totals = torch.tensor([loss_sum, seen, elapsed, wait, epoch_seen], dtype=torch.float64)
            device.all_reduce_(totals, rt)
            record = {
                "epoch": epoch, "step": prog.step, **({"partial": True} if stopped else {}), **resumed,
                "train_loss": float(totals[0] / max(totals[1], 1)), "val_loss": val_loss, "val": val,
                "step_loss": plots.thin_steps(prog.step - len(step_losses) + 1, step_losses),
                "lr": opt.param_groups[0]["lr"],
                "patches_per_s": float(totals[4] / max(elapsed, 1e-9)),
                "data_wait_fraction": float(totals[3] / max(totals[2], 1e-9)), "time_s": elapsed,
            }
            resumed = {}
            score = val_loss if best_name == "val_loss" else val.get(best_name)
            if score is None:
                score = record["train_loss"] if best_name == "val_loss" else None
            improved = score is not None and best_metric.better(score, prog.best)
            if improved:
                prog.best, prog.best_epoch = score, epoch
            record["best"] = {"metric": best_name, "value": prog.best, "epoch": prog.best_epoch, "headline": headline}
            if stopper is not None and not stopped:
                record["stopped_early"] = stopper.update(epoch, score)
                record["early_stop"] = stopper.to_dict()
            state = save(partial=stopped)
            if not stopped:
                loss_sum, seen = 0.0, 0
            if rt.main:
                if improved:
                    runs.save_checkpoint(runs.checkpoint_dir(run) / "best.pt", state)
                runs.append_metrics(run, record)
                history.append(record)
                _pictures(run, d, history, examples, headline if val else None)
                if tb is not None:
                    tb.epoch(record)
                    if examples is not None:
                        tb.picture("examples", run / "examples.png", prog.step)
                log.info("epoch %d: %s", epoch, epoch_line(record, headline))
            device.barrier(rt)
            if prog.epoch < cfg.train.epochs and ctrl_c.agreed(rt):
                interrupted = True
                break
        if interrupted:
            if saved is None and prog.step == 0:
                raise _before_first_step(run)
            if saved != (prog.epoch, prog.step):
                save(partial=prog.batch_in_epoch > 0)
            raise _interrupted(run, prog)
    except KeyboardInterrupt:
        # a second Ctrl-C (or one outside the main thread): save only a state that is whole
        if saved is None and prog.step == 0:
            raise _before_first_step(run) from None
        if step.phase != "updating":
            step.rewind()  # a forward pass may have updated BatchNorm statistics: undo it
            save(partial=prog.batch_in_epoch > 0, collective=False)
            raise _interrupted(run, prog) from None
        raise TrainingInterrupted(f"interrupted inside an optimizer step at step {prog.step + 1}; "
                                  f"{_last_good(saved)}", fix=f"resume with: geocnn train {run} --resume"
                                  if saved else "start the run again") from None
    finally:
        ctrl_c.restore()
        _close(loader, val_loader)
        if tb is not None:
            tb.close()
    return run


def _pictures(run: Path, d: data_mod.TrainingData, history: list[dict], examples: plots.Examples | None,
              headline: str | None) -> None:
    """loss.png, examples.png and (classes) confusion.json with confusion.png; a picture never stops the run."""
    names = plots.Names.of(d.cfg, d.grid)
    plots.loss_curve(history, run / "loss.png", headline)
    if examples is not None:
        plots.examples(examples, d.task, run / "examples.png", names, d.grid, d.geom, d.cfg.model)
    matrix = (history[-1].get("val") or {}).get("confusion")
    if matrix is not None:
        epoch = history[-1]["epoch"]
        write_json(run / "confusion.json", {"epoch": epoch, "classes": names.class_names(len(matrix)),
                                            "rows": "true class", "columns": "predicted class", "matrix": matrix})
        plots.confusion_matrix(matrix, run / "confusion.png", names, f"validation confusion matrix, epoch {epoch}")


def _stored_normalization(ckpt: runs.Checkpoint) -> tuple:
    """The checkpoint's normalisations; a target normalised like the input is the input's object again
    (the validation baseline "input as prediction" is scored only then, as in the run's first part)."""
    norm, target = ckpt.normalization, ckpt.target_normalization
    return norm, norm if target == norm else target


def _interrupted(run: Path, prog: Progress) -> TrainingInterrupted:
    return TrainingInterrupted(
        f"interrupted at epoch {prog.epoch + 1}, step {prog.step}; saved {runs.checkpoint_dir(run) / 'last.pt'}",
        fix=f"resume with: geocnn train {run} --resume")


def _before_first_step(run: Path) -> TrainingInterrupted:
    return TrainingInterrupted("interrupted before the first optimizer step; no checkpoint was saved",
                               where=str(run), fix="start the run again")


def _last_good(saved: tuple[int, int] | None) -> str:
    """What checkpoints/last.pt holds, in words (the truth: it may not exist yet)."""
    if saved is None:
        return "no checkpoint was saved yet (checkpoints/last.pt is written at the end of the first epoch)"
    return f"checkpoints/last.pt holds the last good state (epoch {saved[0]}, step {saved[1]})"


def _epoch_sums(loss_sum: float, seen: int, rt: device.Runtime, collective: bool) -> tuple[float, int]:
    """The unfinished epoch's loss sum and patch count over all processes (this process's alone if not collective)."""
    t = torch.tensor([loss_sum, seen], dtype=torch.float64)
    if collective:
        device.all_reduce_(t, rt)
    return float(t[0]), int(t[1])


def _restore_optimizer(opt, sched, factor, ckpt: runs.Checkpoint, reset: bool, run: Path) -> None:
    """Optimizer and schedule state from the checkpoint; the config's hyperparameters win (only the
    keys :mod:`geocnn.resume` allows can differ), and the current rate follows from them."""
    settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    if not reset:
        try:
            opt.load_state_dict(ckpt.optimizer_state)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"the checkpoint's optimizer state does not fit this optimizer ({exc})", where=str(run),
                              fix="resume with --reset-optimizer to restart the optimizer's state") from None
    sched.load_state_dict(ckpt.scheduler_state)
    for group, fresh in zip(opt.param_groups, settings):
        group.update(fresh)  # lr here is the base rate (initial_lr); the current one follows
    sched.base_lrs = [g["initial_lr"] for g in opt.param_groups]
    for group, base in zip(opt.param_groups, sched.base_lrs):
        group["lr"] = base * factor(sched.last_epoch)  # what LambdaLR computes: bit-identical when unchanged


class _StepState:
    """Where the loop is inside a step, and the buffers and RNG from before it, so an interrupt
    that lands inside the forward pass can be undone exactly."""

    def __init__(self, buffers: list[torch.Tensor]) -> None:
        self.buffers = buffers
        self.phase = "between"
        self._saved: list[torch.Tensor] = []
        self._rng: dict = {}

    def begin(self) -> None:
        self._saved = [b.detach().clone() for b in self.buffers]
        self._rng = _rng_state()
        self.phase = "forward"

    def updating(self) -> None:
        self.phase = "updating"

    def end(self) -> None:
        self.phase = "between"

    def rewind(self) -> None:
        if self.phase == "forward":
            with torch.no_grad():
                for b, s in zip(self.buffers, self._saved):
                    b.copy_(s)
            _set_rng_state(self._rng)
        self.phase = "between"


class _DeferredInterrupt:
    """Ctrl-C while training only sets a flag, read between steps: a step is never cut in half
    (a forward pass updates BatchNorm statistics before the optimizer step). A second Ctrl-C
    stops at once. Only the main thread can hold a signal handler; elsewhere nothing changes."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._note)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _note(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again stops at once)")

    def agreed(self, rt: device.Runtime) -> bool:
        """Whether any process was interrupted (all processes must stop at the same step)."""
        if not rt.distributed:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=rt.device)  # NCCL reduces device tensors only
        device.all_reduce_(flag, rt)
        return bool(flag[0] > 0)


def _early_stopping(cfg: Config) -> EarlyStopping | None:
    es = cfg.train.early_stop
    return EarlyStopping(METRICS[cfg.train.best_metric], es.patience, es.min_delta) if es is not None else None


def _before_training(report: transfer.InitReport, model, d: data_mod.TrainingData, val_loader, loss_fn,
                     rt: device.Runtime, place: device.Placement, run: Path, headline: str) -> None:
    """Score the weights of ``train.init_from`` on the validation block before the first step (what
    the pretrained network does on this data as it is) and write init.json."""
    val_loss, val, _ = _validate(model, d, val_loader, loss_fn, rt, place, 0)
    if rt.main:
        write_json(run / "init.json", runs.strict_json({**report.to_json(),
                                                        "before_training": {"val_loss": val_loss, "val": val}}))
        if val_loss is not None:
            score = f", {_with_baseline({'val': val}, headline, val[headline])}" if headline in val else ""
            log.info("before training (weights from train.init_from): val loss %.4g%s", val_loss, score)


def _log_init(report: transfer.InitReport) -> None:
    """The init_from table in the log: one line per layer."""
    log.info("weights from %s: %d layers loaded, %d skipped (shapes differ), %d new, %d unused", report.source,
             report.count("loaded"), report.count("skipped"), report.count("new"), report.count("unused"))
    for line in report.lines():
        log.info("  %s", line)


def epoch_line(record: dict, headline: str) -> str:
    """One human line per epoch: losses, headline metric vs baseline, speed."""
    parts = [f"train loss {record['train_loss']:.4g}"]
    if record["val_loss"] is not None:
        parts.append(f"val loss {record['val_loss']:.4g}")
    val = record.get("val") or {}
    if headline in val:
        parts.append(_with_baseline(record, headline, val[headline]))
    parts.append(f"{record['patches_per_s']:.0f} patches/s, waiting on data {100 * record['data_wait_fraction']:.0f}%")
    return ", ".join(parts)


def outcome_line(run: Path) -> str:
    """The last line of a run: the best epoch and its metric next to the baseline, whether it
    stopped early, and which checkpoint ``geocnn predict RUN`` uses (best.pt, else last.pt)."""
    lines = [r for r in runs.read_metrics(run) if not r.get("partial")]
    ckpts = runs.checkpoint_dir(run)
    if not lines:
        return f"no epoch finished; predict uses {ckpts / 'last.pt'}"
    last, best = lines[-1], lines[-1].get("best") or {}
    name, epoch = best.get("metric", "val_loss"), best.get("epoch")
    parts = []
    if epoch is not None and best.get("value") is not None:
        at = next((r for r in reversed(lines) if r["epoch"] == epoch), last)
        text = f"best epoch {epoch} of {last['epoch']}: {_with_baseline(at, name, best['value'])}"
        headline = best.get("headline")
        if headline and headline != name and headline in (at.get("val") or {}):
            text += f"; {_with_baseline(at, headline, at['val'][headline])} there"
        parts.append(text)
    if last.get("stopped_early"):
        es = last["early_stop"]
        parts.append(f"stopped early: {es['waited']} epochs without a {name} gain over {es['min_delta']:g} "
                     f"since epoch {es['best_epoch']}")
    if (ckpts / "best.pt").is_file():
        parts.append(f"predict uses {ckpts / 'best.pt'} (epoch {epoch}, the best {name}; last.pt is epoch "
                     f"{last['epoch']})")
    else:
        parts.append(f"predict uses {ckpts / 'last.pt'} (epoch {last['epoch']}; no {name} value selected a "
                     "best epoch)")
    return "; ".join(parts)


def _with_baseline(record: dict, name: str, value: float) -> str:
    """``name value (baseline b, pocs k)``: the trivial baseline and the classical method where scored."""
    val = record.get("val") or {}
    base, known = (val.get("baseline") or {}).get(name), val.get("classical") or {}
    notes = [f"baseline {base:.4g}"] if base is not None else []
    if known.get(name) is not None:
        notes.append(f"{known['method']} {known[name]:.4g}")
    return f"{name} {value:.4g}" + (f" ({', '.join(notes)})" if notes else "")
