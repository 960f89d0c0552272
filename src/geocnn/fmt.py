"""How sizes and shapes read in messages and tables: one spelling everywhere.

A foundation module (standard library only), so the grid layer, the model and the CLI can all
use it without depending on each other.
"""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """``1,536`` -> ``1.5 KiB``: powers of 1024, one decimal (whole bytes below 1 KiB)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def fmt_shape(shape: tuple[int, ...]) -> str:
    """``16 × 64 × 64`` (channels first)."""
    return " × ".join(str(s) for s in shape)


_POWER = {2: "²", 3: "³"}


def fmt_sizes_compact(sizes) -> str:
    """``44³`` for equal sizes on 2 or 3 axes, else ``24×24×32``: what a narrow table prints."""
    sizes = [str(s) for s in sizes]
    if len(sizes) in _POWER and len(set(sizes)) == 1:
        return sizes[0] + _POWER[len(sizes)]
    return "×".join(sizes)


def fmt_shape_compact(shape: tuple[int, ...]) -> str:
    """``8 × 24³`` or ``8 × 24×24×32``: channels, then the spatial sizes compacted."""
    return " × ".join([str(shape[0]), fmt_sizes_compact(shape[1:])] if len(shape) > 1 else [str(shape[0])])

