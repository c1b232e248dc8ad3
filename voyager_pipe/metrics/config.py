"""Settings of evaluation (owned by voyager_pipe.metrics)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from voyager_pipe.options import option


@dataclass
class EvalConfig:
    metrics: list[str] = option(["psnr", "ssim", "lpips", "depth", "consistency"], "metrics to compute")
    lpips_weights: Optional[str] = option(None, "ImageNet AlexNet weights for LPIPS (default: torch hub cache)")
    skip_first_frame: bool = option(True, "leave frame 0 (the input image, which gen reproduces) out of the means")
    depth_align: Literal["median", "lstsq", "none"] = option("median", "scale alignment of predicted depth before depth metrics")
    depth_align_scope: Literal["sequence", "frame"] = option("sequence", "one depth scale for the whole video, or one per frame")
    revisit_translation: float = option(0.05, "return-to-start: max distance to the first camera centre, as a fraction of the path length", min=0, max=1)
    revisit_rotation_deg: float = option(2.0, "return-to-start: max rotation from the first camera, degrees", min=0, max=180)
    occlusion_tolerance: float = option(0.05, "reprojection: relative depth difference above which a warped pixel counts as occluded", min=0)
