"""PSNR and SSIM, per frame, with optional masks (torchmetrics' functional implementations).

Conventions: images ``[T, 3, H, W]`` float in [0, 1] (data range 1); masks ``[T, 1, H, W]`` bool.
Every function returns a ``[T]`` tensor (one value per frame; NaN where a mask is empty).
"""

from __future__ import annotations

import torch

SSIM_SIGMA = 1.5
SSIM_KERNEL = 11  # = 2 * int(3.5 * sigma + 0.5) + 1, the Gaussian window torchmetrics builds for sigma 1.5
SSIM_BORDER = (SSIM_KERNEL - 1) // 2


def _check_pair(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.ndim != 4 or pred.shape != gt.shape or pred.shape[1] != 3:
        raise ValueError(f"expected pred and gt of the same shape [T, 3, H, W], got {tuple(pred.shape)} and {tuple(gt.shape)}")


def psnr(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB (data range 1), ``[T]``.

    Without a mask this is ``torchmetrics.functional.peak_signal_noise_ratio`` per frame. With a
    mask ``[T, 1, H, W]`` the mean squared error is taken over the masked pixels (all 3 channels)
    only: ``10 log10(1 / mse)``. Identical images give ``inf``.
    """
    _check_pair(pred, gt)
    pred, gt = pred.float(), gt.float()
    if mask is None:
        from torchmetrics.functional.image import peak_signal_noise_ratio

        return peak_signal_noise_ratio(pred, gt, data_range=1.0, reduction="none", dim=(1, 2, 3))  # [T]
    weight = mask.to(pred.dtype).expand_as(pred)  # [T, 3, H, W]
    count = weight.sum(dim=(1, 2, 3))  # [T]
    mse = ((pred - gt) ** 2 * weight).sum(dim=(1, 2, 3)) / count.clamp(min=1)  # [T]
    out = 10 * torch.log10(1.0 / mse)  # [T]
    return torch.where(count > 0, out, torch.full_like(out, float("nan")))


def ssim_map(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM ``[T, 1, H - 10, W - 10]`` (channel mean) over the *valid* region.

    Gaussian window 11 x 11, sigma 1.5, k1 0.01, k2 0.03, data range 1, computed by
    ``torchmetrics.functional.structural_similarity_index_measure(return_full_image=True)``.
    torchmetrics reflect-pads the borders (``F.pad(mode="reflect")``) whereas scikit-image
    filters with scipy's ``mode="reflect"`` (which repeats the edge pixel) and then crops 5
    pixels: the two only agree where the window lies fully inside the image, so we keep that
    region (crop 5 pixels on each side), like scikit-image's ``structural_similarity``.
    """
    _check_pair(pred, gt)
    H, W = pred.shape[-2:]
    if H < SSIM_KERNEL + 1 or W < SSIM_KERNEL + 1:
        raise ValueError(f"SSIM needs images larger than {SSIM_KERNEL}x{SSIM_KERNEL}, got {W}x{H}")
    from torchmetrics.functional.image import structural_similarity_index_measure

    _, full = structural_similarity_index_measure(
        pred.float(), gt.float(), gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_KERNEL, data_range=1.0,
        k1=0.01, k2=0.03, reduction="none", return_full_image=True)  # full: [T, 3, H, W]
    b = SSIM_BORDER
    return full[:, :, b:-b, b:-b].mean(dim=1, keepdim=True)  # [T, 1, H-10, W-10]


def ssim(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean SSIM per frame ``[T]`` (see :func:`ssim_map`); with a mask, the mean over masked pixels of the valid region."""
    smap = ssim_map(pred, gt)  # [T, 1, h, w]
    if mask is None:
        return smap.mean(dim=(1, 2, 3))  # [T]
    b = SSIM_BORDER
    weight = mask[:, :, b:-b, b:-b].to(smap.dtype)  # [T, 1, h, w]
    count = weight.sum(dim=(1, 2, 3))  # [T]
    out = (smap * weight).sum(dim=(1, 2, 3)) / count.clamp(min=1)  # [T]
    return torch.where(count > 0, out, torch.full_like(out, float("nan")))
