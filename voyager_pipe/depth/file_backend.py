"""The ``file`` backend: depth the user supplies (explicit file or sidecar next to the image)."""

from __future__ import annotations

from pathlib import Path

import torch

from voyager_pipe.depth.base import DepthEstimate
from voyager_pipe.depth.config import DepthConfig
from voyager_pipe.io.depth_files import read_depth_values
from voyager_pipe.depth.finish import finish_estimate
from voyager_pipe.errors import InputError


class FileDepthEstimator:
    """Reads z-depth from ``path``; it must have the image's size (depth is never resized silently)."""

    name = "file"

    def __init__(self, path: str | Path, cfg: DepthConfig):
        self.path = Path(path)
        self.cfg = cfg

    def read(self) -> torch.Tensor:
        """The depth map ``[h, w]`` float32: integer maps times ``cfg.png_scale``, float maps times ``cfg.file_scale``."""
        values = read_depth_values(self.path, self.cfg.png_scale, self.cfg.file_scale)  # [h, w]
        return torch.from_numpy(values)

    def estimate(self, image: torch.Tensor) -> DepthEstimate:  # image [3, H, W]
        height, width = image.shape[-2:]
        depth = self.read()  # [h, w]
        if tuple(depth.shape) != (height, width):
            raise InputError(f"{self.path}: depth is {depth.shape[1]}x{depth.shape[0]} (WxH) but the image is "
                             f"{width}x{height}; depth files must match the image size (they are never resized)")
        estimate = finish_estimate(depth, height, width, self.cfg, learned=False, is_metric=True,
                                   source=f"file:{self.path}")
        if not bool(estimate.valid.any()):
            limit = f", or all beyond depth.max_depth={self.cfg.max_depth}" if self.cfg.max_depth is not None else ""
            raise InputError(f"{self.path}: depth has no valid pixel (all NaN, inf, zero or negative{limit})")
        return estimate
