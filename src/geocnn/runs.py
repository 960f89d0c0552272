"""Run folders and checkpoints.

A run folder (``runs/<name>/``) holds ``config.yaml`` (effective config), ``summary.json``,
``split.json``, ``metrics.jsonl`` (one line per epoch), ``loss.png``, ``examples.png`` and
``checkpoints/last.pt`` / ``best.pt``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts — nothing pickled
beyond what ``torch.load(..., weights_only=True)`` accepts — holding the config (and so the model
spec), weights, normalisation and channel spec, optimizer/scheduler/scaler state, epoch/step,
RNG states and provenance. Everything is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
import yaml

from geocnn import __version__, atomic
from geocnn.errors import DataError

FORMAT = "geocnn-checkpoint/1"


def checkpoint_dir(run: Path) -> Path:
    return run / "checkpoints"


def resolve_checkpoint(path: str | Path, which: str = "best") -> Path:
    """A checkpoint file from a run folder (``best.pt``, else ``last.pt``) or a ``.pt`` path."""
    p = Path(path)
    if p.is_dir():
        for name in (f"{which}.pt", "last.pt", "best.pt"):
            for candidate in (checkpoint_dir(p) / name, p / name):
                if candidate.is_file():
                    return candidate
        raise DataError("no checkpoint in this folder (expected checkpoints/best.pt or last.pt)", where=str(p),
                        fix="give a run folder written by geocnn train, or a .pt file")
    if not p.is_file():
        raise DataError("checkpoint not found", where=str(p), fix="give a run folder or a .pt file")
    return p


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomically write a checkpoint (temp file in the same folder, then rename)."""
    state = {"format": FORMAT, "geocnn_version": __version__, "torch_version": str(torch.__version__), **state}
    with atomic.replacing(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``); a foreign or broken file is a DataError."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read checkpoint ({first[:160]})", where=str(path),
                        fix="give a checkpoint written by geocnn train") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError("not a geocnn checkpoint", where=str(path), fix="give a checkpoint written by geocnn train")
    return state


def write_config(run: Path, raw: dict) -> None:
    atomic.write_text(run / "config.yaml", yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))


def append_metrics(run: Path, record: dict) -> None:
    """Append one epoch's line to metrics.jsonl (rewritten atomically, so a crash never tears it)."""
    path = run / "metrics.jsonl"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    atomic.write_text(path, old + json.dumps(record, default=_json_default) + "\n")


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def truncate_metrics(run: Path, epochs_done: int) -> None:
    """On resume, drop lines of epochs after the checkpoint (they will be run again)."""
    kept = [r for r in read_metrics(run) if r.get("epoch", 0) <= epochs_done]
    atomic.write_text(run / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
