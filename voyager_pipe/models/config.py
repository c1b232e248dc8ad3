"""Settings of the Voyager diffusion backend (owned by voyager_pipe.models).

Sampling schedule settings (steps, shift, clip length, overlap, refinement) live in
``generate`` (:class:`voyager_pipe.generate.config.GenerateConfig`); this section holds what is
specific to the Voyager model: where its converted weights are, how to place them in memory
(offload, weight format, step cache, compile, attention backend: see docs/voyager-memory.md and
:mod:`voyager_pipe.models.memory`), the text prompt and classifier-free guidance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from voyager_pipe.options import option


@dataclass
class VoyagerConfig:
    model_dir: Optional[str] = option(None, "converted diffusers folder of the Voyager model (see `voyager-pipe convert`)")
    transformer_subfolder: str = option("transformer", "subfolder of model_dir with the transformer (e.g. transformer_context)")
    vae_subfolder: str = option("vae", "subfolder of model_dir with the VAE")
    use_context_block: Optional[bool] = option(None, "require the context (control) branch (true) or its absence (false); null = whatever the converted folder holds")
    dtype: Literal["bf16", "fp16", "fp32"] = option("bf16", "transformer weights/compute dtype")
    vae_dtype: Literal["bf16", "fp16", "fp32"] = option("fp16", "VAE dtype (the reference runs it in fp16)")
    offload: Literal["none", "model", "group", "sequential"] = option(
        "none", "CPU offload through diffusers' hooks: none (all on the device), model (one network at a time), "
        "group (transformer blocks streamed in groups, CUDA-stream prefetch; the low-memory choice), "
        "sequential (leaf by leaf, least memory, slowest)")
    offload_blocks_per_group: int = option(
        1, "voyager.offload=group: transformer blocks per group (CUDA-stream prefetch needs 1)", min=1, max=60)
    weights: Literal["bf16", "fp8"] = option(
        "bf16", "transformer weight storage: bf16 (= voyager.dtype) or fp8 (float8_e4m3fn storage, upcast to "
        "voyager.dtype layer by layer; norms, embeddings, final layer and context projections stay in voyager.dtype)")
    cache: Literal["none", "first_block", "mag", "taylorseer", "faster"] = option(
        "none", "diffusers step cache of the transformer: none, first_block (skip the other blocks while the first "
        "block's residual barely changes), mag (MagCache: needs cache_options.mag_ratios), taylorseer (Taylor-"
        "extrapolated attention outputs), faster (FasterCache: reuse attention outputs and the unconditional pass)")
    cache_threshold: Optional[float] = option(
        None, "first_block / mag: skip threshold (null = diffusers' default: 0.05 / 0.06; 0 never skips first_block)",
        min=0, max=100)
    cache_options: dict[str, Any] = option(
        {}, "the cache method's own diffusers knobs, e.g. {max_skip_steps: 3, mag_ratios: [...]} (mag), "
        "{cache_interval: 5, max_order: 1} (taylorseer), {unconditional_batch_skip_range: 5} (faster)")
    memory_check: bool = option(True, "refuse to start when the estimated peak memory exceeds the device's free memory")
    vae_tiling: bool = option(True, "decode/encode the VAE in overlapping spatial tiles (lower memory)")
    vae_slicing: bool = option(False, "run the VAE one batch item at a time")
    attention_backend: Optional[str] = option(
        None, "diffusers attention backend, checked against those usable here (e.g. native, _native_cudnn, "
        "_native_efficient, flash_varlen); null = diffusers' default (native SDPA)")
    height: Optional[int] = option(None, "model height of ONE half (RGB or depth) in pixels, multiple of 16 (null = the render size)", min=16, max=8192)
    width: Optional[int] = option(None, "model width in pixels, multiple of 16 (null = the render size)", min=16, max=8192)
    guidance_scale: float = option(6.0, "classifier-free guidance scale (1.0 = no guidance, one pass per step)", min=0, max=100)
    prompt: str = option("", "text prompt")
    negative_prompt: Optional[str] = option(None, "negative prompt (null = the reference's default I2V negative prompt)")
    prompt_embeds: Optional[str] = option(None, "precomputed prompt embeddings (.pt from `encode_prompts`); skips the text encoders")
    text_encoder_dir: Optional[str] = option(None, "folder with text_encoder/ tokenizer/ text_encoder_2/ tokenizer_2/ image_processor/ (null = model_dir)")
    prompt_cache_dir: Optional[str] = option("~/.cache/voyager_pipe/prompt_embeds", "on-disk cache of prompt embeddings keyed by prompt + encoder hash (null = off)")
    max_sequence_length: int = option(256, "LLaVA prompt tokens kept (after the template)", min=1, max=4096)
    vae_latents: Literal["sample", "mode"] = option(
        "sample", "condition and reference latents: sample (a draw from the VAE posterior with the run's seed, as released) or mode (its mean)")
    i2v_stability: bool = option(True, "start from 0.999 noise + 0.001 reference latent instead of pure noise (reference default)")
    compile: Literal["none", "regional", "full"] = option(
        "none", "torch.compile the transformer: none, regional (each repeated block compiled once; fast warm-up), "
        "full (the whole model; slowest warm-up). The first steps are slow")
