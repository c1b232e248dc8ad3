"""Hole filling of rendered RGB-D frames (used by the weight-free warp backend).

* RGB: OpenCV inpainting per frame (``cv2.inpaint``, Telea or Navier-Stokes), only hole
  pixels change; rendered pixels keep their exact float values.
* Depth: background-biased fill. A disocclusion reveals what lies *behind* the foreground
  edge, so a hole takes the largest (farthest) depth among its filled neighbours: iterated
  3x3 max filtering, then a max-pool pyramid for holes wider than a few pixels. Vectorised.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def inpaint_rgb(rgb: torch.Tensor, holes: torch.Tensor, radius: int = 3, method: str = "telea") -> torch.Tensor:
    """Fill ``holes`` of ``rgb`` by OpenCV inpainting.

    Args:
        rgb: ``[T, 3, H, W]`` float in [0, 1].
        holes: ``[T, 1, H, W]`` bool, True where a pixel has no value.
    Returns:
        ``[T, 3, H, W]`` with hole pixels inpainted and the others unchanged.
    """
    import cv2

    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    out = rgb.clone()  # [T, 3, H, W]
    rgb8 = (rgb.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # [T, H, W, 3]
    holes8 = holes[:, 0].cpu().numpy().astype(np.uint8)  # [T, H, W]
    for t in range(rgb.shape[0]):  # one C call per frame
        if not holes8[t].any():
            continue
        if holes8[t].all():  # nothing to inpaint from: grey
            out[t] = 0.5
            continue
        filled = cv2.inpaint(np.ascontiguousarray(rgb8[t]), holes8[t], radius, flag)  # [H, W, 3] uint8
        filled_t = torch.from_numpy(filled).to(rgb).permute(2, 0, 1) / 255.0  # [3, H, W]
        out[t] = torch.where(holes[t], filled_t, rgb[t])
    return out


def fill_depth_background(depth: torch.Tensor, valid: torch.Tensor, fallback: float | None = None,
                          local_iters: int = 4) -> torch.Tensor:
    """Fill invalid depth with the farthest neighbouring depth (background-biased).

    Args:
        depth: ``[T, 1, H, W]`` z-depth.
        valid: ``[T, 1, H, W]`` bool; pixels outside it are filled.
        fallback: depth for frames with no valid pixel at all (default: median of all valid
            depth of the batch, 1.0 when there is none).
        local_iters: 3x3 max-filter passes before the coarse pyramid takes over.
    Returns:
        ``[T, 1, H, W]`` depth > 0 everywhere; valid pixels unchanged.
    """
    filled = torch.where(valid, depth, torch.zeros_like(depth))  # [T, 1, H, W]
    filled = _fill_recursive(filled, local_iters)  # [T, 1, H, W]
    if fallback is None:
        good = depth[valid & (depth > 0)]  # [M]
        fallback = float(good.median()) if good.numel() else 1.0
    return torch.where(filled > 0, filled, torch.full_like(filled, fallback))


def _fill_recursive(depth: torch.Tensor, local_iters: int) -> torch.Tensor:
    """Zeros of ``depth`` [T, 1, H, W] filled by max of neighbours, coarse-to-fine for big holes."""
    for _ in range(local_iters):
        holes = depth <= 0  # [T, 1, H, W]
        if not bool(holes.any()):
            return depth
        grown = F.max_pool2d(depth, kernel_size=3, stride=1, padding=1)  # [T, 1, H, W]
        depth = torch.where(holes, grown, depth)
    holes = depth <= 0  # [T, 1, H, W]
    if not bool(holes.any()) or min(depth.shape[-2:]) <= 1:
        return depth
    coarse = F.max_pool2d(depth, kernel_size=2, stride=2, ceil_mode=True)  # [T, 1, H/2, W/2]
    coarse = _fill_recursive(coarse, local_iters)  # [T, 1, H/2, W/2]
    up = F.interpolate(coarse, scale_factor=2, mode="nearest")[..., : depth.shape[-2], : depth.shape[-1]]  # [T, 1, H, W]
    return torch.where(holes, up, depth)
