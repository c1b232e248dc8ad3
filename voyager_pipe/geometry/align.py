"""Least-squares alignment of a predicted depth map to a reference (scale, or scale + shift)."""

from __future__ import annotations

from typing import Literal

import torch

_HUBER_K = 1.345  # Huber's constant (95% efficiency under Gaussian noise)
_TUKEY_C = 4.685  # Tukey's biweight constant (95% efficiency under Gaussian noise)
_MAD_TO_SIGMA = 1.4826


def _weighted_fit(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, with_shift: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least squares of ``y ~ s * x (+ b)`` per row. ``x, y, w`` are ``[B, M]``; returns ``s, b`` [B]."""
    sw = w.sum(-1)  # [B]
    sx = (w * x).sum(-1)  # [B]
    sy = (w * y).sum(-1)  # [B]
    sxx = (w * x * x).sum(-1)  # [B]
    sxy = (w * x * y).sum(-1)  # [B]
    if not with_shift:
        scale = sxy / sxx.clamp_min(torch.finfo(x.dtype).tiny)  # [B]
        return scale, torch.zeros_like(scale)
    det = sw * sxx - sx * sx  # [B]
    det_ok = det.abs() > 1e-12 * (sw * sxx).abs().clamp_min(torch.finfo(x.dtype).tiny)  # [B]
    scale = torch.where(det_ok, (sw * sxy - sx * sy) / torch.where(det_ok, det, torch.ones_like(det)),
                        sxy / sxx.clamp_min(torch.finfo(x.dtype).tiny))  # [B]
    shift = torch.where(det_ok, (sy - scale * sx) / sw.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(sw))  # [B]
    return scale, shift


def align_depth(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    mode: Literal["scale", "scale_shift"] = "scale",
    space: Literal["depth", "inverse_depth"] = "depth",
    robust: bool = True,
    iterations: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit ``target ~ scale * pred + shift`` by least squares and apply it to ``pred``.

    Args:
        pred: ``[N, 1, H, W]`` (one fit per image) or any other shape (one fit over all values),
            z-depth, values ``<= 0`` or non-finite are ignored.
        target: same shape as ``pred``, reference z-depth (``<= 0`` ignored).
        mask: same shape, bool; pixels used for the fit (default: all valid ones).
        mode: ``"scale"`` (``shift`` is 0) or ``"scale_shift"``.
        space: fit in ``"depth"`` or in ``"inverse_depth"`` (disparity: ``1/target ~ s/pred + b``,
            the natural space of affine-invariant monocular depth models).
        robust: iteratively reweighted least squares starting from the median ratio: Huber
            weights for the first half of the iterations, then Tukey's biweight (residual scale
            from the median absolute deviation), so gross outliers (wrong matches, sky, edges)
            end with zero weight.
        iterations: IRLS iterations when ``robust``.

    Returns:
        aligned: like ``pred``, the aligned z-depth (0 where ``pred`` had no value or the
        aligned inverse depth is not positive).
        scale, shift: ``[N]`` for ``[N, 1, H, W]`` inputs, else scalars, in the fitting space.
    """
    if mode not in ("scale", "scale_shift"):
        raise ValueError(f"align_depth: mode must be 'scale' or 'scale_shift', got {mode!r}")
    if space not in ("depth", "inverse_depth"):
        raise ValueError(f"align_depth: space must be 'depth' or 'inverse_depth', got {space!r}")
    if pred.shape != target.shape:
        raise ValueError(f"align_depth: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    per_image = pred.ndim == 4
    rows = pred.shape[0] if per_image else 1
    work = torch.promote_types(pred.dtype, torch.float32)
    p = pred.reshape(rows, -1).to(work)  # [B, M]
    t = target.reshape(rows, -1).to(work)  # [B, M]
    use = (p > 0) & (t > 0) & p.isfinite() & t.isfinite()  # [B, M]
    if mask is not None:
        use &= mask.reshape(rows, -1).bool()
    if space == "inverse_depth":
        x = torch.where(use, 1.0 / p.clamp_min(1e-12), torch.zeros_like(p))  # [B, M]
        y = torch.where(use, 1.0 / t.clamp_min(1e-12), torch.zeros_like(t))  # [B, M]
    else:
        x = torch.where(use, p, torch.zeros_like(p))  # [B, M]
        y = torch.where(use, t, torch.zeros_like(t))  # [B, M]
    with_shift = mode == "scale_shift"
    w = use.to(work)  # [B, M]
    if robust:
        nan = torch.full_like(x, float("nan"))
        scale = torch.nanmedian(torch.where(use, y / x.clamp_min(1e-12), nan), dim=-1).values  # [B]
        shift = torch.zeros_like(scale)  # [B]
        if with_shift:  # median-based start: match medians around the median ratio
            shift = (torch.nanmedian(torch.where(use, y, nan), -1).values
                     - scale * torch.nanmedian(torch.where(use, x, nan), -1).values)  # [B]
        floor = 1e-12 * y.abs().amax(-1).clamp_min(1e-12)  # [B] smallest residual scale
        for it in range(iterations):
            residual = (scale[:, None] * x + shift[:, None] - y).abs()  # [B, M]
            sigma = (_MAD_TO_SIGMA * torch.nanmedian(torch.where(use, residual, nan), dim=-1).values).clamp_min(floor)  # [B]
            if it < iterations // 2:  # Huber: convex, finds the basin from the median start
                w = (_HUBER_K * sigma[:, None] / residual.clamp_min(1e-30)).clamp(max=1.0)  # [B, M]
            else:  # Tukey's biweight: redescending, gross outliers get zero weight
                w = (1 - (residual / (_TUKEY_C * sigma[:, None])).square()).clamp_min(0).square()  # [B, M]
            w = w * use.to(work)  # [B, M]
            scale, shift = _weighted_fit(x, y, w, with_shift)
    else:
        scale, shift = _weighted_fit(x, y, w, with_shift)
    scale = torch.nan_to_num(scale, nan=1.0)  # [B] (no valid pixel: identity)
    shift = torch.nan_to_num(shift, nan=0.0)  # [B]

    pv = pred.reshape(rows, -1).to(work)  # [B, M]
    has = (pv > 0) & pv.isfinite()  # [B, M]
    if space == "inverse_depth":
        inv = scale[:, None] / pv.clamp_min(1e-12) + shift[:, None]  # [B, M]
        aligned = torch.where(has & (inv > 0), 1.0 / inv.clamp_min(1e-12), torch.zeros_like(inv))  # [B, M]
    else:
        aligned = torch.where(has, scale[:, None] * pv + shift[:, None], torch.zeros_like(pv))  # [B, M]
    aligned = aligned.reshape(pred.shape).to(pred.dtype if pred.is_floating_point() else work)
    if not per_image:
        return aligned, scale[0], shift[0]
    return aligned, scale, shift
