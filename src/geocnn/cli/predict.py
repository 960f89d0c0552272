"""``geocnn predict``."""

from __future__ import annotations

from pathlib import Path

import typer

from geocnn.cli import console
from geocnn.errors import ConfigError


def predict_cmd(
    run: Path = typer.Argument(..., help="Run folder (uses checkpoints/best.pt) or a checkpoint .pt file.",
                               show_default=False),
    inputs: list[Path] = typer.Argument(..., help="Input file(s), stacked as channels as in training.",
                                        show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Output: .sgy/.segy (with the input's headers), .npy "
                             "(+ JSON sidecar), or a .mdio/.zarr store (chunked; torchrun ranks write their "
                             "own chunks).", show_default=False),
    overlap: float = typer.Option(0.25, "--overlap", min=0.0, max=0.95, help="Share of each window shared "
                                  "with its neighbours."),
    blend: str = typer.Option("gaussian", "--blend", help="Weights of overlapping windows: gaussian | linear | none."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Windows per batch (default: training's)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | mps."),
    output: str = typer.Option("auto", "--output", help="probabilities | labels | values (auto: probabilities "
                               "for binary, labels for multi-class, values for regression)."),
    window: str = typer.Option(None, "--window", help="Window size for dense models, e.g. 64,64 (default: the "
                               "training patch; must be a size the model accepts)."),
    both_orientations: bool = typer.Option(False, "--both-orientations", help="2D section models: average "
                                           "inline and crossline sections."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads (default: the run's train.threads, "
                                "else one per core)."),
    mask: Path = typer.Option(None, "--mask", help="Trace reconstruction: .npy of booleans over the trace "
                              "positions, True = missing (default: the input's dead traces).", show_default=False),
    fill_all: bool = typer.Option(False, "--all", help="Trace reconstruction: write the model's prediction for every "
                                  "trace, not only the missing ones."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Apply a trained model to whole grids with blended sliding windows, in bounded memory.

    Writes the prediction as SEG-Y lined up trace for trace with the input (its headers, IEEE
    floats) or as .npy, plus a PNG preview (middle inline, crossline and time slice).
    """
    from geocnn.predict import predict

    size = None
    if window:
        try:
            size = [int(v) for v in window.replace("x", ",").split(",")]
        except ValueError:
            raise ConfigError(f"--window must be sizes separated by commas, e.g. 64,64; got '{window}'") from None
    with console.progress() as reporter:
        report = predict(run, inputs, out, overlap=overlap, blend=blend, batch_size=batch_size,
                         device_name=device, output=output, force=force, window=size,
                         both_orientations=both_orientations, threads=threads, mask=mask, fill_all=fill_all,
                         reporter=reporter)
    if console.is_main_rank():
        rate = report.windows / report.seconds if report.seconds else 0.0
        console.out.print(f"[bold green]wrote[/] {report.output} ({report.windows:,} windows, {rate:,.1f} windows/s)")
        for p in report.pictures:
            console.out.print(f"preview: {p}")


COMMANDS = [("predict", predict_cmd)]
