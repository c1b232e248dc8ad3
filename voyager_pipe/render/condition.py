"""How a generator wants the world cache rendered as its condition (a declarative recipe).

A generator may carry an attribute ``condition_render: ConditionRender``; the scheduler hands
it to ``WorldCache.render``. Two recipes are defined here:

* :data:`RELEASED_CONDITION` (the Voyager backend): as the released data engine makes its
  conditions: a nearest-depth z-buffer at HALF the model resolution, upsampled to full size
  with linear interpolation for RGB and depth and nearest for the mask, sky (the cache's far
  background layer) rendered and marked known. The half-resolution raster closes the
  one-pixel holes of a slightly moved view.
* :data:`PREVIEW_CONDITION` (the weight-free ``warp`` preview): full resolution, one- and
  two-pixel gaps closed where the surrounding depth agrees, and depth-tested splatting
  (:mod:`voyager_pipe.render.splat`: bilinear tent next to depth edges, Keys bicubic inside
  well-sampled surfaces) instead of nearest-pixel colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from voyager_pipe.render.base import RenderOutput, low_res_size, nearest_upsample

Upsample = Literal["nearest", "bilinear"]


@dataclass(frozen=True)
class ConditionRender:
    """A render recipe.

    Attributes:
        scale: rasterise at this fraction of the frame size, then upsample (0 < scale <= 1).
        rgb_upsample, depth_upsample, mask_upsample: how each output is brought back to full size.
        close_gaps: close one- and two-pixel gaps whose surroundings agree in depth
            (:func:`voyager_pipe.render.gaps.close_gaps`).
        extend_frontier: with ``close_gaps``, also give each empty pixel next to a rendered one
            that neighbour's sample (:func:`voyager_pipe.render.gaps.extend_frontier`: the
            footprint of the samples at the edge of what the cache knows). The cache's default
            render does, so a frame rendered back from its own camera shows every pixel its
            visibility test counted as seen; the preview leaves such pixels to its
            background-side hole fill (a foreground silhouette would grow into disocclusions).
        resample: ``nearest`` (the z-buffer's winner) or ``splat`` (depth-tested tent/cubic
            splatting, :mod:`voyager_pipe.render.splat`; full resolution only).
        background: render the cache's far background layer (sky) behind the geometry.
    """

    scale: float = 1.0
    rgb_upsample: Upsample = "nearest"
    depth_upsample: Upsample = "nearest"
    mask_upsample: Upsample = "nearest"
    close_gaps: bool = False
    extend_frontier: bool = False
    resample: Literal["nearest", "splat"] = "nearest"
    background: bool = True

    def __post_init__(self) -> None:
        low_res_size(1, 1, self.scale)  # validates the scale
        if self.resample == "splat" and self.scale != 1.0:
            raise ValueError("ConditionRender: resample='splat' needs scale 1")


RELEASED_CONDITION = ConditionRender(scale=0.5, rgb_upsample="bilinear", depth_upsample="bilinear")
PREVIEW_CONDITION = ConditionRender(close_gaps=True, resample="splat")


def _resize(image: torch.Tensor, height: int, width: int, mode: Upsample) -> torch.Tensor:
    """``[N, C, h, w]`` -> ``[N, C, height, width]`` (bilinear: half-pixel centres, no corner alignment)."""
    if mode == "nearest":
        return nearest_upsample(image, height, width)
    return F.interpolate(image.float(), size=(height, width), mode="bilinear", align_corners=False).to(image.dtype)


def upsample_render(out: RenderOutput, height: int, width: int, recipe: ConditionRender) -> RenderOutput:
    """Bring a low-resolution render to ``height x width`` with the recipe's modes."""
    mask = out.mask if recipe.mask_upsample == "nearest" else out.mask.float()
    mask = _resize(mask, height, width, recipe.mask_upsample)  # [N, 1, H, W]
    mask = mask if mask.dtype == torch.bool else mask > 0.5
    normals = None if out.normals is None else nearest_upsample(out.normals, height, width)  # [N, 3, H, W]
    return RenderOutput(
        rgb=_resize(out.rgb, height, width, recipe.rgb_upsample),  # [N, 3, H, W]
        depth=_resize(out.depth, height, width, recipe.depth_upsample),  # [N, 1, H, W]
        mask=mask,
        index=nearest_upsample(out.index, height, width),  # [N, H, W]
        normals=normals,
    )
