"""``geocnn train CONFIG --dry-run``: everything a run would start from, and nothing written.

The resolved config (every default and override filled in, as the run's config.yaml would hold
it), the data and its train/validation split, the model summary, the memory one training step
needs against what the device has free, and the run folder that would be used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from geocnn import data as data_mod
from geocnn import device, summary
from geocnn.config import Config
from geocnn.model import infer
from geocnn.model.budget import available_bytes, needed_bytes
from geocnn.runs import checkpoint as runs
from geocnn.runs import folder as runfolder
from geocnn.runs.resume import Change, changes, refuse_complete
from geocnn.yamlsource import dumps


@dataclass(frozen=True)
class Plan:
    """What ``geocnn train`` would do with this config (see :func:`plan`)."""

    config_yaml: str  # the effective config, as config.yaml would hold it
    run: Path  # the run folder it would use
    device: str
    data: str  # one line: channels, patch, split
    split: dict  # split.json's content
    summary: summary.Summary
    steps_per_epoch: int
    param_bytes: int  # parameters, gradients and optimizer moments
    activation_bytes: int  # activations of one training step (batch_size patches)
    available_bytes: int | None  # free on the device (None: unknown)
    changes: tuple[Change, ...]  # --resume: what this invocation changes in the run

    @property
    def fits(self) -> bool | None:
        if self.available_bytes is None:
            return None
        return self.param_bytes + self.activation_bytes <= self.available_bytes


def plan(cfg: Config, out: Path | None = None, resume: bool = False, force: bool = False,
         reset_optimizer: bool = False) -> Plan:
    """Resolve and check everything ``train`` would, reading the data but writing nothing: no run
    folder, no lock, and no decoded copy of an IBM/integer SEG-Y (training builds that on its first
    run; only the small finite-values verdict is remembered in the cache folder)."""
    default = Path("runs") / cfg.name
    run = runfolder.choose(Path(out) if out is not None else default, out is not None, resume, force)
    found: list[Change] = []
    if resume:
        ckpt = runs.load_checkpoint(runs.checkpoint_dir(run) / "last.pt")
        found = changes(ckpt.config, cfg.raw, run, ckpt.epoch, reset_optimizer)
        refuse_complete(ckpt, cfg, run)
    rt = device.setup(cfg.train.device, cfg.train.amp, cpu_bf16=True)
    try:
        d = data_mod.build(cfg, random_access=False)  # no decoded SEG-Y cache is built for a look
        inf = infer(cfg.model, cfg.patch, receptive=False)
        bs = cfg.train.batch_size
        params, acts = needed_bytes(inf, bs, training=True)
        return Plan(
            config_yaml=dumps(cfg.raw), run=run,
            device=rt.describe(),
            data=f"{' + '.join(d.grid.channel_names)} → patches {'×'.join(map(str, d.geom.size))} along "
                 f"({', '.join(d.geom.model_axes)}); {data_mod.describe_split(d)}",
            split=data_mod.split_record(d),
            summary=summary.summarize(summary.with_spacing(cfg.model, summary.patch_spacing(d.grid.spacing(),
                                                                                            d.geom.model_axes)),
                                      (cfg.model.in_channels, *cfg.patch), bs),
            steps_per_epoch=max(1, math.ceil(cfg.data.sampling.patches_per_epoch // rt.world_size / bs)),
            param_bytes=params, activation_bytes=acts, available_bytes=available_bytes(rt.device),
            changes=tuple(found))
    finally:
        device.teardown(rt)
