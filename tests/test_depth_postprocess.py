"""Edge-aware resize, depth-edge filter, sky (far) handling and disparity -> depth, against hand values."""

from __future__ import annotations

import torch

from voyager_pipe.depth.postprocess import depth_edge_mask, far_mask, resize_depth
from voyager_pipe.depth.transformers_backend import disparity_to_depth, model_output_kind


def _step(h=8, w=8, near=1.0, far=4.0, col=4) -> torch.Tensor:
    depth = torch.full((h, w), near)  # [h, w]
    depth[:, col:] = far
    return depth


def test_resize_keeps_only_the_two_levels_of_a_step():
    depth = _step()
    out, valid = resize_depth(depth, torch.ones_like(depth, dtype=torch.bool), 32, 32)
    assert out.shape == (32, 32) and valid.all()
    levels = torch.unique(out)
    assert torch.equal(levels, torch.tensor([1.0, 4.0]))  # nothing blended across the edge
    # the edge lands where it was: source column 4 of 8 = output column 16 of 32
    assert torch.all(out[:, :16] == 1.0) and torch.all(out[:, 16:] == 4.0)


def test_resize_is_bilinear_on_smooth_ramps():
    ramp = 10.0 + 0.01 * torch.arange(4.0)[None].repeat(4, 1)  # [4, 4] rises 0.01 per column
    out, _ = resize_depth(ramp, torch.ones(4, 4, dtype=torch.bool), 4, 8)
    # output column j has centre (j + 0.5) / 2 - 0.5 in source pixels, clamped to [0, 3]
    expected = 10.0 + 0.01 * ((torch.arange(8.0) + 0.5) / 2 - 0.5).clamp(0, 3)
    torch.testing.assert_close(out[0], expected)


def test_resize_never_blends_with_invalid_pixels():
    depth = torch.full((4, 4), 2.0)
    valid = torch.ones(4, 4, dtype=torch.bool)
    valid[:, 2:] = False
    out, out_valid = resize_depth(torch.where(valid, depth, torch.zeros(())), valid, 8, 8)
    assert torch.all(out[out_valid] == 2.0) and torch.all(out[~out_valid] == 0.0)
    assert out_valid[:, :4].all() and not out_valid[:, 4:].any()


def test_edge_filter_drops_the_step_and_keeps_flat_parts():
    depth = _step()
    edges = depth_edge_mask(depth, torch.ones_like(depth, dtype=torch.bool), rtol=0.04)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:, 3:5] = True  # the two columns touching the discontinuity
    assert torch.equal(edges, expected)


def test_edge_filter_keeps_gentle_slopes_and_ignores_invalid_neighbours():
    slope = 5.0 + 0.05 * torch.arange(8.0)[None].repeat(8, 1)  # 1% per pixel: (max - min) / d < 0.04
    assert not depth_edge_mask(slope, torch.ones(8, 8, dtype=torch.bool), 0.04).any()
    valid = torch.ones(8, 8, dtype=torch.bool)
    valid[:, 4:] = False  # sky next to a flat wall
    assert not depth_edge_mask(torch.where(valid, torch.ones(8, 8), torch.zeros(())), valid, 0.04).any()


def test_far_mask_marks_sky():
    depth = torch.ones(4, 4)
    depth[0] = 1000.0
    sky = far_mask(depth, torch.ones(4, 4, dtype=torch.bool), far_ratio=50.0)
    assert sky[0].all() and not sky[1:].any()
    assert not far_mask(depth, torch.ones(4, 4, dtype=torch.bool), 0.0).any()


def test_disparity_to_depth_by_hand():
    disparity = torch.tensor([[4.0, 2.0], [1.0, 0.0]])  # 0 = sky
    depth, valid = disparity_to_depth(disparity, eps=0.01, shift=0.0, median_depth=3.0)
    assert torch.equal(valid, torch.tensor([[True, True], [True, False]]))
    # 1/disparity = [0.25, 0.5, 1]: median 0.5 -> scaled x6 to median 3
    torch.testing.assert_close(depth, torch.tensor([[1.5, 3.0], [6.0, 0.0]]))
    shifted, _ = disparity_to_depth(disparity, shift=1.0, median_depth=1.0)
    # disparity / median(2) + 1 = [3, 2, 1.5] -> 1/x = [1/3, 1/2, 2/3], median 1/2 -> x2
    torch.testing.assert_close(shifted[valid], torch.tensor([2 / 3, 1.0, 4 / 3]))


def test_output_kind_from_config():
    class Config:
        def __init__(self, model_type, depth_estimation_type=None):
            self.model_type, self.depth_estimation_type = model_type, depth_estimation_type

    assert model_output_kind(Config("depth_anything", "relative")) == "relative_disparity"
    assert model_output_kind(Config("depth_anything", "metric")) == "metric_depth"
    assert model_output_kind(Config("dpt")) == "relative_disparity"
    assert model_output_kind(Config("zoedepth")) == "metric_depth"
    assert model_output_kind(Config("depth_pro")) == "metric_inverse_depth"
    assert model_output_kind(Config("dpt"), "relative_depth") == "relative_depth"
