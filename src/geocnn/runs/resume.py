"""Resuming a run: the run's own effective config is the truth, what may change on resume, and
the state a run starts from (:class:`Start`).

A run folder's ``config.yaml`` is the config the run trains with, overrides included. ``geocnn
train RUN --resume`` rebuilds the config from it (``--max-steps`` is a stop for one invocation and
is not carried over). A value given again on resume (``--epochs``, ``--set train.lr=…``, or an
edited ``config.yaml``) is compared with the checkpoint's config, key by key:

- keys in :data:`CHANGEABLE` — the machine the run computes on (:data:`MACHINE`: device, threads,
  workers, ...), how long and how hard it trains from here (:data:`PLAN`), what it reports
  (:data:`REPORTS`) — are applied from the next step on and recorded (config.yaml, and the next
  line of metrics.jsonl under ``resumed.changed``);
- keys in :data:`OPTIMIZER_KEYS` change the optimizer's kind or state layout, so they apply only
  with ``--reset-optimizer`` (the optimizer restarts from zero state; the schedule continues);
- every other key (task, data, model, batch size, schedule, loss, seed, ...) would make the
  resumed run a different experiment than its first part: refused with one line.

A run starts from ``checkpoints/last.pt`` (resume: weights, optimizer, schedule, scaler, the best
epoch so far and early stopping's counter, the random state, and the unfinished epoch's sums), from
the weights of ``train.init_from`` (a fresh run that fine-tunes), or from nothing. Everything is
restored in one place, :meth:`Start.restore`, after the model and optimizer are built and before
they are wrapped, so a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from geocnn.config import Config, load_config, parse_config
from geocnn.errors import ConfigError
from geocnn.runs import folder as runfolder
from geocnn.runs import transfer
from geocnn.runs.checkpoint import Checkpoint, checkpoint_dir, load_checkpoint
from geocnn.runs.early_stop import BestTracker
from geocnn.runs.metrics_log import Resumed
from geocnn.yamlsource import Source, load

log = logging.getLogger(__name__)

# The rule, stated once: a resumed run continues the same experiment, so a setting may change on
# resume only when it does not decide what the run is — the machine it runs on, how long and how hard
# it trains from here, and what it reports besides its weights. Each table: key → why it is safe.
MACHINE = {  # where and how fast the same steps run: the machine a run lands on is not part of its result
    "train.device": "the same state on another device",
    "train.amp": "precision from the next step (it follows the device: bf16 where supported, fp32 on the CPU)",
    "train.compile": "the same model, compiled or not",
    "train.channels_last": "memory layout only",
    "train.workers": "patches are drawn from (seed, epoch, index) whatever the worker count",
    "train.threads": "the same steps on more or fewer CPU cores (your share of a shared machine)",
    "data.on_device": "the same patches, cut on the device or by the loader",
}
PLAN = {  # how long and how hard the run trains from here
    "train.epochs": "extends or shortens the plan; the learning-rate schedule follows the new total from here",
    "train.max_steps": "a stop for this invocation",
    "train.lr": "the schedule continues from its current step at the new base rate",
    "train.grad_clip": "applies from the next step",
    "train.weight_decay": "applies from the next step",
}
REPORTS = {  # what the run writes besides its weights
    "train.examples": "pictures only",
    "train.tensorboard": "a second log of metrics.jsonl's numbers, from the resumed step on",
}
CHANGEABLE = {**MACHINE, **PLAN, **REPORTS}
OPTIMIZER_KEYS = ("train.optimizer", "train.momentum")  # with --reset-optimizer only
SESSION_KEYS = ("train.max_steps",)  # not inherited from the run: given again or unset


@dataclass(frozen=True)
class Change:
    """One config value that differs between the run's checkpoint and this invocation."""

    key: str
    old: Any
    new: Any

    def record(self) -> list:
        return [self.old, self.new]


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{'train': {'lr': 1}}`` → ``{'train.lr': 1}`` (lists are leaves)."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flatten(v, key) if isinstance(v, dict) and v else {key: v})
    return out


def changes(old: dict, new: dict, run: Path, epochs_done: int, reset_optimizer: bool) -> list[Change]:
    """The differences ``old`` (checkpoint) → ``new`` (this invocation) a resume may apply; refuses the rest."""
    a, b = flatten(old), flatten(new)
    found = [Change(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
             if a.get(k) != b.get(k) and k not in SESSION_KEYS]
    for c in found:
        section = c.key.split(".", 1)[0]
        if c.key in CHANGEABLE:
            if c.key == "train.epochs" and c.new < epochs_done:
                raise ConfigError(f"train.epochs {c.new} on resume, but the run has already done {epochs_done} "
                                  "epochs", where=str(run), fix=f"give --epochs {epochs_done} or more")
            continue
        if section in ("task", "model", "data", "name"):
            raise ConfigError(f"the config's {section} differs from the run being resumed ({c.key}: "
                              f"{_show(c.old)} in the run, {_show(c.new)} now)", where=str(run),
                              fix="resume with the run's own config (geocnn train RUN_FOLDER --resume), or start a "
                                  "new run")
        if c.key in OPTIMIZER_KEYS and not reset_optimizer:
            raise ConfigError(f"--resume cannot change {c.key} ({_show(c.old)} in the run, {_show(c.new)} now) "
                              "and keep the optimizer's state", where=str(run),
                              fix="add --reset-optimizer to restart the optimizer's state with the new setting, or "
                                  "drop the change")
        if c.key not in OPTIMIZER_KEYS:
            raise ConfigError(f"--resume cannot change {c.key} ({_show(c.old)} in the run, {_show(c.new)} now): "
                              "the rest of the run would not continue the same experiment", where=str(run),
                              fix=f"drop the change to resume, or start a new run with it; resume may change "
                                  f"{', '.join(k.removeprefix('train.') for k in CHANGEABLE)}")
    return found


def refuse_complete(ckpt: Checkpoint, cfg: Config, run: Path) -> None:
    """Resuming a run with nothing left to do is a mistake (a typo'd folder, a forgotten ``--epochs``):
    one line that says the run is complete and how to extend it, instead of a silent no-op."""
    stop = ckpt.early_stop
    if stop and stop.get("waited", 0) >= stop.get("patience", 1):
        raise ConfigError(f"the run is complete: early stopping ended it after epoch {ckpt.epoch} (no better "
                          f"{ckpt.best_metric} for {stop['waited']} epochs since epoch {stop.get('best_epoch')})",
                          where=str(run), fix="predict with it as it is, or start a new run (another --out, or "
                                              "--force) to train with other settings")
    done, planned = ckpt.epoch, cfg.train.epochs
    if done >= planned and ckpt.batch_in_epoch == 0:
        raise ConfigError(f"the run is complete: all {planned} epochs are done (checkpoints/last.pt is epoch {done})",
                          where=str(run), fix=f"to train further, extend it: geocnn train {run} --resume --epochs "
                                              f"{done + max(1, done)} (or --set train.epochs=N, N > {done})")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def config_of_run(run: Path, overrides: list[str], recover: bool = True) -> Config:
    """The run's own config (``config.yaml``, else the checkpoint's), with this invocation's overrides.

    ``train.max_steps`` of the previous invocation is dropped: it stopped that invocation. A run
    left aside by a ``--force`` run that died before its first checkpoint is put back first
    (``recover``; a dry run, which writes nothing, is refused instead).
    """
    if recover:
        runfolder.recover_before_reading(run)
    elif (run / runfolder.ASIDE).is_dir():
        raise ConfigError(f"a --force run stopped before its first checkpoint; the previous run is in "
                          f"{run / runfolder.ASIDE}", where=str(run),
                          fix=f"geocnn train {run} --resume (without --dry-run) puts it back first")
    last = checkpoint_dir(run) / "last.pt"
    if not last.is_file():
        raise ConfigError("--resume, but this run folder has no checkpoints/last.pt", where=str(run),
                          fix="start a new run (give its config file, without --resume)")
    path = run / runfolder.CONFIG_FILE
    if path.is_file():
        data, source = load(path)
    else:
        data, source = load_checkpoint(last).config, Source(str(last))
    if isinstance(data, dict) and isinstance(data.get("train"), dict):
        data["train"].pop("max_steps", None)
    return parse_config(data, source, overrides)


def resume_target(target: Path, out: Path | None, overrides: list[str], recover: bool = True) -> tuple[Config, Path]:
    """``geocnn train TARGET --resume``: TARGET is the run folder, or the config file that started it.

    With a config file the run folder is ``--out`` (or ``runs/<name>``) and the run's own config
    still wins: the file must describe the same task, data and model; other differences are
    reported and ignored (give them as options to change them).
    """
    if target.is_dir():
        if out is not None and Path(out).resolve() != target.resolve():
            raise ConfigError(f"--out {out} and the run folder {target} disagree", where=str(target),
                              fix="give the run folder once: geocnn train RUN_FOLDER --resume")
        return config_of_run(target, overrides, recover), target
    given = load_config(target)
    run = Path(out) if out is not None else Path("runs") / given.name
    cfg = config_of_run(run, overrides, recover)
    overridden = {item.split("=", 1)[0].strip() for item in overrides}
    ignored = [k for k, v in flatten(given.raw).items()
               if k not in SESSION_KEYS and k not in overridden and flatten(cfg.raw).get(k, v) != v]
    for k in ignored:
        if k.split(".", 1)[0] in ("task", "model", "data") and k not in CHANGEABLE:
            raise ConfigError(f"the config's {k.split('.', 1)[0]} differs from the run being resumed ({k})",
                              where=str(target), fix="resume with the run's own config: geocnn train "
                                                     f"{run} --resume")
    if ignored:
        log.info("resuming with the run's own config (%s); %s differs in %s — change it with --set on resume",
                 run / "config.yaml", target, ", ".join(ignored))
    return cfg, run


# ----------------------------------------------------------------------------- the state a run starts from

def rng_state() -> dict:
    """The global random state (CPU, and every CUDA device): what an exact resume restores."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass(frozen=True)
class Start:
    """What a run starts from: the checkpoint it resumes and the config changes it applies, or
    the weights of ``train.init_from`` (``init``: their state and file), or neither."""

    ckpt: Checkpoint | None = None
    changed: tuple[Change, ...] = ()
    init: tuple[dict, Path] | None = None

    @classmethod
    def of(cls, cfg: Config, run: Path, resume: bool, reset_optimizer: bool) -> Start:
        """Read what ``cfg`` starts from (before any work, so a bad checkpoint or path fails first)."""
        if resume:
            ckpt = load_checkpoint(checkpoint_dir(run) / "last.pt")
            changed = tuple(changes(ckpt.config, cfg.raw, run, ckpt.epoch, reset_optimizer))
            refuse_complete(ckpt, cfg, run)
            return cls(ckpt, changed)
        return cls(init=transfer.load_source(cfg.train.init_from) if cfg.train.init_from else None)

    def normalization(self) -> tuple | None:
        """The checkpoint's normalisations (None for a new run: estimated from the data). A target
        normalised like the input is the input's object again (the validation baseline "input as
        prediction" is scored only then, as in the run's first part)."""
        if self.ckpt is None:
            return None
        norm, target = self.ckpt.normalization, self.ckpt.target_normalization
        return norm, norm if target == norm else target

    def resumed(self) -> Resumed | None:
        """What the first line after a resume records."""
        if self.ckpt is None:
            return None
        return Resumed(self.ckpt.step, {c.key: c.record() for c in self.changed})

    def restore(self, model: torch.nn.Module, opt: torch.optim.Optimizer, sched, factor, scaler,
                tracker: BestTracker, reset_optimizer: bool, run: Path) -> None:
        """Put the checkpoint's state into the freshly built model, optimizer, schedule, scaler and
        tracker, and the random state last (nothing may draw after it before the first step)."""
        ckpt = self.ckpt
        if ckpt is None:
            return
        model.load_state_dict(ckpt.model_state)
        restore_optimizer(opt, sched, factor, ckpt, reset_optimizer, run)
        if ckpt.scaler_state and scaler.is_enabled():
            scaler.load_state_dict(ckpt.scaler_state)
        tracker.restore(ckpt.best_value, ckpt.best_epoch, ckpt.early_stop)
        set_rng_state(ckpt.rng)


def restore_optimizer(opt: torch.optim.Optimizer, sched, factor, ckpt: Checkpoint, reset: bool, run: Path) -> None:
    """Optimizer and schedule state from the checkpoint; the config's hyperparameters win (only the
    keys :data:`CHANGEABLE` allows can differ), and the current rate follows from them."""
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
