"""Write synthetic fault cubes to disk: what ``geocnn synth faults`` does.

Two layouts, one per use:

- **npy** (for training): ``seismic.npy`` (float32) and ``faults.npy`` (uint8, 1 on a fault), each
  of shape (cube, inline, crossline, sample) with a JSON sidecar naming those axes. A training
  config reads them as any grid; a 3D patch spans the last three axes, so the cube axis is held at
  one position per patch — **no patch can straddle two cubes**, without gaps or masks — and
  ``split: {axis: cube}`` holds whole cubes out for validation.
- **segy** (for other software): one pair per cube, ``seismic_000.sgy`` and ``faults_000.sgy``
  (IEEE float, inlines and crosslines numbered from 1, the sample interval of the spec).

Both come with ``synth.json``: the command's parameters and what was drawn for every cube
(wavelet, folds, SNR, each fault's centre, strike, dip and throw).

Cube ``k`` is drawn from ``numpy.random.default_rng([seed, k])``, so it is the same whatever the
number of cubes: ``--cubes 4`` writes the first four cubes of ``--cubes 40``. One cube is in memory
at a time (about 40 bytes per voxel while it is drawn); every file is written to a temporary name
and renamed into place only when all cubes are done (:mod:`geocnn.atomic`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import segyio

from geocnn import atomic
from geocnn.errors import ConfigError
from geocnn.fmt import human_bytes
from geocnn.grids import sidecar
from geocnn.progress import SILENT, Reporter
from geocnn.synth.faults import FaultCube, FaultCubeSpec, fault_cube

log = logging.getLogger(__name__)

FORMATS = ("npy", "segy")
SIZES = (16, 512)  # smallest and largest cube edge, voxels
WORK_BYTES = 40  # per voxel while one cube is drawn (coordinates, τ, noise, float64 temporaries)
AXES = ("cube", "inline", "crossline", "sample")


@dataclass(frozen=True)
class SynthResult:
    """What was written: the files (final names), the cube count and size, the time it took."""

    out: Path
    files: tuple[Path, ...]
    cubes: int
    size: int
    seconds: float
    fault_share: float  # mean share of fault voxels over all cubes


def check_request(out: Path, cubes: int, size: int, fmt: str) -> None:
    """Refuse bad options before anything is drawn or allocated."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if cubes < 1:
        raise ConfigError(f"--cubes must be at least 1, got {cubes}")
    if not SIZES[0] <= size <= SIZES[1]:
        raise ConfigError(f"--size must lie in {SIZES[0]}..{SIZES[1]} voxels, got {size}",
                          fix=f"a {SIZES[1]}³ cube needs {human_bytes(WORK_BYTES * SIZES[1] ** 3)} of memory "
                              "while it is drawn; write more cubes rather than bigger ones")
    atomic.check_folder(out)


def planned_files(out: Path, cubes: int, fmt: str) -> list[Path]:
    """The outputs of a request, in writing order (``synth.json`` last)."""
    if fmt == "npy":
        names = ["seismic.npy", "seismic.json", "faults.npy", "faults.json"]
    else:
        names = [f"{kind}_{k:03d}.sgy" for k in range(cubes) for kind in ("seismic", "faults")]
    return [out / n for n in [*names, "synth.json"]]


def _check_disk(out: Path, cubes: int, size: int, fmt: str) -> None:
    per_voxel = 5 if fmt == "npy" else 8  # float32 + uint8, or two float32 SEG-Y files
    need = cubes * size**3 * per_voxel + (0 if fmt == "npy" else cubes * 2 * (3600 + 240 * size**2))
    folder = next(p for p in (out, *out.parents) if p.exists())
    free = shutil.disk_usage(folder).free
    if need > free:
        raise ConfigError(f"{cubes} cubes of {size}³ need {human_bytes(need)} but {folder} has {human_bytes(free)} free",
                          where=str(out), fix="write fewer or smaller cubes, or write elsewhere")


def write_fault_cubes(out: str | Path, cubes: int, size: int = 128, seed: int = 0, fmt: str = "npy",
                      force: bool = False, reporter: Reporter = SILENT,
                      spec: FaultCubeSpec | None = None) -> SynthResult:
    """Draw ``cubes`` fault cubes of ``size``³ and write them to the folder ``out``.

    Parameters
    ----------
    out
        Output folder (made if missing).
    cubes, size
        How many cubes, and their edge in voxels (inline = crossline = sample count).
    seed
        Cube ``k`` is drawn from ``default_rng([seed, k])``.
    fmt
        ``npy`` (one (cube, inline, crossline, sample) volume per kind, for training) or ``segy``
        (one file per cube and kind).
    force
        Replace existing outputs.
    spec
        The ranges cubes are drawn from (default :class:`FaultCubeSpec`); its shape is replaced by
        ``size``³.

    Examples
    --------
    >>> result = write_fault_cubes("synth", cubes=2, size=32, seed=1)  # doctest: +SKIP
    >>> np.load("synth/seismic.npy", mmap_mode="r").shape             # doctest: +SKIP
    (2, 32, 32, 32)
    """
    out = Path(out)
    check_request(out, cubes, size, fmt)
    files = planned_files(out, cubes, fmt)
    for f in files:
        atomic.check_new(f, force)
    _check_disk(out, cubes, size, fmt)
    spec = replace(spec or FaultCubeSpec(), shape=(size, size, size))
    started = time.perf_counter()
    task = reporter.task("synth faults", total=cubes, unit="cube")
    infos: list[dict] = []
    with contextlib.ExitStack() as stack:
        tmp = {f: stack.enter_context(atomic.replacing(f, force=force)) for f in files}
        store = _NpyStore(tmp, files, cubes, size, spec) if fmt == "npy" else _SegyStore(tmp, files, spec)
        for k in range(cubes):
            cube = fault_cube(spec, np.random.default_rng([seed, k]))
            store.write(k, cube)
            infos.append(cube.info)
            task.advance(1, info=f"{100 * cube.info['fault_share']:.1f}% fault voxels")
        manifest = {"generator": "geocnn.synth.faults", "cubes": cubes, "size": size, "seed": seed, "format": fmt,
                    "axes": list(AXES) if fmt == "npy" else list(AXES[1:]),
                    "files": [f.name for f in files[:-1]], "spec": _jsonable(asdict(spec)), "drawn": infos}
        tmp[files[-1]].write_text(_dumps(manifest), encoding="utf-8")
        store.close()
    task.close()
    seconds = time.perf_counter() - started
    share = float(np.mean([i["fault_share"] for i in infos]))
    log.info("wrote %d cube(s) of %d³ to %s in %.1f s (%.1f%% fault voxels)", cubes, size, out, seconds, 100 * share)
    return SynthResult(out, tuple(files), cubes, size, seconds, share)


class _NpyStore:
    """Cube ``k`` into two (cube, inline, crossline, sample) memory maps, flushed per cube."""

    def __init__(self, tmp: dict[Path, Path], files: list[Path], cubes: int, size: int, spec: FaultCubeSpec) -> None:
        seismic, seismic_side, faults, faults_side = files[:4]
        shape = (cubes, size, size, size)
        self.seismic = np.lib.format.open_memmap(tmp[seismic], mode="w+", dtype=np.float32, shape=shape)
        self.faults = np.lib.format.open_memmap(tmp[faults], mode="w+", dtype=np.uint8, shape=shape)
        for side, npy, dtype, channel in ((seismic_side, seismic, "float32", "seismic"),
                                          (faults_side, faults, "uint8", "fault")):
            record = sidecar.make(axes=AXES, shape=shape, dtype=dtype, channel_names=[channel],
                                  sample_interval_us=spec.dt_s * 1e6, sample_start_ms=0.0, kind="synthetic",
                                  sources=[], ilines=None, xlines=None, offsets=None,
                                  extra={"generator": "geocnn.synth.faults", "file": npy.name})
            tmp[side].write_text(_dumps(record), encoding="utf-8")

    def write(self, k: int, cube: FaultCube) -> None:
        self.seismic[k] = cube.noisy
        self.faults[k] = cube.faults
        self.seismic.flush()
        self.faults.flush()

    def close(self) -> None:
        del self.seismic, self.faults  # unmapped before the files are renamed into place


class _SegyStore:
    """Cube ``k`` as two SEG-Y files (IEEE float, format 5; inlines and crosslines from 1)."""

    def __init__(self, tmp: dict[Path, Path], files: list[Path], spec: FaultCubeSpec) -> None:
        self.tmp, self.files, self.dt_us = tmp, files, int(round(spec.dt_s * 1e6))

    def write(self, k: int, cube: FaultCube) -> None:
        for path, values in ((self.files[2 * k], cube.noisy), (self.files[2 * k + 1], cube.faults.astype(np.float32))):
            segyio.tools.from_array3D(str(self.tmp[path]), values, format=segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE,
                                      dt=self.dt_us)

    def close(self) -> None:
        return None  # segyio closed each file as it wrote it


def _jsonable(value):
    """Tuples to lists, recursively (dataclass ``asdict`` keeps tuples)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _dumps(obj: dict) -> str:
    return json.dumps(obj, indent=2) + "\n"
