"""align_depth recovers known scale / shift, robustly to outliers."""

from __future__ import annotations

import pytest
import torch

from voyager_pipe.geometry import align_depth


def _pred(seed=0, shape=(1, 1, 24, 32)):
    return 1.0 + 5.0 * torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_scale_exact():
    pred = _pred()
    aligned, scale, shift = align_depth(pred, 2.5 * pred, robust=False)
    assert torch.allclose(scale, torch.tensor([2.5], dtype=torch.float64))
    assert shift.item() == 0
    assert torch.allclose(aligned, 2.5 * pred)


def test_scale_shift_robust_to_outliers():
    pred = _pred(1)
    target = 1.7 * pred + 0.4
    gen = torch.Generator().manual_seed(2)
    outliers = torch.rand(pred.shape, generator=gen) < 0.2
    target = torch.where(outliers, target * 5 + 3, target)  # 20% gross outliers
    _, scale, shift = align_depth(pred, target, mode="scale_shift", robust=True)
    assert abs(scale.item() - 1.7) < 1e-3 and abs(shift.item() - 0.4) < 1e-3
    _, plain_scale, _ = align_depth(pred, target, mode="scale_shift", robust=False)
    assert abs(plain_scale.item() - 1.7) > 0.1  # the plain fit is pulled away (the test can fail)


def test_inverse_depth_scale_shift():
    pred = _pred(3)
    target = 1.0 / (0.8 / pred + 0.05)  # affine in inverse depth
    aligned, scale, shift = align_depth(pred, target, mode="scale_shift", space="inverse_depth")
    assert abs(scale.item() - 0.8) < 1e-6 and abs(shift.item() - 0.05) < 1e-6
    assert torch.allclose(aligned, target, rtol=1e-6)


def test_mask_and_per_image_fits():
    pred = _pred(4, (2, 1, 8, 8))
    target = pred * torch.tensor([2.0, 3.0], dtype=torch.float64).view(2, 1, 1, 1)
    mask = torch.ones_like(pred, dtype=torch.bool)
    target[:, :, :2] = 100.0  # masked-out garbage
    mask[:, :, :2] = False
    _, scale, _ = align_depth(pred, target, mask, robust=False)
    assert torch.allclose(scale, torch.tensor([2.0, 3.0], dtype=torch.float64))


def test_invalid_pixels_stay_zero():
    pred = _pred(5)
    pred[0, 0, 0, 0] = 0.0
    aligned, _, _ = align_depth(pred, 2 * pred)
    assert aligned[0, 0, 0, 0] == 0


def test_bad_mode():
    with pytest.raises(ValueError):
        align_depth(_pred(), _pred(), mode="affine")
