"""Normals of organised point maps (one point per pixel), from image-space neighbours."""

from __future__ import annotations

import torch


def _one_sided_differences(points: torch.Tensor, valid: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward neighbour differences along ``dim`` (1 = rows, 2 = columns).

    Returns ``diff [2, N, H, W, 3]`` (forward, backward) and ``ok [2, N, H, W]`` (both ends valid).
    """
    fwd = torch.zeros_like(points)  # [N, H, W, 3]
    bwd = torch.zeros_like(points)  # [N, H, W, 3]
    fwd_ok = torch.zeros_like(valid)  # [N, H, W]
    bwd_ok = torch.zeros_like(valid)  # [N, H, W]
    n = points.shape[dim]
    step = points.narrow(dim, 1, n - 1) - points.narrow(dim, 0, n - 1)  # [N, H(-1), W(-1), 3]
    step_ok = valid.narrow(dim, 1, n - 1) & valid.narrow(dim, 0, n - 1)  # [N, H(-1), W(-1)]
    fwd.narrow(dim, 0, n - 1).copy_(step)
    bwd.narrow(dim, 1, n - 1).copy_(step)
    fwd_ok.narrow(dim, 0, n - 1).copy_(step_ok)
    bwd_ok.narrow(dim, 1, n - 1).copy_(step_ok)
    return torch.stack([fwd, bwd]), torch.stack([fwd_ok, bwd_ok])  # [2, N, H, W, 3], [2, N, H, W]


def _shortest_valid(diff: torch.Tensor, ok: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Of the forward/backward differences, the valid one with the smaller length.

    Taking the shorter side keeps normals from bending across depth discontinuities.
    """
    length = diff.norm(dim=-1).masked_fill(~ok, float("inf"))  # [2, N, H, W]
    pick = length.argmin(dim=0, keepdim=True)  # [1, N, H, W]
    chosen = diff.gather(0, pick.unsqueeze(-1).expand(1, *diff.shape[1:]))[0]  # [N, H, W, 3]
    return chosen, ok.any(dim=0)  # [N, H, W, 3], [N, H, W]


def point_map_normals(points: torch.Tensor, valid: torch.Tensor, cam_centers: torch.Tensor) -> torch.Tensor:
    """Unit normals of an organised point map, oriented towards the camera.

    The normal of pixel ``(i, j)`` is ``d_u x d_v``, the cross product of its horizontal and
    vertical neighbour differences (of the forward/backward difference on each axis, the valid
    one with the smaller length, so that normals do not bend across depth edges), flipped to
    face the camera centre. Fully vectorised: a few milliseconds for 512x512 on CPU.

    Args:
        points: ``[N, H, W, 3]`` world points (e.g. from :func:`~voyager_pipe.geometry.unproject`).
        valid: ``[N, H, W]`` bool, pixels that hold a point.
        cam_centers: ``[N, 3]`` camera centres in world coordinates (``Cameras.centers``).

    Returns:
        normals: ``[N, H, W, 3]`` unit vectors; zero where undefined (invalid pixel, or no
        valid horizontal or vertical neighbour, or degenerate neighbours).
    """
    if points.ndim != 4 or points.shape[-1] != 3:
        raise ValueError(f"point_map_normals: points must be [N,H,W,3], got {tuple(points.shape)}")
    valid = valid.bool() & points.isfinite().all(dim=-1)  # [N, H, W]
    points = torch.where(valid.unsqueeze(-1), points, torch.zeros_like(points))  # [N, H, W, 3]
    du, du_ok = _shortest_valid(*_one_sided_differences(points, valid, dim=2))  # [N, H, W, 3], [N, H, W]
    dv, dv_ok = _shortest_valid(*_one_sided_differences(points, valid, dim=1))  # [N, H, W, 3], [N, H, W]
    normals = torch.linalg.cross(du, dv, dim=-1)  # [N, H, W, 3]
    to_camera = cam_centers.to(points)[:, None, None, :] - points  # [N, H, W, 3]
    flip = (normals * to_camera).sum(dim=-1, keepdim=True) < 0  # [N, H, W, 1]
    normals = torch.where(flip, -normals, normals)  # [N, H, W, 3]
    length = normals.norm(dim=-1, keepdim=True)  # [N, H, W, 1]
    defined = valid & du_ok & dv_ok & (length[..., 0] > 0)  # [N, H, W]
    normals = normals / length.clamp_min(torch.finfo(points.dtype).tiny)  # [N, H, W, 3]
    return torch.where(defined.unsqueeze(-1), normals, torch.zeros_like(normals))  # [N, H, W, 3]
