"""The one helper section configs need: a dataclass field with a help text and documented bounds."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any


def option(default: Any = dataclasses.MISSING, help: str = "", *, min: float | None = None,  # noqa: A002 - names read best here
           max: float | None = None, above: float | None = None, **kwargs) -> Any:
    """A dataclass field with a one-line help text and optional bounds checked when a config is loaded.

    ``min`` / ``max`` are inclusive bounds, ``above`` an exclusive lower bound (``above=0``: positive).
    ``None`` values of optional fields are not bounded. Mutable defaults are copied per instance.
    """
    metadata = {"help": help}
    for name, bound in (("min", min), ("max", max), ("above", above)):
        if bound is not None:
            metadata[name] = bound
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


def bounds_text(metadata) -> str:
    """``"in [0, 64]"``-style description of a field's bounds ('' when unbounded)."""
    def fmt(x):
        return str(x) if isinstance(x, int) else f"{x:g}"

    low = f"> {fmt(metadata['above'])}" if "above" in metadata else (f">= {fmt(metadata['min'])}" if "min" in metadata else "")
    high = f"<= {fmt(metadata['max'])}" if "max" in metadata else ""
    return " and ".join(x for x in (low, high) if x)
