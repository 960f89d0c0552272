"""``geocnn train``."""

from __future__ import annotations

from pathlib import Path

import typer

from geocnn.cli import console
from geocnn.config import load_config


def train_cmd(
    config: Path = typer.Argument(..., help="Full config YAML (task, data, model, train).", show_default=False),
    out: Path = typer.Option(None, "--out", help="Run folder (default: runs/<name>)."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Override train.epochs."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimizer steps."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Override train.batch_size (per process)."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda | mps (auto: cuda, then mps, then cpu)."),
    seed: int = typer.Option(None, "--seed", min=0, help="Override train.seed."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last.pt."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    force: bool = typer.Option(False, "--force", help="Start over in an existing run folder."),
    set_: list[str] = typer.Option([], "--set", help="Override any config value: section.key=value (YAML value); "
                                   "repeatable, e.g. --set train.lr=0.0005."),
) -> None:
    """Train the CNN of CONFIG on patches of its grids; writes a run folder.

    The run folder holds config.yaml, summary.json, split.json, metrics.jsonl (one line per
    epoch), loss.png, examples.png and checkpoints/last.pt and best.pt. Ctrl-C saves a checkpoint;
    --resume continues exactly. Several GPUs or nodes: torchrun --nproc_per_node N -m geocnn train CONFIG.
    """
    from geocnn.train import outcome_line, train

    overrides = list(set_)
    for key, value in (("epochs", epochs), ("max_steps", max_steps), ("batch_size", batch_size),
                       ("device", device), ("seed", seed)):
        if value is not None:
            overrides.append(f"train.{key}={value}")
    if compile_:
        overrides.append("train.compile=true")
    cfg = load_config(config, overrides)
    with console.progress() as reporter:
        run = train(cfg, out, resume=resume, force=force, reporter=reporter)
    if console.is_main_rank():
        console.out.print(f"[bold green]done[/]: {run} (metrics.jsonl, loss.png, examples.png, checkpoints/)")
        console.out.print(outcome_line(run), markup=False, soft_wrap=True)


COMMANDS = [("train", train_cmd)]
