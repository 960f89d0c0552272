"""Training data: grids + labels → checked, normalised, split patches as torch datasets.

Everything about the data is checked here before the first step — channel counts, geometries,
label ranges, NaN/inf, patch sizes — so a run fails in seconds with a one-line error, not
after an hour. Patches are read lazily (memmap) in DataLoader workers; per-item randomness
(augmentation) comes from (seed, epoch, index), so runs and resumes are reproducible whatever
the number of workers.
"""

from __future__ import annotations

import functools
import itertools
import logging
from dataclasses import dataclass

import numpy as np
import torch

from geocnn import sanity
from geocnn.config import Augment, Config
from geocnn.errors import ConfigError, DataError
from geocnn.fmt import fmt_shape
from geocnn.grids.checks import check_finite
from geocnn.grids.grid import Grid, open_grid, open_stack
from geocnn.grids.labels import read_labels
from geocnn.grids.normalize import Normalization, estimate
from geocnn.grids.picks import PickLabels, pick_target
from geocnn.model import infer
from geocnn.patches import (
    PatchGeometry,
    Split,
    ValidWindow,
    WindowPlan,
    fitting_centres,
    fixed_origins,
    make_split,
    patch_geometry,
    sample_origins,
)
from geocnn.picking import PickValidation
from geocnn.selfsup import blindplan
from geocnn.selfsup.blindspots import Blinding
from geocnn.tasks import TWO_CLASS_LOSSES, Task, hard_labels

log = logging.getLogger(__name__)

LATERAL_ONLY = ("sample", "time", "depth", "twt")  # axes that may not be flipped or swapped


def valid_samples(grids: tuple[Grid | None, ...], window: tuple[slice, ...]) -> np.ndarray | None:
    """Per-sample mask of a window: True where every one of ``grids`` holds data (None: all of them do)."""
    masks = [m for m in (g.valid(window) for g in grids if g is not None) if m is not None]
    return np.logical_and.reduce(masks) if masks else None


@dataclass
class TrainingData:
    """What the training loop needs to draw patches, plus what the checkpoint must remember."""

    cfg: Config
    grid: Grid
    target: Grid | None
    labels: np.ndarray | None
    geom: PatchGeometry
    split: Split
    norm: Normalization
    target_norm: Normalization | None
    classes: int | None
    class_freq: np.ndarray | None
    centres: np.ndarray | None
    live: np.ndarray | None
    train_mean: float | None
    val_origins: np.ndarray
    clean: Grid | None = None  # self-supervised: the clean twin, read for validation scores only
    blinding: Blinding | None = None  # denoise_self with data.mask.shape: the blind region (geocnn.selfsup.blindplan)
    picks: PickValidation | None = None  # data.picks labelling phases: picks scored on the validation windows

    @property
    def task(self) -> Task:
        return self.cfg.task

    @property
    def masked(self) -> bool:
        """An input or the target marks single samples missing (a GeoTIFF's nodata): see :meth:`valid`."""
        return self.grid.masked or (self.target is not None and self.target.masked)

    def valid(self, window: tuple[slice, ...]) -> np.ndarray | None:
        """Per-sample mask of a grid window: True where the inputs and the target hold data (None: all do)."""
        return valid_samples((self.grid, self.target), window)

    @property
    def window_mask(self) -> ValidWindow | None:
        """What sampling asks so that no window is centred on a missing sample (None: none is missing)."""
        return self.valid if self.masked else None

    def valid_patch(self, origin: np.ndarray) -> np.ndarray | None:
        """bool ``(*patch)`` in model order: True where the patch at ``origin`` holds data (None: all of it)."""
        mask = self.valid(self.geom.window(origin)) if self.masked else None
        return None if mask is None else self.geom.to_model(mask[None])[0]

    @property
    def majority(self) -> int:
        return int(np.argmax(self.class_freq)) if self.class_freq is not None else 0

    def epoch_origins(self, epoch: int, rank: int = 0, world: int = 1) -> np.ndarray:
        """This process's training windows for ``epoch`` (the same on every run and resume)."""
        s = self.cfg.data.sampling
        n = s.patches_per_epoch - s.patches_per_epoch % world
        rng = np.random.default_rng([self.cfg.train.seed, epoch, 1])
        if self.labels is not None and s.balance > 0:
            origins = self._balanced_by_label(n, rng)
        else:
            origins = sample_origins(self.split.plan(self.geom, "train"), n, rng, self.live, s.min_live,
                                     self.centres, s.balance, self.window_mask)
        return origins[rank::world]

    def _balanced_by_label(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Per-trace labels: draw traces so each class is equally likely (share = balance)."""
        s = self.cfg.data.sampling
        plan = self.split.plan(self.geom, "train")
        region = plan.region
        origins = sample_origins(plan, n, rng, self.live, s.min_live, valid=self.window_mask)
        fixed = self.geom.fixed_axes
        inside = np.zeros(self.labels.shape, bool)
        inside[tuple(slice(*region[a]) for a in fixed)] = True
        by_class = [np.argwhere(inside & (self.labels == c)) for c in range(self.classes or 0)]
        by_class = [c for c in by_class if len(c)]
        pick = rng.random(n) < s.balance
        for i in np.flatnonzero(pick):
            members = by_class[rng.integers(len(by_class))]
            pos = members[rng.integers(len(members))]
            for a, p in zip(fixed, pos):
                origins[i, a] = p
        return origins

    def per_process(self, world: int = 1) -> int:
        """Training windows each process draws per epoch."""
        n = self.cfg.data.sampling.patches_per_epoch
        return (n - n % world) // world

    def live_patch(self, origin: np.ndarray) -> np.ndarray | None:
        """(1, *patch) float 1/0 of live traces (and, of a raster with nodata, valid samples) under
        the patch at ``origin``; None on a regular grid."""
        valid = self.valid_patch(origin)
        if self.live is None:
            return None if valid is None else valid[None].astype(np.float32)
        window = self.geom.window(origin)
        block = np.broadcast_to(self.live[window[:-1]][None, ..., None],
                                (1, *(w.stop - w.start for w in window))).astype(np.float32)
        block = self.geom.to_model(block)
        return block if valid is None else block * valid[None]

    def training_set(self, rank: int = 0, world: int = 1) -> PatchDataset:
        return PatchDataset(self, augment=True, rank=rank, world=world)

    def validation_set(self, rank: int = 0, world: int = 1) -> PatchDataset:
        return PatchDataset(self, augment=False, fixed=self.val_origins[rank::world])


class PatchDataset(torch.utils.data.Dataset):
    """(input, target) patches; reading happens in ``__getitem__`` (DataLoader workers).

    Training keys are ``(epoch, i)``: the i-th window of that epoch's seeded draw, drawn in the
    worker itself, so one set of persistent workers serves every epoch. Validation keys are
    indices into fixed windows.
    """

    def __init__(self, data: TrainingData, augment: bool, fixed: np.ndarray | None = None,
                 rank: int = 0, world: int = 1) -> None:
        self.data, self.fixed, self.rank, self.world = data, fixed, rank, world
        self.augment = data.cfg.data.augment if augment else None
        self._epoch, self._origins = None, None

    def __len__(self) -> int:
        return len(self.fixed) if self.fixed is not None else self.data.per_process(self.world)

    def _origin(self, key) -> tuple[np.ndarray, int, int]:
        if self.fixed is not None:
            return self.fixed[key], 0, int(key)
        epoch, i = key
        if epoch != self._epoch:
            self._origins, self._epoch = self.data.epoch_origins(epoch, self.rank, self.world), epoch
        return self._origins[i], epoch, i

    def __getitem__(self, key):
        d = self.data
        origin, epoch, i = self._origin(key)
        x = d.norm.apply(d.geom.read(d.grid, origin))
        if d.task.self_supervised:
            return self._hidden_item(x, origin, epoch, i)
        y = target_of(d, origin)
        valid = d.valid_patch(origin)
        if valid is not None:  # missing samples (nodata) are never scored
            y = d.task.dead(y, valid)
        if self.augment is not None:
            x, y = _augment(x, y, self.augment, d.geom, np.random.default_rng([d.cfg.train.seed, epoch, 2, i]))
        y = np.ascontiguousarray(y) if y.ndim else y  # ascontiguousarray would make a scalar 1-D
        return torch.from_numpy(np.ascontiguousarray(x)), torch.as_tensor(y)


    def _hidden_item(self, x: np.ndarray, origin: np.ndarray, epoch: int, i: int):
        """Self-supervised item: (masked input, target) with the target (C + 1 [+ C], ...) = the
        unmasked input, the hidden mask, and on validation the clean twin when there is one.

        The mask comes from (seed, epoch, index) like the window (validation: index only, so its
        masks are fixed), so a resumed run hides the same samples.
        """
        d = self.data
        seed = d.cfg.train.seed
        live = self._live_patch(origin)
        if live is not None:
            x = x * live  # dead traces read as zeros, as missing traces are shown at prediction
        if self.augment is not None:
            x, live = _augment(x, live if live is not None else np.zeros(()), self.augment, d.geom,
                               np.random.default_rng([seed, epoch, 2, i]))
        stream = 4 if self.fixed is None else 5
        rng = np.random.default_rng([seed, epoch, stream, i])
        if d.blinding is not None and d.blinding.dense:  # the network is blind by construction
            masked, hidden = np.array(x, np.float32), np.ones(x.shape[1:], bool)
        else:
            mask = d.blinding.mask if d.blinding is not None else d.cfg.data.mask
            masked, hidden = d.task.masking.hide(np.ascontiguousarray(x, np.float32), mask, d.geom.model_axes, rng)
        if live is not None and live.ndim:
            hidden &= live[0] > 0  # a dead trace's value is unknown: never scored
        parts = [x, hidden[None].astype(np.float32)]
        if self.fixed is not None and d.clean is not None:
            parts.append(d.norm.apply(d.geom.read(d.clean, origin)))
        y = np.concatenate(parts).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(masked)), torch.from_numpy(y)


    def _live_patch(self, origin: np.ndarray) -> np.ndarray | None:
        return self.data.live_patch(origin)


class EpochSampler(torch.utils.data.Sampler):
    """Keys ``(epoch, i)`` for i from ``start`` (a resumed epoch skips the batches already done)."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch, self.start = n, 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, min(start, self.n)

    def __iter__(self):
        return ((self.epoch, i) for i in range(self.start, self.n))

    def __len__(self) -> int:
        return self.n - self.start


def target_of(d: TrainingData, origin: np.ndarray) -> np.ndarray:
    """The training target of the patch at ``origin``."""
    if d.labels is not None:
        value = d.labels[tuple(origin[a] for a in d.geom.fixed_axes)]
        return np.asarray(value, dtype=d.task.target_dtype)
    block = d.geom.read(d.target, origin)
    if d.task.dense:
        return d.task.read_target(block, d.target_norm)
    return d.task.read_target(_reduce(block[0], d.cfg.data.target_from_patch), d.target_norm)


def _reduce(block: np.ndarray, how: str) -> float:
    if how == "center":
        return float(block[tuple(n // 2 for n in block.shape)])
    return float(block.mean() if how == "mean" else block.max())


@dataclass(frozen=True)
class Augmentation:
    """One patch's random augmentation, drawn from its own generator: patch axes flipped, whether
    two are swapped, the noise added (float32, the patch's shape) — so the host path and the
    device path apply the same draws to the same keys."""

    flips: tuple[int, ...]  # model-axis indices (0 = first patch axis)
    swap: tuple[int, int] | None
    noise: np.ndarray | None


def draw_augmentation(aug: Augment, geom: PatchGeometry, shape: tuple[int, ...],
                      rng: np.random.Generator) -> Augmentation:
    """The draws of one (C, *patch) patch, in a fixed order: one per flip axis, the transpose, the noise."""
    axes = geom.model_axes
    flips = tuple(axes.index(name) for name in aug.flip if rng.random() < 0.5)
    swap = None
    if aug.transpose and rng.random() < 0.5:
        swap = tuple(axes.index(n) for n in aug.transpose)
    noise = rng.normal(0, aug.noise, shape).astype(np.float32) if aug.noise > 0 else None
    return Augmentation(flips, swap, noise)


def _augment(x: np.ndarray, y: np.ndarray, aug: Augment, geom: PatchGeometry, rng: np.random.Generator):
    dense = y.ndim == x.ndim - 1 or y.shape[1:] == x.shape[1:]
    a = draw_augmentation(aug, geom, x.shape, rng)
    shift = x.ndim - y.ndim  # x's patch axes start at 1, y's at 1 - shift
    for axis in a.flips:
        x = np.flip(x, axis + 1)
        if dense and y.ndim:
            y = np.flip(y, axis + 1 - shift)
    if a.swap is not None:
        x = np.swapaxes(x, a.swap[0] + 1, a.swap[1] + 1)
        if dense and y.ndim:
            y = np.swapaxes(y, a.swap[0] + 1 - shift, a.swap[1] + 1 - shift)
    if a.noise is not None:
        x = x + a.noise
    return x, y


# ----------------------------------------------------------------------------- patches on the device

ON_DEVICE_SHARE = 0.5  # of the free device memory the grids may take (the model, its activations, the rest)


def grid_bytes(d: TrainingData) -> int:
    """Bytes of the normalised input grid (and of a dense target grid) held as float32 tensors."""
    n = int(np.prod(d.grid.shape, dtype=np.int64))
    dense_target = d.target is not None and d.cfg.dense
    return 4 * n * (d.grid.channels + (d.target.channels if dense_target else 0))


def keep_on_device(d: TrainingData, dev: torch.device, free: int | None) -> bool:
    """``data.on_device``: auto = on a GPU when the grids fit :data:`ON_DEVICE_SHARE` of its free
    memory (``free``, bytes); true = always (a clear error when they cannot fit); false = never."""
    setting = d.cfg.data.on_device
    if setting is False or setting == "false" or (setting == "auto" and dev.type != "cuda"):
        return False
    if d.masked:  # missing samples are marked in the targets by PatchDataset, on the host
        if setting == "auto":
            return False
        raise ConfigError("data.on_device: true, but the inputs mark missing samples (nodata), which the host marks",
                          where=d.cfg.path, fix="use data.on_device: auto or false")
    if d.task.self_supervised:  # its masks are drawn by the host's workers (geocnn.masking)
        if setting == "auto":
            return False
        raise ConfigError(f"data.on_device: true, but task {d.task.name} hides samples on the host",
                          where=d.cfg.path, fix="use data.on_device: auto or false")
    need = grid_bytes(d)
    fits = free is None or need <= ON_DEVICE_SHARE * free
    if setting == "auto":
        log.info("data on %s: %s (%.2f GiB of grids, %.2f GiB free)", dev, "yes" if fits else "no, pinned prefetch",
                 need / 2**30, (free or 0) / 2**30)
        return fits
    if not fits:
        raise ConfigError(f"data.on_device: true, but the grids take {need / 2**30:.2f} GiB and {dev} has "
                          f"{free / 2**30:.2f} GiB free (at most {ON_DEVICE_SHARE:.0%} of it is used)",
                          where=d.cfg.path, fix="use data.on_device: auto (pinned host prefetch when it does not fit)")
    return True


class DeviceGrids:
    """The normalised input grid (and a dense task's target grid) as tensors on one device;
    patches are cut, augmented and batched there, equal to :class:`PatchDataset`'s for the same
    keys (same windows, same float32 arithmetic, the same augmentation draws)."""

    def __init__(self, d: TrainingData, dev: torch.device, rows: int = 2**24) -> None:
        self.data, self.device = d, dev
        self.x = _upload(d.grid, d.norm, dev, rows)
        self.y = None
        if d.target is not None and d.cfg.dense:  # values normalised as target_of does (labels have no norm)
            self.y = _upload(d.target, d.target_norm, dev, rows)

    def cut(self, grid: torch.Tensor, origins: np.ndarray) -> torch.Tensor:
        """(B, C, *patch) in model order: one gather for the whole batch."""
        geom = self.data.geom
        n = len(origins)
        index = []
        for a, e in enumerate(geom.extent):
            start = torch.as_tensor(origins[:, a], dtype=torch.int64, device=self.device)
            shape = [n] + [1] * len(geom.extent)
            shape[1 + a] = e
            index.append((start[:, None] + torch.arange(e, device=self.device)).reshape(shape))
        block = grid[(slice(None), *index)].transpose(0, 1)  # (B, C, *extent)
        block = block.reshape((n, block.shape[1], *[geom.extent[a] for a in sorted(geom.patch_axes)]))
        order = np.argsort(np.argsort(geom.patch_axes))  # as PatchGeometry.to_model
        return block.permute(0, 1, *(2 + int(i) for i in order)).contiguous()

    def batch(self, dataset: PatchDataset, keys: list) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of these keys, on the device."""
        d = self.data
        found = [dataset._origin(k) for k in keys]
        origins = np.stack([f[0] for f in found]).astype(np.int64)
        x = self.cut(self.x, origins)
        if self.y is not None:
            y = self.cut(self.y, origins)
            if d.classes is not None and y.shape[1] == 1:  # dense class labels: (B, *patch) indices, as target_of
                y = y[:, 0].to(torch.int64)
        else:  # one label per patch: from the host (a few numbers)
            y = torch.stack([torch.as_tensor(target_of(d, f[0])) for f in found]).to(self.device)
        if dataset.augment is not None:
            x, y = self._augment(x, y, dataset.augment, [(f[1], f[2]) for f in found])
        return x, y

    def _augment(self, x: torch.Tensor, y: torch.Tensor, aug: Augment, keys: list) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.data
        draws = [draw_augmentation(aug, d.geom, tuple(x.shape[1:]), np.random.default_rng([d.cfg.train.seed, e, 2, i]))
                 for e, i in keys]
        dense = y.ndim > 1
        shift = x.ndim - y.ndim
        groups: dict[tuple, list[int]] = {}
        for n, a in enumerate(draws):  # items sharing flips and swap take one batched op
            groups.setdefault((a.flips, a.swap), []).append(n)
        for (flips, swap), members in groups.items():
            if not flips and swap is None:
                continue
            sel = torch.as_tensor(members, device=self.device)
            xs, ys = x[sel], y[sel]
            if flips:
                xs = xs.flip([a + 2 for a in flips])
                ys = ys.flip([a + 2 - shift for a in flips]) if dense else ys
            if swap is not None:
                xs = xs.transpose(swap[0] + 2, swap[1] + 2)
                ys = ys.transpose(swap[0] + 2 - shift, swap[1] + 2 - shift) if dense else ys
            x[sel], y[sel] = xs, ys
        if draws and draws[0].noise is not None:
            x = x + torch.from_numpy(np.stack([a.noise for a in draws])).to(self.device, non_blocking=True)
        return x, y


def _upload(grid: Grid, norm: Normalization | None, dev: torch.device, values: int) -> torch.Tensor:
    """(C, *shape) float32 tensor on ``dev``, read and normalised slab by slab (bounded host memory)."""
    out = torch.empty((grid.channels, *grid.shape), dtype=torch.float32, device=dev)
    step = max(1, values // max(1, int(np.prod(grid.shape[1:])) * grid.channels))
    rest = tuple(slice(0, n) for n in grid.shape[1:])
    for start in range(0, grid.shape[0], step):
        block = grid.read((slice(start, min(start + step, grid.shape[0])), *rest))
        if norm is not None:
            block = norm.apply(block)
        out[:, start:start + block.shape[1]] = torch.from_numpy(np.ascontiguousarray(block)).to(dev)
    grid.release()
    return out


class DeviceBatches:
    """Batches of a :class:`PatchDataset` cut on the device, in the keys a DataLoader would give
    it (the sampler's, or 0..n-1), ``batch_size`` at a time — a drop-in for the loader."""

    def __init__(self, grids: DeviceGrids, dataset: PatchDataset, batch_size: int, sampler=None) -> None:
        self.grids, self.dataset, self.batch_size, self.sampler = grids, dataset, batch_size, sampler

    def __len__(self) -> int:
        return -(-len(self.sampler if self.sampler is not None else self.dataset) // self.batch_size)

    def __iter__(self):
        keys = iter(self.sampler) if self.sampler is not None else iter(range(len(self.dataset)))
        while chunk := list(itertools.islice(keys, self.batch_size)):
            yield self.grids.batch(self.dataset, chunk)


# ----------------------------------------------------------------------------- building

def _read_labels(path: str, expected: tuple[int, ...], task: Task) -> np.ndarray:
    """Per-trace labels from .npy or .csv (a 'label' column, else the last column)."""
    labels = read_labels(path)
    if labels.shape != expected:
        raise DataError(f"labels have shape {labels.shape} but the grid has {expected} trace positions "
                        "(one label per position of the axes the patch does not span)", where=path,
                        fix="give one label per trace")
    if not np.all(np.isfinite(labels.astype(np.float64))):
        raise DataError("labels contain NaN or inf", where=path)
    if task.classifies and not np.all(labels == np.round(labels)):
        raise DataError(f"{task.name} labels must be whole numbers (class indices)", where=path)
    return labels.astype(task.target_dtype)


def _slabs(grid: Grid, values: int = 2**24):
    """(first row, label block, its valid mask or None) over the first axis, about ``values``
    samples at a time: channel 0, or of class probabilities (several channels) the most probable class."""
    step = max(1, values // max(1, int(np.prod(grid.shape[1:]))))
    rest = tuple(slice(0, n) for n in grid.shape[1:])
    for start in range(0, grid.shape[0], step):
        window = (slice(start, min(start + step, grid.shape[0])), *rest)
        block = grid.read(window)
        yield start, block[0] if len(block) == 1 else hard_labels(block, axis=0), grid.valid(window) if grid.masked else None


def _scan_classes(target: Grid, classes: int | None, ignore: int | None, where: str) -> np.ndarray:
    """Class counts of a label grid, slab by slab (bounded memory); checks the values."""
    counts: dict[int, int] = {}
    for _, block, valid in _slabs(target):
        if valid is not None:  # a label raster's nodata: no class
            block = block[valid]
        if not np.isfinite(block).all():
            raise DataError("labels contain NaN or inf", where=where)
        if not np.all(block == np.round(block)):
            raise DataError("segmentation labels must be whole numbers (class indices)", where=where)
        vals, n = np.unique(block.astype(np.int64), return_counts=True)
        for v, c in zip(vals.tolist(), n.tolist()):
            counts[v] = counts.get(v, 0) + c
    present = sorted(v for v in counts if v != ignore)
    if present and (present[0] < 0 or (classes is not None and present[-1] >= classes)):
        bad = [v for v in present if v < 0 or (classes is not None and v >= classes)]
        raise DataError(f"label value(s) {bad[:5]} out of range for {classes} classes (0..{(classes or 1) - 1})",
                        where=where, fix="set data.classes, the model's output channels, or loss.ignore_index")
    k = classes or (present[-1] + 1 if present else 2)
    return np.array([counts.get(c, 0) for c in range(k)], dtype=np.float64)


def _rare_centres(target: Grid, rare: int, limit: int, seed: int, plan: WindowPlan) -> np.ndarray:
    """Up to ``limit`` random grid positions of the rare class on which a training window can be
    centred (inside the training block, away from its edges; for balanced sampling)."""
    rng = np.random.default_rng([seed, 3])
    found: list[np.ndarray] = []
    for start, block, valid in _slabs(target):
        pos = np.argwhere((block == rare) if valid is None else (block == rare) & valid)
        pos[:, 0] += start
        pos = fitting_centres(plan, pos)
        if len(pos) > limit:
            pos = pos[rng.choice(len(pos), limit, replace=False)]
        found.append(pos)
    allpos = np.concatenate(found) if found else np.zeros((0, target.ndim), np.int64)
    if len(allpos) > limit:
        allpos = allpos[rng.choice(len(allpos), limit, replace=False)]
    return allpos


def output_classes(cfg: Config, out_channels: int) -> int | None:
    if not cfg.task.classifies:
        return None
    if cfg.data.classes is not None:
        return cfg.data.classes
    return 2 if out_channels == 1 else out_channels


def _check_model_output(cfg: Config, target_channels: int | None, classes: int | None) -> None:
    spec = cfg.model
    inf = infer(spec, cfg.patch, receptive=False)
    out = inf.output
    where = spec.layers[-1].where
    if cfg.dense:
        if out.spatial != cfg.patch:
            raise ConfigError(f"the model turns a {fmt_shape(cfg.patch)} patch into {fmt_shape(out.shape)}, "
                              f"but task {cfg.task.name} needs the patch size back", where=where,
                              fix="use padding: same (or matching upsampling) so output size = input size")
        if cfg.task.grid_target and out.channels != target_channels:
            raise ConfigError(f"the model outputs {out.channels} channel(s) but the target has {target_channels}",
                              where=where, fix=f"end the model with out: {target_channels}")
    else:
        if not out.flat:
            raise ConfigError(f"task {cfg.task.name} needs one vector per patch, but the model outputs "
                              f"{fmt_shape(out.shape)}", where=where,
                              fix="end with global_pool or flatten and dense")
        if not cfg.task.classifies and out.channels != 1:
            raise ConfigError(f"task {cfg.task.name} needs 1 output, the model gives {out.channels}", where=where,
                              fix="end with dense: 1")
    if classes is not None and out.channels not in (1, classes) or (classes == 2 and out.channels > 2):
        raise ConfigError(f"the model outputs {out.channels} channels for {classes} classes", where=where,
                          fix=f"end the model with {classes} channels (or 1 for a binary problem)")
    if classes is not None and classes > 2 and out.channels == 1:
        raise ConfigError(f"one output channel cannot score {classes} classes", where=where,
                          fix=f"end the model with {classes} channels")


def _check_augment(cfg: Config, geom: PatchGeometry) -> None:
    aug = cfg.data.augment
    names = [*aug.flip, *(aug.transpose or [])]
    for name in names:
        if name not in geom.model_axes:
            raise ConfigError(f"augment names axis '{name}', which the patch does not span "
                              f"({', '.join(geom.model_axes)})", where=cfg.path)
        if name in LATERAL_ONLY:
            raise ConfigError(f"augment would flip or swap the {name} axis, which reverses time/depth: "
                              "not physically valid", where=cfg.path, fix="augment lateral axes only")
    if aug.transpose:
        a, b = aug.transpose
        if geom.size[geom.model_axes.index(a)] != geom.size[geom.model_axes.index(b)]:
            raise ConfigError(f"transpose {a}/{b} needs equal patch sizes along both", where=cfg.path)


def build(cfg: Config, stored: tuple[Normalization, Normalization | None] | None = None,
          random_access: bool = True) -> TrainingData:
    """Open and check everything; ``stored`` (input and target normalisation from a checkpoint) is reused.

    ``random_access`` opens files as training reads them (IBM/integer SEG-Y through the decoded
    cache, written on first use); a dry run passes False: it reads, but builds no cache.
    """
    where = cfg.path
    grid = open_stack(cfg.inputs, random_access=random_access)
    if grid.channels != cfg.model.in_channels:
        raise ConfigError(f"data.inputs give {grid.channels} channel(s) ({', '.join(grid.channel_names)}) but "
                          f"model.in_channels is {cfg.model.in_channels}", where=where,
                          fix="make them agree (channels_from, more input files, or in_channels)")
    d = cfg.data
    geom = patch_geometry(grid.axes, grid.shape, cfg.patch, d.patch_axes, d.section, where)
    _check_augment(cfg, geom)
    if cfg.task.self_supervised:
        _check_mask(cfg, geom)
    target = labels = clean = None
    if cfg.clean is not None:
        clean = open_grid(cfg.clean, random_access=random_access)
        if clean.shape != grid.shape or clean.channels != grid.channels:
            raise DataError(f"the clean twin has shape {fmt_shape(clean.shape)} × {clean.channels} channel(s) but the "
                            f"inputs have {fmt_shape(grid.shape)} × {grid.channels}", where=cfg.clean.path,
                            fix="give a clean twin on the same grid as the inputs")
    if cfg.target is not None:
        target = open_grid(cfg.target, random_access=random_access)
        if target.shape != grid.shape:
            raise DataError(f"target has shape {fmt_shape(target.shape)} ({', '.join(target.axes)}) but the inputs "
                            f"have {fmt_shape(grid.shape)} ({', '.join(grid.axes)})", where=cfg.target.path,
                            fix="give a target on the same grid as the inputs")
        if not cfg.task.grid_target and target.channels != 1:
            raise DataError(f"a label grid must have one channel, this one has {target.channels}",
                            where=cfg.target.path)
    elif d.picks is not None:
        target = pick_target(grid, d.picks)
    target_where = cfg.target.path if cfg.target is not None else d.picks.path if d.picks is not None else where
    if cfg.labels is not None:
        labels = _read_labels(cfg.labels, tuple(grid.shape[a] for a in geom.fixed_axes), cfg.task)
    gap = d.split.gap
    if gap == "auto" and labels is not None:
        gap = 0
    split = make_split(geom, d.split.axis, d.split.fraction, gap, where)
    check_finite(grid, "inputs")
    if target is not None:
        check_finite(target, "target")
        if cfg.task.grid_target:
            sanity.check_target(grid, target, target_where, seed=cfg.train.seed)
    seed = cfg.train.seed
    if stored is not None:
        norm, target_norm = stored
    else:
        norm = estimate(grid, d.normalize.method, d.normalize.max_traces, seed)
        target_norm = _target_norm(cfg, grid, target, labels, norm, split, geom)
    out_channels = infer(cfg.model, cfg.patch, receptive=False).output.channels
    classes = output_classes(cfg, out_channels)
    target_channels = grid.channels if cfg.task.self_supervised else target.channels if target is not None else None
    _check_model_output(cfg, target_channels, classes)
    if cfg.train.loss.kind in TWO_CLASS_LOSSES and classes is not None and classes > 2:
        raise ConfigError(f"loss {cfg.train.loss.kind} scores two classes, but the model outputs {classes}",
                          where=where, fix="use train.loss.kind: cross_entropy, focal or dice")
    if d.picks is not None and classes != d.picks.classes:
        raise ConfigError(f"data.picks labels {d.picks.classes} classes ({', '.join(d.picks.class_names)}) but the "
                          f"model outputs {classes}", where=where, fix=f"end the model with {d.picks.classes} channels")
    class_freq = centres = None
    ignore = cfg.train.loss.ignore_index
    if cfg.task.classifies:
        if labels is None:
            class_freq = _scan_classes(target, classes, ignore, target_where)
        else:
            bad = labels[(labels < 0) | (labels >= classes)]
            if ignore is not None:
                bad = bad[bad != ignore]
            if len(bad):
                raise DataError(f"label value {int(bad[0])} out of range for {classes} classes", where=cfg.labels,
                                fix="set data.classes or the model's output size")
            class_freq = np.bincount(labels[labels >= 0].reshape(-1), minlength=classes)[:classes].astype(float)
    if cfg.task.dense and cfg.task.classifies and d.sampling.balance > 0:
        rare = d.sampling.rare_class
        if rare is None:
            rare = int(np.argmin(np.where(class_freq > 0, class_freq, np.inf)))
        centres = _rare_centres(target, rare, 100_000, seed, split.plan(geom, "train"))
        if not len(centres):
            raise ConfigError(f"data.sampling.balance is {d.sampling.balance:g}, but no sample of class {rare} lies in "
                              "the training block where a patch can be centred on it", where=where,
                              fix="set data.sampling.balance to 0, or move the split so the training block holds it")
        log.info("balanced sampling: %.0f%% of patches centred on class %d (%d positions in the training block)",
                 100 * d.sampling.balance, rare, len(centres))
    live = grid.live()
    masked = grid.masked or (target is not None and target.masked)
    valid = functools.partial(valid_samples, (grid, target)) if masked else None
    # a value per patch is scored against the training mean (the scalar task's baseline)
    train_mean = target_norm.center[0] if not cfg.task.dense and target_norm is not None else None
    val_origins = np.zeros((0, grid.ndim), np.int64)
    if split.val[1] > split.val[0]:
        val_origins = fixed_origins(split.plan(geom, "val"), d.sampling.val_patches, seed, live,
                                    d.sampling.min_live, valid)
    blinding = blindplan.plan(cfg, grid, geom.model_axes, tuple(geom.size), seed) \
        if cfg.task.self_supervised and cfg.data.mask.shape is not None else None
    blindplan.check_posterior(cfg, blinding)
    return TrainingData(cfg, grid, target, labels, geom, split, norm, target_norm, classes, class_freq,
                        centres, live, train_mean, val_origins, clean, blinding, _pick_validation(grid, target))


def _pick_validation(grid: Grid, target: Grid | None) -> PickValidation | None:
    """Pick scores in validation when the target is phase labels from picks (detection labels have none)."""
    labels = target.inputs[0] if target is not None else None
    if isinstance(labels, PickLabels) and labels.config.labels == "phases":
        return PickValidation(labels, grid)
    return None


def _check_mask(cfg: Config, geom: PatchGeometry) -> None:
    """data.mask against the patch the grid gave (the config checked what it could without the grid)."""
    mask, axes = cfg.data.mask, geom.model_axes
    if mask.axis is not None and mask.axis not in axes:
        raise ConfigError(f"data.mask.axis {mask.axis!r} is not a patch axis ({', '.join(axes)})", where=cfg.path,
                          fix="name one of the patch axes")
    try:
        cfg.task.masking.check(axes, mask, geom.size)
    except ValueError as exc:
        raise ConfigError(f"task {cfg.task.name}: {exc}", where=cfg.path,
                          fix="use patches that span the sample axis and lateral axes wide enough for the mask") from None


def _target_norm(cfg: Config, grid: Grid, target: Grid | None, labels: np.ndarray | None, norm: Normalization,
                 split: Split, geom: PatchGeometry) -> Normalization | None:
    d = cfg.data
    if cfg.task.self_supervised:
        return norm  # the model predicts the input, in the input's units
    if cfg.task.classifies:
        return None
    if cfg.task.dense:
        how = d.target_normalize
        if how == "auto":
            how = "input" if target.channels == grid.channels else "own"
        if how == "input":
            if target.channels != grid.channels:
                raise ConfigError(f"target_normalize: input needs as many target channels ({target.channels}) "
                                  f"as input channels ({grid.channels})", where=cfg.path, fix="use own")
            return norm
        if how == "none":
            return None
        return estimate(target, d.normalize.method, d.normalize.max_traces, cfg.train.seed)
    # one value per patch: standardised with the training targets' mean and std
    if labels is not None:
        train = labels[tuple(slice(*split.region(geom, "train")[a]) for a in geom.fixed_axes)]
        values = train.astype(np.float64).reshape(-1)
    else:
        origins = fixed_origins(split.plan(geom, "train"), 512, cfg.train.seed + 1)
        values = np.array([_reduce(geom.read(target, o)[0], d.target_from_patch) for o in origins])
    if not np.isfinite(values).all():
        raise DataError(f"{cfg.task.name} targets contain NaN or inf", where=cfg.labels or cfg.target.path)
    std = float(values.std()) or 1.0
    return Normalization("standard", (float(values.mean()),), (std,), len(values))


def describe_split(data: TrainingData) -> str:
    """The split in the grid's own numbers (e.g. inline numbers), for the log and split.json."""
    s, g = data.split, data.grid
    axis = g.axes[s.axis]
    numbers = {"inline": g.meta.ilines, "crossline": g.meta.xlines}.get(axis)

    def label(lo: int, hi: int) -> str:
        if hi <= lo:
            return "none"
        if numbers is not None and len(numbers) == g.shape[s.axis]:
            return f"{axis} {numbers[lo]}–{numbers[hi - 1]} ({hi - lo})"
        return f"{axis} index {lo}–{hi - 1} ({hi - lo})"

    return f"train {label(*s.train)}, gap {s.gap}, validation {label(*s.val)}"


def split_record(data: TrainingData) -> dict:
    s = data.split
    return {"axis": data.grid.axes[s.axis], "train": list(s.train), "validation": list(s.val), "gap": s.gap,
            "description": describe_split(data), "val_patches": len(data.val_origins),
            "patch_axes": list(data.geom.model_axes), "patch": list(data.geom.size)}
