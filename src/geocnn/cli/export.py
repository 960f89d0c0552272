"""``geocnn export``."""

from __future__ import annotations

from pathlib import Path

import typer

from geocnn.cli import console


def export_cmd(
    run: Path = typer.Argument(..., help="Run folder (uses checkpoints/best.pt) or a checkpoint .pt file.",
                               show_default=False),
    out: Path = typer.Argument(..., help="Output file: .onnx (ONNX) or .pt2 (torch.export).", show_default=False),
    format_: str = typer.Option(None, "--format", help="onnx | pt2 (default: from the suffix)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run the written file on another batch and "
                               "spatial size and compare with PyTorch."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Write a trained network as ONNX or a torch.export program, for other software.

    Batch and spatial sizes stay dynamic where the network allows them; normalisation, channel
    names, axes, spacing, patch size, task and classes go into the file's metadata (ONNX
    metadata_props; geocnn.json inside a .pt2).
    """
    from geocnn.export import export

    report = export(run, out, fmt=format_, force=force, check=check)
    sizes = ", ".join(s.describe() for s in report.sizes)
    console.out.print(f"[bold green]wrote[/] {report.path} ({report.format}; any batch, {sizes})")


COMMANDS = [("export", export_cmd)]
