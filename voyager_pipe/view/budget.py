"""The point budget of the viewer: one fixed random subset of a point cloud."""

from __future__ import annotations

import numpy as np


def downsample_points(xyz: np.ndarray, rgb: np.ndarray, budget: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random subset of at most ``budget`` points (the same subset for the same seed), in file order."""
    count = xyz.shape[0]
    if budget <= 0 or count <= budget:
        return xyz, rgb
    keep = np.sort(np.random.default_rng(seed).choice(count, size=budget, replace=False))  # [budget]
    return xyz[keep], rgb[keep]
