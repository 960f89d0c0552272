"""Training data: grids + labels → checked, normalised, split patches as torch datasets.

Everything about the data is checked here before the first step — channel counts, geometries,
label ranges, NaN/inf, patch sizes — so a run fails in seconds with a one-line error, not
after an hour. Patches are read lazily (memmap) in DataLoader workers; per-item randomness
(augmentation) comes from (seed, epoch, index), so runs and resumes are reproducible whatever
the number of workers.
"""

from __future__ import annotations

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
from geocnn.model import infer
from geocnn.patches import PatchGeometry, Split, fixed_origins, make_split, patch_geometry, sample_origins
from geocnn.tasks import Task

log = logging.getLogger(__name__)

LATERAL_ONLY = ("sample", "time", "depth", "twt")  # axes that may not be flipped or swapped


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

    @property
    def task(self) -> Task:
        return self.cfg.task

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
                                     self.centres, s.balance)
        return origins[rank::world]

    def _balanced_by_label(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Per-trace labels: draw traces so each class is equally likely (share = balance)."""
        s = self.cfg.data.sampling
        plan = self.split.plan(self.geom, "train")
        region = plan.region
        origins = sample_origins(plan, n, rng, self.live, s.min_live)
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
        y = target_of(d, origin)
        if self.augment is not None:
            x, y = _augment(x, y, self.augment, d.geom, np.random.default_rng([d.cfg.train.seed, epoch, 2, i]))
        y = np.ascontiguousarray(y) if y.ndim else y  # ascontiguousarray would make a scalar 1-D
        return torch.from_numpy(np.ascontiguousarray(x)), torch.as_tensor(y)


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


def _augment(x: np.ndarray, y: np.ndarray, aug: Augment, geom: PatchGeometry, rng: np.random.Generator):
    dense = y.ndim == x.ndim - 1 or y.shape[1:] == x.shape[1:]
    axes = geom.model_axes
    for name in aug.flip:
        if rng.random() < 0.5:
            a = axes.index(name) + 1
            x = np.flip(x, a)
            if dense and y.ndim:
                y = np.flip(y, a - (x.ndim - y.ndim))
    if aug.transpose and rng.random() < 0.5:
        a, b = (axes.index(n) + 1 for n in aug.transpose)
        x = np.swapaxes(x, a, b)
        if dense and y.ndim:
            shift = x.ndim - y.ndim
            y = np.swapaxes(y, a - shift, b - shift)
    if aug.noise > 0:
        x = x + rng.normal(0, aug.noise, x.shape).astype(np.float32)
    return x, y


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
    """(first row, channel-0 block) over the first axis, about ``values`` samples at a time."""
    step = max(1, values // max(1, int(np.prod(grid.shape[1:]))))
    rest = tuple(slice(0, n) for n in grid.shape[1:])
    for start in range(0, grid.shape[0], step):
        yield start, grid.read((slice(start, min(start + step, grid.shape[0])), *rest))[0]


def _scan_classes(target: Grid, classes: int | None, ignore: int | None, where: str) -> np.ndarray:
    """Class counts of a label grid, slab by slab (bounded memory); checks the values."""
    counts: dict[int, int] = {}
    for _, block in _slabs(target):
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


def _rare_centres(target: Grid, rare: int, limit: int, seed: int) -> np.ndarray:
    """Up to ``limit`` random grid positions of the rare class (for balanced sampling)."""
    rng = np.random.default_rng([seed, 3])
    found: list[np.ndarray] = []
    for start, block in _slabs(target):
        pos = np.argwhere(block == rare)
        pos[:, 0] += start
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


def build(cfg: Config, stored: tuple[Normalization, Normalization | None] | None = None) -> TrainingData:
    """Open and check everything; ``stored`` (input and target normalisation from a checkpoint) is reused."""
    where = cfg.path
    grid = open_stack(cfg.inputs, random_access=True)
    if grid.channels != cfg.model.in_channels:
        raise ConfigError(f"data.inputs give {grid.channels} channel(s) ({', '.join(grid.channel_names)}) but "
                          f"model.in_channels is {cfg.model.in_channels}", where=where,
                          fix="make them agree (channels_from, more input files, or in_channels)")
    d = cfg.data
    geom = patch_geometry(grid.axes, grid.shape, cfg.patch, d.patch_axes, d.section, where)
    _check_augment(cfg, geom)
    target = labels = None
    if cfg.target is not None:
        target = open_grid(cfg.target, random_access=True)
        if target.shape != grid.shape:
            raise DataError(f"target has shape {fmt_shape(target.shape)} ({', '.join(target.axes)}) but the inputs "
                            f"have {fmt_shape(grid.shape)} ({', '.join(grid.axes)})", where=cfg.target.path,
                            fix="give a target on the same grid as the inputs")
        if not cfg.task.grid_target and target.channels != 1:
            raise DataError(f"a label grid must have one channel, this one has {target.channels}",
                            where=cfg.target.path)
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
            sanity.check_target(grid, target, cfg.target.path, seed=cfg.train.seed)
    seed = cfg.train.seed
    if stored is not None:
        norm, target_norm = stored
    else:
        norm = estimate(grid, d.normalize.method, d.normalize.max_traces, seed)
        target_norm = _target_norm(cfg, grid, target, labels, norm, split, geom)
    out_channels = infer(cfg.model, cfg.patch, receptive=False).output.channels
    classes = output_classes(cfg, out_channels)
    _check_model_output(cfg, target.channels if target is not None else None, classes)
    class_freq = centres = None
    ignore = cfg.train.loss.ignore_index
    if cfg.task.classifies:
        if labels is None:
            class_freq = _scan_classes(target, classes, ignore, cfg.target.path)
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
        centres = _rare_centres(target, rare, 100_000, seed)
        log.info("balanced sampling: %.0f%% of patches centred on class %d (%d positions known)",
                 100 * d.sampling.balance, rare, len(centres))
    live = grid.live()
    # a value per patch is scored against the training mean (the scalar task's baseline)
    train_mean = target_norm.center[0] if not cfg.task.dense and target_norm is not None else None
    val_origins = np.zeros((0, grid.ndim), np.int64)
    if split.val[1] > split.val[0]:
        val_origins = fixed_origins(split.plan(geom, "val"), d.sampling.val_patches, seed, live,
                                    d.sampling.min_live)
    return TrainingData(cfg, grid, target, labels, geom, split, norm, target_norm, classes, class_freq,
                        centres, live, train_mean, val_origins)


def _target_norm(cfg: Config, grid: Grid, target: Grid | None, labels: np.ndarray | None, norm: Normalization,
                 split: Split, geom: PatchGeometry) -> Normalization | None:
    d = cfg.data
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
