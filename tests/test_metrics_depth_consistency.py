"""Depth metrics after alignment, return-to-start detection, reprojection consistency."""

from __future__ import annotations

import math

import pytest
import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.metrics import depth_metrics, find_revisit, reprojection_consistency, return_to_start_psnr


def test_depth_metrics_hand_values():
    gt = torch.tensor([1.0, 2.0, 4.0, 0.0]).view(1, 1, 1, 4)  # last pixel has no ground truth
    pred = torch.tensor([1.0, 2.0, 2.0, 5.0]).view(1, 1, 1, 4)
    d = depth_metrics(pred, gt, align="none")
    assert d["abs_rel"].item() == pytest.approx((0 + 0 + 0.5) / 3)
    assert d["rmse"].item() == pytest.approx(math.sqrt(4 / 3))
    assert d["delta1"].item() == pytest.approx(2 / 3)
    # a pure scale is removed by either alignment
    for align in ("median", "lstsq"):
        d = depth_metrics(gt * 7.0, gt, align=align)
        assert d["abs_rel"].item() == pytest.approx(0, abs=1e-6) and d["scale"].item() == pytest.approx(1 / 7)
    # median scale by hand: medians 2 and 2 -> s = 1; lstsq: s = (1+4+8)/(1+4+4) = 13/9
    assert depth_metrics(pred, gt, align="median")["scale"].item() == pytest.approx(1.0)
    assert depth_metrics(pred, gt, align="lstsq")["scale"].item() == pytest.approx(13 / 9)


def test_depth_alignment_scope():
    gt = torch.ones(2, 1, 2, 2)
    pred = torch.cat([torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 2, 2), 4.0)])
    per_frame = depth_metrics(pred, gt, scope="frame")
    torch.testing.assert_close(per_frame["abs_rel"], torch.zeros(2))
    seq = depth_metrics(pred, gt, scope="sequence")  # one scale: torch's (lower) median of {2, 4} is 2 -> s = 1/2
    torch.testing.assert_close(seq["abs_rel"], torch.tensor([0.0, 1.0]))


def _cams_from_centers(centers, yaw_deg=None):
    T = len(centers)
    c2w = torch.eye(4, dtype=torch.float64).repeat(T, 1, 1)
    c2w[:, :3, 3] = torch.tensor(centers, dtype=torch.float64)
    if yaw_deg is not None:
        a = torch.deg2rad(torch.tensor(yaw_deg, dtype=torch.float64))
        c2w[:, 0, 0], c2w[:, 0, 2], c2w[:, 2, 0], c2w[:, 2, 2] = a.cos(), a.sin(), -a.sin(), a.cos()
    K = torch.tensor([[20.0, 0, 16], [0, 20.0, 12], [0, 0, 1]], dtype=torch.float64)
    return Cameras.from_c2w(c2w, K.expand(T, 3, 3), 32, 24)


def test_find_revisit():
    out_and_back = _cams_from_centers([[0, 0, 0], [1, 0, 0], [2, 0, 0], [1, 0, 0], [0, 0, 0.01]])
    assert find_revisit(out_and_back) == 4
    assert find_revisit(_cams_from_centers([[0, 0, 0], [1, 0, 0], [2, 0, 0]])) is None
    turned = _cams_from_centers([[0, 0, 0], [1, 0, 0], [0, 0, 0]], yaw_deg=[0.0, 0.0, 30.0])
    assert find_revisit(turned) is None  # same place, other direction
    rgb = torch.rand(5, 3, 24, 32)
    rgb[4] = rgb[0] + 0.1  # revisit off by 0.1 everywhere -> 20 dB
    value, index = return_to_start_psnr(rgb, out_and_back)
    assert index == 4 and value == pytest.approx(20.0, abs=1e-3)


def test_reprojection_consistency_on_a_plane():
    """A fronto-parallel plane with a horizontal ramp texture, camera sliding sideways: warping is exact,
    so the error is ~0 for the right depth and clearly larger for a wrong one."""
    H, W, f, z = 24, 32, 20.0, 4.0
    shift = 0.4  # world units to the right -> image content moves left by f * shift / z = 2 px
    cams = _cams_from_centers([[0, 0, 0], [shift, 0, 0]])
    u = torch.arange(W, dtype=torch.float32) + 0.5
    x_world0 = (u - W / 2) / f * z  # [W] world x seen by camera 0
    ramp = lambda x: (x + 4) / 8  # noqa: E731  colour as a linear function of world x
    rgb = torch.zeros(2, 3, H, W)
    rgb[0] = ramp(x_world0).view(1, 1, W)
    rgb[1] = ramp(x_world0 + shift).view(1, 1, W)
    depth = torch.full((2, 1, H, W), z)
    good = reprojection_consistency(rgb, depth, cams)
    assert math.isnan(good["l1"][0])
    assert good["l1"][1] < 1e-5
    assert good["covisible"][1] == pytest.approx((W - 2) / W, abs=1e-6)  # 2 columns leave the view
    wrong = reprojection_consistency(rgb, depth * 2, cams)  # wrong depth: warps by 1 px instead of 2
    assert wrong["l1"][1] > 100 * good["l1"][1] + 1e-3
