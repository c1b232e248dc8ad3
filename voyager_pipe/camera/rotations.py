"""Small rotation helpers in torch (float64 friendly, batched, no Python loops over elements).

Quaternions are ``(w, x, y, z)`` (scalar first, Hamilton product), the order COLMAP uses.
"""

from __future__ import annotations

import torch


def axis_angle_matrix(axis: str, angle_rad: torch.Tensor) -> torch.Tensor:
    """Right-handed rotation matrices about a coordinate axis.

    Args:
        axis: ``"x"``, ``"y"`` or ``"z"``.
        angle_rad: ``[N]`` angles in radians (positive = counter-clockwise looking down the axis).

    Returns:
        ``[N, 3, 3]`` rotation matrices, same dtype as ``angle_rad``.
    """
    c, s = torch.cos(angle_rad), torch.sin(angle_rad)  # [N] each
    one, zero = torch.ones_like(c), torch.zeros_like(c)  # [N] each
    if axis == "x":
        rows = [one, zero, zero, zero, c, -s, zero, s, c]
    elif axis == "y":
        rows = [c, zero, s, zero, one, zero, -s, zero, c]
    elif axis == "z":
        rows = [c, -s, zero, s, c, zero, zero, zero, one]
    else:
        raise ValueError(f"axis must be x, y or z, got {axis!r}")
    return torch.stack(rows, dim=-1).reshape(*angle_rad.shape, 3, 3)  # [N, 3, 3]


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``q`` [..., 4] ``(w, x, y, z)`` -> rotation matrices [..., 3, 3]."""
    w, x, y, z = q.unbind(-1)  # [...] each
    m = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(m, dim=-1).reshape(*q.shape[:-1], 3, 3)  # [..., 3, 3]


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``R`` [..., 3, 3] -> unit quaternions [..., 4] ``(w, x, y, z)`` with ``w >= 0``.

    Uses the numerically stable branch per matrix (largest of ``w, x, y, z``), vectorised.
    """
    m = R
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]  # [...]
    # Four candidate quaternions, each accurate when its own component is the largest.
    cand_w = torch.stack([1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                          m[..., 1, 0] - m[..., 0, 1]], dim=-1)  # [..., 4]
    cand_x = torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                          m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], dim=-1)  # [..., 4]
    cand_y = torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                          1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]], dim=-1)  # [..., 4]
    cand_z = torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                          m[..., 1, 2] + m[..., 2, 1], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], dim=-1)  # [..., 4]
    cands = torch.stack([cand_w, cand_x, cand_y, cand_z], dim=-2)  # [..., 4, 4]
    diag = torch.stack([cand_w[..., 0], cand_x[..., 1], cand_y[..., 2], cand_z[..., 3]], dim=-1)  # [..., 4]
    best = diag.argmax(dim=-1)  # [...]
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)  # [..., 4]
    q = q / q.norm(dim=-1, keepdim=True)  # [..., 4]
    return torch.where(q[..., :1] < 0, -q, q)  # [..., 4]


def slerp(q0: torch.Tensor, q1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation of unit quaternions along the shorter arc.

    Args:
        q0, q1: ``[N, 4]`` start and end quaternions.
        t: ``[N]`` fractions in ``[0, 1]``.

    Returns:
        ``[N, 4]`` unit quaternions.
    """
    dot = (q0 * q1).sum(-1)  # [N]
    q1 = torch.where(dot[:, None] < 0, -q1, q1)  # [N, 4] shorter arc
    dot = dot.abs().clamp(max=1.0)  # [N]
    theta = torch.acos(dot)  # [N]
    sin_theta = torch.sin(theta)  # [N]
    near = sin_theta < 1e-9  # [N] nearly identical: fall back to lerp
    safe = torch.where(near, torch.ones_like(sin_theta), sin_theta)  # [N]
    w0 = torch.where(near, 1 - t, torch.sin((1 - t) * theta) / safe)  # [N]
    w1 = torch.where(near, t, torch.sin(t * theta) / safe)  # [N]
    q = w0[:, None] * q0 + w1[:, None] * q1  # [N, 4]
    return q / q.norm(dim=-1, keepdim=True)  # [N, 4]


def rotation_angle_deg(R: torch.Tensor) -> torch.Tensor:
    """Rotation angle in degrees of matrices ``R`` [..., 3, 3] (0 for the identity)."""
    trace = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]  # [...]
    return torch.rad2deg(torch.acos(((trace - 1) / 2).clamp(-1.0, 1.0)))  # [...]


def look_at_c2w(centers: torch.Tensor, targets: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """OpenCV camera-to-world matrices for cameras at ``centers`` looking at ``targets``.

    Args:
        centers, targets: ``[N, 3]`` world positions.
        up: ``[3]`` world "up" direction; in OpenCV-style worlds (y down) this is ``(0, -1, 0)``.

    Returns:
        ``[N, 4, 4]`` c2w with columns x (right), y (down), z (forward), centre.
    """
    forward = targets - centers  # [N, 3]
    forward = forward / forward.norm(dim=-1, keepdim=True)  # [N, 3]
    right = torch.linalg.cross(forward, up.to(forward).expand_as(forward))  # [N, 3] forward x up = right
    right = right / right.norm(dim=-1, keepdim=True)  # [N, 3]
    down = torch.linalg.cross(forward, right)  # [N, 3]
    c2w = torch.zeros(centers.shape[0], 4, 4, dtype=centers.dtype, device=centers.device)  # [N, 4, 4]
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2] = right, down, forward
    c2w[:, :3, 3] = centers
    c2w[:, 3, 3] = 1
    return c2w


__all__ = ["axis_angle_matrix", "quaternion_to_matrix", "matrix_to_quaternion", "slerp", "rotation_angle_deg",
           "look_at_c2w"]
