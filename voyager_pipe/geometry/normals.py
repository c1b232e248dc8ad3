"""Normals of organised point maps (one point per pixel), from image-space neighbours."""

from __future__ import annotations

import torch


def _neighbour_difference(points: torch.Tensor, valid: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Difference to the neighbour along ``dim`` (1 = rows, 2 = columns), forward or backward.

    Of the forward and backward differences, the valid one with the smaller length is used
    (so normals do not bend across depth discontinuities); the forward one is oriented like
    ``+dim`` and the backward one as well (``p - p_prev``).

    Returns ``diff [N, H, W, 3]`` and ``ok [N, H, W]`` (some valid neighbour on that axis).
    """
    n = points.shape[dim]
    step = points.narrow(dim, 1, n - 1) - points.narrow(dim, 0, n - 1)  # [N, H(-1), W(-1), 3]
    step_ok = valid.narrow(dim, 1, n - 1) & valid.narrow(dim, 0, n - 1)  # [N, H(-1), W(-1)]
    length = step.square().sum(-1).masked_fill_(~step_ok, float("inf"))  # [N, H(-1), W(-1)]
    pad_shape = list(length.shape)
    pad_shape[dim] = 1
    inf = torch.full(pad_shape, float("inf"), dtype=length.dtype, device=length.device)
    fwd_len = torch.cat([length, inf], dim=dim)  # [N, H, W]: step from this pixel to the next
    bwd_len = torch.cat([inf, length], dim=dim)  # [N, H, W]: step from the previous pixel
    zero = points.new_zeros(pad_shape + [3])  # [N, 1 or H, W or 1, 3] (works for a 1-pixel axis too)
    fwd = torch.cat([step, zero], dim=dim)  # [N, H, W, 3]
    bwd = torch.cat([zero, step], dim=dim)  # [N, H, W, 3]
    use_fwd = (fwd_len <= bwd_len).unsqueeze(-1)  # [N, H, W, 1]
    return torch.where(use_fwd, fwd, bwd), torch.minimum(fwd_len, bwd_len) < float("inf")


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
    du, du_ok = _neighbour_difference(points, valid, dim=2)  # [N, H, W, 3], [N, H, W]
    dv, dv_ok = _neighbour_difference(points, valid, dim=1)  # [N, H, W, 3], [N, H, W]
    normals = torch.linalg.cross(du, dv, dim=-1)  # [N, H, W, 3]
    to_camera = cam_centers.to(points)[:, None, None, :] - points  # [N, H, W, 3]
    flip = (normals * to_camera).sum(dim=-1, keepdim=True) < 0  # [N, H, W, 1]
    normals = torch.where(flip, -normals, normals)  # [N, H, W, 3]
    length = normals.norm(dim=-1, keepdim=True)  # [N, H, W, 1]
    defined = valid & du_ok & dv_ok & (length[..., 0] > 0)  # [N, H, W]
    normals = normals / length.clamp_min(torch.finfo(points.dtype).tiny)  # [N, H, W, 3]
    return torch.where(defined.unsqueeze(-1), normals, torch.zeros_like(normals))  # [N, H, W, 3]
