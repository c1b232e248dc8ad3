"""Sampler, fusion, planning and the warp backend (no weights)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.errors import InputError
from voyager_pipe.generate.base import ClipCondition, ClipGenerator, num_latent_frames
from voyager_pipe.generate.fill import fill_depth_background
from voyager_pipe.generate.sampler import add_noise, euler_sample, flow_sigmas, sample_flow, shift_sigma
from voyager_pipe.generate.scheduler import fuse_overlap, plan_clips, resolve_overlap
from voyager_pipe.generate.warp import WarpGenerator


def _oracle(x0):
    return lambda x, sigma: (x - x0) / sigma.view(-1, *([1] * (x.ndim - 1)))  # v = (x_t - x0) / t


# ---------------------------------------------------------------- sampler
@pytest.mark.parametrize("steps", [1, 2, 5, 50])
@pytest.mark.parametrize("shift", [1.0, 3.0, 7.0])
def test_oracle_velocity_lands_on_x0(steps, shift):
    g = torch.Generator().manual_seed(steps)
    x0 = torch.randn(3, 4, 6, 5, generator=g, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    out = euler_sample(add_noise(x0, noise, 1.0), _oracle(x0), flow_sigmas(1.0, 0.0, steps, shift).double())
    torch.testing.assert_close(out, x0, atol=1e-9, rtol=0)


def test_oracle_from_intermediate_sigma_lands_on_x0_and_intermediate_target():
    x0, noise = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    x = add_noise(x0, noise, 0.6)
    out = euler_sample(x, _oracle(x0), flow_sigmas(0.6, 0.0, 7, 7.0).double())
    torch.testing.assert_close(out, x0, atol=1e-9, rtol=0)
    # stopping at 0.2 must give exactly the point of the same path at 0.2
    mid = euler_sample(x, _oracle(x0), flow_sigmas(0.6, 0.2, 3, 7.0).double())
    torch.testing.assert_close(mid, add_noise(x0, noise, 0.2), atol=1e-6, rtol=0)


def test_schedule_matches_diffusers_hunyuan_style_and_shift_formula():
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler

    ref = FlowMatchEulerDiscreteScheduler(shift=7.0)
    ref.set_timesteps(sigmas=list(np.linspace(1.0, 0.0, 11)[:-1]))
    torch.testing.assert_close(flow_sigmas(1.0, 0.0, 10, 7.0), ref.sigmas.float())
    s = torch.linspace(1, 0, 11)
    torch.testing.assert_close(flow_sigmas(1.0, 0.0, 10, 7.0), 7 * s / (1 + 6 * s), atol=1e-6, rtol=0)
    tail = flow_sigmas(0.8, 0.0, 4, 7.0)
    assert tail[0] == pytest.approx(0.8) and tail[-1] == 0 and bool((tail[1:] < tail[:-1]).all())
    # the tail lies on the same shifted curve: its unshifted values are evenly spaced
    assert float(shift_sigma(torch.tensor(0.0), 7.0)) == 0.0


def test_euler_agrees_with_diffusers_step_for_a_nonlinear_velocity():
    x = torch.randn(2, 3, 4, 4)
    velocity = lambda x, s: torch.sin(3 * x) * (1 + s.view(-1, 1, 1, 1))  # noqa: E731
    ours = euler_sample(x, velocity, flow_sigmas(1.0, 0.0, 6, 5.0))
    theirs = sample_flow(x, lambda x, s: velocity(x, torch.full((x.shape[0],), s)), flow_sigmas(1.0, 0.0, 6, 5.0))  # diffusers' step
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_per_frame_sigma_holds_less_noisy_frames_until_reached():
    x0 = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    noise = torch.randn_like(x0)
    caps = torch.tensor([0.5, 1.0, 1.0])
    x = add_noise(x0, noise, caps.double())
    seen = []
    velocity = _oracle(x0)
    out = euler_sample(x, lambda x, s: (seen.append(s.clone()), velocity(x, s))[1], flow_sigmas(1.0, 0.0, 8, 3.0).double(), caps)
    torch.testing.assert_close(out, x0, atol=1e-9, rtol=0)
    assert all(float(s[0]) <= 0.5 + 1e-6 for s in seen)  # frame 0 never shown noisier than it is
    assert float(seen[0][1]) == pytest.approx(1.0)


# ---------------------------------------------------------------- fusion and planning
def test_fusing_identical_overlap_is_identity():
    latents = torch.randn(9, 4, 5, 6)
    fused = fuse_overlap(latents, latents[:5].clone())
    assert torch.equal(fused, latents)
    other = fuse_overlap(latents, torch.zeros(5, 4, 5, 6))
    torch.testing.assert_close(other[:5], latents[:5] / 2)
    assert torch.equal(other[5:], latents[5:])


@settings(max_examples=80, deadline=None)
@given(num_frames=st.integers(1, 300), clip_len=st.integers(2, 60), data=st.data())
def test_plan_covers_every_frame_exactly_once(num_frames, clip_len, data):
    overlap = data.draw(st.integers(0, clip_len - 1))
    plans = plan_clips(num_frames, clip_len, overlap)
    covered = torch.zeros(num_frames, dtype=torch.long)
    for p in plans:
        covered[p.out_start: p.out_stop] += 1
        assert p.start <= p.out_start < p.out_stop <= p.stop <= num_frames
        assert p.length == p.num_real <= clip_len
    assert bool((covered == 1).all())
    for a, b in zip(plans, plans[1:]):
        assert b.overlap == a.stop - b.start == overlap  # overlap is what the clips share


@settings(max_examples=60, deadline=None)
@given(num_frames=st.integers(1, 400), k=st.integers(1, 14), data=st.data())
def test_plan_with_causal_vae_keeps_latent_alignment(num_frames, k, data):
    c = 4
    clip_len = 1 + c * k
    overlap = data.draw(st.none() | st.integers(0, clip_len - 1))
    try:
        ov = resolve_overlap(clip_len, overlap, c)
    except InputError:
        assert overlap is not None and overlap > clip_len - c  # rounded up past the clip
        return
    plans = plan_clips(num_frames, clip_len, overlap, c)
    covered = torch.zeros(num_frames, dtype=torch.long)
    for p in plans:
        covered[p.out_start: p.out_stop] += 1
        assert (p.length - 1) % c == 0 and 0 <= p.num_padded < c
    assert bool((covered == 1).all())
    assert ov == 0 or (ov - 1) % c == 0
    for a, b in zip(plans, plans[1:]):
        # the shared frames are the first latent frames of the next clip: num_latent_frames(ov) of them
        assert a.stop - b.start == ov
        assert ov == 0 or num_latent_frames(ov, c) == 1 + (ov - 1) // c
        assert ov == 0 or (b.start - a.start) % c == 0


def test_plan_short_trajectory_and_errors():
    plans = plan_clips(3, 49, None, 4)
    assert len(plans) == 1 and plans[0].num_real == 3 and plans[0].length == 5
    assert (plans[0].out_start, plans[0].out_stop) == (0, 3)
    assert resolve_overlap(49, None, 4) == 25 and resolve_overlap(49, 24, 4) == 25
    with pytest.raises(InputError, match="clip_len"):
        plan_clips(10, 48, None, 4)
    with pytest.raises(InputError, match="no frames"):
        plan_clips(0, 9)


# ---------------------------------------------------------------- warp backend
def _condition(T=3, H=12, W=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(T, 3, H, W, generator=g)
    depth = 1 + torch.rand(T, 1, H, W, generator=g)
    mask = torch.ones(T, 1, H, W, dtype=torch.bool)
    mask[:, :, 4:8, 5:9] = False
    cams = Cameras(intrinsics_from_fov(60, W, H), torch.eye(4).expand(T, 4, 4).double(), W, H)
    return ClipCondition(rgb * mask, depth * mask, mask, cams, rgb[0], depth[0])


def test_warp_is_a_clip_generator_and_denoise_follows_the_oracle_path():
    gen = WarpGenerator()
    assert isinstance(gen, ClipGenerator)
    cond = _condition()
    prepared = gen.prepare(cond)
    x0 = prepared.estimate
    assert prepared.condition is cond
    # keeps rendered pixels exactly, fills holes with finite positive depth
    keep = cond.mask.expand(-1, 3, -1, -1)
    assert torch.equal(x0[:, :3][keep], cond.rgb[keep]) and bool((x0[:, 3] > 0).all())
    g = torch.Generator().manual_seed(0)
    noise = gen.noise_like(torch.empty(gen.latent_shape(3, 12, 16)), g)
    steps_seen = []
    out = gen.denoise(noise, prepared, 1.0, 0.0, 4, g, callback=lambda i, n: steps_seen.append(i))
    torch.testing.assert_close(out, x0)
    assert steps_seen == [0, 1, 2, 3]
    # the closed form equals Euler integration with the oracle velocity, also to an intermediate sigma
    x = add_noise(x0, noise, 0.7)
    ours = gen.denoise(x, prepared, 0.7, 0.3, 5)
    ref = euler_sample(x, _oracle(x0), flow_sigmas(0.7, 0.3, 5, 7.0))
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    rgb, depth = gen.decode(gen.encode(cond.rgb, cond.depth, prepared), prepared)
    assert torch.equal(rgb, cond.rgb) and torch.equal(depth, cond.depth)


def test_depth_fill_prefers_the_farther_side():
    depth = torch.zeros(1, 1, 5, 9)
    depth[..., :3] = 1.0  # foreground
    depth[..., 6:] = 4.0  # background
    filled = fill_depth_background(depth, depth > 0)
    assert bool((filled[..., 3:6] >= 1.0).all())
    assert float(filled[0, 0, 2, 4]) == 4.0  # the hole's middle column takes the background
    assert torch.equal(filled[..., :3], depth[..., :3]) and torch.equal(filled[..., 6:], depth[..., 6:])
    big = torch.zeros(1, 1, 40, 40)
    big[0, 0, 0, 0] = 2.0  # a hole far wider than the local passes: the pyramid fills it
    assert bool((fill_depth_background(big, big > 0) == 2.0).all())


def test_depth_fill_continues_the_background_plane_not_the_foreground():
    from voyager_pipe.generate.fill import fill_depth_background

    v, u = torch.meshgrid(torch.arange(32.0), torch.arange(48.0), indexing="ij")
    plane = 1.0 / (0.2 + 0.004 * u + 0.002 * v)  # an oblique plane: inverse depth affine in the image
    depth = plane.clone()[None, None]  # [1, 1, 32, 48]
    depth[..., 10:20, 12:18] = 1.0  # a foreground box in front of it
    known = torch.ones_like(depth, dtype=torch.bool)
    known[..., 8:22, 18:30] = False  # the disocclusion right of the box
    known[..., :, 40:] = False  # new content at the image border
    filled = fill_depth_background(depth, known)
    hole = ~known
    rel = ((filled - plane) / plane).abs()[hole]
    assert float(rel.max()) < 1e-3  # the plane behind, continued exactly; never the box's depth 1.0
    assert torch.equal(filled[known], depth[known])


def test_background_colour_fill_has_no_streaks_and_takes_the_background():
    from voyager_pipe.generate.fill import fill_rgb_background, inpaint_rgb

    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, 40, 40, generator=gen) * 0.2 + 0.4  # textured background, mean 0.5
    depth = torch.full((1, 1, 40, 40), 5.0)
    rgb[..., :, :10] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # a red foreground on the left
    depth[..., :, :10] = 1.0
    rgb[..., 5, 10] = torch.tensor([0.0, 0.0, 1.0])  # one odd pixel on the hole's edge: a streak seed for Telea
    known = torch.ones_like(depth, dtype=torch.bool)
    known[..., :, 10:22] = False  # disocclusion next to the foreground
    ours = fill_rgb_background(rgb, depth, known)
    assert torch.equal(ours[known.expand_as(ours)], rgb[known.expand_as(rgb)])
    hole = ours[..., 10:22]
    assert float(hole[:, 0].mean()) < 0.6  # background colours, not the red foreground
    assert float((hole - 0.5).abs().max()) < 0.2
    # no streaks: rows of the filled region do not copy single boundary pixels across the hole
    telea = inpaint_rgb(rgb, ~known, 3, "telea")
    ours_rows = hole.mean(dim=-1).std(dim=-1).mean()
    telea_rows = telea[..., 10:22].mean(dim=-1).std(dim=-1).mean()
    assert float(ours_rows) < float(telea_rows)


def test_warp_commits_only_fills_near_rendered_pixels_and_the_scheduler_honours_it():
    T, H, W = 2, 12, 40
    cond = _condition(T, H, W)
    mask = torch.zeros(T, 1, H, W, dtype=torch.bool)
    mask[..., :10] = True  # the cache rendered the left 10 columns; the rest is a guess
    depth = torch.full((T, 1, H, W), 2.0) * mask  # one surface
    cond = ClipCondition(cond.rgb * mask, depth, mask, cond.cameras, cond.reference_rgb, cond.reference_depth)
    committable = WarpGenerator(commit_radius=4).prepare(cond).cache_mask
    # column c's centre lies c - 9 px from the last rendered column: columns 10..13 are within 4 px
    assert torch.equal(committable[0, 0, 0], torch.arange(W) < 14) and bool((committable == committable[:, :, :1]).all())
    # next to a depth edge (a foreground in rows 0-5, the background below) fills are not committed:
    # rows 2-9 have both surfaces within 4 rows
    edge = ClipCondition(cond.rgb, torch.where(torch.arange(H)[:, None] < 6, 1.0, 2.0) * depth, mask, cond.cameras,
                         cond.reference_rgb, cond.reference_depth)
    expected = committable.clone()
    expected[:, :, 2:10] = mask[:, :, 2:10]
    assert torch.equal(WarpGenerator(commit_radius=4).prepare(edge).cache_mask, expected)
    assert WarpGenerator(commit_radius=-1).prepare(cond).cache_mask is None

    from voyager_pipe.generate.config import GenerateConfig
    from voyager_pipe.generate.scheduler import ClipScheduler
    from voyager_pipe.world import WorldCache

    # a clip turning away from frame 0: with radius 0 the cache takes no guessed pixel at all
    cams = Cameras(intrinsics_from_fov(60, W, H), torch.eye(4).expand(5, 4, 4).double().clone(), W, H)
    for t in range(5):
        a = torch.tensor(0.05 * t, dtype=torch.float64)
        cams.w2c[t, 0, 0], cams.w2c[t, 0, 2], cams.w2c[t, 2, 0], cams.w2c[t, 2, 2] = a.cos(), -a.sin(), a.sin(), a.cos()
    rgb0, depth0 = torch.rand(3, H, W), torch.full((1, H, W), 2.0)
    added = {}
    for radius in (0, -1):
        cache = WorldCache()
        cache.update(rgb0[None], depth0[None], cams[0])
        first = len(cache)
        scheduler = ClipScheduler(WarpGenerator(commit_radius=radius), GenerateConfig(clip_len=5, steps=2, progress=False))
        list(scheduler.run(cams, cache, rgb0, depth0, torch.Generator().manual_seed(0)))
        added[radius] = len(cache) - first
    assert added[0] == 0 and added[-1] >= 2 * H  # the turn reveals ~2 columns per frame


def test_fills_of_a_clip_do_not_depend_on_how_its_frames_are_chunked(monkeypatch):
    """The fills run a few frames at a time on the CPU, chunks shared by threads (speed): frames are
    independent, so any chunking (one frame, a few, the whole clip) and any thread count give the same
    numbers, fallback (the clip's median) included."""
    from voyager_pipe.generate import fill

    gen = torch.Generator().manual_seed(1)
    v, u = torch.meshgrid(torch.arange(24.0), torch.arange(30.0), indexing="ij")
    depth = (1.0 / (0.2 + 0.004 * u + 0.002 * v)).expand(5, 1, 24, 30).clone()  # [5, 1, 24, 30]
    depth[:, :, 4:12, 5:11] = 1.5  # a foreground box
    known = torch.rand(5, 1, 24, 30, generator=gen) > 0.3
    known[:, :, 8:20, 11:20] = False  # a disocclusion
    known[2] = False  # a frame without any known pixel: the fallback
    rgb = torch.rand(5, 3, 24, 30, generator=gen)
    results = []
    threads = torch.get_num_threads()
    try:
        for pixels, count in ((1, 2), (2 * 24 * 30, 2), (1 << 19, 2), (2 * 24 * 30, 1)):
            monkeypatch.setattr(fill, "CHUNK_PIXELS", pixels)
            torch.set_num_threads(count)  # chunks run single-threaded ops: the numbers do not depend on it either
            filled = fill.fill_depth_background(depth, known)
            results.append((filled, fill.fill_rgb_background(rgb, depth, known, filled)))
            assert torch.get_num_threads() == count  # restored after the worker threads
    finally:
        torch.set_num_threads(threads)
    for filled, colour in results[1:]:
        assert torch.equal(filled, results[0][0]) and torch.equal(colour, results[0][1])
    assert bool((results[0][0][2] == depth[known].median()).all())
