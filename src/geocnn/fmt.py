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
