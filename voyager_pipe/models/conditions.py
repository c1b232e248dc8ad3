"""Condition encoding of the Voyager model, as the reference prepares it (pixel space, no network).

Voyager generates RGB and depth JOINTLY in one frame, the *composite*::

    rows [0, H)          RGB in [-1, 1]
    rows [H, H + 16)     a separator band of ones
    rows [H + 16, 2H+16) depth as 3 equal channels in [-1, 1] (normalised inverse depth)

Depth is carried as inverse depth, normalised per frame by its 2nd / 98th percentiles over the
valid pixels: ``n = (1 / (z + 1e-6) - p2) / (p98 - p2)`` (not clipped), model value ``2 n - 1``.
Holes of the depth get the per-frame minimum of ``n`` over valid pixels (the far end); holes of the
RGB are black (the reference renders zeros there). The per-frame ``(p2, p98)`` pair is kept so that
generated depth maps back to real z-depth (:func:`depth_from_normalized`).

The visibility mask is min-pooled to the latent grid: a latent cell is known (+1) only if every
pixel of its 4x8x8 block was rendered, otherwise -1 (the reference's mask values). The causal
VAE's first frame forms its own block, which the reference realises by repeating frame 0 three times
before pooling; we do the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Pixel rows of the band of ones between the RGB half and the depth half.
SEPARATOR_ROWS = 16
#: Offset inside the reference's inverse depth ``1 / (z + eps)``.
INVERSE_DEPTH_EPS = 1e-6
#: Percentiles of the per-frame normalisation.
LOW_PERCENTILE, HIGH_PERCENTILE = 2.0, 98.0
#: Luma weights the reference uses to turn the 3 generated depth channels into one.
DEPTH_LUMA = (0.299, 0.587, 0.114)


@dataclass
class DepthRange:
    """Per-frame inverse-depth percentiles used by the normalisation (``p_low [T]``, ``p_high [T]``)."""

    p_low: torch.Tensor  # [T] float64
    p_high: torch.Tensor  # [T] float64


@dataclass
class ConditionFrames:
    """A clip's condition in model space (pixels), before the VAE."""

    composite: torch.Tensor  # [T, 3, 2H+16, W] in [-1, 1] (depth half may leave it slightly)
    visible: torch.Tensor  # [T, 1, 2H+16, W] bool (band rows are True)
    depth_range: DepthRange


def frame_percentiles(values: torch.Tensor, valid: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Per-row percentiles over the valid entries, linear interpolation (``numpy.percentile`` default).

    ``values [T, N]``, ``valid [T, N]`` bool, ``q [Q]`` in [0, 100] -> ``[T, Q]`` (NaN for empty rows).
    Sort based, so there is no size limit (``torch.quantile`` refuses inputs over 16M elements).
    """
    filled = torch.where(valid, values, torch.full_like(values, float("inf")))  # [T, N]
    ordered, _ = torch.sort(filled, dim=1)  # [T, N] valid values first
    count = valid.sum(dim=1)  # [T]
    position = (count[:, None] - 1).clamp(min=0).to(values.dtype) * (q[None, :].to(values.dtype) / 100.0)  # [T, Q]
    lower = position.floor().long()  # [T, Q]
    upper = (lower + 1).clamp(max=(count[:, None] - 1).clamp(min=0))  # [T, Q]
    frac = position - lower.to(values.dtype)  # [T, Q]
    low_value = torch.gather(ordered, 1, lower)  # [T, Q]
    high_value = torch.gather(ordered, 1, upper)  # [T, Q]
    out = low_value + (high_value - low_value) * frac  # [T, Q]
    return torch.where(count[:, None] > 0, out, torch.full_like(out, float("nan")))  # [T, Q]


def normalize_depth(depth: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, DepthRange]:
    """Z-depth -> per-frame normalised inverse depth (0 at the 2nd, 1 at the 98th percentile).

    ``depth [T, 1, H, W]`` (0 = no value), ``valid [T, 1, H, W]`` bool (default ``depth > 0``).
    Returns ``normalized [T, 1, H, W]`` float32 (holes = the frame's minimum valid value) and the
    per-frame :class:`DepthRange`. A frame without any valid pixel borrows the range of the nearest
    earlier frame that has one (else the first later one) and is all zeros.
    """
    if depth.ndim != 4 or depth.shape[1] != 1:
        raise ValueError(f"depth: expected [T, 1, H, W], got {tuple(depth.shape)}")
    depth64 = depth.to(torch.float64)  # [T, 1, H, W]
    ok = (depth64 > 0) & torch.isfinite(depth64)  # [T, 1, H, W]
    if valid is not None:
        ok = ok & valid.to(torch.bool)
    num_frames = depth.shape[0]
    inverse = 1.0 / (depth64.clamp(min=0) + INVERSE_DEPTH_EPS)  # [T, 1, H, W]
    q = torch.tensor([LOW_PERCENTILE, HIGH_PERCENTILE], dtype=torch.float64)  # [2]
    pct = frame_percentiles(inverse.reshape(num_frames, -1), ok.reshape(num_frames, -1), q)  # [T, 2]
    pct = _fill_empty_frames(pct)  # [T, 2]
    p_low, p_high = pct[:, 0], pct[:, 1]  # [T], [T]
    span = (p_high - p_low).clamp(min=1e-12)  # [T]
    normalized = (inverse - p_low[:, None, None, None]) / span[:, None, None, None]  # [T, 1, H, W]
    hole_value = torch.where(ok, normalized, torch.full_like(normalized, float("inf"))).amin(dim=(1, 2, 3))  # [T]
    hole_value = torch.where(torch.isfinite(hole_value), hole_value, torch.zeros_like(hole_value))  # [T]
    normalized = torch.where(ok, normalized, hole_value[:, None, None, None])  # [T, 1, H, W]
    return normalized.to(torch.float32), DepthRange(p_low=p_low, p_high=p_low + span)


def _fill_empty_frames(pct: torch.Tensor) -> torch.Tensor:
    """Replace NaN rows of ``pct [T, 2]`` by the nearest earlier valid row (else the first valid row)."""
    has = ~torch.isnan(pct[:, 0])  # [T]
    if bool(has.all()):
        return pct
    if not bool(has.any()):
        return torch.tensor([[0.0, 1.0]], dtype=pct.dtype).expand_as(pct).clone()  # [T, 2]
    index = torch.arange(pct.shape[0])  # [T]
    last_valid = torch.cummax(torch.where(has, index, torch.full_like(index, -1)), dim=0).values  # [T]
    first_valid = int(index[has][0])
    last_valid = torch.where(last_valid < 0, torch.full_like(last_valid, first_valid), last_valid)  # [T]
    return pct[last_valid]  # [T, 2]


def depth_from_normalized(normalized: torch.Tensor, depth_range: DepthRange) -> torch.Tensor:
    """Inverse of :func:`normalize_depth`: ``normalized [T, 1, H, W]`` -> z-depth ``[T, 1, H, W]`` float32.

    Pixels whose inverse depth comes out non-positive (far beyond the frame's range) get 0 (no value).
    """
    p_low = depth_range.p_low.to(torch.float64)[:, None, None, None]  # [T, 1, 1, 1]
    p_high = depth_range.p_high.to(torch.float64)[:, None, None, None]  # [T, 1, 1, 1]
    inverse = normalized.to(torch.float64) * (p_high - p_low) + p_low  # [T, 1, H, W]
    positive = inverse > INVERSE_DEPTH_EPS  # [T, 1, H, W]
    depth = 1.0 / torch.where(positive, inverse, torch.ones_like(inverse)) - INVERSE_DEPTH_EPS  # [T, 1, H, W]
    return torch.where(positive & (depth > 0), depth, torch.zeros_like(depth)).to(torch.float32)  # [T, 1, H, W]


def normalize_depth_with(depth: torch.Tensor, depth_range: DepthRange) -> torch.Tensor:
    """Normalise z-depth ``[T, 1, H, W]`` with GIVEN per-frame ranges (``T`` of them).

    Holes (``depth <= 0`` or not finite) get the frame's minimum valid value, as in
    :func:`normalize_depth`. Returns ``[T, 1, H, W]`` float32.
    """
    depth64 = depth.to(torch.float64)  # [T, 1, H, W]
    valid = (depth64 > 0) & torch.isfinite(depth64)  # [T, 1, H, W]
    p_low = depth_range.p_low.to(torch.float64)[:, None, None, None]  # [T, 1, 1, 1]
    p_high = depth_range.p_high.to(torch.float64)[:, None, None, None]  # [T, 1, 1, 1]
    normalized = (1.0 / (depth64.clamp(min=0) + INVERSE_DEPTH_EPS) - p_low) / (p_high - p_low)  # [T, 1, H, W]
    hole = torch.where(valid, normalized, torch.full_like(normalized, float("inf"))).amin(dim=(1, 2, 3), keepdim=True)  # [T, 1, 1, 1]
    hole = torch.where(torch.isfinite(hole), hole, torch.zeros_like(hole))
    return torch.where(valid, normalized, hole).to(torch.float32)  # [T, 1, H, W]


def slice_range(depth_range: DepthRange, frames: slice) -> DepthRange:
    """The ranges of a sub-range of frames."""
    return DepthRange(p_low=depth_range.p_low[frames], p_high=depth_range.p_high[frames])


def resize_to_model(rgb: torch.Tensor, normalized_depth: torch.Tensor, mask: torch.Tensor,
                    size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Resize render-resolution inputs to the model size, with the kernels of the released inference.

    ``rgb [T, 3, H, W]`` in [0, 1] and the float ``mask [T, 1, H, W]`` (1 = rendered): bicubic (PIL's
    default resampling of its image loader), clamped to [0, 1]; the NORMALISED depth
    ``[T, 1, H, W]`` (already hole-filled, as the released data engine writes it): bilinear (cv2
    ``INTER_LINEAR``). A no-op when the size already matches.
    """
    if tuple(rgb.shape[-2:]) == tuple(size):
        return rgb.float(), normalized_depth.float(), mask.float()
    rgb = F.interpolate(rgb.float(), size=size, mode="bicubic", align_corners=False).clamp(0, 1)  # [T, 3, h, w]
    mask = F.interpolate(mask.float(), size=size, mode="bicubic", align_corners=False).clamp(0, 1)  # [T, 1, h, w]
    normalized_depth = F.interpolate(normalized_depth.float(), size=size, mode="bilinear", align_corners=False)  # [T, 1, h, w]
    return rgb, normalized_depth, mask


def compose(rgb: torch.Tensor, depth3: torch.Tensor) -> torch.Tensor:
    """Stack ``rgb [T, 3, H, W]`` over a 16-row band of ones over ``depth3 [T, 3, H, W]`` -> ``[T, 3, 2H+16, W]``."""
    if rgb.shape != depth3.shape:
        raise ValueError(f"compose: rgb {tuple(rgb.shape)} and depth {tuple(depth3.shape)} differ")
    band = torch.ones(rgb.shape[0], rgb.shape[1], SEPARATOR_ROWS, rgb.shape[3], dtype=rgb.dtype, device=rgb.device)  # [T, C, 16, W]
    return torch.cat([rgb, band, depth3], dim=2)  # [T, C, 2H+16, W]


def split_composite(composite: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``composite [T, 3, 2H+16, W]`` -> (rgb ``[T, 3, H, W]``, depth ``[T, 1, H, W]`` luma of the 3 depth channels)."""
    half = half_height(composite.shape[2])
    rgb = composite[:, :, :half]  # [T, 3, H, W]
    depth3 = composite[:, :, -half:]  # [T, 3, H, W]
    weights = torch.tensor(DEPTH_LUMA, dtype=composite.dtype, device=composite.device)  # [3]
    depth = (depth3 * weights[None, :, None, None]).sum(dim=1, keepdim=True)  # [T, 1, H, W]
    return rgb, depth


def half_height(composite_height: int) -> int:
    """Height of one half of a composite of ``composite_height`` rows."""
    if composite_height <= SEPARATOR_ROWS or (composite_height - SEPARATOR_ROWS) % 2:
        raise ValueError(f"composite height {composite_height} is not 2*H + {SEPARATOR_ROWS}")
    return (composite_height - SEPARATOR_ROWS) // 2


def prepare_condition(rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor,
                      size: tuple[int, int] | None = None) -> ConditionFrames:
    """Rendered guidance -> model-space composite, composite visibility and per-frame depth range.

    ``rgb [T, 3, H, W]`` in [0, 1], ``depth [T, 1, H, W]`` z-depth (0 = none), ``mask [T, 1, H, W]`` bool
    (pixels the world cache rendered). RGB holes become black, depth holes the frame's far end. The
    depth ranges are taken at the render resolution; ``size = (h, w)`` then resizes to the model size
    (:func:`resize_to_model`), so the visibility may hold fractions in [0, 1] along hole borders.
    """
    visible = mask.to(torch.bool) & (depth > 0)  # [T, 1, H, W]
    normalized, depth_range = normalize_depth(depth, visible)  # [T, 1, H, W]
    rgb = torch.where(visible, rgb.to(torch.float32), torch.zeros_like(rgb, dtype=torch.float32))  # [T, 3, H, W]
    rgb, normalized, known = resize_to_model(rgb, normalized, visible, size or tuple(rgb.shape[-2:]))  # [T, C, h, w]
    depth_model = (normalized * 2 - 1).expand(-1, 3, -1, -1)  # [T, 3, h, w]
    composite = compose(rgb * 2 - 1, depth_model)  # [T, 3, 2h+16, w]
    band = torch.ones(known.shape[0], 1, SEPARATOR_ROWS, known.shape[3], dtype=known.dtype, device=known.device)  # [T, 1, 16, w]
    visible_composite = torch.cat([known, band, known], dim=2)  # [T, 1, 2h+16, w]
    return ConditionFrames(composite=composite, visible=visible_composite, depth_range=depth_range)


def prepare_reference(rgb: torch.Tensor, depth: torch.Tensor, depth_range: DepthRange,
                      size: tuple[int, int] | None = None) -> torch.Tensor:
    """Reference image + its depth -> one composite frame ``[1, 3, 2h+16, w]``.

    ``rgb [3, H, W]`` in [0, 1], ``depth [1, H, W]`` z-depth (0 = none). The depth is normalised with
    ``depth_range`` (one frame): the released reference depth is the processed depth of render frame
    0, i.e. normalised with frame 0's (p2, p98), not with its own percentiles.
    """
    normalized = normalize_depth_with(depth[None], depth_range)  # [1, 1, H, W]
    ones = torch.ones_like(normalized)  # [1, 1, H, W]
    rgb_model, normalized, _ = resize_to_model(rgb[None].float(), normalized, ones, size or tuple(rgb.shape[-2:]))
    return compose(rgb_model * 2 - 1, (normalized * 2 - 1).expand(-1, 3, -1, -1))  # [1, 3, 2h+16, w]


def composite_image(composite: torch.Tensor) -> torch.Tensor:
    """A model-space composite ``[3, Hc, W]`` in [-1, 1] as the picture ``[3, Hc, W]`` in [0, 1]."""
    return ((composite.float().clamp(-1, 1) + 1) * 0.5)


def latent_visibility(visible: torch.Tensor, temporal: int = 4, spatial: int = 8) -> torch.Tensor:
    """Min-pool the composite visibility to the latent grid; values +1 (known) / -1 (unknown).

    ``visible [T, 1, Hc, W]`` bool (or float in [0, 1] after a bicubic resize: the pooled value is then
    ``2 min - 1``, as the reference computes it on its resized mask) with ``T = 1 + temporal * k``
    -> ``[1, 1, 1 + k, Hc / spatial, W / spatial]``.
    Frame 0 is repeated ``temporal - 1`` times first so that it forms its own block (the causal VAE
    encodes the first frame alone).
    """
    num_frames, _, height, width = visible.shape
    if (num_frames - 1) % temporal or height % spatial or width % spatial:
        raise ValueError(f"visibility {tuple(visible.shape)}: need T = 1 + {temporal}k and H, W multiples of {spatial}")
    unknown = 1.0 - visible.to(torch.float32)  # [T, 1, Hc, W]
    unknown = torch.cat([unknown[:1].expand(temporal - 1, -1, -1, -1), unknown], dim=0)  # [T+3, 1, Hc, W]
    unknown = unknown.permute(1, 0, 2, 3)[None]  # [1, 1, T+3, Hc, W]
    pooled = F.max_pool3d(unknown, kernel_size=(temporal, spatial, spatial), stride=(temporal, spatial, spatial))  # [1, 1, t, h, w]
    return 1.0 - 2.0 * pooled  # [1, 1, t, h, w]
