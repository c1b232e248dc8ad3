"""Shared steps after a backend predicts depth: validity, sky, edge-aware resize, edge filter.

Everything works on single maps ``[h, w]`` (torch) and is vectorised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def valid_depth_mask(depth: torch.Tensor, max_depth: float | None = None) -> torch.Tensor:
    """``depth [h, w]`` -> bool ``[h, w]``: finite, > 0 and (when given) <= ``max_depth``."""
    valid = torch.isfinite(depth) & (depth > 0)  # [h, w]
    if max_depth is not None:
        valid &= depth <= max_depth
    return valid


def far_mask(depth: torch.Tensor, valid: torch.Tensor, far_ratio: float) -> torch.Tensor:
    """Pixels farther than ``far_ratio`` x the median valid depth (sky-like); all False when ratio <= 0."""
    if far_ratio <= 0 or not bool(valid.any()):
        return torch.zeros_like(valid)
    median = depth[valid].median()
    return valid & (depth > far_ratio * median)  # [h, w]


def depth_edge_mask(depth: torch.Tensor, valid: torch.Tensor, rtol: float) -> torch.Tensor:
    """Valid pixels on a depth discontinuity: ``max - min`` of the valid 3x3 neighbourhood > ``rtol x depth``.

    Both sides of a step are marked (their flying in-between values included). Invalid
    neighbours are ignored, so a surface next to the sky is not eroded.
    """
    inf = torch.tensor(float("inf"), dtype=depth.dtype, device=depth.device)
    high = torch.where(valid, depth, -inf)[None, None]  # [1, 1, h, w]
    low = torch.where(valid, depth, inf)[None, None]  # [1, 1, h, w]
    local_max = F.max_pool2d(high, 3, stride=1, padding=1)[0, 0]  # [h, w]
    local_min = -F.max_pool2d(-low, 3, stride=1, padding=1)[0, 0]  # [h, w]
    return valid & ((local_max - local_min) > rtol * depth)  # [h, w]


def _source_coords(size_out: int, size_in: int, device) -> tuple[torch.Tensor, ...]:
    """Bilinear taps (i0, i1, weight of i1) and nearest index for each output pixel centre."""
    centers = (torch.arange(size_out, device=device, dtype=torch.float64) + 0.5) * (size_in / size_out)  # [n]
    nearest = centers.floor().long().clamp(0, size_in - 1)  # [n]
    pos = (centers - 0.5).clamp(0, size_in - 1)  # [n] in source pixel-centre coordinates
    i0 = pos.floor().long()  # [n]
    i1 = (i0 + 1).clamp(max=size_in - 1)  # [n]
    return i0, i1, (pos - i0).float(), nearest


def resize_depth(depth: torch.Tensor, valid: torch.Tensor, height: int, width: int,
                 rtol: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge-aware resize of ``depth [h, w]`` / ``valid [h, w]`` to ``[height, width]``.

    Bilinear where the 2x2 source taps are all valid and within ``rtol`` of each other
    (``max <= (1 + rtol) * min``), nearest neighbour elsewhere: no value is ever blended
    across a depth discontinuity or with an invalid pixel, so resizing creates no flying pixels.
    """
    h, w = depth.shape
    if (h, w) == (height, width):
        return depth.clone(), valid.clone()
    y0, y1, wy, yn = _source_coords(height, h, depth.device)
    x0, x1, wx, xn = _source_coords(width, w, depth.device)
    y0, y1, wy, yn = y0[:, None], y1[:, None], wy[:, None], yn[:, None]  # [H, 1]
    x0, x1, wx, xn = x0[None], x1[None], wx[None], xn[None]  # [1, W]
    d00, d01, d10, d11 = depth[y0, x0], depth[y0, x1], depth[y1, x0], depth[y1, x1]  # [H, W] each
    v00, v01, v10, v11 = valid[y0, x0], valid[y0, x1], valid[y1, x0], valid[y1, x1]  # [H, W] each
    taps = torch.stack([d00, d01, d10, d11])  # [4, H, W]
    all_valid = v00 & v01 & v10 & v11  # [H, W]
    safe = torch.where(all_valid[None], taps, torch.ones_like(taps))  # [4, H, W]
    smooth = all_valid & (safe.amax(0) <= (1 + rtol) * safe.amin(0))  # [H, W]
    bilinear = (d00 * (1 - wx) + d01 * wx) * (1 - wy) + (d10 * (1 - wx) + d11 * wx) * wy  # [H, W]
    nearest_depth, nearest_valid = depth[yn, xn], valid[yn, xn]  # [H, W]
    out_depth = torch.where(smooth, bilinear, nearest_depth)  # [H, W]
    out_valid = smooth | nearest_valid  # [H, W]
    return torch.where(out_valid, out_depth, torch.zeros_like(out_depth)), out_valid
