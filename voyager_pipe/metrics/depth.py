"""Depth metrics after scale alignment: AbsRel, RMSE, delta < 1.25.

Predicted depth of a monocular / generative system has an unknown scale, so it is aligned to
the ground truth first:

* ``median``: ``s = median(gt) / median(pred)`` over valid pixels (Eigen et al. / Monodepth);
* ``lstsq``: ``s = sum(pred * gt) / sum(pred^2)`` (least squares, no shift);
* ``none``: metric depth, compared as is.

Alignment uses one scale for the whole video (``scope="sequence"``, the default: a consistent
video should need only one) or one per frame (``scope="frame"``). Valid pixels have finite
``gt > 0`` and ``pred > 0`` (and the optional mask).
"""

from __future__ import annotations

from typing import Literal

import torch


def _scale(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, align: str) -> torch.Tensor:
    """Scale for flat tensors of one group (``pred``, ``gt``, ``valid`` [P])."""
    if align == "none" or not valid.any():
        return torch.ones((), dtype=pred.dtype)
    p, g = pred[valid], gt[valid]  # [V]
    if align == "median":
        return g.median() / p.median()
    if align == "lstsq":
        return (p * g).sum() / (p * p).sum()
    raise ValueError(f"depth alignment {align!r}: expected median, lstsq or none")


def depth_metrics(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None,
                  align: Literal["median", "lstsq", "none"] = "median",
                  scope: Literal["sequence", "frame"] = "sequence") -> dict[str, torch.Tensor]:
    """Per-frame depth errors of ``pred`` vs ``gt`` (both ``[T, 1, H, W]`` z-depth, 0 = none).

    Returns ``{"abs_rel": [T], "rmse": [T], "delta1": [T], "scale": [T], "valid_fraction": [T]}``:
    ``abs_rel = mean(|s*pred - gt| / gt)``, ``rmse = sqrt(mean((s*pred - gt)^2))`` (gt units),
    ``delta1`` = fraction with ``max(s*pred/gt, gt/(s*pred)) < 1.25``; NaN for frames without valid pixels.
    """
    if pred.shape != gt.shape or pred.ndim != 4 or pred.shape[1] != 1:
        raise ValueError(f"expected pred and gt depth of the same shape [T, 1, H, W], got {tuple(pred.shape)} and {tuple(gt.shape)}")
    pred, gt = pred.double(), gt.double()
    valid = torch.isfinite(pred) & torch.isfinite(gt) & (pred > 0) & (gt > 0)  # [T, 1, H, W]
    if mask is not None:
        valid &= mask.bool()
    T = pred.shape[0]
    if scope == "sequence":
        scale = _scale(pred.reshape(-1), gt.reshape(-1), valid.reshape(-1), align).expand(T)  # [T]
    elif scope == "frame":
        scale = torch.stack([_scale(pred[t].reshape(-1), gt[t].reshape(-1), valid[t].reshape(-1), align)
                             for t in range(T)])  # [T] one median per frame
    else:
        raise ValueError(f"depth alignment scope {scope!r}: expected sequence or frame")
    aligned = pred * scale.view(T, 1, 1, 1)  # [T, 1, H, W]
    safe_gt = torch.where(valid, gt, torch.ones_like(gt))
    safe_pred = torch.where(valid, aligned, torch.ones_like(aligned))
    w = valid.double()  # [T, 1, H, W]
    count = w.sum(dim=(1, 2, 3))  # [T]
    denom = count.clamp(min=1)
    abs_rel = ((safe_pred - safe_gt).abs() / safe_gt * w).sum(dim=(1, 2, 3)) / denom  # [T]
    rmse = torch.sqrt(((safe_pred - safe_gt) ** 2 * w).sum(dim=(1, 2, 3)) / denom)  # [T]
    ratio = torch.maximum(safe_pred / safe_gt, safe_gt / safe_pred)  # [T, 1, H, W]
    delta1 = ((ratio < 1.25).double() * w).sum(dim=(1, 2, 3)) / denom  # [T]
    nan = torch.full_like(abs_rel, float("nan"))
    empty = count == 0
    return {
        "abs_rel": torch.where(empty, nan, abs_rel).float(),
        "rmse": torch.where(empty, nan, rmse).float(),
        "delta1": torch.where(empty, nan, delta1).float(),
        "scale": scale.float(),
        "valid_fraction": (count / valid[0].numel()).float(),
    }
