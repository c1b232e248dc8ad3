"""VoyagerGenerator on a tiny random transformer + tiny AutoencoderKLHunyuanVideo (CPU), through its public API."""

from __future__ import annotations

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.generate.base import ClipCondition, ClipGenerator
from voyager_pipe.generate.voyager import VoyagerGenerator
from voyager_pipe.models.conditions import prepare_condition, prepare_reference, normalize_depth
from voyager_pipe.testing.voyager import build_tiny_components, tiny_text_conditioning

SIZE = 16  # pixels per half (composite 48 x 16, latent 6 x 2)


def _generator(guidance_scale: float = 6.0, **kwargs) -> VoyagerGenerator:
    comps = build_tiny_components(seed=0)
    return VoyagerGenerator(comps.transformer, comps.vae, tiny_text_conditioning(), guidance_scale=guidance_scale, **kwargs)


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


class TransformerCalls:
    """Forward hook recording every transformer call's inputs (batch, timestep)."""

    def __init__(self, transformer: torch.nn.Module):
        self.inputs: list[dict] = []
        transformer.register_forward_pre_hook(self._grab, with_kwargs=True)

    def _grab(self, module, args, kwargs):
        self.inputs.append({k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()})


def test_protocol_and_shapes():
    gen = _generator()
    assert isinstance(gen, ClipGenerator)
    assert gen.temporal_compression == 4
    assert gen.latent_shape(9, SIZE, SIZE) == (3, 16, (2 * SIZE + 16) // 8, SIZE // 8)


def test_cfg_batched_equals_two_separate_passes():
    """One Euler step = ONE transformer call on a batch of two (uncond, cond), combined with the guidance scale."""
    gen = _generator(guidance_scale=6.0)
    calls = TransformerCalls(gen.transformer)
    cond = _condition()
    prepared = gen.prepare(cond)
    x = torch.randn(gen.latent_shape(cond.num_frames, SIZE, SIZE), generator=torch.Generator().manual_seed(3))  # [t, 16, h, w]
    out = gen.denoise(x, prepared, 0.7, 0.0, 1, torch.Generator().manual_seed(0))
    assert len(calls.inputs) == 1 and calls.inputs[0]["hidden_states"].shape[0] == 2
    model_input = calls.inputs[0]["hidden_states"][:1]  # [1, 50, t, h, w]
    text = tiny_text_conditioning()
    separate = []
    for prompt in (text.negative, text.positive):  # each alone, unpadded
        with torch.no_grad():
            separate.append(gen.transformer(hidden_states=model_input, timestep=torch.tensor([700.0]),
                                            encoder_hidden_states=prompt.embeds, encoder_attention_mask=prompt.mask,
                                            pooled_projections=prompt.pooled, return_dict=False)[0])
    guided = separate[0] + 6.0 * (separate[1] - separate[0])  # [1, 16, t, h, w]
    expected = x - 0.7 * guided[0].permute(1, 0, 2, 3)  # one Euler step from 0.7 to 0
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_model_input_layout_50_channels():
    gen = _generator(guidance_scale=1.0, vae_latents="mode")
    calls = TransformerCalls(gen.transformer)
    cond = _condition()
    shape = gen.latent_shape(cond.num_frames, SIZE, SIZE)
    gen.denoise(torch.zeros(shape), gen.prepare(cond), 0.5, 0.0, 1)
    x = calls.inputs[0]["hidden_states"]  # [1, 50, T_lat, h, w]
    assert x.shape[:3] == (1, 50, shape[0])
    # independent reference: the VAE's posterior mode of the composites built by the conditions module
    frames = prepare_condition(cond.rgb, cond.depth, cond.mask)
    frame0_range = normalize_depth(cond.depth[:1], cond.mask[:1])[1]
    reference = prepare_reference(cond.reference_rgb, cond.reference_depth, frame0_range)  # [1, 3, 2H+16, W]
    with torch.no_grad():
        encode = lambda c: gen.vae.encode(c.permute(1, 0, 2, 3)[None]).latent_dist.mode() * gen.scaling_factor  # noqa: E731
        condition_latent, reference_latent = encode(frames.composite), encode(reference)
    assert torch.equal(x[0, 16:32, 1:], torch.zeros_like(x[0, 16:32, 1:]))  # reference latent in frame 0 only
    torch.testing.assert_close(x[0, 16:32, :1], reference_latent[0])
    assert torch.all(x[0, 32, 0] == 1) and torch.all(x[0, 32, 1:] == 0)  # first-frame mask
    torch.testing.assert_close(x[0, 33:49], condition_latent[0])
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


def _two_clip_run(seed: int):
    from voyager_pipe.generate.config import GenerateConfig
    from voyager_pipe.generate.scheduler import ClipScheduler
    from voyager_pipe.world.cache import WorldCache

    num_frames = 13
    cameras = _cameras(num_frames)
    gen_ref = torch.Generator().manual_seed(5)
    reference_rgb = torch.rand(3, SIZE, SIZE, generator=gen_ref)  # [3, H, W]
    reference_depth = 2 + torch.rand(1, SIZE, SIZE, generator=gen_ref)  # [1, H, W]
    cfg = GenerateConfig(backend="voyager", clip_len=9, steps=2, refine_steps=1, progress=False)
    gen = _generator()
    calls = TransformerCalls(gen.transformer)
    cache = WorldCache()
    cache.update(reference_rgb[None], reference_depth[None], cameras[0:1])
    results = list(ClipScheduler(gen, cfg).run(cameras, cache, reference_rgb, reference_depth,
                                               torch.Generator().manual_seed(seed)))
    return results, len(calls.inputs)


def test_full_run_through_clip_scheduler_two_clips():
    results, num_calls = _two_clip_run(seed=0)
    assert len(results) == 2
    rgb = torch.cat([r.rgb for r in results])  # [N, 3, H, W]
    depth = torch.cat([r.depth for r in results])  # [N, 1, H, W]
    assert rgb.shape == (13, 3, SIZE, SIZE) and depth.shape == (13, 1, SIZE, SIZE)
    assert torch.isfinite(rgb).all() and torch.isfinite(depth).all() and bool((depth > 0).all())
    assert num_calls == 2 + 2 + 1  # clip 0: 2 steps; clip 1: 2 steps + 1 refinement step
    again, _ = _two_clip_run(seed=0)
    assert torch.equal(rgb, torch.cat([r.rgb for r in again]))
    assert torch.equal(depth, torch.cat([r.depth for r in again]))

    # continuity across the overlap: clip 1 starts from clip 0's final frames of the overlap. It encodes
    # exactly those frames (depth normalised with its own render's ranges of the same trajectory frames)
    # and denoises overlap latents that are their encoding re-noised to sigma_init. (Comparing the decoded
    # frames themselves means nothing here: the tiny random VAE does not reconstruct its input.)
    spy = _two_clip_spy()
    carry_rgb, carry_depth = spy["results"][0].state.carry_rgb, spy["results"][0].state.carry_depth  # [5, C, H, W]
    (encoded_rgb, encoded_depth, previous), = spy["encode"]
    assert carry_rgb.shape[0] == 5 and torch.equal(encoded_rgb.cpu(), carry_rgb) and torch.equal(encoded_depth.cpu(), carry_depth)
    clip1_start = spy["denoise"][1]  # clip 0: one pass; clip 1: the full pass, then the refinement
    assert clip1_start[1:] == (1.0, 0.0)
    n_ov = previous.shape[0]  # latent frames of the 5 shared frames: 1 + (5 - 1) / 4
    noise = spy["noise"][1]  # clip 1's initial noise
    torch.testing.assert_close(clip1_start[0][:n_ov], (1 - 0.8) * previous + 0.8 * noise[:n_ov])
    assert torch.equal(clip1_start[0][n_ov:], noise[n_ov:])


def _two_clip_spy() -> dict:
    """The two-clip run with the generator's public calls recorded (encode inputs/outputs, denoise inputs, noise)."""
    spy = {"encode": [], "denoise": [], "noise": []}
    original = VoyagerGenerator.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        encode, denoise, noise_like = self.encode, self.denoise, self.noise_like
        self.encode = lambda rgb, depth, prepared: (lambda out: (spy["encode"].append((rgb, depth, out)), out)[1])(
            encode(rgb, depth, prepared))
        self.denoise = lambda x, prepared, a, b, *rest, **kw: (spy["denoise"].append((x.clone(), a, b)), denoise(
            x, prepared, a, b, *rest, **kw))[1]
        self.noise_like = lambda latents, g: (lambda n: (spy["noise"].append(n.clone()), n)[1])(noise_like(latents, g))

    VoyagerGenerator.__init__ = init
    try:
        spy["results"], _ = _two_clip_run(seed=0)
    finally:
        VoyagerGenerator.__init__ = original
    return spy
