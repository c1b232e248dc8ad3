"""Consistency of a generated video with itself: return-to-start PSNR and reprojection error.

* Return to start: for a trajectory that comes back to its first pose, the revisited frame
  should look like the first frame. :func:`find_revisit` finds the last frame whose camera is
  within a tolerance of the first one after the path has left it; :func:`return_to_start_psnr`
  compares the two frames.
* Reprojection: frame ``t`` is lifted to 3D with its own (generated) depth, projected into
  camera ``t + 1`` and compared with frame ``t + 1`` on co-visible pixels (landing inside the
  image, in front of the camera, and not occluded: the projected depth agrees with frame
  ``t + 1``'s depth within a relative tolerance).
"""

from __future__ import annotations

import math

import torch

from voyager_pipe.camera.cameras import Cameras


def _rotation_angle_deg(R_a: torch.Tensor, R_b: torch.Tensor) -> torch.Tensor:
    """Angle of ``R_a^T R_b`` in degrees, batched (``[N, 3, 3]`` each -> ``[N]``)."""
    rel = R_a.transpose(-1, -2) @ R_b  # [N, 3, 3]
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)  # [N]
    return torch.rad2deg(torch.arccos(cos))


def find_revisit(cameras: Cameras, translation_fraction: float = 0.05, rotation_deg: float = 2.0) -> int | None:
    """Index of the last frame that returns to the first camera pose, or None.

    A frame returns when its centre is within ``translation_fraction`` x (path length) of the
    first centre and its rotation within ``rotation_deg``; some frame before it must have left
    (been outside those tolerances), so a camera that never moves does not count.
    """
    if len(cameras) < 3:
        return None
    c2w = cameras.c2w.double()  # [T, 4, 4]
    centers = c2w[:, :3, 3]  # [T, 3]
    path = (centers[1:] - centers[:-1]).norm(dim=-1).sum()  # scalar
    dist = (centers - centers[0]).norm(dim=-1)  # [T]
    angle = _rotation_angle_deg(c2w[:1, :3, :3].expand_as(c2w[:, :3, :3]), c2w[:, :3, :3])  # [T]
    near = (dist <= translation_fraction * path.clamp(min=1e-12)) & (angle <= rotation_deg)  # [T]
    left = torch.cumsum((~near).int(), dim=0) > 0  # [T] some frame up to t was away
    candidates = torch.nonzero(near & left).flatten()
    return int(candidates[-1]) if len(candidates) else None


def return_to_start_psnr(rgb: torch.Tensor, cameras: Cameras, translation_fraction: float = 0.05,
                         rotation_deg: float = 2.0) -> tuple[float, int | None]:
    """PSNR between the first frame and the revisited frame of ``rgb`` [T, 3, H, W] (``(nan, None)`` when the path does not return)."""
    from voyager_pipe.metrics.image import psnr

    index = find_revisit(cameras, translation_fraction, rotation_deg)
    if index is None:
        return math.nan, None
    return float(psnr(rgb[index: index + 1], rgb[:1])[0]), index


def reprojection_consistency(rgb: torch.Tensor, depth: torch.Tensor, cameras: Cameras,
                             occlusion_tolerance: float = 0.05) -> dict[str, torch.Tensor]:
    """Photometric error of warping each frame into the next with its own depth.

    Args:
        rgb: ``[T, 3, H, W]`` in [0, 1]; depth: ``[T, 1, H, W]`` z-depth (0 = none); cameras: ``T`` cameras.

    Returns ``{"l1": [T], "psnr": [T], "covisible": [T]}``: entry ``t`` (``t >= 1``) is for the pair
    ``t-1 -> t`` (entry 0 is NaN): mean absolute RGB difference and PSNR over co-visible pixels, and
    the co-visible fraction of frame ``t-1``'s pixels. Frame ``t`` is sampled bilinearly at the
    projected positions (pixel-centre convention: ``grid = 2 * uv / size - 1``, ``align_corners=False``).
    """
    from voyager_pipe.geometry import project, unproject

    T, _, H, W = rgb.shape
    nan = torch.full((T,), float("nan"))
    out = {"l1": nan.clone(), "psnr": nan.clone(), "covisible": nan.clone()}
    if T < 2:
        return out
    cams = cameras.to(dtype=torch.float32)
    depth = depth.float()
    src_depth = depth[:-1]  # [T-1, 1, H, W]
    points = unproject(src_depth, cams.K[:-1], cams.w2c[:-1])  # [T-1, H, W, 3]
    uv, z = project(points.reshape(T - 1, H * W, 3), cams.K[1:], cams.w2c[1:])  # [T-1, HW, 2], [T-1, HW]
    src_valid = ((src_depth > 0) & torch.isfinite(src_depth)).reshape(T - 1, H * W)  # [T-1, HW]
    finite = torch.isfinite(uv).all(-1)  # [T-1, HW]
    uv = torch.where(finite[..., None], uv, torch.full_like(uv, -1e6))
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H) & (z > 0)  # [T-1, HW]
    col = uv[..., 0].floor().long().clamp(0, W - 1)  # [T-1, HW]
    row = uv[..., 1].floor().long().clamp(0, H - 1)
    dst_depth = depth[1:, 0].reshape(T - 1, H * W)  # [T-1, HW]
    target_z = torch.gather(dst_depth, 1, row * W + col)  # [T-1, HW]
    agree = (target_z > 0) & ((z - target_z).abs() <= occlusion_tolerance * target_z)  # [T-1, HW]
    covis = src_valid & inside & agree  # [T-1, HW]
    grid = torch.stack([2 * uv[..., 0] / W - 1, 2 * uv[..., 1] / H - 1], -1).view(T - 1, H * W, 1, 2)  # [T-1, HW, 1, 2]
    warped = torch.nn.functional.grid_sample(rgb[1:].float(), grid, mode="bilinear", padding_mode="border",
                                             align_corners=False)[..., 0]  # [T-1, 3, HW]
    source = rgb[:-1].float().reshape(T - 1, 3, H * W)  # [T-1, 3, HW]
    w = covis[:, None].float()  # [T-1, 1, HW]
    count = w.sum(dim=(1, 2)) * 3  # [T-1]
    l1 = ((warped - source).abs() * w).sum(dim=(1, 2)) / count.clamp(min=1)  # [T-1]
    mse = ((warped - source) ** 2 * w).sum(dim=(1, 2)) / count.clamp(min=1)  # [T-1]
    has = count > 0
    out["l1"][1:] = torch.where(has, l1, float("nan"))
    out["psnr"][1:] = torch.where(has, 10 * torch.log10(1 / mse), float("nan"))
    out["covisible"][1:] = covis.float().mean(dim=1)
    return out
