"""Writing helpers shared by the trajectory writers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fmt_float(x: float) -> str:
    """Shortest text that reads back to exactly the same float64 (``repr``)."""
    return repr(float(x))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (no half-written files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
