"""IBM System/360 single-precision floats (SEG-Y sample format 1) -> IEEE float32, bit for bit as segyio.

Two implementations of one rule (segyio's ``ibm2ieee``):

- a compiled loop (:func:`decode`, with ``numba`` installed: ``pip install geocnn[fast]``, also
  pulled in by ``geocnn[mdio]``): byte swap, decode and store in one pass over the file's words
  where they lie, big reads split among a few threads — sequential reads at about 0.5× the rate
  the file's bytes can be read at all (2 cores; benchmarks/patch_io.py), random 64³ patches 1.5×
  NumPy's rate;
- NumPy (:func:`ibm_to_float32`, and :func:`decode` without numba or with ``GEOCNN_JIT=0``):
  ten or so passes over cache-sized blocks, 0.18–0.20× the raw read rate.

A process decodes its first :data:`START_WORDS` words with NumPy and loads numba meanwhile
(``GEOCNN_JIT=1``: from the first read).

Both give the same bits for every one of the 2**32 words: tests/test_ibm.py sweeps every
sign/exponent byte × every top-12-bit mantissa (the bits that decide which rule applies), the
special words and random words in every run, and all 2**32 words with ``GEOCNN_EXHAUSTIVE=1``
(85 s; passed on 2026-12-02); test_segy.py holds NumPy's bits to segyio's.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

from geocnn.machine import cpu_count

log = logging.getLogger(__name__)

# IBM words decoded per NumPy block (1 MiB): words, scratch and result stay in a core's L2 cache.
IBM_BLOCK = 1 << 18
# Arrays at least this big (words) are split among threads by the compiled decoder.
THREADED_WORDS = 1 << 20
# IBM words a process decodes with NumPy before it loads numba (1 GiB, about as long as loading
# numba takes): a file of a few hundred MB, or a look at a few traces, never pays the 0.5 s, and a
# big survey pays it once, in a thread, while NumPy goes on. GEOCNN_JIT=1 loads it at the first read.
START_WORDS = 1 << 28
MAX_THREADS = 4

_IEMINIB = 0x21200000  # smallest IBM magnitude that is a normal IEEE float; below -> 0
_IEMAXIB = 0x611FFFFF  # largest IBM magnitude that fits an IEEE float; above -> 0x7FFFFFFF
_IEEEMAX = 0x7FFFFFFF
_IBM_EMIN, _IBM_EMAX = 34, 96  # exponents whose normalised words convert on the fast path
# Per top-3-mantissa-bits: exponent correction and mantissa shift (1 << leading zeros).
_IBM_IT = np.array([0x21800000, 0x21400000, 0x21000000, 0x21000000,
                    0x20C00000, 0x20C00000, 0x20C00000, 0x20C00000], dtype=np.uint32)
_IBM_MT = np.array([8, 4, 2, 2, 1, 1, 1, 1], dtype=np.uint32)


def _ibm_exact(u: np.ndarray) -> np.ndarray:
    """IBM -> IEEE bits for any word, with segyio's exact rules (slow path, few elements)."""
    inabs = u & np.uint32(0x7FFFFFFF)
    mant = u & np.uint32(0x00FFFFFF)
    ix = mant >> np.uint32(21)
    bits = mant * _IBM_MT[ix] + (((u & np.uint32(0x7F000000)) - _IBM_IT[ix]) << np.uint32(1))
    bits = np.where(inabs > _IEMAXIB, np.uint32(_IEEEMAX), bits) | (u & np.uint32(0x80000000))
    return np.where(inabs < _IEMINIB, np.uint32(0), bits)


def ibm_to_float32(words: np.ndarray) -> np.ndarray:
    """Convert IBM single-precision words to IEEE float32, bit for bit as segyio does.

    Parameters
    ----------
    words
        ``uint32`` array in native byte order (the file's bytes, byte-swapped if needed).

    Returns
    -------
    numpy.ndarray
        A new float32 array of the same shape.

    Notes
    -----
    An IBM float is ``±0.M × 16**(E - 64)`` with a 24-bit mantissa ``M``. Converting ``M`` to
    float32 is exact and normalises it (the leading bit lands in the implicit position), so only
    the exponent needs adjusting: add ``(4E - 280) << 23`` to the float's bits — the same 32-bit
    arithmetic as segyio's converter for normalised words. Words whose result would fall outside
    float32's normal range, zeros and unnormalised mantissas (rare in real data, except zeros)
    take segyio's rules element by element, so every word converts bit for bit as segyio does.

    Example
    -------
    >>> ibm_to_float32(np.array([0xC276A000], dtype=np.uint32))   # IBM -118.625
    array([-118.625], dtype=float32)
    """
    u = np.ascontiguousarray(words, dtype=np.uint32)
    out = np.empty(u.shape, dtype=np.float32)
    _ibm_into(u.reshape(-1), out.reshape(-1))
    return out


def _ibm_into(u: np.ndarray, out: np.ndarray) -> None:
    """Decode 1-D native words into 1-D float32 ``out``, a block at a time.

    Blocks of :data:`IBM_BLOCK` words keep the words, the scratch array and the result in the
    core's cache across the ten or so NumPy passes; whole slabs would stream each pass from memory
    (measured 2.2 times slower on a 12 MiB slab). One scratch array serves every block: a fresh
    one per block is a fresh mmap (over glibc's 128 KiB threshold) page-faulted on every pass.
    """
    scratch = np.empty(min(u.size, IBM_BLOCK), dtype=np.uint32)
    for start in range(0, u.size, IBM_BLOCK):
        block = u[start:start + IBM_BLOCK]
        _ibm_block(block, out[start:start + IBM_BLOCK], scratch[:block.size])


def _ibm_block(u: np.ndarray, value: np.ndarray, tmp: np.ndarray) -> None:
    """One block of :func:`ibm_to_float32` (see its notes), written into ``value``; ``tmp`` is
    uint32 scratch of the same size."""
    np.bitwise_and(u, np.uint32(0x00FFFFFF), out=tmp)
    # The mantissa's top hex digit is 0 somewhere (zeros, unnormalised words)?
    unnormalised = tmp.size > 0 and tmp.min() < np.uint32(1 << 20)
    # exact: mantissas are below 2**24, so as int32 they are the same numbers — and NumPy converts
    # int32 with SIMD, uint32 with a scalar loop (measured 7 times slower)
    value[...] = tmp.view(np.int32)
    bits = value.view(np.uint32)
    # Add (4E - 280) << 23 and the sign, all modulo 2**32 (the order of the additions is free):
    # (sign + E << 24) + (E << 24) = sign << 31 + E << 25 — two passes fewer than shift-and-or.
    np.bitwise_and(u, np.uint32(0xFF000000), out=tmp)
    bits += tmp
    tmp &= np.uint32(0x7F000000)
    # Exponents near float32's limits land outside fields 3..254 (or wrap): segyio's rules there.
    # For normalised words the field is 4E - 133 .. 4E - 130, inside 3..254 exactly for E in 34..96.
    bits += tmp
    bits -= np.uint32(280 << 23)
    tmp -= np.uint32(_IBM_EMIN << 24)  # E below the range wraps to the top: one test for both ends
    limit = np.uint32((_IBM_EMAX - _IBM_EMIN) << 24)
    out_of_range = tmp > limit if tmp.size and tmp.max() > limit else None
    if unnormalised or out_of_range is not None:
        special = np.bitwise_and(u, np.uint32(0x00F00000), out=tmp) == 0
        if out_of_range is not None:
            special |= out_of_range
        _fix_special(u, bits, special, tmp)


def _fix_special(u: np.ndarray, bits: np.ndarray, special: np.ndarray, scratch: np.ndarray) -> None:
    """Zeros in bulk, then segyio's exact rules for the remaining odd words."""
    tiny = np.bitwise_and(u, np.uint32(0x7FFFFFFF), out=scratch) < np.uint32(_IEMINIB)
    bits[tiny] = 0  # a boolean-mask store: 2.5 times faster than np.copyto(where=) here
    special &= ~tiny
    if special.any():
        idx = np.flatnonzero(special)
        bits[idx] = _ibm_exact(u[idx])


# --------------------------------------------------------------------------------------------
# Whole arrays of file words, compiled when numba is there
# --------------------------------------------------------------------------------------------

def decode(raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """IBM words as stored (any byte order; a strided view of the file is fine, it is not modified)
    -> a new float32 array of the same shape, or ``out`` (C-contiguous float32, that shape) filled."""
    if out is None:
        out = np.empty(raw.shape, dtype=np.float32)
    check_out(out, raw.shape)  # the compiled loop writes without bounds checks
    kernel = _decoder(raw.size)
    if kernel is not None and raw.size and raw.ndim and raw.strides[-1] == 4:
        if raw.size <= IBM_BLOCK:
            # a patch's short runs lie all over the file: NumPy's copy gathers them with more reads
            # in flight than the decoding loop does (0.3 against 0.9 ms for a 64³ patch from
            # the page cache), and the loop then decodes the copy while it is in the cache
            raw = raw.copy()
        flat, starts = _rows(raw)
        if flat is not None:
            _run(kernel, flat, starts, raw.shape[-1], out.reshape(-1).view(np.uint32), not raw.dtype.isnative)
            return out
    return _decode_numpy(raw, out)


def check_out(out: np.ndarray, shape: tuple[int, ...]) -> None:
    """``out``, a caller's array to decode into, must be C-contiguous float32 of ``shape``."""
    if out.shape != tuple(shape) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous float32 shaped {tuple(shape)}, not {out.dtype} {out.shape}")


def _decode_numpy(raw: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`decode` in NumPy, into ``out``: gathered and swapped a block of rows at a time (one
    casting copy), each block decoded while it is in the cache."""
    if raw.size <= IBM_BLOCK:  # a patch: one copy (a casting gather over scattered runs is slower), swapped in place
        words = raw.copy()
        if not words.dtype.isnative:
            words.byteswap(inplace=True)
        _ibm_into(words.view(np.uint32).reshape(-1), out.reshape(-1))
        return out
    row = raw.size // raw.shape[0]
    rows = max(1, IBM_BLOCK // max(1, row))
    words = np.empty(rows * row, dtype=np.uint32)  # reused for every block
    scratch = np.empty_like(words)
    for a in range(0, raw.shape[0], rows):
        block = raw[a:a + rows]
        u = words[:block.size]
        np.copyto(u.reshape(block.shape), block)  # the casting gather: copy and byte swap in one pass
        _ibm_block(u, out[a:a + rows].reshape(-1), scratch[:block.size])
    return out


def _rows(raw: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """``raw``'s memory as one contiguous run of native uint32 words (from its lowest-addressed row
    to the end of its highest; the bytes between rows, e.g. trace headers, are never written) and
    the word offset of each row in it, in ``raw``'s C order. ``(None, …)`` when a stride is not a
    whole number of words."""
    n = raw.shape[-1]
    if raw.flags.c_contiguous:
        flat = raw.reshape(-1).view(np.uint32)
        flat.flags.writeable = False  # this view only: the kernel takes read-only words
        return flat, np.arange(0, raw.size, n, dtype=np.int64)
    strides = raw.strides[:-1]
    if any(s % 4 for s in strides):
        return None, np.empty(0, np.int64)
    offsets = np.zeros(raw.shape[:-1], dtype=np.int64)
    for axis, (size, stride) in enumerate(zip(raw.shape[:-1], strides, strict=True)):
        shape = [1] * offsets.ndim
        shape[axis] = size
        offsets += (np.arange(size, dtype=np.int64) * (stride // 4)).reshape(shape)
    first = tuple(size - 1 if s < 0 else 0 for size, s in zip(raw.shape[:-1], strides, strict=True))
    low = raw[first].view(np.uint32)  # the row at the lowest address
    base = int(offsets.min()) if offsets.size else 0
    span = (int(offsets.max()) - base if offsets.size else 0) + n
    return as_strided(low, shape=(span,), strides=(4,), writeable=False), (offsets - base).reshape(-1)


def _run(kernel: Callable, flat: np.ndarray, starts: np.ndarray, n: int, out: np.ndarray, swap: bool) -> None:
    """The kernel over all rows; big arrays in row ranges on a few threads (it releases the GIL)."""
    threads = _threads() if starts.size * n >= THREADED_WORDS and starts.size > 1 else 1
    if threads == 1:
        kernel(flat, starts, n, out, swap)
        return
    bounds = np.linspace(0, starts.size, threads + 1).astype(np.int64)
    parts = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    list(_pool().map(lambda ab: kernel(flat, starts[ab[0]:ab[1]], n, out[ab[0] * n:ab[1] * n], swap), parts))


def _threads() -> int:
    return max(1, min(cpu_count(), MAX_THREADS))


_POOL: ThreadPoolExecutor | None = None
_KERNEL: Callable | None = None
_BUILDING: threading.Thread | None = None  # the build, once START_WORDS were decoded
_DECODED = 0  # IBM words decoded in this process
_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="geocnn-ibm")
        return _POOL


def _after_fork() -> None:
    """A forked child (DataLoader workers) has none of the parent's threads: a pool of its own, and
    no build to wait for (one still running in the parent is not finished here: NumPy decodes)."""
    global _POOL, _LOCK
    _POOL, _LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _decoder(words: int) -> Callable | None:
    """The compiled decoder if it is ready, counting ``words`` towards :data:`START_WORDS`."""
    global _DECODED
    _DECODED += words
    if _KERNEL is None and _DECODED < START_WORDS and os.environ.get("GEOCNN_JIT") != "1":
        return None
    return compiled()


def compiled(wait: bool = False) -> Callable | None:
    """The compiled row decoder; None while it is being built, and for good without numba (or with
    ``GEOCNN_JIT=0``, or when building fails: one log line says why).

    The first call starts the build (numba's import and its on-disk cache: about 0.5 s) in a
    thread and returns at once — NumPy decodes meanwhile — unless ``wait``. The thread is not a
    daemon: a process that ends sooner waits for it (a daemon thread frozen inside an import at
    exit can hang the interpreter).
    """
    global _BUILDING
    if os.environ.get("GEOCNN_JIT", "1") == "0":
        return None
    if _KERNEL is not None:
        return _KERNEL
    with _LOCK:
        if _BUILDING is None:
            _BUILDING = threading.Thread(target=_try_build, name="geocnn-ibm-build")
            _BUILDING.start()
        building = _BUILDING
    if wait:
        building.join()
    return _KERNEL


def _try_build() -> None:
    global _KERNEL
    try:
        _KERNEL = _build()
    except ImportError:
        log.debug("numba not installed: IBM samples are decoded with NumPy (pip install geocnn[fast])")
    except Exception as exc:  # a numba that cannot compile here: the NumPy path still works
        log.warning("IBM decoding falls back to NumPy: numba failed (%s)", exc)


def _build() -> Callable:
    """The compiled row decoder (numba caches the machine code on disk after the first process),
    checked on a probe against NumPy: a broken toolchain must not go unseen."""
    from geocnn.grids import ibmjit  # imports numba

    probe = np.array([0xC276A000, 0, 0x00100000, 0x7FFFFFFF, 0xFFFFFFFF, 0x21100000], dtype=np.uint32)
    probe.setflags(write=False)
    got = np.empty_like(probe)
    ibmjit.rows(probe, np.zeros(1, np.int64), probe.size, got, False)
    if not np.array_equal(got, ibm_to_float32(probe).view(np.uint32)):
        raise RuntimeError("the compiled decoder disagrees with NumPy on a probe")
    return ibmjit.rows
