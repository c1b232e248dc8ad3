"""Keyframe interpolation: rotations by slerp, camera centres by a C1 cubic (Hermite, Catmull-Rom tangents)."""

from __future__ import annotations

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.camera.rotations import matrix_to_quaternion, quaternion_to_matrix, slerp
from voyager_pipe.errors import InputError


def _hermite_tangents(points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Finite-difference tangents ``[K, D]`` of ``points`` [K, D] at ``times`` [K] (one-sided at the ends)."""
    if points.shape[0] == 1:
        return torch.zeros_like(points)
    tangents = torch.empty_like(points)  # [K, D]
    tangents[1:-1] = (points[2:] - points[:-2]) / (times[2:] - times[:-2])[:, None]
    tangents[0] = (points[1] - points[0]) / (times[1] - times[0])
    tangents[-1] = (points[-1] - points[-2]) / (times[-1] - times[-2])
    return tangents


def interpolate_poses(key_c2w: torch.Tensor, key_times: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Interpolate camera-to-world poses.

    Args:
        key_c2w: ``[K, 4, 4]`` keyframe poses (any rigid convention, kept as is).
        key_times: ``[K]`` strictly increasing times.
        times: ``[N]`` query times (clamped to the key range).

    Returns:
        ``[N, 4, 4]`` poses: rotation slerped between the two neighbouring keys, centre on a cubic
        Hermite curve through every key (Catmull-Rom tangents), so the path has no kinks at the keys.
    """
    times = times.to(key_times).clamp(key_times[0], key_times[-1])  # [N]
    if key_c2w.shape[0] == 1:
        return key_c2w.expand(times.shape[0], 4, 4).clone()
    segment = (torch.searchsorted(key_times, times, right=True) - 1).clamp(0, key_times.shape[0] - 2)  # [N]
    t0, t1 = key_times[segment], key_times[segment + 1]  # [N] each
    h = t1 - t0  # [N]
    s = (times - t0) / h  # [N] local parameter in [0, 1]

    quats = matrix_to_quaternion(key_c2w[:, :3, :3])  # [K, 4]
    R = quaternion_to_matrix(slerp(quats[segment], quats[segment + 1], s))  # [N, 3, 3]

    centers = key_c2w[:, :3, 3]  # [K, 3]
    tangents = _hermite_tangents(centers, key_times)  # [K, 3]
    s2, s3 = s * s, s * s * s  # [N] each
    h00, h10 = 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s  # [N] each
    h01, h11 = -2 * s3 + 3 * s2, s3 - s2  # [N] each
    c = (h00[:, None] * centers[segment] + (h10 * h)[:, None] * tangents[segment]
         + h01[:, None] * centers[segment + 1] + (h11 * h)[:, None] * tangents[segment + 1])  # [N, 3]

    out = torch.zeros(times.shape[0], 4, 4, dtype=key_c2w.dtype, device=key_c2w.device)  # [N, 4, 4]
    out[:, :3, :3] = R
    out[:, :3, 3] = c
    out[:, 3, 3] = 1
    return out


def interpolate_cameras(keys: Cameras, frames: int, key_times: torch.Tensor | None = None) -> Cameras:
    """Resample keyframe cameras to ``frames`` evenly spaced frames.

    Rotations are slerped, centres follow a smooth cubic through the keys, intrinsics are
    interpolated linearly. ``key_times`` [K] (increasing) default to evenly spaced keys.
    """
    if len(keys) == 0:
        raise InputError("keyframes: empty trajectory (no frames)")
    if frames < 1:
        raise InputError(f"frames: must be at least 1, got {frames}")
    dtype = keys.w2c.dtype
    if key_times is None:
        key_times = torch.linspace(0.0, 1.0, len(keys), dtype=dtype)  # [K]
    key_times = torch.as_tensor(key_times, dtype=dtype)  # [K]
    if key_times.shape != (len(keys),) or (len(keys) > 1 and not bool((key_times[1:] > key_times[:-1]).all())):
        raise InputError("keyframes: key times must be one strictly increasing value per key")
    times = torch.linspace(float(key_times[0]), float(key_times[-1]), frames, dtype=dtype)  # [N]
    c2w = interpolate_poses(keys.c2w, key_times, times)  # [N, 4, 4]

    if len(keys) == 1:
        K = keys.K.expand(frames, 3, 3).clone()  # [N, 3, 3]
    else:
        segment = (torch.searchsorted(key_times, times, right=True) - 1).clamp(0, len(keys) - 2)  # [N]
        s = ((times - key_times[segment]) / (key_times[segment + 1] - key_times[segment]))[:, None, None]  # [N, 1, 1]
        K = (1 - s) * keys.K[segment] + s * keys.K[segment + 1]  # [N, 3, 3]
    return Cameras.from_c2w(c2w, K, keys.width, keys.height)
