"""SEG-Y samples decoded by torch, on whatever device the raw words were sent to.

Prediction on a GPU uploads a window's samples as stored in the file (``Grid.read_raw``: IBM
floats or integers, big- or little-endian) and decodes them here, so no float array is built on
the host and the host→device copy carries 4 (IBM, int32), 2 or 1 bytes per sample. The result is
bit for bit :func:`geocnn.grids.segy.decode`'s (and so segyio's): the IBM rules are
``grids.ibm._ibm_exact``'s, written in int64 tensor arithmetic (torch has no full uint32 ALU), and
integers convert to float32 with round-to-nearest-even, as NumPy's ``astype`` does.

``geocnn.grids`` stays free of torch; this module is its torch-side counterpart.
"""

from __future__ import annotations

import numpy as np
import torch

from geocnn.grids.segy import RAW_FORMATS

# segyio's constants (see geocnn.grids.segy): normal-range bounds of IBM magnitudes, and per
# top-3-mantissa-bits the exponent correction and mantissa shift.
_IEMINIB = 0x21200000
_IEMAXIB = 0x611FFFFF
_IEEEMAX = 0x7FFFFFFF
_IBM_IT = (0x21800000, 0x21400000, 0x21000000, 0x21000000, 0x20C00000, 0x20C00000, 0x20C00000, 0x20C00000)
_IBM_MT = (8, 4, 2, 2, 1, 1, 1, 1)

# format code -> (bytes per sample, signed)
_INTEGERS = {2: (4, True), 3: (2, True), 8: (1, True), 10: (4, False), 11: (2, False), 16: (1, False)}


def supported(format: int) -> bool:
    """Can :func:`decode` take this SEG-Y sample format?"""
    return format in RAW_FORMATS


def as_bytes(raw: np.ndarray) -> torch.Tensor:
    """A host array of stored samples as a uint8 tensor sharing its memory (C order, ready to copy)."""
    return torch.from_numpy(np.ascontiguousarray(raw).view(np.uint8).reshape(-1))


def _words(data: torch.Tensor, itemsize: int, endian: str) -> torch.Tensor:
    """uint8 bytes (n · itemsize) → int64 unsigned words (n), assembled in the file's byte order."""
    b = data.reshape(-1, itemsize).to(torch.int64)
    if endian == "<":
        b = b.flip(1)
    words = b[:, 0]
    for i in range(1, itemsize):
        words = (words << 8) | b[:, i]
    return words


def _ibm(u: torch.Tensor) -> torch.Tensor:
    """int64 holding IBM words (0 ≤ u < 2³²) → float32 values, with segyio's exact rules."""
    it = torch.tensor(_IBM_IT, dtype=torch.int64, device=u.device)
    mt = torch.tensor(_IBM_MT, dtype=torch.int64, device=u.device)
    inabs = u & 0x7FFFFFFF
    mant = u & 0x00FFFFFF
    ix = mant >> 21
    # uint32 arithmetic, as segyio's C: wrap modulo 2³² (the int64 sum may leave that range)
    bits = (mant * mt[ix] + (((u & 0x7F000000) - it[ix]) << 1)) & 0xFFFFFFFF
    bits = torch.where(inabs > _IEMAXIB, _IEEEMAX, bits) | (u & 0x80000000)
    bits = torch.where(inabs < _IEMINIB, 0, bits)
    signed = torch.where(bits >= 1 << 31, bits - (1 << 32), bits)  # the same 32 bits as an int32
    return signed.to(torch.int32).view(torch.float32)


def decode(data: torch.Tensor, format: int, endian: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Stored samples (uint8 tensor, on any device) → float32 tensor of ``shape`` on that device.

    Parameters
    ----------
    data
        The bytes of ``prod(shape)`` samples in C order, as :func:`as_bytes` gives them.
    format
        SEG-Y sample format code (1 IBM float, 2/3/8 signed and 10/11/16 unsigned integers).
    endian
        ``">"`` (big-endian, the standard) or ``"<"``, as ``Grid.raw_format()`` says.
    shape
        Shape of the result.

    Example
    -------
    >>> raw = np.array([0xC276A000], dtype=">u4")                   # IBM -118.625
    >>> decode(as_bytes(raw), 1, ">", (1,))
    tensor([-118.6250])
    """
    if format == 1:
        values = _ibm(_words(data, 4, endian))
    elif format in _INTEGERS:
        size, signed = _INTEGERS[format]
        words = _words(data, size, endian)
        if signed:
            half = 1 << (8 * size - 1)
            words = torch.where(words >= half, words - 2 * half, words)
        values = words.to(torch.float32)  # round to nearest even, like NumPy's astype
    else:
        raise ValueError(f"SEG-Y format {format} is not decoded on the device (formats {sorted(RAW_FORMATS)})")
    return values.reshape(shape)
