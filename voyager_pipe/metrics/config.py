"""Settings of evaluation (owned by voyager_pipe.metrics)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from voyager_pipe.options import option


@dataclass
class EvalConfig:
    metrics: list[str] = option(["psnr", "ssim", "lpips", "depth", "consistency"], "metrics to compute")
    lpips_weights: Optional[str] = option(None, "ImageNet AlexNet weights for LPIPS (default: torch hub cache)")
