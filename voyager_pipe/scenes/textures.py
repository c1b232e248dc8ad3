"""Procedural, tileable textures with detail at several scales (numpy, seeded).

Every texture is ``[S, S, 3]`` float32 in [0, 1] and wraps around at its borders (all noise
lattices are periodic), so meshes can repeat it with texture coordinates beyond [0, 1].
Detail spans from the whole tile (lattice of 2 cells) down to single texels, so SSIM and
LPIPS have structure to compare at every scale.
"""

from __future__ import annotations

import numpy as np

TEXTURE_KINDS = ("plaster", "wood", "tiles", "brick", "grass", "stone", "fabric", "painting", "bark", "foliage")


def periodic_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise on a periodic ``cells x cells`` lattice, sampled at ``size x size``.

    Returns ``[S, S]`` in [0, 1]; the pattern wraps around at the borders.
    """
    lattice = rng.random((cells, cells))  # [c, c]
    x = (np.arange(size) + 0.5) / size * cells  # [S] lattice coordinates of texel centres
    i0 = np.floor(x).astype(np.int64) % cells  # [S]
    i1 = (i0 + 1) % cells  # [S]
    f = x - np.floor(x)  # [S]
    f = f * f * (3 - 2 * f)  # smoothstep
    rows0 = lattice[i0]  # [S, c]
    rows1 = lattice[i1]  # [S, c]
    rows = rows0 * (1 - f)[:, None] + rows1 * f[:, None]  # [S, c] interpolated along v
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]  # [S, S]


def fbm(rng: np.random.Generator, size: int, base_cells: int = 2, octaves: int = 6, gain: float = 0.55) -> np.ndarray:
    """Fractal sum of :func:`periodic_noise` octaves (cells double each octave), ``[S, S]`` in [0, 1]."""
    total = np.zeros((size, size))
    weight, norm, cells = 1.0, 0.0, base_cells
    for _ in range(octaves):  # a handful of octaves, each fully vectorised
        if cells > size:
            break
        total += weight * periodic_noise(rng, size, cells)
        norm += weight
        weight *= gain
        cells *= 2
    return total / norm


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(v, u)`` texel-centre coordinates in [0, 1), each ``[S, S]``."""
    c = (np.arange(size) + 0.5) / size
    return np.meshgrid(c, c, indexing="ij")


def _mix(a, b, t: np.ndarray) -> np.ndarray:
    """Blend colours ``a`` and ``b`` ([3]) by ``t`` ([S, S]) -> ``[S, S, 3]``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]


def _random_colour(rng: np.random.Generator, lo: float = 0.2, hi: float = 0.9) -> np.ndarray:
    return lo + (hi - lo) * rng.random(3)


def make_texture(kind: str, rng: np.random.Generator, size: int = 128, base=None) -> np.ndarray:
    """A procedural texture ``[S, S, 3]`` float32 in [0, 1] (tileable)."""
    v, u = _grid(size)
    base = _random_colour(rng) if base is None else np.asarray(base, dtype=np.float64)
    grain = fbm(rng, size, base_cells=16, octaves=4)  # fine detail
    if kind == "plaster":
        t = 0.65 * fbm(rng, size, 2, 6) + 0.35 * grain
        img = _mix(base * 0.75, np.minimum(base * 1.2, 1), t)
    elif kind == "wood":
        warp = fbm(rng, size, 2, 5)
        rings = 0.5 + 0.5 * np.sin(2 * np.pi * (6 * u + 3.0 * warp))
        planks = (np.floor(v * 4) % 2) * 0.12
        img = _mix(base * 0.55, np.minimum(base * 1.1, 1), 0.7 * rings + 0.3 * grain) * (0.9 + planks)[..., None]
    elif kind in ("tiles", "stone"):
        n = 4 if kind == "tiles" else 3
        cell_v, cell_u = np.floor(v * n).astype(int), np.floor(u * n).astype(int)
        jitter = rng.random((n, n))[cell_v, cell_u]  # per tile
        fu, fv = (u * n) % 1, (v * n) % 1
        grout = (np.minimum(np.minimum(fu, 1 - fu), np.minimum(fv, 1 - fv)) < 0.05).astype(float)
        other = _random_colour(rng)
        t = 0.6 * jitter + 0.4 * fbm(rng, size, 4, 5)
        img = _mix(base, other, t) * (1 - 0.6 * grout)[..., None]
    elif kind == "brick":
        rows = 8
        row = np.floor(v * rows)
        shifted = (u * 4 + 0.5 * (row % 2)) % 1
        fv = (v * rows) % 1
        mortar = ((fv < 0.1) | (shifted < 0.04)).astype(float)
        brick_id = (row * 7 + np.floor(u * 4 + 0.5 * (row % 2))).astype(int) % 16
        jitter = rng.random(16)[brick_id]
        img = _mix(base * 0.7, np.minimum(base * 1.15, 1), 0.5 * jitter + 0.5 * grain)
        img = img * (1 - mortar)[..., None] + 0.75 * mortar[..., None]
    elif kind in ("grass", "foliage"):
        t = 0.5 * fbm(rng, size, 4, 6) + 0.5 * fbm(rng, size, 32, 3)
        img = _mix(base * 0.45, np.minimum(base * 1.25, 1), t)
    elif kind == "fabric":
        weave = 0.5 + 0.25 * (np.sin(2 * np.pi * 32 * u) + np.sin(2 * np.pi * 32 * v))
        img = _mix(base * 0.6, np.minimum(base * 1.1, 1), 0.5 * weave + 0.5 * fbm(rng, size, 2, 5))
    elif kind == "painting":
        c1, c2, c3 = _random_colour(rng, 0.05, 1), _random_colour(rng, 0.05, 1), _random_colour(rng, 0.05, 1)
        a, b = fbm(rng, size, 2, 6), fbm(rng, size, 3, 6)
        img = _mix(c1, c2, a) * (1 - b[..., None]) + _mix(c2, c3, a) * b[..., None]
        frame = (np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v)) < 0.04).astype(float)
        img = img * (1 - frame)[..., None] + 0.15 * frame[..., None]
    elif kind == "bark":
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (10 * u + 2 * fbm(rng, size, 2, 4)))
        img = _mix(base * 0.4, base, 0.6 * t + 0.4 * grain)
    else:
        raise ValueError(f"unknown texture kind {kind!r}; expected one of {TEXTURE_KINDS}")
    return np.clip(img, 0, 1).astype(np.float32)
