"""Voyager condition encoding: depth normalisation, composite layout, latent visibility (pixel space)."""

from __future__ import annotations

import numpy as np
import torch

from voyager_pipe.models.conditions import (
    SEPARATOR_ROWS,
    compose,
    depth_from_normalized,
    frame_percentiles,
    latent_visibility,
    normalize_depth,
    prepare_condition,
    split_composite,
)


def _depth_with_holes(seed: int = 0, frames: int = 3, size: int = 24):
    gen = torch.Generator().manual_seed(seed)
    depth = 0.5 + 20 * torch.rand(frames, 1, size, size, generator=gen, dtype=torch.float32)  # [T, 1, H, W]
    valid = torch.rand(frames, 1, size, size, generator=gen) > 0.3  # [T, 1, H, W]
    return depth * valid, valid


def test_percentiles_match_numpy():
    gen = torch.Generator().manual_seed(1)
    values = torch.rand(4, 101, generator=gen, dtype=torch.float64)  # [T, N]
    valid = torch.rand(4, 101, generator=gen) > 0.4  # [T, N]
    ours = frame_percentiles(values, valid, torch.tensor([2.0, 50.0, 98.0], dtype=torch.float64))  # [T, 3]
    for t in range(4):
        expected = np.percentile(values[t][valid[t]].numpy(), [2, 50, 98])
        np.testing.assert_allclose(ours[t].numpy(), expected, rtol=0, atol=1e-12)


def test_depth_normalisation_round_trip_exact_on_valid_pixels():
    depth, valid = _depth_with_holes()
    normalized, depth_range = normalize_depth(depth, valid)
    back = depth_from_normalized(normalized, depth_range)  # [T, 1, H, W]
    torch.testing.assert_close(back[valid], depth[valid], rtol=1e-6, atol=0)


def test_depth_normalisation_definition_and_holes():
    depth, valid = _depth_with_holes(seed=2)
    normalized, depth_range = normalize_depth(depth, valid)
    for t in range(depth.shape[0]):
        inverse = 1.0 / (depth[t][valid[t]].double().numpy() + 1e-6)
        p2, p98 = np.percentile(inverse, [2, 98])
        assert abs(float(depth_range.p_low[t]) - p2) < 1e-12 and abs(float(depth_range.p_high[t]) - p98) < 1e-12
        expected = (inverse - p2) / (p98 - p2)
        np.testing.assert_allclose(normalized[t][valid[t]].numpy(), expected, rtol=1e-5, atol=1e-6)
        # holes take the minimum valid value of the frame (the far end), as the reference does
        holes = normalized[t][~valid[t]]
        assert torch.all(holes == normalized[t][valid[t]].min())
    # not clipped: the 2% nearest pixels are above 1, the 2% farthest below 0
    assert float(normalized[valid].max()) > 1.0 and float(normalized[valid].min()) < 0.0


def test_frame_without_valid_pixels_borrows_previous_range():
    depth, valid = _depth_with_holes(seed=3)
    valid[1] = False
    normalized, depth_range = normalize_depth(depth * valid, valid)
    assert float(depth_range.p_low[1]) == float(depth_range.p_low[0])
    assert torch.all(normalized[1] == 0)


def test_composite_layout():
    frames, size = 2, 16
    gen = torch.Generator().manual_seed(4)
    rgb = torch.rand(frames, 3, size, size, generator=gen)  # [T, 3, H, W]
    depth = 1 + torch.rand(frames, 1, size, size, generator=gen)  # [T, 1, H, W]
    mask = torch.ones(frames, 1, size, size, dtype=torch.bool)
    mask[:, :, :4, :4] = False
    cond = prepare_condition(rgb, depth * mask, mask)
    comp = cond.composite
    assert comp.shape == (frames, 3, 2 * size + SEPARATOR_ROWS, size)
    # RGB on top, scaled to [-1, 1], black (-1) in holes
    torch.testing.assert_close(comp[:, :, :size][mask.expand(-1, 3, -1, -1)], (rgb * 2 - 1)[mask.expand(-1, 3, -1, -1)])
    assert torch.all(comp[:, :, :4, :4] == -1)
    # the band of ones
    assert torch.all(comp[:, :, size:size + SEPARATOR_ROWS] == 1)
    # depth below: 3 equal channels = 2 * normalised - 1
    normalized, _ = normalize_depth(depth * mask, mask)
    for c in range(3):
        torch.testing.assert_close(comp[:, c:c + 1, size + SEPARATOR_ROWS:], normalized * 2 - 1)
    # visibility: mask on both halves, band visible
    assert cond.visible.shape == (frames, 1, 2 * size + SEPARATOR_ROWS, size)
    assert torch.equal(cond.visible[:, :, :size], mask) and torch.equal(cond.visible[:, :, -size:], mask)
    assert torch.all(cond.visible[:, :, size:size + SEPARATOR_ROWS])
    # split returns the halves (luma of equal channels is the value)
    rgb_back, depth_back = split_composite(compose(rgb, depth.expand(-1, 3, -1, -1)))
    torch.testing.assert_close(rgb_back, rgb)
    torch.testing.assert_close(depth_back, depth)


def test_latent_visibility_min_pool_hand_made():
    visible = torch.ones(9, 1, 16, 24, dtype=torch.bool)  # 9 frames -> latent frames {0}, {1-4}, {5-8}
    visible[0, 0, 15, 0] = False  # frame 0 -> latent frame 0, cell (1, 0)
    visible[3, 0, 2, 17] = False  # frame 3 -> latent frame 1, cell (0, 2)
    visible[8, 0, 9, 9] = False  # frame 8 -> latent frame 2, cell (1, 1)
    out = latent_visibility(visible)  # [1, 1, 3, 2, 3]
    expected = torch.ones(1, 1, 3, 2, 3)
    expected[0, 0, 0, 1, 0] = -1
    expected[0, 0, 1, 0, 2] = -1
    expected[0, 0, 2, 1, 1] = -1
    assert out.shape == expected.shape
    assert torch.equal(out, expected)
