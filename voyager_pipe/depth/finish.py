"""Turn a backend's raw depth map into a :class:`DepthEstimate` at the image size (shared by all backends)."""

from __future__ import annotations

import torch

from voyager_pipe.depth.base import DepthEstimate
from voyager_pipe.depth.config import DepthConfig
from voyager_pipe.depth.postprocess import depth_edge_mask, far_mask, resize_depth, valid_depth_mask


def finish_estimate(depth: torch.Tensor, height: int, width: int, cfg: DepthConfig, *, learned: bool,
                    is_metric: bool, source: str, valid: torch.Tensor | None = None,
                    details: dict | None = None) -> DepthEstimate:
    """Validity, sky, edge-aware resize to ``[height, width]`` and depth-edge filtering of ``depth [h, w]``.

    1. invalid: not finite, <= 0, above ``cfg.max_depth``, or ``valid`` False (backend mask);
    2. learned depth only: farther than ``cfg.far_ratio`` x median -> sky (invalid);
    3. resize without blending across discontinuities (:func:`resize_depth`);
    4. drop pixels on depth edges when ``cfg.edge_filter`` asks for it for this source;
    5. depth = 0 wherever invalid.
    """
    details = dict(details or {})
    depth = depth.detach().to(torch.float32)  # [h, w]
    ok = valid_depth_mask(depth, cfg.max_depth)  # [h, w]
    if valid is not None:
        ok &= valid.to(torch.bool)
    if learned:
        sky = far_mask(depth, ok, cfg.far_ratio)  # [h, w]
        details["far_pixels"] = int(sky.sum())
        ok &= ~sky
    depth, ok = resize_depth(torch.where(ok, depth, torch.zeros_like(depth)), ok, height, width,
                             cfg.resize_rtol)  # [H, W], [H, W]
    if cfg.edge_filter == "all" or (cfg.edge_filter == "learned" and learned):
        edges = depth_edge_mask(depth, ok, cfg.edge_rtol)  # [H, W]
        details["edge_pixels"] = int(edges.sum())
        ok &= ~edges
    depth = torch.where(ok, depth, torch.zeros_like(depth))  # [H, W]
    return DepthEstimate(depth=depth[None].contiguous(), valid=ok[None].contiguous(), is_metric=is_metric,
                         source=source, details=details)
