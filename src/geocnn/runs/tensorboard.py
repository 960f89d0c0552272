"""Optional TensorBoard logging of a run (``train.tensorboard: true`` or ``--tensorboard``).

The event files under ``<run>/tb/`` carry the same numbers as ``metrics.jsonl``, one scalar per
number of an epoch's line, named by its key path (``train_loss``, ``val/f1``,
``val/baseline/f1``), against the optimizer step; and the pictures of the run folder
(``examples.png``) as images. ``tensorboard --logdir runs`` then compares runs side by side.
TensorBoard is an extra (``pip install 'geocnn[tensorboard]'``); without it, asking for it is
a one-line error before any work.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from geocnn.errors import ConfigError
from geocnn.runs.metrics_log import EpochRecord

FOLDER = "tb"


def require() -> None:
    """Fail early, with the extra to install, when the tensorboard package is missing."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError("TensorBoard logging (train.tensorboard / --tensorboard) needs the tensorboard package",
                          fix="pip install 'geocnn[tensorboard]', or leave TensorBoard logging off") from None


def scalars(record: dict, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every number of a metrics.jsonl line as (tag, value); lists (confusion matrices) and nulls are left out."""
    for key, value in record.items():
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from scalars(value, f"{tag}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and tag != "step":  # step: the x axis
            yield tag, float(value)


class TensorBoardLog:
    """Event files of one run; a resumed run drops the events from ``start_step`` on (it logs them again)."""

    def __init__(self, run: Path, start_step: int | None = None) -> None:
        require()
        from torch.utils.tensorboard import SummaryWriter

        folder = Path(run) / FOLDER
        if start_step is None and folder.exists():
            shutil.rmtree(folder)  # a fresh (or --force) run starts a fresh log
        self.writer = SummaryWriter(str(folder), purge_step=start_step)

    def epoch(self, record: EpochRecord) -> None:
        """One epoch's line of metrics.jsonl, at its optimizer step."""
        for tag, value in scalars(record.to_dict()):
            self.writer.add_scalar(tag, value, record.step)
        self.writer.flush()

    def picture(self, tag: str, png: Path, step: int) -> None:
        """A PNG of the run folder as an image (H, W, RGB)."""
        import matplotlib.image

        image = matplotlib.image.imread(str(png))[..., :3]
        self.writer.add_image(tag, np.ascontiguousarray(image), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
