"""``geocnn synth``: synthetic training data made by geocnn itself."""

from __future__ import annotations

from pathlib import Path

import typer

from geocnn.cli import console
from geocnn.synth.write import write_fault_cubes

GROUP = ("synth", "Make synthetic training data (seeded), e.g. faulted cubes with fault labels for pretraining.")


def faults_cmd(
    out: Path = typer.Argument(..., help="Output folder.", show_default=False),
    cubes: int = typer.Option(..., "--cubes", help="How many cubes to draw.", show_default=False),
    size: int = typer.Option(128, "--size", help="Cube edge in voxels (inlines = crosslines = samples), 16-512."),
    seed: int = typer.Option(0, "--seed", help="Cube k is drawn from the seed (seed, k): the same cube whatever "
                             "--cubes is."),
    fmt: str = typer.Option("npy", "--format", help="npy: seismic.npy + faults.npy, each (cube, inline, crossline, "
                            "sample), what a training config reads; segy: seismic_NNN.sgy + faults_NNN.sgy per cube."),
    force: bool = typer.Option(False, "--force", help="Replace existing outputs."),
) -> None:
    """Faulted, folded seismic cubes with fault labels, FaultSeg3D-style (random reflectivity, wavelet
    frequency and phase, folds, 3-7 faults of random strike, dip and throw, field-like noise)."""
    with console.progress() as reporter:
        result = write_fault_cubes(out, cubes, size, seed=seed, fmt=fmt, force=force, reporter=reporter)
    console.out.print(f"wrote {result.cubes} cube(s) of {result.size}³ to {result.out} in {result.seconds:.1f} s "
                      f"({100 * result.fault_share:.1f}% fault voxels): "
                      + ", ".join(f.name for f in result.files[:4]) + (", …" if len(result.files) > 4 else ""))


COMMANDS = [("faults", faults_cmd)]
