"""Patch I/O: random 64³ sub-cubes per second from SEG-Y (IBM and IEEE) and ``.npy``, and whole-cube
sequential read speed, through segyio, NumPy and geocnn's reader.

One seeded cube (inline, crossline, sample; amplitudes in the thousands, the first 24 samples
muted to zero as in field data) is written three times: ``.npy``, SEG-Y with IEEE floats (format
5) and SEG-Y with IBM floats (format 1), both big-endian as the standard says and sorted by
inline. Each file is then flushed, evicted from the page cache and read back sequentially once, so
every reader works from the page cache in the state a file read from disk leaves it (how a file
was written changes that state: segyio's trace-by-trace writes leave small page-cache folios that
cost three times as many page faults as those of one big read).
Random patches are timed twice per round: ``fresh map`` opens every reader anew (each patch then
faults the file's pages into the new mapping, as at the start of a training run) and ``mapped``
reads the same patches again (pages already mapped: the steady state of a long run). Readers (the
same seeded origins for all; each patch is copied into a new float32 array):

- ``npy memmap``: ``np.load(mmap_mode="r")[window]`` copied — the reference the target is set against;
- ``segyio``: segyio's best path for a sub-cube (one ``f.trace[a:b, t0:t1]`` slice per inline of
  the patch, traces of an inline being consecutive), and ``f.iline`` (whole inlines, then cut);
- ``geocnn``: ``geocnn.grids.grid.open_grid(path).read(window)`` for each file.

IBM samples are decoded by the compiled decoder (numba, loaded before timing) unless ``GEOCNN_JIT=0``
(or without numba): NumPy's.

Sequential: the whole cube read in slabs of 16 inlines by geocnn (new arrays, and for IBM also
into one reused array as the decoded cache is filled), and by segyio
(``f.mmap()`` + ``segyio.tools.cube``), versus reading the file's bytes (``readinto``), MB/s of
float32 output (file bytes for the raw read). Target: geocnn's random patches from SEG-Y ≥ 0.5 ×
the ``.npy`` memmap rate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import _common as C
import _models as M
import numpy as np
import segyio

PATCH = 64


def write_cubes(folder: Path, shape: tuple[int, int, int]) -> dict[str, Path]:
    """The same cube as .npy, IEEE SEG-Y and IBM SEG-Y."""
    cube = M.layered_volume(shape, seed=7) * 1000.0  # amplitudes of field data, not ±1
    cube[..., :24] = 0.0  # a mute: zeros are common in field data (and a special case of IBM decoding)
    paths = {"npy": folder / "cube.npy", "ieee": folder / "cube_ieee.sgy", "ibm": folder / "cube_ibm.sgy"}
    np.save(paths["npy"], cube)
    # segyio converts the array it writes into an IBM file in place: hand it copies.
    segyio.tools.from_array3D(str(paths["ieee"]), cube.copy(), format=5)
    segyio.tools.from_array3D(str(paths["ibm"]), cube.copy(), format=1)
    return paths


def settle(path: Path) -> None:
    """Flush, evict and read the file back: page cache as after reading it from disk once."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    sequential_raw(path)


def origins(shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.array(shape) - PATCH + 1, size=(n, 3))


# ----------------------------------------------------------------------------- random-patch readers

def npy_reader(path: Path) -> Callable:
    arr = np.load(path, mmap_mode="r")
    return lambda i, j, k: np.array(arr[i:i + PATCH, j:j + PATCH, k:k + PATCH], dtype=np.float32)


def geocnn_reader(path: Path, random_access: bool = False) -> Callable:
    """geocnn's reader; ``random_access`` is how training opens files (IBM: the decoded cache)."""
    from geocnn.grids.grid import open_grid

    grid = open_grid(path, random_access=random_access)
    return lambda i, j, k: grid.read((slice(i, i + PATCH), slice(j, j + PATCH), slice(k, k + PATCH)))[0]


def segyio_trace_reader(path: Path) -> Callable:
    """segyio's fastest sub-cube path: for each inline, a slice of consecutive traces, samples cut."""
    f = segyio.open(str(path), "r")
    nx = len(f.xlines)

    def read(i: int, j: int, k: int) -> np.ndarray:
        out = np.empty((PATCH, PATCH, PATCH), np.float32)
        for a in range(PATCH):
            first = (i + a) * nx + j
            for b, tr in enumerate(f.trace[first:first + PATCH, k:k + PATCH]):
                out[a, b] = tr
        return out

    return read


def segyio_iline_reader(path: Path) -> Callable:
    """Whole inlines (``f.iline``), then the window cut out."""
    f = segyio.open(str(path), "r")
    numbers = f.ilines

    def read(i: int, j: int, k: int) -> np.ndarray:
        return np.stack([f.iline[numbers[i + a]][j:j + PATCH, k:k + PATCH] for a in range(PATCH)])

    return read


def rate(read: Callable, where: np.ndarray, check: np.ndarray | None = None) -> float:
    """Patches per second over ``where``; the first patch is compared with ``check`` when given."""
    first = read(*where[0])
    # IBM floats keep 21-24 bits of the mantissa: equal to float32 within a few parts in 10^7
    if check is not None and not np.allclose(first, check, rtol=1e-6, atol=0):
        raise AssertionError("reader returned different values from the .npy memmap")
    t0 = time.perf_counter()
    for o in where:
        read(*o)
    return len(where) / (time.perf_counter() - t0)


# ----------------------------------------------------------------------------- sequential readers

def sequential_geocnn(path: Path, slab: int = 16) -> float:
    """Whole cube through geocnn, slab by slab; MB/s of float32 output."""
    from geocnn.grids.grid import open_grid

    grid = open_grid(path)
    t0, total = time.perf_counter(), 0
    for s in range(0, grid.shape[0], slab):
        total += grid.read((slice(s, min(s + slab, grid.shape[0])), slice(None), slice(None))).nbytes
    return total / (time.perf_counter() - t0) / 1e6


def sequential_into(path: Path, slab: int = 16) -> float:
    """The same slabs decoded into one reused array (``SegyFile.read(window, out=)``, how the
    decoded cache is filled): like the raw read, no new memory per slab; MB/s of float32 output."""
    from geocnn.grids.segy import open_segy

    f = open_segy(path)
    buf = np.empty((slab, *f.shape[1:]), np.float32)
    t0, total = time.perf_counter(), 0
    for s in range(0, f.shape[0], slab):
        n = min(slab, f.shape[0] - s)
        total += f.read((slice(s, s + n), slice(None), slice(None)), out=buf[:n]).nbytes
        f.release()
    return total / (time.perf_counter() - t0) / 1e6


def sequential_segyio(path: Path) -> float:
    t0 = time.perf_counter()
    with segyio.open(str(path), "r") as f:
        f.mmap()
        cube = segyio.tools.cube(f)
    return cube.astype(np.float32, copy=False).nbytes / (time.perf_counter() - t0) / 1e6


def sequential_raw(path: Path, chunk: int = 16 << 20) -> float:
    """The file's bytes into one reused buffer: the floor of any reader."""
    buf = bytearray(chunk)
    view = memoryview(buf)
    t0, total = time.perf_counter(), 0
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(view):
            total += n
    return total / (time.perf_counter() - t0) / 1e6


def sequential_npy(path: Path) -> float:
    t0 = time.perf_counter()
    cube = np.load(path)
    return cube.nbytes / (time.perf_counter() - t0) / 1e6


def decoder_in_use() -> str:
    """Which IBM decoder the geocnn rows measure: the compiled one in its steady state (loaded
    before timing; a process otherwise decodes its first GiB with NumPy while numba loads), or
    NumPy's with GEOCNN_JIT=0 or without numba."""
    from geocnn.grids import ibm

    if os.environ.get("GEOCNN_JIT") == "0":
        return "NumPy (GEOCNN_JIT=0)"
    os.environ["GEOCNN_JIT"] = "1"  # from the first read
    return "compiled (numba, loaded before timing)" if ibm.compiled(wait=True) else "NumPy (numba not installed)"


# ----------------------------------------------------------------------------- main

def main() -> None:
    p = C.parser(__doc__, rounds=5)
    p.add_argument("--shape", type=int, nargs=3, default=(384, 384, 512),
                   help="cube (inline crossline sample); e.g. 512 512 1000 for a 1 GB file")
    p.add_argument("--patches", type=int, default=150, help="random patches per reader and round")
    p.add_argument("--segyio-patches", type=int, default=20, help="random patches for the (slow) segyio readers")
    args = p.parse_args()
    shape = tuple(args.shape)
    C.header(f"patch I/O: random {PATCH}³ patches and sequential reads, cube {'×'.join(map(str, shape))} "
             f"({np.prod(shape) * 4 / 2**20:.0f} MiB as float32, page-cached)", args)
    with C.workdir(args, "patchio") as folder:
        os.environ["GEOCNN_CACHE"] = str(folder / "cache")  # the decoded IBM cache goes with the inputs
        ibm_decoder = decoder_in_use()
        print(f"IBM decoding: {ibm_decoder}")
        paths = write_cubes(folder, shape)
        for path in paths.values():
            settle(path)
        readers = {
            "npy memmap": lambda: npy_reader(paths["npy"]),
            "geocnn npy": lambda: geocnn_reader(paths["npy"]),
            "geocnn SEG-Y IEEE": lambda: geocnn_reader(paths["ieee"]),
            "geocnn SEG-Y IBM": lambda: geocnn_reader(paths["ibm"]),
            "geocnn SEG-Y IBM, training (cache)": lambda: geocnn_reader(paths["ibm"], random_access=True),
            "segyio trace slices IEEE": lambda: segyio_trace_reader(paths["ieee"]),
            "segyio trace slices IBM": lambda: segyio_trace_reader(paths["ibm"]),
            "segyio f.iline IEEE": lambda: segyio_iline_reader(paths["ieee"]),
        }
        reference = np.array(np.load(paths["npy"], mmap_mode="r")[tuple(slice(o, o + PATCH) for o in (0, 0, 0))])
        fresh = {name: C.Series() for name in readers}
        mapped = {name: C.Series() for name in readers if not name.startswith("segyio")}
        seq_readers = {
            "raw file read .npy": lambda: sequential_raw(paths["npy"]),
            "raw file read SEG-Y": lambda: sequential_raw(paths["ieee"]),
            "np.load .npy": lambda: sequential_npy(paths["npy"]),
            "geocnn npy": lambda: sequential_geocnn(paths["npy"]),
            "geocnn SEG-Y IEEE": lambda: sequential_geocnn(paths["ieee"]),
            "geocnn SEG-Y IBM": lambda: sequential_geocnn(paths["ibm"]),
            "geocnn SEG-Y IBM into one array": lambda: sequential_into(paths["ibm"]),
            "segyio mmap + cube IEEE": lambda: sequential_segyio(paths["ieee"]),
            "segyio mmap + cube IBM": lambda: sequential_segyio(paths["ibm"]),
        }
        seq = {name: C.Series() for name in seq_readers}
        for r in range(args.rounds):
            where = np.vstack([[0, 0, 0], origins(shape, args.patches, seed=r)])
            for name, make in readers.items():
                read = make()
                check = reference if name != "segyio f.iline IEEE" else None
                if name.startswith("segyio"):
                    fresh[name].add(rate(read, where[:args.segyio_patches + 1], check))
                    continue
                fresh[name].add(rate(read, where, check))
                mapped[name].add(rate(read, where, check))
            for name, run in seq_readers.items():
                seq[name].add(run())
    npy_fresh, npy_mapped = fresh["npy memmap"], mapped["npy memmap"]
    rows = []
    for name, series in fresh.items():
        m = mapped.get(name)
        rows.append([name, series.span(), C.ratios(series, npy_fresh).span("{:.2f}"),
                     m.span() if m else "", C.ratios(m, npy_mapped).span("{:.2f}") if m else ""])
    print(C.table(["random 64³ patches", "fresh map /s", "× npy", "mapped /s", "× npy"], rows))
    print()
    raw = seq["raw file read SEG-Y"]
    print(C.table(["sequential read", "MB/s", "× raw SEG-Y read"],
                  [[name, s.span(), C.ratios(s, raw).span("{:.2f}")] for name, s in seq.items()]))

    def vs(name: str, ref: C.Series, table: dict) -> float:
        return C.ratios(table[name], ref).median

    best = max(vs("segyio trace slices IEEE", npy_fresh, fresh), vs("segyio trace slices IBM", npy_fresh, fresh))
    figures = {"fresh": {k: v.values for k, v in fresh.items()}, "mapped": {k: v.values for k, v in mapped.items()},
               "sequential": {k: v.values for k, v in seq.items()}}
    C.footer(f"HEADLINE patch_io: geocnn random {PATCH}³ patches from SEG-Y = "
             f"{vs('geocnn SEG-Y IEEE', npy_fresh, fresh):.2f}× IEEE, {vs('geocnn SEG-Y IBM', npy_fresh, fresh):.2f}× "
             f"IBM ({vs('geocnn SEG-Y IBM, training (cache)', npy_fresh, fresh):.2f}× through the training cache) "
             f"the .npy memmap rate on fresh maps ({npy_fresh.median:.0f}/s), "
             f"{vs('geocnn SEG-Y IEEE', npy_mapped, mapped):.2f}× and {vs('geocnn SEG-Y IBM', npy_mapped, mapped):.2f}× "
             f"once mapped ({npy_mapped.median:.0f}/s) (target ≥ 0.5; segyio's best {best:.2f}×)", args, figures)

if __name__ == "__main__":
    main()
