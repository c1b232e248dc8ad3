"""``warp``: the weight-free clip generator (a fast preview and the reference for tests).

Pixel space: the "latents" of a clip are its frames ``[T, 4, H, W]`` = RGB (3 channels,
[0, 1]) and z-depth (1 channel), so ``encode``/``decode`` are (de)concatenations and
``temporal_compression = 1``. Its clean estimate ``x0_hat`` of a clip is the rendered world
cache with RGB holes filled by OpenCV inpainting and depth holes filled background-biased
(:mod:`voyager_pipe.generate.fill`). ``denoise`` follows the flow-matching path towards that
estimate with the oracle velocity ``v = (x - x0_hat) / sigma``. Every Euler step of that
velocity maps ``x`` to ``x0_hat + (sigma_next / sigma) (x - x0_hat)``, so the whole integration
has the closed form ``x0_hat + (sigma_to / sigma_from) (x - x0_hat)`` for any step count and
shift, which is what is computed (one tensor op instead of ``steps``): deterministic and exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from voyager_pipe.generate.base import ClipCondition, StepCallback
from voyager_pipe.generate.fill import fill_depth_background, inpaint_rgb

if TYPE_CHECKING:  # pragma: no cover
    from voyager_pipe.config import PipelineConfig


class WarpGenerator:
    """Warp-and-inpaint generator implementing :class:`~voyager_pipe.generate.base.ClipGenerator`."""

    name = "warp"
    temporal_compression = 1
    supports_per_frame_sigma = True

    def __init__(self, inpaint_radius: int = 3, inpaint_method: str = "telea", device=None,
                 dtype: torch.dtype = torch.float32):
        self.inpaint_radius = int(inpaint_radius)
        self.inpaint_method = inpaint_method
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self._estimate_key: Optional[tuple] = None
        self._estimate: Optional[torch.Tensor] = None

    @classmethod
    def from_config(cls, config: "PipelineConfig", device=None) -> "WarpGenerator":
        return cls(config.generate.inpaint_radius, config.generate.inpaint_method, device=device)

    # ------------------------------------------------------------------ protocol
    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        return (num_frames, 4, height, width)

    def encode(self, rgb: torch.Tensor, depth: torch.Tensor, condition: ClipCondition) -> torch.Tensor:
        return torch.cat([rgb, depth], dim=1).to(self.device, self.dtype)  # [T, 4, H, W]

    def decode(self, latents: torch.Tensor, condition: ClipCondition) -> tuple[torch.Tensor, torch.Tensor]:
        rgb = latents[:, :3].clamp(0, 1)  # [T, 3, H, W]
        depth = latents[:, 3:4].clamp_min(0)  # [T, 1, H, W]
        return rgb, depth

    def noise_like(self, latents: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        return torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)

    def denoise(self, latents: torch.Tensor, condition: ClipCondition, sigma_from: float, sigma_to: float,
                steps: int, generator: Optional[torch.Generator] = None,
                per_frame_sigma: Optional[torch.Tensor] = None,
                callback: Optional[StepCallback] = None) -> torch.Tensor:
        x0_hat = self.clean_estimate(condition)  # [T, 4, H, W]
        num_frames = latents.shape[0]
        caps = (torch.full((num_frames,), float(sigma_from)) if per_frame_sigma is None
                else per_frame_sigma.detach().float().cpu())  # [T]
        start = torch.clamp(caps, max=float(sigma_from))  # [T]
        end = torch.clamp(caps, max=float(sigma_to))  # [T]
        ratio = torch.where(start > 0, end / start.clamp_min(1e-12), torch.ones_like(start))  # [T]
        ratio = ratio.to(latents).view(num_frames, 1, 1, 1)  # [T, 1, 1, 1]
        out = x0_hat + ratio * (latents - x0_hat)  # [T, 4, H, W]
        if callback is not None:
            for i in range(steps):
                callback(i, steps)
        return out

    # ------------------------------------------------------------------ estimate
    def clean_estimate(self, condition: ClipCondition) -> torch.Tensor:
        """``x0_hat [T, 4, H, W]``: the rendered condition with holes filled (cached per condition)."""
        key = (id(condition.rgb), id(condition.depth), id(condition.mask), condition.rgb.shape)
        if self._estimate_key == key and self._estimate is not None:
            return self._estimate
        holes = ~condition.mask | (condition.depth <= 0)  # [T, 1, H, W]
        rgb = inpaint_rgb(condition.rgb.float().cpu(), holes.cpu(), self.inpaint_radius, self.inpaint_method)  # [T, 3, H, W]
        ref_valid = condition.reference_depth > 0  # [1, H, W]
        fallback = float(condition.reference_depth[ref_valid].median()) if bool(ref_valid.any()) else None
        depth = fill_depth_background(condition.depth.float(), ~holes, fallback=fallback)  # [T, 1, H, W]
        estimate = torch.cat([rgb.to(depth.device), depth], dim=1).to(self.device, self.dtype)  # [T, 4, H, W]
        self._estimate_key, self._estimate = key, estimate
        return estimate
