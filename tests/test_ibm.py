"""IBM float decoding: the compiled loop and NumPy give the same bits for every word, in any layout.

segyio's rule is checked against segyio itself in test_segy.py (``ibm_to_float32``); here the
compiled decoder (numba, ``geocnn[fast]``) is held to NumPy's bits over a sweep of every
sign/exponent byte with mantissas covering every leading-digit case, the special words, and random
words — for both byte orders and the strided views reads hand it (trace headers between rows,
descending numbering, pre-stack 4D windows, threads for big arrays).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from geocnn.grids import ibm
from geocnn.grids.segy import open_segy
from tests import segyfactory

try:
    import numba  # noqa: F401
except ImportError:
    numba = None

needs_numba = pytest.mark.skipif(numba is None, reason="numba is not installed: pip install -e '.[test,fast]'")

SPECIAL = [0, 0x80000000, 0x00000001, 0x00FFFFFF, 0x00100000, 0x000FFFFF, 0x21200000, 0x211FFFFF, 0x21100000,
           0x611FFFFF, 0x61200000, 0x7FFFFFFF, 0xFFFFFFFF, 0x41000000, 0x40100000, 0xC276A000, 0x42640000,
           0x3F000001, 0x22100000, 0x60FFFFFF, 0x21FFFFFF, 0x20FFFFFF, 0x61000000]


def sweep() -> np.ndarray:
    """Every sign/exponent byte × every top-12-bit mantissa (so every count of leading zero bits,
    normalised or not), the low 12 bits random; then the special words and 2**18 random words."""
    rng = np.random.default_rng(7)
    top = np.arange(256, dtype=np.uint32)[:, None] << np.uint32(24)
    mant = (np.arange(1 << 12, dtype=np.uint32) << np.uint32(12))[None, :]
    low = rng.integers(0, 1 << 12, (256, 1 << 12), dtype=np.uint32)
    grid = (top | mant | low).reshape(-1)
    extra = rng.integers(0, 2**32, 1 << 18, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([grid, np.array(SPECIAL, np.uint32), extra])


@pytest.fixture
def fresh(monkeypatch):
    """ibm.compiled() rebuilt in this test (its result is remembered per process)."""
    monkeypatch.setattr(ibm, "_BUILDING", None)
    monkeypatch.setattr(ibm, "_KERNEL", None)
    monkeypatch.setattr(ibm, "_DECODED", 0)
    monkeypatch.delenv("GEOCNN_JIT", raising=False)


@pytest.fixture
def kernel(fresh):
    """The compiled decoder, built (and waited for) in this test."""
    built = ibm.compiled(wait=True)
    assert built is not None
    return built


def numpy_bits(words: np.ndarray) -> np.ndarray:
    return ibm.ibm_to_float32(words).view(np.uint32)


@needs_numba
@pytest.mark.parametrize("order", [">u4", "<u4"])
def test_compiled_equals_numpy_for_every_kind_of_word(fresh, order):
    words = sweep()
    stored = words.astype(order)  # the file's bytes in that byte order
    assert ibm.compiled(wait=True) is not None
    ours = ibm.decode(stored).view(np.uint32)
    differ = np.flatnonzero(ours != numpy_bits(words))
    assert differ.size == 0, f"{differ.size} words differ, e.g. {words[differ[:5]].tolist()}"
    assert ibm.decode(stored[:1]).tolist() == ibm.ibm_to_float32(words[:1]).tolist()


@needs_numba
def test_compiled_reads_strided_views_of_a_file(kernel):
    """Rows separated by 60-word headers (the trace table), in every direction and rank."""
    rng = np.random.default_rng(3)
    n_il, n_xl, n_off, ns = 5, 7, 3, 37
    table = np.zeros((n_il * n_xl * n_off, 60 + ns), dtype=">u4")
    table[:, :60] = 0xDEADBEEF  # header words: never decoded, never written
    table[:, 60:] = rng.integers(0, 2**32, (len(table), ns), dtype=np.uint64).astype(np.uint32)
    before = table.copy()
    samples = table[:, 60:]
    native = samples.astype(np.uint32)
    prestack = samples.reshape(n_il, n_xl, n_off, ns)
    views = {
        "traces": (samples, native),
        "descending inlines, window": (samples.reshape(n_il, n_xl * n_off, ns)[::-1, 2:9, 5:30],
                                       native.reshape(n_il, n_xl * n_off, ns)[::-1, 2:9, 5:30]),
        "pre-stack 4D, every other offset": (prestack[1:4, ::-2, ::2, 3:], native.reshape(prestack.shape)[1:4, ::-2, ::2, 3:]),
        "one trace": (samples[4], native[4]),
        "empty": (samples[:0], native[:0]),
    }
    for name, (view, words) in views.items():
        flat, starts = ibm._rows(view)  # every row lies inside the run the kernel is handed
        n = view.shape[-1]
        assert all(flat[s:s + n].size == n for s in starts), name
        rows = np.array([flat[s:s + n] for s in starts], dtype=np.uint32).reshape(-1, n)
        np.testing.assert_array_equal(rows, view.reshape(-1, n).view(np.uint32), err_msg=name)
        got = ibm.decode(view)
        assert got.shape == view.shape and got.dtype == np.float32 and got.flags.c_contiguous, name
        np.testing.assert_array_equal(got.view(np.uint32), numpy_bits(np.ascontiguousarray(words)), err_msg=name)
        given = np.full(view.shape, np.nan, np.float32)  # into a caller's array (the decoded cache's map)
        assert ibm.decode(view, given) is given
        np.testing.assert_array_equal(given.view(np.uint32), got.view(np.uint32), err_msg=name)
    np.testing.assert_array_equal(table, before)  # the file's bytes are read, never written


@needs_numba
def test_big_arrays_are_split_among_threads_with_the_same_bits(fresh, monkeypatch):
    calls = []
    monkeypatch.setattr(ibm, "_threads", lambda: 3)
    kernel = ibm.compiled(wait=True)
    monkeypatch.setattr(ibm, "_KERNEL", lambda flat, starts, n, out, swap: calls.append(starts.size)
                        or kernel(flat, starts, n, out, swap))
    rows, ns = 1001, (ibm.THREADED_WORDS // 1000) + 1
    words = np.random.default_rng(5).integers(0, 2**32, (rows, ns), dtype=np.uint64).astype(np.uint32)
    got = ibm.decode(words.astype(">u4"))
    assert sorted(calls) == [333, 334, 334]  # three row ranges, every row once
    np.testing.assert_array_equal(got.view(np.uint32), numpy_bits(words))


def test_numpy_path_without_numba_or_with_geocnn_jit_0(fresh, monkeypatch, caplog):
    words = sweep()[:600_000]  # more than one NumPy block (IBM_BLOCK words)
    stored = words.astype(">u4").reshape(1200, 500)
    monkeypatch.setenv("GEOCNN_JIT", "0")
    assert ibm.compiled() is None
    np.testing.assert_array_equal(ibm.decode(stored).view(np.uint32).reshape(-1), numpy_bits(words))
    monkeypatch.delenv("GEOCNN_JIT")

    def missing():
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(ibm, "_build", missing)
    assert ibm.compiled(wait=True) is None
    np.testing.assert_array_equal(ibm.decode(stored).view(np.uint32).reshape(-1), numpy_bits(words))
    for rows in (stored, stored[:3]):  # a slab (blocks of rows) and a patch (one copy), into a given array
        given = np.full(rows.shape, np.nan, np.float32)
        assert ibm.decode(rows, given) is given
        np.testing.assert_array_equal(given.view(np.uint32).reshape(-1), numpy_bits(words[:rows.size]))


@needs_numba
def test_numpy_decodes_while_the_compiler_loads(fresh, monkeypatch):
    """The first IBM read starts numba's load in a thread and does not wait for it."""
    import threading

    release, real = threading.Event(), ibm._build
    monkeypatch.setattr(ibm, "_build", lambda: release.wait(30) and real())
    words = np.array(SPECIAL, np.uint32)
    assert ibm.compiled() is None  # started, not finished
    np.testing.assert_array_equal(ibm.decode(words.astype(">u4")).view(np.uint32), numpy_bits(words))
    assert ibm._BUILDING.is_alive() and ibm.compiled() is None
    release.set()
    assert ibm.compiled(wait=True) is not None and not ibm._BUILDING.is_alive()
    np.testing.assert_array_equal(ibm.decode(words.astype(">u4")).view(np.uint32), numpy_bits(words))


@needs_numba
def test_numba_is_loaded_only_once_a_process_decodes_enough(fresh, monkeypatch):
    """A look at a few traces never pays numba's import; a real read loads it (in a thread)."""
    monkeypatch.setattr(ibm, "START_WORDS", 1000)
    words = np.array(SPECIAL * 20, np.uint32)  # 460 words a read
    for _ in range(2):
        np.testing.assert_array_equal(ibm.decode(words.astype(">u4")).view(np.uint32), numpy_bits(words))
        assert ibm._BUILDING is None  # 460, then 920 words: below the mark
    ibm.decode(words.astype(">u4"))  # 1,380: the build starts
    assert ibm._BUILDING is not None
    assert ibm.compiled(wait=True) is not None
    np.testing.assert_array_equal(ibm.decode(words.astype(">u4")).view(np.uint32), numpy_bits(words))


def test_a_compiler_that_fails_falls_back_to_numpy_saying_so(fresh, monkeypatch, caplog):
    def broken():
        raise RuntimeError("the compiled decoder disagrees with NumPy on a probe")

    monkeypatch.setattr(ibm, "_build", broken)
    with caplog.at_level(logging.WARNING, logger="geocnn.grids.ibm"):
        assert ibm.compiled(wait=True) is None
        assert ibm.compiled(wait=True) is None  # tried once per process
    assert [r.getMessage() for r in caplog.records] == [
        "IBM decoding falls back to NumPy: numba failed (the compiled decoder disagrees with NumPy on a probe)"]
    words = np.array(SPECIAL, np.uint32)
    np.testing.assert_array_equal(ibm.decode(words.astype(">u4")).view(np.uint32), numpy_bits(words))


@needs_numba
@pytest.mark.parametrize("layout", [{}, {"endian": "little"}, {"ilines": range(15, 9, -1)}, {"sorting": "crossline"},
                                    {"missing": [(12, 3), (14, 8)]}])
def test_ibm_segy_reads_the_same_with_and_without_the_compiled_loop(tmp_path, fresh, monkeypatch, layout):
    s = segyfactory.write_segy(tmp_path / "ibm.sgy", **{"ilines": range(10, 16), "xlines": range(1, 9),
                                                        "n_samples": 40, "format": 1, **layout})
    f = open_segy(s.path)
    window = (slice(1, 5), slice(2, 8), slice(3, 37))
    traces = np.array([5, -1, 0, 7])

    def reads():
        return f.read(window), f.read_traces(traces, slice(4, 30)), f.read((slice(None), slice(None), slice(None)))

    assert ibm.compiled(wait=True) is not None
    with_jit = reads()
    monkeypatch.setenv("GEOCNN_JIT", "0")
    for a, b in zip(with_jit, reads(), strict=True):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    np.testing.assert_array_equal(with_jit[2], s.values)  # values encode their position


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_decodes_with_a_pool_of_its_own(kernel, monkeypatch):
    """DataLoader workers are forked: the parent's pool threads do not exist there."""
    monkeypatch.setattr(ibm, "_threads", lambda: 2)
    words = np.random.default_rng(9).integers(0, 2**32, (64, ibm.THREADED_WORDS // 32), dtype=np.uint64)
    stored = words.astype(np.uint32).astype(">u4")
    expected = ibm.decode(stored)  # the parent's pool is running now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: decode with threads, report, leave without running pytest's exit code
        ok = np.array_equal(ibm.decode(stored).view(np.uint32), expected.view(np.uint32))  # bits: NaNs included
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and status == 0


@needs_numba
@pytest.mark.skipif(os.environ.get("GEOCNN_EXHAUSTIVE") != "1",
                    reason="all 2**32 words take about two minutes: GEOCNN_EXHAUSTIVE=1 runs it")
def test_every_one_of_the_2_32_words(kernel):
    """The compiled loop and NumPy agree on every word, not only on the sweep's representatives."""
    step = 1 << 24
    for start in range(0, 1 << 32, step):
        words = np.arange(start, start + step, dtype=np.uint64).astype(np.uint32)
        ours = ibm.decode(words.astype(">u4")).view(np.uint32)
        differ = np.flatnonzero(ours != numpy_bits(words))
        assert differ.size == 0, f"{differ.size} words differ from {start:#x}, e.g. {words[differ[:3]].tolist()}"
