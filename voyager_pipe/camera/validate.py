"""Checks on camera data read from files. Every failure is an InputError naming the file and frame.

Nothing is repaired: a rotation that is not orthonormal, a reflection, a non-finite value or
a malformed matrix is reported, never re-orthonormalised or clipped.
"""

from __future__ import annotations

import numpy as np
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.io.reading import check_image_size

#: Largest allowed ``|R @ R.T - I|`` entry. Files store 6-9 decimals, so true rotations stay far below.
ORTHONORMAL_TOLERANCE = 1e-4


def as_matrix_array(value, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``value`` (nested lists / array) as a float64 array of exactly ``shape``, or an InputError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a {'x'.join(map(str, shape))} matrix of numbers") from None
    if array.shape != shape:
        raise InputError(f"{where}: expected a {'x'.join(map(str, shape))} matrix, got shape {array.shape}")
    return array


def check_poses(w2c: torch.Tensor, source: str, indices=None) -> None:
    """Validate world-to-camera matrices ``w2c`` [N, 4, 4].

    Args:
        w2c: ``[N, 4, 4]`` poses (any matrix direction: the rotation block is what is checked).
        source: file name (or field) used in the messages.
        indices: optional frame numbers to report instead of ``0..N-1``.

    Raises:
        InputError: empty trajectory, wrong shape, NaN/inf, bottom row not ``0 0 0 1``,
            rotation not orthonormal, determinant -1 (a reflection).
    """
    if w2c.numel() == 0:
        raise InputError(f"{source}: empty trajectory (no frames)")
    if w2c.ndim != 3 or w2c.shape[-2:] != (4, 4):
        raise InputError(f"{source}: camera matrices must be 4x4, got shape {tuple(w2c.shape)}")
    frame = (lambda i: int(indices[i])) if indices is not None else int

    finite = torch.isfinite(w2c).flatten(1).all(dim=1)  # [N]
    if not bool(finite.all()):
        i = int((~finite).nonzero()[0])
        raise InputError(f"{source}: frame {frame(i)}: camera matrix contains NaN or inf")

    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=w2c.dtype, device=w2c.device)
    bad_bottom = (w2c[:, 3, :] - bottom).abs().amax(dim=1) > 1e-9  # [N]
    if bool(bad_bottom.any()):
        i = int(bad_bottom.nonzero()[0])
        raise InputError(f"{source}: frame {frame(i)}: last matrix row must be 0 0 0 1, got {w2c[i, 3].tolist()}")

    R = w2c[:, :3, :3]  # [N, 3, 3]
    eye = torch.eye(3, dtype=w2c.dtype, device=w2c.device)
    error = (R @ R.transpose(-1, -2) - eye).abs().flatten(1).amax(dim=1)  # [N]
    bad = error > ORTHONORMAL_TOLERANCE  # [N]
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise InputError(f"{source}: frame {frame(i)}: rotation is not orthonormal "
                         f"(max |R R^T - I| = {float(error[i]):.3g} > {ORTHONORMAL_TOLERANCE:g})")
    det = torch.linalg.det(R)  # [N]
    reflected = det < 0  # [N]
    if bool(reflected.any()):
        i = int(reflected.nonzero()[0])
        raise InputError(f"{source}: frame {frame(i)}: rotation has determinant {float(det[i]):.3f} "
                         "(a reflection, not a rotation: check the axis convention)")


def check_intrinsics(K: torch.Tensor, source: str, indices=None) -> None:
    """Validate intrinsics ``K`` [N, 3, 3]: finite, positive focal lengths, last row ``0 0 1``."""
    frame = (lambda i: int(indices[i])) if indices is not None else int
    finite = torch.isfinite(K).flatten(1).all(dim=1)  # [N]
    if not bool(finite.all()):
        i = int((~finite).nonzero()[0])
        raise InputError(f"{source}: frame {frame(i)}: intrinsics contain NaN or inf")
    bad_focal = (K[:, 0, 0] <= 0) | (K[:, 1, 1] <= 0)  # [N]
    if bool(bad_focal.any()):
        i = int(bad_focal.nonzero()[0])
        raise InputError(f"{source}: frame {frame(i)}: focal lengths must be positive, "
                         f"got fx={float(K[i, 0, 0])}, fy={float(K[i, 1, 1])}")
    last = torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype, device=K.device)
    bad_last = (K[:, 2, :] - last).abs().amax(dim=1) > 1e-9  # [N]
    if bool(bad_last.any()):
        i = int(bad_last.nonzero()[0])
        raise InputError(f"{source}: frame {frame(i)}: last row of K must be 0 0 1, got {K[i, 2].tolist()}")
    bad_lower = (K[:, 1, 0].abs() > 1e-9)  # [N]
    if bool(bad_lower.any()):
        i = int(bad_lower.nonzero()[0])
        raise InputError(f"{source}: frame {frame(i)}: K[1][0] must be 0 (upper-triangular pinhole intrinsics)")


def check_size(width, height, source: str) -> tuple[int, int]:
    """Positive integer image size, or an InputError."""
    for value in (width, height):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or int(value) != value:
            raise InputError(f"{source}: image size must be integers, got width={width!r}, height={height!r}")
    w, h = int(width), int(height)
    if w <= 0 or h <= 0:
        raise InputError(f"{source}: image size must be positive integers, got width={width!r}, height={height!r}")
    check_image_size(w, h, source)
    return w, h


def pinhole_arrays_to_write(cameras, path, fmt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K [N, 3, 3], w2c [N, 4, 4])`` in float64 on the CPU for a writer of format ``fmt`` that stores
    skew-free pinhole intrinsics; an empty trajectory or a skewed ``K`` is refused naming ``path``."""
    K = cameras.K.detach().cpu().to(torch.float64)  # [N, 3, 3]
    w2c = cameras.w2c.detach().cpu().to(torch.float64)  # [N, 4, 4]
    if len(cameras) == 0:
        raise InputError(f"{path}: cannot write an empty trajectory")
    if bool((K[:, 0, 1] != 0).any()):
        raise InputError(f"{path}: {fmt} cannot store skewed intrinsics (K[0][1] != 0)")
    return K, w2c
