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
4. A network that ends in a ``posterior`` layer gets its taps fitted after every epoch
   (:func:`fit_posterior`): the blind prediction's residuals on training patches, its mean
   response to its input and the measured noise give the Wiener taps of
   :mod:`geocnn.selfsup.posterior`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from geocnn.classical.noisecorr import NoiseCorrelation, measure_grid
from geocnn.errors import ConfigError
from geocnn.model.blind import (
    blind_over,
    blind_region,
    has_blind_layer,
    has_posterior,
    mean_response,
    posterior_applied,
    posteriors,
)
from geocnn.patches import sample_origins
from geocnn.selfsup import posterior
from geocnn.selfsup.blindspots import Blinding, BlindShape, auto_shape

FIT_PATCHES = 64  # training patches a posterior fit reads (a fixed, seeded draw)

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
            raise _not_blind_enough(cfg, patch, axes, shape, reads, noise, auto=mask.shape == "auto")
        dense = True
        log.info("the network never reads that region around a sample (its gradient there is zero): nothing is "
                 "hidden in the input and every sample is scored")
    return Blinding(dataclasses.replace(mask, shape=tuple(shape.to_config())), shape, dense, noise)


def _not_blind_enough(cfg: Any, patch: tuple[int, ...], axes: tuple[str, ...], shape: BlindShape,
                      reads: tuple[int, ...], noise: NoiseCorrelation | None, auto: bool) -> ConfigError:
    """The network reads inside the blind region the noise needs: say what it is blind over, what
    it reads there, and the two edits that make the run coherent."""
    node = next(n for n in cfg.model.nodes() if n.args.get("blind") is not None)
    region = blind_region(cfg.model, patch)
    offset = ", ".join(f"{d:+d} {a}" for d, a in zip(reads, axes))
    shared = f" (noise correlated {float(noise.correlation(axes, [np.array(d) for d in reads])):.2f} with the " \
             "sample's)" if noise is not None else ""
    asked = "mask: auto chose" if auto else "data.mask.shape asks for"
    has = f"is blind over {region.describe(axes)} only" if region is not None else "reads the sample itself"
    keep = f", or keep this network and set data.mask.shape: {_yaml(region.to_config())}" if region is not None else ""
    return ConfigError(
        f"{asked} a blind region of {shape.describe(axes)}, but the network {has} (layer {node.index} "
        f"'{node.name}' blind: {_yaml(node.args['blind'])}): it reads the input at {offset} from the sample it "
        f"predicts{shared} and would learn that noise", where=node.where,
        fix=f"set that layer's blind to {_yaml(shape.to_config())} (within its kernel {_yaml(node.args['kernel'])}; later "
            f"layers keep kernel 1 along {', '.join(a for a, s in zip(axes, shape.sizes) if s is not None)}){keep}")


def _yaml(values: Any) -> str:
    """A list as YAML writes it: ``[3, all]``."""
    return "[" + ", ".join(str(v) for v in values) + "]"


def check_posterior(cfg: Any, blinding: Blinding | None) -> None:
    """A ``posterior`` layer needs what its fit reads: a network blind by construction and the noise
    measured on the input (ConfigError otherwise, before any training)."""
    if not has_posterior(cfg.model):
        return
    node = next(n for n in cfg.model.nodes() if n.kind == "posterior")
    if blinding is None or not blinding.dense:
        raise ConfigError("a posterior layer weighs the samples a blind network never read, but this network is not "
                          "blind by construction", where=node.where,
                          fix="use it with task denoise_self, data.mask.shape (or mask: auto) and a first conv with "
                              "a blind centre, or remove the layer")
    if blinding.noise is None or not np.isfinite(blinding.noise.share):
        raise ConfigError("a posterior layer needs the noise measured on the input, but no lateral axis has enough "
                          "traces to measure it", where=node.where, fix="use larger inputs, or remove the layer")


def fit_posterior(model: torch.nn.Module, d: Any, to_device: Callable[[torch.Tensor], torch.Tensor]
                  ) -> posterior.PosteriorFit | None:
    """Fit the taps of ``model``'s posterior layer to its current weights (None without one).

    Reads FIT_PATCHES training patches (a fixed draw: every epoch and every process fit on the same
    ones), runs the network blind on them (eval mode), and solves :func:`geocnn.selfsup.posterior.solve`;
    the taps go into the layer's buffer, so the checkpoint saved next holds them.
    """
    layers = posteriors(model)
    if not layers:
        return None
    x = fitting_patches(d)
    kernel = layers[0].kernel
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), posterior_applied(model, False):
            p = model(to_device(x)).float().cpu()
        response = mean_response(model, to_device(x))
    finally:
        model.train(was_training)
    r = (x - p)[:, 0].double().numpy()
    xs = x[:, 0].double().numpy()
    noise, axes = d.blinding.noise, d.geom.model_axes
    noise_var = noise.share * float(np.mean((xs - xs.mean(axis=tuple(range(1, xs.ndim)), keepdims=True)) ** 2))
    margin = _margin(response, kernel)
    shifts = posterior.differences(kernel)
    cov = dict(zip(map(tuple, shifts.tolist()), posterior.residual_covariance(r, shifts, margin)))
    carried = posterior.carried_noise(response, noise, axes, posterior.kernel_offsets(kernel))
    fit = posterior.solve(cov, noise_var, noise, carried, axes, kernel)
    for layer in layers:
        layer.taps.copy_(torch.from_numpy(fit.taps).to(layer.taps))
    return fit


def fitting_patches(d: Any) -> torch.Tensor:
    """(FIT_PATCHES, C, *patch) normalised training patches, unmasked (a seeded draw of the training block)."""
    rng = np.random.default_rng([d.cfg.train.seed, 6007])
    origins = sample_origins(d.split.plan(d.geom, "train"), FIT_PATCHES, rng, d.live, d.cfg.data.sampling.min_live)
    patches = []
    for o in origins:
        x = d.norm.apply(d.geom.read(d.grid, o))
        live = d.live_patch(o)
        patches.append(np.asarray(x if live is None else x * live, np.float32))  # dead traces read as zeros
    return torch.from_numpy(np.stack(patches))


def _margin(response: np.ndarray, kernel: tuple[int, ...]) -> tuple[int, ...]:
    """Samples to leave out at each patch edge per axis: half the extent the blind prediction reads
    (there it read padding), as far as the patch keeps room for the kernel's shifts."""
    read = np.argwhere(response != 0)
    centre = np.array(response.shape) // 2
    half = np.abs(read - centre).max(axis=0) if len(read) else np.zeros(response.ndim, int)
    return tuple(int(min(h, max(0, (n - 2 * k + 1) // 2))) for h, n, k in zip(half, response.shape, kernel))


def _log_noise(noise: NoiseCorrelation | None) -> None:
    if noise is None:
        log.info("noise correlation: not measured (no lateral axis has enough traces)")
        return
    log.info("noise correlation measured on the inputs (%d lines; f-x prediction residual):", noise.lines)
    for line in noise.lines_text():
        log.info("  %s", line)
