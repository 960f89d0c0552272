"""``geocnn train``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.text import Text

from geocnn import api
from geocnn.cli import console
from geocnn.cli.model import print_summary
from geocnn.config import Config
from geocnn.fmt import human_bytes


def train_cmd(
    config: Path = typer.Argument(..., help="Full config YAML (task, data, model, train); with --resume, the "
                                  "run folder (or the config that started it).", show_default=False),
    out: Path = typer.Option(None, "--out", help="Run folder (default: runs/<name>, or runs/<name>-2, -3, ... "
                             "when that one holds a run)."),
    epochs: int = typer.Option(None, "--epochs", min=1, metavar="<n>", help="Override train.epochs (on resume: extend the run)."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, metavar="<n>", help="Stop after this many optimizer steps "
                                  "(this invocation only)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, metavar="<n>", help="Override train.batch_size (per process)."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda | mps (auto: cuda, then mps, then cpu)."),
    seed: int = typer.Option(None, "--seed", min=0, metavar="<n>", help="Override train.seed."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its checkpoints/last.pt, with "
                                "the run's own config.yaml."),
    reset_optimizer: bool = typer.Option(False, "--reset-optimizer", help="With --resume: restart the "
                                         "optimizer's state (needed to change train.optimizer or momentum)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also log to <run>/tb/ for TensorBoard "
                                     "(train.tensorboard; needs pip install 'geocnn[tensorboard]')."),
    threads: int = typer.Option(None, "--threads", min=1, metavar="<n>", help="CPU threads per process (overrides "
                                "train.threads; default: one per core). On a shared machine: your share of the cores."),
    force: bool = typer.Option(False, "--force", help="Replace the run in --out (the old one is deleted once the "
                               "new one has its first checkpoint)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config, data and split, model "
                                 "summary and memory estimate; train nothing, write nothing."),
    set_: list[str] = typer.Option([], "--set", help="Override any config value: section.key=value (YAML value); "
                                   "repeatable, e.g. --set train.lr=0.0005."),
) -> None:
    """Train the CNN of CONFIG on patches of its grids; writes a run folder.

    The run folder holds config.yaml, summary.json, split.json, metrics.jsonl (one line per
    epoch), loss.png, examples.png and checkpoints/last.pt and best.pt. Ctrl-C finishes the step,
    saves a checkpoint and prints the command that resumes; `geocnn train RUN_FOLDER --resume`
    continues exactly. Several GPUs or nodes: torchrun --nproc_per_node N -m geocnn train CONFIG.
    """
    from geocnn.runs.writer import outcome_line

    overrides = list(set_)
    for key, value in (("epochs", epochs), ("max_steps", max_steps), ("batch_size", batch_size),
                       ("device", device), ("seed", seed), ("threads", threads)):
        if value is not None:
            overrides.append(f"train.{key}={value}")
    if compile_:
        overrides.append("train.compile=true")
    if tensorboard:
        overrides.append("train.tensorboard=true")
    if dry_run:
        api.check_train_flags(resume, force, reset_optimizer)
        cfg, folder = api.training_config(config, out, resume, overrides, recover=False)
        _show_plan(cfg, folder, resume, force, reset_optimizer)
        return
    with console.progress() as reporter:
        run = api.train(config, out, resume=resume, force=force, reset_optimizer=reset_optimizer, set=overrides,
                        progress=reporter)
    if console.is_main_rank():
        console.out.print(f"[bold green]done[/]: {run.path} (metrics.jsonl, loss.png, examples.png, checkpoints/)")
        console.out.print(outcome_line(run.path), markup=False, soft_wrap=True)


def _show_plan(cfg: Config, out: Path | None, resume: bool, force: bool, reset_optimizer: bool) -> None:
    """--dry-run: what the run would start from (stdout)."""
    from geocnn.runs import dryrun

    p = dryrun.plan(cfg, out, resume, force, reset_optimizer)
    def say(text: str | Text) -> None:
        console.out.print(text if isinstance(text, Text) else Text(text), soft_wrap=True)

    say(Text("# resolved config (the run's config.yaml)", style="bold"))
    console.out.file.write(p.config_yaml)
    console.out.file.flush()
    say(Text("# data", style="bold"))
    say(Text(p.data))
    say("split: " + json.dumps({k: v for k, v in p.split.items() if k != "description"}, ensure_ascii=False))
    say(Text("# model", style="bold"))
    print_summary(p.summary)
    say(Text("# training", style="bold"))
    need = p.param_bytes + p.activation_bytes
    free = "unknown free" if p.available_bytes is None else f"{human_bytes(p.available_bytes)} free"
    verdict = {None: "", True: " — fits", False: " — does NOT fit: train would refuse it"}[p.fits]
    say(Text(f"device: {p.device}"))
    say(Text(f"memory: ≈ {human_bytes(need)} per step ({human_bytes(p.param_bytes)} parameters, gradients and optimizer "
             f"moments, {human_bytes(p.activation_bytes)} activations for batch {cfg.train.batch_size}); {free}{verdict}"))
    say(Text(f"{cfg.train.epochs} epochs × {p.steps_per_epoch} steps; run folder: {p.run}"
             + (" (resumed)" if resume else "")))
    for c in p.changes:
        say(Text(f"resume changes {c.key}: {c.old} → {c.new}"))
    say(Text("dry run: nothing trained, nothing written"))


COMMANDS = [("train", train_cmd)]
