"""Settings of the point renderer (owned by voyager_pipe.render)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voyager_pipe.options import option


@dataclass
class RenderConfig:
    backend: Literal["auto", "torch", "pytorch3d"] = option(
        "auto", "point renderer: auto (PyTorch3D on CUDA when it imports, torch otherwise), torch, pytorch3d")
    splat_radius: int = option(0, "square splat footprint in pixels (0 = one pixel per point)", min=0, max=64)
    render_scale: float = option(1.0, "render at this fraction of the image size, then upsample (the reference uses 0.5)", above=0, max=4)
    near: float = option(1e-3, "points closer than this z-depth are culled", above=0, max=1e6)
