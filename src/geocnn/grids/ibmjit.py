"""The compiled IBM row decoder behind :func:`geocnn.grids.ibm.decode` (imports numba: only
:func:`geocnn.grids.ibm.compiled` imports this module, and only when numba is installed).

One signature, compiled when this module is first imported and cached on disk by numba, so later
processes load it instead of compiling (about 0.3 s against 0.6 s).
"""

from __future__ import annotations

from numba import boolean, int64, njit, types, uint32, void

_IEMINIB = 0x21200000  # smallest IBM magnitude that is a normal IEEE float; below -> 0
_IEMAXIB = 0x611FFFFF  # largest IBM magnitude that fits an IEEE float; above -> 0x7FFFFFFF (signed)

WORDS = types.Array(uint32, 1, "C", readonly=True)


@njit(inline="always")
def word(w):  # pragma: no cover - compiled
    """One native IBM word -> IEEE bits, segyio's rule without its lookup tables: the leading zero
    bits of the top hex digit (at most 3) are counted with compares, so the loop vectorises."""
    sign = w & uint32(0x80000000)
    inabs = w & uint32(0x7FFFFFFF)
    mant = w & uint32(0x00FFFFFF)
    lz = uint32(mant < uint32(0x800000)) + uint32(mant < uint32(0x400000)) + uint32(mant < uint32(0x200000))
    bits = ((mant << lz) + (((w & uint32(0x7F000000)) - (uint32(0x20C00000) + lz * uint32(0x400000)))
                            << uint32(1))) | sign
    bits = (uint32(0x7FFFFFFF) | sign) if inabs > uint32(_IEMAXIB) else bits
    return uint32(0) if inabs < uint32(_IEMINIB) else bits


@njit(void(WORDS, int64[::1], int64, uint32[::1], boolean), nogil=True, cache=True, boundscheck=False)
def rows(flat, starts, n, out, swap):  # pragma: no cover - compiled
    """Row ``r`` (``n`` words from ``flat[starts[r]]``, byte-swapped first when ``swap``) decoded
    into ``out[r * n:(r + 1) * n]`` as IEEE bits."""
    for r in range(starts.size):
        s, o = starts[r], r * n
        if swap:
            for k in range(n):
                w = flat[s + k]
                w = (((w & uint32(0xFF)) << uint32(24)) | ((w & uint32(0xFF00)) << uint32(8))
                     | ((w >> uint32(8)) & uint32(0xFF00)) | (w >> uint32(24)))
                out[o + k] = word(w)
        else:
            for k in range(n):
                out[o + k] = word(flat[s + k])
