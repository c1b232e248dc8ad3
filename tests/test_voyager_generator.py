"""VoyagerGenerator on a tiny random transformer + tiny AutoencoderKLHunyuanVideo (CPU)."""

from __future__ import annotations

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.generate.base import ClipCondition, ClipGenerator
from voyager_pipe.generate.voyager import VoyagerGenerator
from voyager_pipe.models.loading import build_tiny_components
from voyager_pipe.models.text import PromptEmbeddings, TextConditioning

SIZE = 16  # pixels per half (composite 48 x 16, latent 6 x 2)


def _prompt(length: int, seed: int) -> PromptEmbeddings:
    gen = torch.Generator().manual_seed(seed)
    return PromptEmbeddings(embeds=torch.randn(1, length, 16, generator=gen),
                            mask=torch.ones(1, length, dtype=torch.long), pooled=torch.randn(1, 8, generator=gen))


def _generator(guidance_scale: float = 6.0, **kwargs) -> VoyagerGenerator:
    comps = build_tiny_components(seed=0)
    text = TextConditioning(positive=_prompt(5, 1), negative=_prompt(3, 2))  # different lengths: padding is exercised
    return VoyagerGenerator(comps.transformer, comps.vae, text, guidance_scale=guidance_scale, **kwargs)


def _cameras(num: int) -> Cameras:
    K = torch.tensor([[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]], dtype=torch.float64).expand(num, 3, 3).clone()  # [N, 3, 3]
    w2c = torch.eye(4, dtype=torch.float64).repeat(num, 1, 1)  # [N, 4, 4]
    w2c[:, 2, 3] = -0.05 * torch.arange(num, dtype=torch.float64)  # forward motion
    return Cameras(K=K, w2c=w2c, width=SIZE, height=SIZE)


def _condition(frames: int = 5, seed: int = 0) -> ClipCondition:
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.rand(frames, 3, SIZE, SIZE, generator=gen)  # [T, 3, H, W]
    depth = 1 + 2 * torch.rand(frames, 1, SIZE, SIZE, generator=gen)  # [T, 1, H, W]
    mask = torch.rand(frames, 1, SIZE, SIZE, generator=gen) > 0.25  # [T, 1, H, W]
    return ClipCondition(rgb=rgb * mask, depth=depth * mask, mask=mask, cameras=_cameras(frames),
                         reference_rgb=rgb[0], reference_depth=depth[0])


def test_protocol_and_shapes():
    gen = _generator()
    assert isinstance(gen, ClipGenerator)
    assert gen.temporal_compression == 4
    assert gen.latent_shape(9, SIZE, SIZE) == (3, 16, (2 * SIZE + 16) // 8, SIZE // 8)


def test_cfg_batched_equals_two_separate_passes():
    gen = _generator(guidance_scale=6.0)
    cond = _condition()
    prepared = gen.prepare(cond)
    x = torch.randn(1, 16, *prepared.condition_latent.shape[2:], generator=torch.Generator().manual_seed(3))  # [1, 16, t, h, w]
    batched = gen.velocity(x, prepared, 0.7, gen._text)
    assert gen.model_calls == 1  # one forward for both passes
    model_input = torch.cat([x, prepared.reference, prepared.first_frame, prepared.condition_latent, prepared.visibility], dim=1)
    separate = []
    for prompt in (gen._text.negative, gen._text.positive):  # each alone, unpadded
        separate.append(gen.transformer(hidden_states=model_input, timestep=torch.tensor([700.0]),
                                        encoder_hidden_states=prompt.embeds, encoder_attention_mask=prompt.mask,
                                        pooled_projections=prompt.pooled, return_dict=False)[0])
    expected = separate[0] + 6.0 * (separate[1] - separate[0])
    torch.testing.assert_close(batched, expected, rtol=1e-4, atol=1e-5)


def test_model_input_layout_50_channels():
    gen = _generator(guidance_scale=1.0)
    cond = _condition()
    seen = {}
    def grab(module, args, kwargs):
        seen.setdefault("x", kwargs["hidden_states"])

    gen.transformer.register_forward_pre_hook(grab, with_kwargs=True)
    shape = gen.latent_shape(cond.num_frames, SIZE, SIZE)
    gen.denoise(torch.zeros(shape), gen.prepare(cond), 0.5, 0.0, 1)
    x = seen["x"]  # [1, 50, T_lat, h, w]
    assert x.shape[:3] == (1, 50, shape[0])
    prepared = gen.prepare(cond)
    assert torch.equal(x[0, 16:32, 1:], torch.zeros_like(x[0, 16:32, 1:]))  # reference latent in frame 0 only
    assert torch.equal(x[0, 16:32, :1], prepared.reference[0, :, :1])
    assert torch.all(x[0, 32, 0] == 1) and torch.all(x[0, 32, 1:] == 0)  # first-frame mask
    assert torch.equal(x[0, 33:49], prepared.condition_latent[0])
    assert set(x[0, 49].unique().tolist()) <= {-1.0, 1.0}
    assert torch.all(x[0, 49, :, 2:4] == 1)  # the separator band's latent rows are always known


def test_decode_returns_all_frames_and_real_depth():
    gen = _generator()
    cond = _condition(frames=9)
    prepared = gen.prepare(cond)
    latents = gen.encode(cond.rgb, cond.depth, prepared)  # [3, 16, 6, 2]
    rgb, depth = gen.decode(latents, prepared)
    assert rgb.shape == (9, 3, SIZE, SIZE) and depth.shape == (9, 1, SIZE, SIZE)  # 1 + (3 - 1) * 4, none dropped
    assert torch.all((rgb >= 0) & (rgb <= 1))
    # depth maps back inside each frame's [p2, p98] inverse-depth range: between the condition's extremes
    valid = cond.mask
    assert float(depth.min()) >= float(cond.depth[valid].min()) * 0.99
    assert float(depth.max()) <= float(cond.depth[valid].max()) * 1.01


def test_full_run_through_clip_scheduler_two_clips():
    from voyager_pipe.generate.config import GenerateConfig
    from voyager_pipe.generate.scheduler import ClipScheduler
    from voyager_pipe.world.cache import WorldCache

    num_frames = 13
    cameras = _cameras(num_frames)
    gen_ref = torch.Generator().manual_seed(5)
    reference_rgb = torch.rand(3, SIZE, SIZE, generator=gen_ref)  # [3, H, W]
    reference_depth = 2 + torch.rand(1, SIZE, SIZE, generator=gen_ref)  # [1, H, W]
    cfg = GenerateConfig(backend="voyager", clip_len=9, steps=2, refine_steps=1, progress=False)

    def run():
        gen = _generator()
        cache = WorldCache()
        cache.update(reference_rgb[None], reference_depth[None], cameras[0:1])
        results = list(ClipScheduler(gen, cfg).run(cameras, cache, reference_rgb, reference_depth,
                                                   torch.Generator().manual_seed(0)))
        return results, gen

    results, gen = run()
    assert len(results) == 2
    rgb = torch.cat([r.rgb for r in results])  # [N, 3, H, W]
    depth = torch.cat([r.depth for r in results])  # [N, 1, H, W]
    assert rgb.shape == (num_frames, 3, SIZE, SIZE) and depth.shape == (num_frames, 1, SIZE, SIZE)
    assert torch.isfinite(rgb).all() and torch.isfinite(depth).all() and bool((depth > 0).all())
    assert gen.model_calls == 2 + 2 + 1  # clip 0: 2 steps; clip 1: 2 steps + 1 refinement step
    again, _ = run()
    assert torch.equal(rgb, torch.cat([r.rgb for r in again]))
    assert torch.equal(depth, torch.cat([r.depth for r in again]))
