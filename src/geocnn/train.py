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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from geocnn import data as data_mod
from geocnn import device, plots, runs, selfsup, summary
from geocnn.atomic import check_folder, write_json
from geocnn.config import Config
from geocnn.errors import ConfigError, GeocnnError
from geocnn.losses import make_loss
from geocnn.metrics import METRICS
from geocnn.model import build, infer
from geocnn.model.budget import check_fits
from geocnn.progress import SILENT, Reporter
from geocnn.tasks import class_probabilities, positive_probability

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
    """Refuse to clobber a run; clear an old one only with ``force`` (called before any work)."""
    last = runs.checkpoint_dir(run) / "last.pt"
    if resume:
        if not last.is_file():
            raise ConfigError("--resume, but this run folder has no checkpoints/last.pt", where=str(run),
                              fix="start a new run (without --resume) or give the run's --out folder")
        return
    if run.exists() and any(run.iterdir()) and not force:
        raise ConfigError("run folder already exists", where=str(run),
                          fix="continue it with --resume, choose another --out, or pass --force to start over")
    if force and run.exists():
        for name in ("metrics.jsonl", "loss.png", "examples.png", "summary.json", "split.json"):
            (run / name).unlink(missing_ok=True)
        for name in ("last.pt", "best.pt"):
            (runs.checkpoint_dir(run) / name).unlink(missing_ok=True)



def _same_run(cfg: Config, ckpt: runs.Checkpoint, run: Path) -> None:
    """A resumed run must train the same model on the same data."""
    old = ckpt.config
    for section in ("task", "model", "data"):
        if old.get(section) != cfg.raw.get(section):
            raise ConfigError(f"the config's {section} differs from the run being resumed", where=str(run),
                              fix="resume with the run's own config (its config.yaml), or start a new run")


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
    cpus = device.cpu_count()
    if rt.device.type == "cpu":
        return 0 if cpus <= 2 else min(4, cpus // 2)
    return min(8, max(cpus // max(rt.world_size, 1) - 1, 1))


def _loader(dataset, cfg: Config, rt: device.Runtime, sampler=None):
    """One DataLoader for the whole run: persistent workers, pinned memory on CUDA."""
    workers = _workers(cfg, rt)
    return torch.utils.data.DataLoader(
        dataset, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=workers,
        pin_memory=rt.device.type == "cuda", persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
        # its own generator: creating iterators must not draw from the global RNG (exact resume)
        generator=torch.Generator().manual_seed(cfg.train.seed))


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
                examples = (d.norm.invert(x[:n_examples], channel_axis=1).numpy(),
                            _target_units(y, d)[:n_examples].numpy(),
                            _example_values(out, pred, d)[:n_examples])
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


def _example_values(out: torch.Tensor, pred: torch.Tensor, d: data_mod.TrainingData) -> np.ndarray:
    """What the pictures show: positive-class probability for binary dense classes, else predictions."""
    if d.task.dense and d.task.classifies and d.classes == 2:
        return positive_probability(class_probabilities(out))[:, 0].cpu().numpy()
    return pred.numpy()


def _checkpoint_state(cfg: Config, d: data_mod.TrainingData, model, opt, sched, scaler,
                      prog: Progress) -> runs.Checkpoint:
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
        rng=_rng_state())


def train(cfg: Config, out: Path | None = None, resume: bool = False, force: bool = False,
          reporter: Reporter = SILENT) -> Path:
    """Train ``cfg``; returns the run folder. See the module docstring for the flow."""
    rt = device.setup(cfg.train.device, cfg.train.amp)
    run = check_folder(Path(out) if out is not None else default_run_folder(cfg))
    try:
        return _train(cfg, run, resume, force, reporter, rt)
    finally:
        device.teardown(rt)


def _train(cfg: Config, run: Path, resume: bool, force: bool, reporter: Reporter, rt: device.Runtime) -> Path:
    # --- run folder and checkpoint to resume from (the folder is created once data and model check out)
    if rt.main:
        _check_folder(run, resume, force)
    device.barrier(rt)
    ckpt = runs.load_checkpoint(runs.checkpoint_dir(run) / "last.pt") if resume else None
    if ckpt is not None:
        _same_run(cfg, ckpt, run)
    seed = cfg.train.seed
    torch.manual_seed(seed)

    # --- memory: refuse a network the device cannot hold before any array or module is built
    check_fits(infer(cfg.model, cfg.patch, receptive=False), cfg.train.batch_size, rt.device, training=True)

    # --- data: grids, checks, split, normalisation (reused from the checkpoint on resume)
    d = data_mod.build(cfg, stored=(ckpt.normalization, ckpt.target_normalization) if ckpt else None)

    # --- model, optimizer, schedule, loss
    model, inf = build(cfg.model, cfg.patch)
    place = device.placement(rt, cfg.model.dims, cfg.train.channels_last)
    model = place.model(model)
    bs = cfg.train.batch_size
    per_rank = (cfg.data.sampling.patches_per_epoch // rt.world_size)
    steps_per_epoch = max(1, math.ceil(per_rank / bs))
    opt = _optimizer(cfg, model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg, steps_per_epoch))
    scaler = rt.grad_scaler()
    loss_fn = make_loss(cfg.task.classifies, cfg.train.loss, d.class_freq,
                        hidden_only=cfg.task.self_supervised).to(rt.device)
    prog = Progress()
    if ckpt is not None:
        model.load_state_dict(ckpt.model_state)
        opt.load_state_dict(ckpt.optimizer_state)
        sched.load_state_dict(ckpt.scheduler_state)
        scaler.load_state_dict(ckpt.scaler_state)
        prog = Progress(ckpt.epoch, ckpt.step, ckpt.batch_in_epoch, ckpt.best_value, ckpt.best_epoch)
        _set_rng_state(ckpt.rng)
    if rt.distributed:
        model = DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    if cfg.train.compile:
        model = torch.compile(model)

    # --- what the run folder says before the first step
    headline = cfg.task.headline(d.classes).name
    best_name = cfg.train.best_metric
    best_metric = METRICS[best_name]
    if rt.main:
        runs.checkpoint_dir(run).mkdir(parents=True, exist_ok=True)
        runs.write_config(run, cfg.raw)
        shape = (cfg.model.in_channels, *cfg.patch)
        write_json(run / "summary.json", summary.to_json(summary.summarize(cfg.model, shape, bs)))
        write_json(run / "split.json", data_mod.split_record(d))
        if ckpt is not None:
            runs.truncate_metrics(run, prog.epoch)
        log.info("device: %s", rt.describe())
        log.info("run folder: %s", run)
        log.info("data: %s → patches %s along (%s); %s", " + ".join(d.grid.channel_names),
                 "×".join(map(str, d.geom.size)), ", ".join(d.geom.model_axes), data_mod.describe_split(d))
        log.info("model: %s parameters, receptive field %s", f"{sum(r.params for r in inf.records):,}",
                 "×".join(map(str, inf.output_record.receptive_field)))
        if ckpt is not None:
            log.info("resuming after epoch %d (step %d)", prog.epoch, prog.step)

    # --- epochs
    model.train()
    max_steps = cfg.train.max_steps
    history = runs.read_metrics(run) if rt.main else []
    sampler = data_mod.EpochSampler(d.per_process(rt.world_size))
    loader = _loader(d.training_set(rt.rank, rt.world_size), cfg, rt, sampler)
    val_loader = _loader(d.validation_set(rt.rank, rt.world_size), cfg, rt)
    try:
        while prog.epoch < cfg.train.epochs and not (max_steps and prog.step >= max_steps):
            epoch = prog.epoch + 1
            sampler.set_epoch(epoch, prog.batch_in_epoch * bs)
            task = reporter.task(f"epoch {epoch}/{cfg.train.epochs}", total=len(sampler), unit="patch")
            loss_sum, seen, wait, t0 = 0.0, 0, 0.0, time.perf_counter()
            t_last = t0
            stopped = False
            for x, y in loader:
                wait += time.perf_counter() - t_last
                x, y = place.batch(x), place.target(y)
                with rt.autocast():
                    out = model(x)
                    loss = loss_fn(out, y)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"loss became {value} at epoch {epoch}, step {prog.step + 1}; training stopped, "
                        f"checkpoints/last.pt holds the last good state (epoch {prog.epoch})", where=str(run),
                        fix="lower train.lr, add train.grad_clip, or check the data for extreme values")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.train.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                prog.step += 1
                prog.batch_in_epoch += 1
                loss_sum += value * len(x)
                seen += len(x)
                task.advance(len(x), info=f"loss {value:.4g}")
                t_last = time.perf_counter()
                if max_steps and prog.step >= max_steps:
                    # stopped inside the epoch: the checkpoint remembers where, so --resume goes on
                    stopped = seen < len(sampler)
                    break
            task.close()
            elapsed = time.perf_counter() - t0
            val_loss, val, examples = _validate(model, d, val_loader, loss_fn, rt, place,
                                                cfg.train.examples)
            if not stopped:
                prog.epoch, prog.batch_in_epoch = epoch, 0
            totals = torch.tensor([loss_sum, seen, elapsed, wait], dtype=torch.float64)
            device.all_reduce_(totals, rt)
            record = {
                "epoch": epoch, "step": prog.step, **({"partial": True} if stopped else {}),
                "train_loss": float(totals[0] / max(totals[1], 1)), "val_loss": val_loss, "val": val,
                "lr": opt.param_groups[0]["lr"],
                "patches_per_s": float(totals[1] / max(elapsed, 1e-9)),
                "data_wait_fraction": float(totals[3] / max(totals[2], 1e-9)), "time_s": elapsed,
            }
            score = val_loss if best_name == "val_loss" else val.get(best_name)
            if score is None:
                score = record["train_loss"] if best_name == "val_loss" else None
            improved = score is not None and best_metric.better(score, prog.best)
            if improved:
                prog.best, prog.best_epoch = score, epoch
            if rt.main:
                state = _checkpoint_state(cfg, d, model, opt, sched, scaler, prog)
                runs.save_checkpoint(runs.checkpoint_dir(run) / "last.pt", state)
                if improved:
                    runs.save_checkpoint(runs.checkpoint_dir(run) / "best.pt", state)
                runs.append_metrics(run, record)
                history.append(record)
                plots.loss_curve(history, run / "loss.png", headline if val else None)
                if examples is not None:
                    plots.examples(*examples, cfg.task, run / "examples.png", d.geom.model_axes)
                log.info("epoch %d: %s", epoch, epoch_line(record, headline))
            device.barrier(rt)
    except KeyboardInterrupt:
        if rt.main:
            state = _checkpoint_state(cfg, d, model, opt, sched, scaler, prog)
            runs.save_checkpoint(runs.checkpoint_dir(run) / "last.pt", state)
        raise TrainingInterrupted(
            f"interrupted at epoch {prog.epoch + 1}, step {prog.step}; saved {runs.checkpoint_dir(run) / 'last.pt'}",
            fix=f"resume with: geocnn train {cfg.path} --out {run} --resume") from None
    finally:
        _close(loader, val_loader)
    return run


def epoch_line(record: dict, headline: str) -> str:
    """One human line per epoch: losses, headline metric vs baseline, speed."""
    parts = [f"train loss {record['train_loss']:.4g}"]
    if record["val_loss"] is not None:
        parts.append(f"val loss {record['val_loss']:.4g}")
    val = record.get("val") or {}
    if headline in val:
        base = val.get("baseline", {}).get(headline)
        parts.append(f"{headline} {val[headline]:.4g}" + (f" (baseline {base:.4g})" if base is not None else ""))
    parts.append(f"{record['patches_per_s']:.0f} patches/s, waiting on data {100 * record['data_wait_fraction']:.0f}%")
    return ", ".join(parts)
