"""``warp``: the weight-free clip generator (a fast preview and the reference for tests).

Pixel space: the "latents" of a clip are its frames ``[T, 4, H, W]`` = RGB (3 channels,
[0, 1]) and z-depth (1 channel), so ``encode``/``decode`` are (de)concatenations and
``temporal_compression = 1``. Its clean estimate ``x0_hat`` of a clip is the rendered world
cache (rendered with :data:`~voyager_pipe.render.condition.PREVIEW_CONDITION`: gaps closed,
depth-tested tent/cubic splatting, the far sky layer) with its holes filled from the background
side (:mod:`voyager_pipe.generate.fill`: planar depth continuation, push-pull colours). ``denoise`` follows the flow-matching path towards that
estimate with the oracle velocity ``v = (x - x0_hat) / sigma``. Every Euler step of that
velocity maps ``x`` to ``x0_hat + (sigma_next / sigma) (x - x0_hat)``, so the whole integration
has the closed form ``x0_hat + (sigma_to / sigma_from) (x - x0_hat)`` for any step count and
shift, which is what is computed (one tensor op instead of ``steps``): deterministic and exact.

What the preview may add to the world cache is limited to its trustworthy pixels
(:meth:`WarpGenerator.committable`: rendered ones and fills within ``warp.commit_radius``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from voyager_pipe.generate.base import ClipCondition, PreparedClip, StepCallback
from voyager_pipe.generate.config import WarpConfig
from voyager_pipe.generate.fill import fill_depth_background, fill_rgb_background, inpaint_rgb
from voyager_pipe.render.condition import PREVIEW_CONDITION

_ONE_SURFACE = 0.15  # known depths around a committed fill may differ by this much (relative)


@dataclass
class WarpPreparedClip(PreparedClip):
    """The warp backend's handle: the clip's clean estimate ``x0_hat``."""

    estimate: torch.Tensor  # [T, 4, H, W] RGB + z-depth, holes filled


class WarpGenerator:
    """Warp-and-inpaint generator implementing :class:`~voyager_pipe.generate.base.ClipGenerator`."""

    name = "warp"
    temporal_compression = 1
    supports_per_frame_sigma = True
    condition_render = PREVIEW_CONDITION  # gaps closed, depth-tested tent/cubic splatting, far layer

    def __init__(self, inpaint_radius: int = 3, inpaint_method: str = "background", device=None,
                 dtype: torch.dtype = torch.float32, commit_radius: int = 5):
        self.inpaint_radius = int(inpaint_radius)
        self.inpaint_method = inpaint_method
        self.commit_radius = int(commit_radius)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype

    @classmethod
    def from_config(cls, config: WarpConfig, device=None) -> "WarpGenerator":
        """The backend of the ``warp`` config section."""
        return cls(config.inpaint_radius, config.inpaint_method, device=device, commit_radius=config.commit_radius)

    # ------------------------------------------------------------------ protocol
    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        return (num_frames, 4, height, width)

    def prepare(self, condition: ClipCondition) -> WarpPreparedClip:
        return WarpPreparedClip(condition=condition, estimate=self.clean_estimate(condition),
                                cache_mask=self.committable(condition))

    def encode(self, rgb: torch.Tensor, depth: torch.Tensor, prepared: PreparedClip) -> torch.Tensor:
        return torch.cat([rgb, depth], dim=1).to(self.device, self.dtype)  # [T, 4, H, W]

    def decode(self, latents: torch.Tensor, prepared: PreparedClip) -> tuple[torch.Tensor, torch.Tensor]:
        rgb = latents[:, :3].clamp(0, 1)  # [T, 3, H, W]
        depth = latents[:, 3:4].clamp_min(0)  # [T, 1, H, W]
        return rgb, depth

    def noise_like(self, latents: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        return torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)

    def denoise(self, latents: torch.Tensor, prepared: WarpPreparedClip, sigma_from: float, sigma_to: float,
                steps: int, generator: Optional[torch.Generator] = None,
                per_frame_sigma: Optional[torch.Tensor] = None,
                callback: Optional[StepCallback] = None) -> torch.Tensor:
        x0_hat = prepared.estimate  # [T, 4, H, W]
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
    def committable(self, condition: ClipCondition) -> torch.Tensor | None:
        """``[T, 1, H, W]`` bool: rendered pixels, and filled ones within ``commit_radius`` of them
        whose surroundings are one surface.

        A filled pixel is a guess that gets worse with its distance from what the cache
        rendered (room orbit at 512x384: of the fills 1-3 px from a rendered pixel ~94-99% lie
        within 2 cm of the true surface, of those 20-40 px away 59%, 40-80 px away 33%: a wall
        corner or an object entering at the border cannot be extrapolated), and a hole between
        a foreground and a background edge may be either. So only near fills next to one
        surface enter the world cache; the video shows all of them, and the next clip guesses
        the rest again from the grown cache. ``None`` (everything) when ``commit_radius`` is -1.
        """
        if self.commit_radius < 0:
            return None
        import cv2

        known = condition.mask & (condition.depth > 0)  # [T, 1, H, W]
        radius = self.commit_radius  # pixels
        unknown = (~known[:, 0]).cpu().numpy().astype(np.uint8)  # [T, H, W] 1 where the cache rendered nothing
        near = np.stack([cv2.distanceTransform(frame, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= radius
                         for frame in unknown])  # [T, H, W] one C call per frame
        near = torch.from_numpy(near)[:, None].to(known.device)  # [T, 1, H, W]
        # one surface around the hole: a hole between a foreground and a background edge may hold
        # either (the background, or the side of the foreground object): not committed
        depth = condition.depth.float()  # [T, 1, H, W]
        farthest = F.max_pool2d(torch.where(known, depth, torch.zeros_like(depth)), 2 * radius + 1, 1, radius)
        nearest = -F.max_pool2d(torch.where(known, -depth, torch.full_like(depth, -float("inf"))), 2 * radius + 1, 1, radius)
        one_surface = farthest <= (1 + _ONE_SURFACE) * nearest  # [T, 1, H, W]
        return known | (near & one_surface)  # [T, 1, H, W]

    def clean_estimate(self, condition: ClipCondition) -> torch.Tensor:
        """``x0_hat [T, 4, H, W]``: the rendered condition with holes filled."""
        known = condition.mask & (condition.depth > 0)  # [T, 1, H, W]
        ref_valid = condition.reference_depth > 0  # [1, H, W]
        fallback = float(condition.reference_depth[ref_valid].median()) if bool(ref_valid.any()) else None
        depth = fill_depth_background(condition.depth.float(), known, fallback=fallback)  # [T, 1, H, W]
        if self.inpaint_method == "background":
            rgb = fill_rgb_background(condition.rgb.float(), condition.depth.float(), known, depth)  # [T, 3, H, W]
        else:
            rgb = inpaint_rgb(condition.rgb.float().cpu(), ~known.cpu(), self.inpaint_radius, self.inpaint_method)
        return torch.cat([rgb.to(depth.device), depth], dim=1).to(self.device, self.dtype)  # [T, 4, H, W]
