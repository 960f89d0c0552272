"""``geocnn predict``."""

from __future__ import annotations

from pathlib import Path

import typer

from geocnn import api
from geocnn.cli import console
from geocnn.errors import ConfigError
from geocnn.outputs import AUTO, OUTPUTS


def predict_cmd(
    run: Path = typer.Argument(..., help="Run folder (uses checkpoints/best.pt) or a checkpoint .pt file.",
                               show_default=False),
    inputs: list[Path] = typer.Argument(..., help="Input file(s), stacked as channels as in training.",
                                        show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Output: .sgy/.segy (with the input's headers), .npy "
                             "(+ JSON sidecar), a .mdio/.zarr store (chunked; torchrun ranks write their "
                             "own chunks), .tif (a GeoTIFF of a GeoTIFF input, else an OME-TIFF; DIR/slice_{:04d}.tif: a "
                             "folder of 2D slices), .nc, or .mseed for earthquake records (one probability trace per "
                             "station and class).", show_default=False),
    overlap: float = typer.Option(0.25, "--overlap", min=0.0, max=0.95, metavar="<share>", help="Share of each window shared "
                                  "with its neighbours."),
    blend: str = typer.Option("gaussian", "--blend", help="Weights of overlapping windows: gaussian | linear | none."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, metavar="<n>", help="Windows per batch (default: training's)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | mps."),
    output: str = typer.Option(AUTO, "--output", help=f"{' | '.join(OUTPUTS)} (auto: probabilities for binary, "
                               "labels for multi-class, values for regression)."),
    window: str = typer.Option(None, "--window", help="Window size for dense models, e.g. 64,64 (default: the "
                               "training patch; must be a size the model accepts)."),
    both_orientations: bool = typer.Option(False, "--both-orientations", help="2D section models: average "
                                           "inline and crossline sections."),
    threads: int = typer.Option(None, "--threads", min=1, metavar="<n>", help="CPU threads (default: the run's train.threads, "
                                "else one per core)."),
    mask: Path = typer.Option(None, "--mask", help="Trace reconstruction: .npy of booleans over the trace "
                              "positions, True = missing (default: the input's dead traces).", show_default=False),
    fill_all: bool = typer.Option(False, "--all", help="Trace reconstruction: write the model's prediction for every "
                                  "trace, not only the missing ones."),
    stride: str = typer.Option(None, "--stride", help="Patch/trace models: map step, one number for every axis "
                               "(4), one per axis (1,4,8) or by name (inline=2,crossline=4); the map's spacing is "
                               "stride × the input's."),
    split_classes: bool = typer.Option(False, "--split-classes", help="Class probabilities: one output per class, "
                                       "NAME.class-K.sgy (or .npy), written all or none."),
    axes: str = typer.Option(None, "--axes", help="Map input axes onto the model's training axes, e.g. "
                             "trace=crossline to run a section model along a 2D line."),
    normalize: str = typer.Option("run", "--normalize", help="run: normalise with the training data's statistics "
                                  "(stored in the checkpoint); input: with this input's own (a model pretrained on "
                                  "other amplitudes, e.g. synthetic cubes)."),
    engine: str = typer.Option(None, "--engine", help="torch | onnxruntime | auto: what runs the network "
                               "(auto: the fastest of PyTorch in both memory layouts and ONNX Runtime, measured on "
                               "this machine and cached beside the checkpoint; default: the run's predict.engine, "
                               "else torch).", show_default=False),
    precision: str = typer.Option(None, "--precision", help="auto | fp32 | bf16: the network's arithmetic (auto: "
                                  "the run's train.amp on CUDA, fp32 on the CPU; bf16 on a CPU with avx512_bf16/AMX "
                                  "runs conv stacks about twice as fast, scores within ~1 % of fp32's; default: the "
                                  "run's predict.precision).", show_default=False),
    picks: Path = typer.Option(None, "--picks", help="Earthquake records: also write picks, the peaks of each phase's "
                               "probability, as CSV (station, phase, time UTC, probability) or QuakeML (.xml).",
                               show_default=False),
    threshold: str = typer.Option("0.5", "--threshold", help="--picks: least peak probability, one for every phase "
                                  "(0.5) or per phase (P=0.5,S=0.4)."),
    min_separation: float = typer.Option(0.5, "--min-separation", metavar="<seconds>", help="--picks: seconds "
                                         "between two picks of one phase at one station (the more probable is kept)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Apply a trained model to whole grids with blended sliding windows, in bounded memory.

    Writes the prediction as SEG-Y lined up trace for trace with the input (its headers, IEEE
    floats) or as .npy, plus a PNG preview (middle inline, crossline and time slice; for
    earthquake records, the first stations' components, phase probabilities and picks).
    """
    size = None
    if window:
        try:
            size = [int(v) for v in window.replace("x", ",").split(",")]
        except ValueError:
            raise ConfigError(f"--window must be sizes separated by commas, e.g. 64,64; got '{window}'") from None
    with console.progress() as reporter:
        report = api.predict(run, inputs, out, progress=reporter, overlap=overlap, blend=blend, batch_size=batch_size,
                             device_name=device, output=output, force=force, window=size,
                             both_orientations=both_orientations, threads=threads, mask=mask, fill_all=fill_all,
                             stride=parse_stride(stride), split_classes=split_classes,
                             axes_map=parse_axes(axes), normalize=normalize, engine=engine, precision=precision, picks=picks,
                             threshold=parse_threshold(threshold), min_separation=min_separation)
    if console.is_main_rank():
        rate = report.windows / report.seconds if report.seconds else 0.0
        written = ", ".join(map(str, report.outputs)) if len(report.outputs) > 1 else report.output
        console.out.print(f"[bold green]wrote[/] {written} ({report.windows:,} windows, {rate:,.1f} windows/s)")
        for p in report.pictures:
            console.out.print(f"preview: {p}")
        if report.picks is not None:
            console.out.print(f"[bold green]wrote[/] {report.picks}")


def parse_stride(text: str | None) -> int | list[int] | dict[str, int] | None:
    """``4`` → 4; ``1,4,8`` → [1, 4, 8]; ``inline=2,crossline=4`` → {"inline": 2, "crossline": 4}."""
    if not text:
        return None
    try:
        parts = [p.strip() for p in text.split(",")]
        if all("=" in p for p in parts):
            return {k.strip(): int(v) for k, v in (p.split("=", 1) for p in parts)}
        steps = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--stride must be a number, numbers separated by commas or axis=number pairs; got "
                          f"'{text}'", fix="e.g. --stride 4, --stride 1,4,8 or --stride inline=2,crossline=4") from None
    return steps[0] if len(steps) == 1 else steps


def parse_threshold(text: str) -> float | dict[str, float]:
    """``0.5`` → 0.5; ``P=0.5,S=0.4`` → {"P": 0.5, "S": 0.4} (checked against the model's phases later)."""
    try:
        parts = [p.strip() for p in text.split(",")]
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        if len(parts) == 1:
            return float(parts[0])
    except ValueError:
        pass
    raise ConfigError(f"--threshold must be a number or phase=number pairs; got '{text}'",
                      fix="e.g. --threshold 0.5 or --threshold P=0.5,S=0.4")


def parse_axes(text: str | None) -> dict[str, str] | None:
    """``trace=crossline`` → {"trace": "crossline"} (input axis → training axis)."""
    if not text:
        return None
    pairs = [p.strip() for p in text.split(",")]
    if not all(p.count("=") == 1 and all(p.split("=")) for p in pairs):
        raise ConfigError(f"--axes must be input=training axis pairs separated by commas; got '{text}'",
                          fix="e.g. --axes trace=crossline")
    given = [p.split("=")[0].strip() for p in pairs]
    twice = next((a for a in given if given.count(a) > 1), None)
    if twice is not None:
        raise ConfigError(f"--axes names input axis '{twice}' twice ('{text}')",
                          fix="map each input axis once, e.g. --axes trace=crossline")
    return {k.strip(): v.strip() for k, v in (p.split("=") for p in pairs)}


COMMANDS = [("predict", predict_cmd)]
