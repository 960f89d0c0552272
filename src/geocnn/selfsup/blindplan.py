"""How a ``denoise_self`` run with ``data.mask.shape`` hides the noise: measure, choose, check.

1. The noise correlation of the inputs is measured from the noisy data alone
   (:mod:`geocnn.classical.noisecorr`) and logged per axis, in traces and samples.
2. ``shape: auto`` takes the blind region from that measurement (:func:`geocnn.selfsup.blindspots.auto_shape`);
   the log states the region and why.
3. A network blind over the region by construction (a ``blind`` first convolution, no mixing
   across its lateral axes afterwards: :mod:`geocnn.model.blind`) trains on every sample with
   nothing hidden in the input; one that declares a blind centre but still reads inside the region
   is refused (it would learn the noise); any other network gets the region hidden in its input
   around sparse blind spots (:func:`geocnn.selfsup.blindspots.hide_regions`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from geocnn.classical.noisecorr import NoiseCorrelation, measure_grid
from geocnn.errors import ConfigError
from geocnn.model.blind import blind_over, has_blind_layer
from geocnn.selfsup.blindspots import Blinding, BlindShape, auto_shape

log = logging.getLogger(__name__)


def plan(cfg: Any, grid: Any, axes: tuple[str, ...], patch: tuple[int, ...], seed: int) -> Blinding:
    """The :class:`~geocnn.selfsup.blindspots.Blinding` of a run (``cfg.data.mask.shape`` is set)."""
    noise = measure_grid(grid, seed=seed)
    _log_noise(noise)
    mask = cfg.data.mask
    if mask.shape == "auto":
        shape, why = auto_shape(noise, axes)
        log.info("blind region (mask: auto): %s", shape.describe(axes))
        for line in why:
            log.info("  %s", line)
    else:
        shape = BlindShape.parse(mask.shape)
        log.info("blind region (data.mask.shape): %s", shape.describe(axes))
    try:
        shape.check(patch, axes)
    except ValueError as exc:
        raise ConfigError(f"data.mask: {exc}", where=cfg.path, fix="use a larger patch or a smaller region") from None
    dense = False
    if has_blind_layer(cfg.model):
        blind, reads = blind_over(cfg.model, patch, shape)
        if not blind:
            offset = ", ".join(f"{d:+d} {a}" for d, a in zip(reads, axes))
            raise ConfigError(f"the network declares a blind centre but reads the input at {offset} from the "
                              f"sample it predicts, inside the blind region {shape.describe(axes)}: it would learn "
                              "the noise", where=cfg.path,
                              fix="make the first conv's blind cover the region and give later layers kernel 1 "
                                  "along its lateral axes, or set data.mask.shape to the region the network "
                                  "is blind over")
        dense = True
        log.info("the network never reads that region around a sample (its gradient there is zero): nothing is "
                 "hidden in the input and every sample is scored")
    return Blinding(dataclasses.replace(mask, shape=tuple(shape.to_config())), shape, dense, noise)


def _log_noise(noise: NoiseCorrelation | None) -> None:
    if noise is None:
        log.info("noise correlation: not measured (no lateral axis has enough traces)")
        return
    log.info("noise correlation measured on the inputs (%d lines; f-x prediction residual):", noise.lines)
    for line in noise.lines_text():
        log.info("  %s", line)
