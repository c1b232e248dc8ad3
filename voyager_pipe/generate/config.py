"""Settings of clip generation (owned by voyager_pipe.generate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from voyager_pipe.options import option


@dataclass
class GenerateConfig:
    backend: Literal["warp", "voyager"] = option("warp", "clip generator: warp (weight-free preview) or voyager (diffusion model)")
    clip_len: int = option(49, "frames per clip")
    overlap: Optional[int] = option(None, "frames shared by consecutive clips (null = half a clip)")
    steps: int = option(50, "denoising steps of a clip")
    shift: float = option(7.0, "flow-matching time shift")
    sigma_init: float = option(0.8, "noise level the overlap of the next clip is re-noised to")
    sigma_refine: float = option(0.3, "noise injected before the refinement pass over a fused clip")
    refine_steps: int = option(5, "steps of the refinement pass")
