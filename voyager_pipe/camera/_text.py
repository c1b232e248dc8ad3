"""Float formatting shared by the trajectory writers."""

from __future__ import annotations


def fmt_float(x: float) -> str:
    """Shortest text that reads back to exactly the same float64 (``repr``)."""
    return repr(float(x))
