"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path | None:
    """The project's ``shared/`` folder beside the checkout (absent in a user's checkout)."""
    for candidate in (_REPO.parent / "shared", _REPO / "shared"):
        if (candidate / "data").is_dir():
            return candidate
    return None


@pytest.fixture
def shared_dir() -> Path:
    path = find_shared_dir()
    if path is None:
        pytest.skip("../shared/ is not present (only the project's own machines have it)")
    return path
