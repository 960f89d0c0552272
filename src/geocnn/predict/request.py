"""One prediction's options as a record (:class:`PredictRequest`), checked once when it is made.

Everything that can be checked without opening the checkpoint or the input is checked here, in one
place, before any work; what needs them (the window against the model, stride names against the
input's axes, the output kind against the task) is checked by :mod:`geocnn.predict.job`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from geocnn import atomic
from geocnn.config import PrecisionName
from geocnn.errors import ConfigError
from geocnn.grids.formats import FORMATS, Format, is_url, output_format
from geocnn.outputs import AUTO, get_output
from geocnn.patches import BLENDS
from geocnn.predict.engines import check_engine

# --stride: one step for every axis, one per grid axis, or {axis name: step}
Stride = int | tuple[int, ...] | Mapping[str, int]
# --normalize: the run's training statistics, or the input's own (same method, estimated the same way)
NormalizeFrom = Literal["run", "input"]


@dataclass(frozen=True)
class PredictRequest:
    """What to predict, from which model, into which file, and how (see :func:`geocnn.predict.predict`).

    Examples
    --------
    >>> PredictRequest("runs/a", ("cube.sgy",), "pred.sgy", overlap=0.5).blend
    'gaussian'
    >>> PredictRequest("runs/a", ("cube.sgy",), "pred.sgy", overlap=1.5)
    Traceback (most recent call last):
    ...
    geocnn.errors.ConfigError: --overlap must be in [0, 1), got 1.5
    """

    run: str | Path  # run folder (best.pt, else last.pt) or a checkpoint file
    inputs: tuple[str | Path, ...]  # one file per training input, stacked as channels
    out: str | Path  # .sgy/.segy, .npy, .mdio/.zarr (a folder or a URL)
    overlap: float = 0.25  # share of each dense window shared with its neighbours
    blend: str = "gaussian"  # weights of overlapping windows (patches.BLENDS)
    stride: Stride | None = None  # score maps: step per grid axis
    output: str = AUTO  # a name of geocnn.outputs.OUTPUTS, or auto
    window: tuple[int, ...] | None = None  # dense models: window size (default: the training patch)
    both_orientations: bool = False  # 2D section models: average inline and crossline sections
    mask: str | Path | None = None  # trace reconstruction: True = missing trace
    fill_all: bool = False  # trace reconstruction: the prediction everywhere
    split_classes: bool = False  # class probabilities: one file per class
    axes: Mapping[str, str] = field(default_factory=dict)  # input axis → training patch axis
    device: str = "auto"
    threads: int | None = None
    batch_size: int | None = None
    force: bool = False  # replace an existing output
    pictures: bool = True  # write <out>.preview.png
    normalize: NormalizeFrom = "run"  # input: the input's own statistics (a model pretrained on other amplitudes)
    engine: str | None = None  # what runs the network (geocnn.predict.engines.ENGINES); None: the run's predict.engine
    precision: str | None = None  # auto, fp32 or bf16 (config.PrecisionName); None: the run's predict.precision
    picks: str | Path | None = None  # earthquake records: a pick list (CSV, or QuakeML .xml) of the probabilities' peaks
    threshold: float | Mapping[str, float] = 0.5  # --picks: a phase's least peak probability (one, or per phase)
    min_separation: float = 0.5  # --picks: seconds between two picks of one phase at one station

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "axes", dict(self.axes or {}))
        if self.window is not None:
            object.__setattr__(self, "window", tuple(int(n) for n in self.window))
        object.__setattr__(self, "stride", _stride(self.stride))
        self._check()

    def _check(self) -> None:
        if not self.inputs:
            raise ConfigError("no input file given", fix="give one file per training input")
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"--overlap must be in [0, 1), got {self.overlap}")
        if self.blend not in BLENDS:
            raise ConfigError(f"--blend must be one of {', '.join(BLENDS)}, got {self.blend}")
        if self.normalize not in get_args(NormalizeFrom):
            raise ConfigError(f"--normalize must be run or input, got {self.normalize}",
                              fix="run: the training data's statistics; input: the input's own")
        if self.engine is not None:
            check_engine(self.engine)
        if self.precision is not None and self.precision not in get_args(PrecisionName):
            raise ConfigError(f"--precision must be one of {', '.join(get_args(PrecisionName))}, got '{self.precision}'",
                              fix="auto: the run's train.amp on CUDA, fp32 on the CPU; bf16: faster on CPUs with "
                                  "avx512_bf16/AMX, scores within ~1 % of fp32's")
        if self.output != AUTO:
            get_output(self.output)
        output_format(self.out)  # a bad output name fails before any work
        if not is_url(self.out):
            atomic.check_output(self.out)  # not below a regular file, a folder it can write in
        for name, value in (("--batch-size", self.batch_size), ("--threads", self.threads)):
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if self.picks is not None:
            atomic.check_new(self.picks, self.force)  # before any work
        if self.min_separation <= 0:
            raise ConfigError(f"--min-separation must be positive, got {self.min_separation} s")
        if self.window is not None and min(self.window, default=0) < 1:
            raise ConfigError(f"--window sizes must be at least 1, got {','.join(map(str, self.window))}")

    @property
    def format(self) -> Format:
        """The output's format, from its name."""
        return FORMATS[output_format(self.out)]

    @property
    def out_path(self) -> str:
        """The output as a string (a path or an object-store URL, unchanged)."""
        return os.fspath(self.out)


def _stride(stride: int | Sequence[int] | Mapping[str, int] | None) -> Stride | None:
    """``--stride`` as an int, a tuple or a dict of steps ≥ 1 (names are checked against the input later)."""
    if stride is None:
        return None
    if isinstance(stride, Mapping):
        steps: Stride = {str(k): int(v) for k, v in stride.items()}
        values = list(steps.values())
    elif isinstance(stride, int):
        steps, values = stride, [stride]
    else:
        steps = tuple(int(v) for v in stride)
        values = list(steps)
    if any(v < 1 for v in values):
        raise ConfigError(f"--stride steps must be at least 1, got {','.join(map(str, values))}")
    return steps
