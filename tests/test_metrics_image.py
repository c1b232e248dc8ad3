"""PSNR / SSIM against hand-derived values and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from voyager_pipe.metrics import psnr, ssim


def _rand(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_psnr_of_a_constant_offset():
    gt = 0.2 + 0.6 * _rand((2, 3, 16, 20), 0)
    pred = gt + 0.1  # mse = 0.01 -> 20 dB
    torch.testing.assert_close(psnr(pred, gt), torch.full((2,), 20.0), atol=1e-3, rtol=0)


def test_masked_psnr_counts_only_masked_pixels():
    gt = torch.zeros(1, 3, 8, 8)
    pred = gt.clone()
    pred[..., :4, :] = 0.1  # top half off by 0.1, bottom half exact
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4, :] = True
    assert psnr(pred, gt, mask).item() == pytest.approx(20.0, abs=1e-3)
    assert psnr(pred, gt).item() == pytest.approx(10 * math.log10(1 / 0.005), abs=1e-3)  # mse halves over the whole image
    assert math.isinf(psnr(pred, gt, ~mask).item())  # only exact pixels
    assert math.isnan(psnr(pred, gt, torch.zeros_like(mask)).item())  # empty mask: undefined


def test_ssim_matches_scikit_image():
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    gt = _rand((3, 3, 40, 52), 1)
    pred = (gt + 0.15 * torch.randn(gt.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    pred[1] = gt[1] * 0.5 + 0.25  # contrast change
    ours = ssim(pred, gt)
    ref = [structural_similarity(pred[i].permute(1, 2, 0).double().numpy(), gt[i].permute(1, 2, 0).double().numpy(),
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)
           for i in range(3)]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)


def test_ssim_identity_and_masked_mean():
    gt = _rand((1, 3, 24, 24), 3)
    torch.testing.assert_close(ssim(gt, gt), torch.ones(1))
    pred = gt.clone()
    pred[..., :, 12:] = 0.5  # right half ruined
    left = torch.zeros(1, 1, 24, 24, dtype=torch.bool)
    left[..., :, 5:7] = True  # inside the valid region, windows (radius 5) stay clear of the right half
    assert ssim(pred, gt, left).item() == pytest.approx(1.0, abs=1e-5)
    assert ssim(pred, gt).item() < 0.9
