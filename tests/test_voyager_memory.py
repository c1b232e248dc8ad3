"""Voyager memory settings (issue 13) on a tiny random transformer, CPU.

What runs here: offload none/model/group (group without CUDA streams), fp8 layerwise casting, the four
diffusers step caches with the context branch and the batched (uncond, cond) pass, option validation,
the memory estimate against torch's own allocation timeline. GPU-only (not proven here): CUDA-stream
prefetch of group offloading, sequential offload (accelerate cannot execute it on a CPU device),
compile speed, the GPU peak against the estimate.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from voyager_pipe.config import load_config
from voyager_pipe.errors import InputError
from voyager_pipe.testing.voyager import build_tiny_components
from voyager_pipe.models.config import VoyagerConfig
from voyager_pipe.models.memory import (
    FP8_STORAGE,
    VoyagerRuntime,
    apply_weight_format,
    check_fits,
    estimate_memory,
    usable_attention_backends,
)
from voyager_pipe.models.transformer import VoyagerTransformer3DModel

LATENT = (2, 10, 4)  # T_lat, h (= 2 * 4 + 2 separator rows: RGB over depth), w
GUIDANCE = 6.0
#: fp8 (e4m3, 3 mantissa bits) storage vs bf16 storage, both computing in bf16: relative L2 error of the
#: 4-step result (measured 0.012 on this model, the size of bf16's own rounding vs fp32: 0.012;
#: documented in docs/voyager-memory.md).
FP8_TOLERANCE = 0.05


def _transformer(dtype: torch.dtype = torch.float32, hidden_per_head: int = 8, heads: int = 2,
                 layers: int = 2) -> VoyagerTransformer3DModel:
    torch.manual_seed(0)
    model = VoyagerTransformer3DModel(
        in_channels=50, out_channels=16, num_attention_heads=heads, attention_head_dim=hidden_per_head,
        num_layers=layers, num_single_layers=layers, num_refiner_layers=1, text_embed_dim=16, pooled_projection_dim=8,
        rope_axes_dim={8: (2, 2, 4), 32: (8, 12, 12)}[hidden_per_head],
        use_context_block=True)
    for layer in (model.context_proj_double, model.context_proj_single):  # trained models have non-zero ones
        torch.nn.init.normal_(layer.weight, std=0.3)
        torch.nn.init.normal_(layer.bias, std=0.1)
    return model.to(dtype).eval()


def _text(dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(1)
    embeds = torch.randn(2, 8, 16, generator=gen).to(dtype)  # [B, L, 16]: (negative, positive)
    mask = torch.ones(2, 8, dtype=torch.long)  # [B, L]
    mask[0, 6:] = 0  # the shorter negative prompt is padded
    pooled = torch.randn(2, 8, generator=gen).to(dtype)  # [B, 8]
    return embeds, mask, pooled


@torch.no_grad()
def _sample(runtime: VoyagerRuntime, steps: int = 4, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Euler flow matching with the batched (uncond, cond) pass, as VoyagerGenerator runs it."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 16, *LATENT, generator=gen)  # [1, 16, T, h, w]
    conditioning = torch.randn(1, 34, *LATENT, generator=gen)  # [1, 34, T, h, w]
    embeds, mask, pooled = _text(dtype)
    sigmas = torch.linspace(1.0, 0.0, steps + 1).tolist()
    runtime.begin_denoise(steps, tuple(x.shape))
    for i in range(steps):
        model_input = torch.cat([x, conditioning], dim=1).expand(2, -1, -1, -1, -1)  # [2, 50, T, h, w]
        timestep = torch.full((2,), sigmas[i] * 1000.0, dtype=dtype)  # [2]
        with runtime.use("transformer", timestep=sigmas[i] * 1000.0) as model:
            out = model(hidden_states=model_input.to(dtype), timestep=timestep, encoder_hidden_states=embeds,
                        encoder_attention_mask=mask, pooled_projections=pooled, return_dict=False)[0].float()
        uncond, cond = out.chunk(2)  # [1, 16, T, h, w] each
        x = x + (sigmas[i + 1] - sigmas[i]) * (uncond + GUIDANCE * (cond - uncond))
    return x


def _attention_rows(model: torch.nn.Module) -> list[int]:
    """Counter of batch rows through the main blocks' query projections (real attention compute only)."""
    rows = [0]
    for name, module in model.named_modules():
        if name.endswith("attn.to_q") and name.split(".")[0] in ("transformer_blocks", "single_transformer_blocks"):
            module.register_forward_hook(lambda _m, args, _out: rows.__setitem__(0, rows[0] + args[0].shape[0]))
    return rows


def _run(cfg: VoyagerConfig, dtype: torch.dtype = torch.float32, weights: str = "bf16", vae=None):
    model = _transformer(dtype)
    apply_weight_format(model, weights, dtype)
    rows = _attention_rows(model)
    runtime = VoyagerRuntime(model, vae if vae is not None else torch.nn.Identity(), "cpu", cfg)
    return _sample(runtime, dtype=dtype), rows[0], model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny forwards are 50x slower with several OpenMP threads on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def uncached(one_thread):
    return _run(VoyagerConfig())


# --------------------------------------------------------------------------- offload
@pytest.mark.parametrize("offload", ["model", "group"])
def test_offload_mode_gives_the_frames_of_none(offload, uncached):
    out, _, model = _run(VoyagerConfig(offload=offload), vae=build_tiny_components().vae)
    assert (out - uncached[0]).abs().max() <= 1e-5
    hooks = getattr(model, "_hf_hook", None) if offload == "model" else model.transformer_blocks[0]._diffusers_hook
    assert hooks is not None  # diffusers' / accelerate's hook is really in the call path


def test_group_offload_with_a_cache_and_fp8_still_matches_its_own_settings():
    cfg = VoyagerConfig(cache="first_block", cache_threshold=0.0)
    reference, _, _ = _run(cfg, weights="fp8")
    out, _, _ = _run(dataclasses.replace(cfg, offload="group"), weights="fp8")
    assert (out - reference).abs().max() <= 1e-5


def test_sequential_offload_refuses_a_cpu_device():
    with pytest.raises(InputError, match="voyager.offload: 'sequential' needs an accelerator"):
        VoyagerRuntime(_transformer(), torch.nn.Identity(), "cpu", VoyagerConfig(offload="sequential"))


# --------------------------------------------------------------------------- fp8 weights
def test_fp8_stores_float8_linears_and_keeps_the_excluded_modules():
    model = _transformer(torch.bfloat16)
    apply_weight_format(model, "fp8", torch.bfloat16)
    stored = {name: module.weight.dtype for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    assert stored["transformer_blocks.0.attn.to_q"] == FP8_STORAGE
    assert stored["single_transformer_blocks.1.proj_mlp"] == FP8_STORAGE
    assert stored["context_block.ff.net.2"] == FP8_STORAGE
    kept = [n for n in stored if n.startswith(("proj_out", "context_proj_", "norm_out", "time_text_embed",
                                               "context_embedder", "x_embedder", "condition_embedder"))
            or ".norm" in n]
    assert kept and all(stored[n] != FP8_STORAGE for n in kept), [n for n in kept if stored[n] == FP8_STORAGE]
    assert model.dtype == torch.bfloat16  # diffusers reports the compute dtype


def test_fp8_stays_within_the_documented_tolerance_of_bf16():
    bf16, _, _ = _run(VoyagerConfig(), dtype=torch.bfloat16)
    fp8, _, _ = _run(VoyagerConfig(weights="fp8"), dtype=torch.bfloat16, weights="fp8")
    assert torch.isfinite(fp8).all()
    relative = float((fp8 - bf16).norm() / bf16.norm())
    assert 0 < relative < FP8_TOLERANCE, relative


# --------------------------------------------------------------------------- step caches
NEVER_SKIP = {
    "first_block": dict(cache_threshold=0.0),
    "mag": dict(cache_options={"mag_ratios": [1.0] * 4, "max_skip_steps": 0}),
    "taylorseer": dict(cache_options={"cache_interval": 1}),
    "faster": dict(cache_options={"spatial_attention_block_skip_range": 1, "unconditional_batch_skip_range": 1}),
}
SKIP = {
    "first_block": dict(cache_threshold=10.0),
    "mag": dict(cache_threshold=0.5, cache_options={"mag_ratios": [1.0] * 4, "retention_ratio": 0.0}),
    "taylorseer": dict(cache_options={"cache_interval": 2, "disable_cache_before_step": 1}),
    "faster": dict(cache_options={"spatial_attention_timestep_skip_range": [-1, 1001],
                                  "unconditional_batch_timestep_skip_range": [-1, 1001]}),
}


@pytest.mark.parametrize("method", sorted(NEVER_SKIP))
def test_cache_that_never_skips_equals_the_uncached_result(method, uncached):
    out, rows, _ = _run(VoyagerConfig(cache=method, **NEVER_SKIP[method]))
    assert torch.equal(out, uncached[0])
    assert rows == uncached[1]


@pytest.mark.parametrize("method", sorted(SKIP))
def test_cache_that_skips_computes_less_and_stays_finite(method, uncached):
    out, rows, _ = _run(VoyagerConfig(cache=method, **SKIP[method]))
    assert rows < uncached[1], (rows, uncached[1])
    assert torch.isfinite(out).all()
    assert not torch.equal(out, uncached[0])


def test_cache_state_restarts_with_each_trajectory(uncached):
    """A second denoising call starts from a clean cache (the first step of a clip is always computed)."""
    model = _transformer()
    runtime = VoyagerRuntime(model, torch.nn.Identity(), "cpu", VoyagerConfig(cache="first_block", cache_threshold=0.0))
    first, second = _sample(runtime), _sample(runtime)
    assert torch.equal(first, second) and torch.equal(first, uncached[0])


# --------------------------------------------------------------------------- compile / attention backend
def test_regional_compile_wraps_each_repeated_block_and_full_the_model():
    model = _transformer()
    VoyagerRuntime(model, torch.nn.Identity(), "cpu", VoyagerConfig(compile="regional"))
    blocks = list(model.transformer_blocks) + list(model.single_transformer_blocks)
    assert all(block._compiled_call_impl is not None for block in blocks)
    assert model._compiled_call_impl is None
    model = _transformer()
    VoyagerRuntime(model, torch.nn.Identity(), "cpu", VoyagerConfig(compile="full"))
    assert model._compiled_call_impl is not None


def test_attention_backend_is_checked_against_those_usable_here():
    usable = usable_attention_backends("cpu", torch.float32)
    assert "native" in usable and "flash" not in usable
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    model = _transformer()
    default = _AttentionBackendRegistry.get_active_backend()
    try:
        VoyagerRuntime(model, torch.nn.Identity(), "cpu", VoyagerConfig(attention_backend="_native_math"))
        assert model.transformer_blocks[0].attn.processor._attention_backend == "_native_math"
    finally:  # diffusers also makes it the process-wide default
        _AttentionBackendRegistry.set_active_backend(default[0])
    with pytest.raises(InputError, match=r"voyager.attention_backend: 'flash' is not usable on cpu .*usable here: \[.*'native'"):
        VoyagerRuntime(_transformer(), torch.nn.Identity(), "cpu", VoyagerConfig(attention_backend="flash"))
    with pytest.raises(InputError, match="not a diffusers backend"):
        VoyagerRuntime(_transformer(), torch.nn.Identity(), "cpu", VoyagerConfig(attention_backend="fastest"))


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("field,value", [("offload", "disk"), ("weights", "int4"), ("cache", "tea"), ("compile", "max")])
def test_unknown_option_values_are_input_errors(field, value, tmp_path):
    with pytest.raises(InputError, match=f"voyager.{field}: '{value}' is not one of"):
        load_config(None, [f"voyager.{field}={value}"])
    with pytest.raises(InputError, match=f"voyager.{field}: '{value}' is not one of"):
        VoyagerRuntime(_transformer(), torch.nn.Identity(), "cpu", VoyagerConfig(**{field: value}))


@pytest.mark.parametrize("settings,message", [
    (dict(cache="first_block", cache_options={"tresh": 1}), r"voyager.cache_options: \['tresh'\] are not FirstBlockCacheConfig"),
    (dict(cache="taylorseer", cache_threshold=0.1), "voyager.cache_threshold: taylorseer has no threshold"),
    (dict(cache="mag"), "voyager.cache_options.mag_ratios: MagCache needs"),
    (dict(cache="none", cache_threshold=0.1), "voyager.cache_options / voyager.cache_threshold: set but"),
    (dict(offload_blocks_per_group=0), "voyager.offload_blocks_per_group"),
])
def test_bad_cache_settings_are_input_errors(settings, message):
    with pytest.raises(InputError, match=message):
        VoyagerRuntime(_transformer(), torch.nn.Identity(), "cpu", VoyagerConfig(**settings))


# --------------------------------------------------------------------------- memory estimate
def test_estimate_is_within_25_percent_of_the_measured_cpu_peak():
    """Peak of one CFG-batched forward from torch's allocation timeline (parameters included)."""
    memory_profiler = pytest.importorskip("torch.profiler._memory_profiler")
    from torch.profiler import ProfilerActivity, profile

    model = _transformer(torch.float32, hidden_per_head=32, heads=4)
    latent = (5, 34, 16)  # 64 x 64 per half, 17 frames: 680 image tokens
    gen = torch.Generator().manual_seed(0)
    inputs = dict(hidden_states=torch.randn(2, 50, *latent, generator=gen), timestep=torch.full((2,), 500.0),
                  encoder_hidden_states=torch.randn(2, 8, 16, generator=gen),
                  encoder_attention_mask=torch.ones(2, 8, dtype=torch.long), pooled_projections=torch.randn(2, 8, generator=gen))
    with torch.no_grad():
        model(**inputs, return_dict=False)  # warm-up: one-time allocations are not part of a step
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
            model(**inputs, return_dict=False)
    _, sizes = memory_profiler.MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(torch.device("cpu"))
    measured = max(sum(row) for row in sizes)
    estimate = estimate_memory(model, None, VoyagerConfig(dtype="fp32"), latent, text_tokens=8, device_type="cpu")
    assert abs(estimate.denoise_peak / measured - 1) <= 0.25, (estimate.denoise_peak, measured)


def test_full_size_estimate_and_the_refusal_names_settings_that_fit():
    with torch.device("meta"):
        model = VoyagerTransformer3DModel(use_context_block=True)  # 13B, no memory
    latent = (13, 130, 96)  # 512 x 768 per half, 49 frames
    base = VoyagerConfig()

    def estimate_for(cfg):
        return estimate_memory(model, None, cfg, latent)

    bf16, fp8 = estimate_for(base), estimate_for(dataclasses.replace(base, weights="fp8"))
    assert 25e9 < bf16.transformer_weights < 28e9  # 13B parameters in bf16
    assert 0.55 < fp8.transformer_weights / bf16.transformer_weights < 0.7  # norms/embeddings stay bf16
    group = estimate_for(dataclasses.replace(base, weights="fp8", offload="group"))
    assert group.transformer_weights < 3e9 and group.peak < 24e9
    with pytest.raises(InputError, match=r"^voyager: needs ~\d+ GB, 23 GB free: try --set voyager\.\S+=\S+"):
        check_fits(bf16, torch.device("cuda"), base, estimate_for, free_bytes=23 * 10**9)
    check_fits(group, torch.device("cuda"), base, estimate_for, free_bytes=23 * 10**9)  # fits: no error


def test_24gb_config_fits_its_card():
    cfg = load_config("configs/voyager-24gb.yaml", [])
    with torch.device("meta"):
        model = VoyagerTransformer3DModel(use_context_block=True)
    latent = ((cfg.generate.clip_len - 1) // 4 + 1, (2 * cfg.voyager.height + 16) // 8, cfg.voyager.width // 8)
    assert estimate_memory(model, None, cfg.voyager, latent).peak < 22e9  # headroom for the CUDA context


def test_memory_report_carries_settings_and_estimate_for_run_json():
    runtime = VoyagerRuntime(_transformer(), torch.nn.Identity(), "cpu", VoyagerConfig(weights="fp8", cache="first_block"))
    assert "estimate_gb" not in runtime.memory_report()  # no clip seen yet
    _sample(runtime, steps=1)
    report = runtime.memory_report()
    assert report["settings"]["weights"] == "fp8" and report["settings"]["cache"] == "first_block"
    assert report["estimate_gb"] > 0 and report["estimate_parts_gb"]["activations"] > 0
    assert report["measured_peak_gb"] is None and "not measured on cpu" in report["measured"]
