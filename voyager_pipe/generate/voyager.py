"""The Voyager diffusion backend: a :class:`~voyager_pipe.generate.base.ClipGenerator` on diffusers.

One clip is generated in a single RGB-over-depth composite frame (see
:mod:`voyager_pipe.models.conditions`). The transformer input is the channel concatenation

    [noisy latent 16 | reference latent 16 (latent frame 0 only) | first-frame mask 1 |
     RGB-D condition latent 16 | visibility mask 1]                                   = 50 channels

and each step runs the conditional and unconditional (negative prompt) passes as ONE batch of
two, combined with ``v = v_uncond + g * (v_cond - v_uncond)``. The steps are taken by the
diffusers scheduler of ``generate.sampler`` (:func:`voyager_pipe.generate.sampler.sample_flow`).

What the model is fed follows the released inference (its ``predict`` and HunyuanVideo-I2V
pipeline): the LLaVA text encoder sees the reference composite (black for the negative prompt);
the condition and reference latents are drawn from the VAE posterior (``voyager.vae_latents``)
with the run's generator; the reference depth is normalised with render frame 0's range; the
timestep enters the time embedding in float32 and a bf16/fp16 transformer runs under autocast.
The remaining differences are listed in docs/voyager.md.

Latents handed to the scheduler are ``[T_lat, 16, h, w]`` float32 with ``h = (2H + 16) / 8``,
``w = W / 8``: only the 16 generated channels; the conditioning channels are derived from the
:class:`ClipCondition` once per clip by :meth:`VoyagerGenerator.prepare` and kept on the returned
handle, so a refinement pass does not re-encode.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import torch

from voyager_pipe.errors import InputError
from voyager_pipe.generate.base import ClipCondition, PreparedClip, StepCallback, num_latent_frames
from voyager_pipe.generate.sampler import check_sampler, flow_schedule, flow_sigmas, sample_flow
from voyager_pipe.models.conditions import (
    SEPARATOR_ROWS,
    DepthRange,
    compose,
    composite_image,
    depth_from_normalized,
    latent_visibility,
    normalize_depth_with,
    prepare_condition,
    prepare_reference,
    resize_to_model,
    slice_range,
    split_composite,
)
from voyager_pipe.models.text import PromptEmbeddings, TextConditioning, pad_to_length
from voyager_pipe.render.condition import RELEASED_CONDITION

if TYPE_CHECKING:  # pragma: no cover
    from voyager_pipe.generate.config import GenerateConfig
    from voyager_pipe.models.config import VoyagerConfig


LATENT_CHANNELS = 16
#: i2v stability init of the reference: x = 0.999 * noise + 0.001 * reference latent.
I2V_STABILITY_NOISE = 0.999
VAE_LATENTS = ("sample", "mode")


@dataclass
class Posterior:
    """The VAE's diagonal Gaussian of one encoded video, unscaled (``[1, 16, T_lat, h, w]`` float32)."""

    mean: torch.Tensor
    std: torch.Tensor


@dataclass
class ConditionLatents:
    """The conditioning channels of one clip in the transformer's layout ``[1, C, T_lat, h, w]``."""

    reference: torch.Tensor  # [1, 16, T_lat, h, w] reference latent in frame 0, zeros after
    reference_full: torch.Tensor  # [1, 16, T_lat, h, w] the reference latent repeated (i2v stability init)
    first_frame: torch.Tensor  # [1, 1, T_lat, h, w] 1 in frame 0, 0 after
    condition: torch.Tensor  # [1, 16, T_lat, h, w] latent of the rendered RGB-D composite
    visibility: torch.Tensor  # [1, 1, T_lat, h, w] +1 known / -1 unknown

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x [1, 16, T_lat, h, w]`` -> the 50-channel input ``[1, 50, T_lat, h, w]``."""
        return torch.cat([x, self.reference, self.first_frame, self.condition, self.visibility], dim=1)


@dataclass
class VoyagerPreparedClip(PreparedClip):
    """What one clip's condition gives the model (pixels encoded once; latents drawn at the first denoise)."""

    model_size: tuple[int, int]  # (H, W) of one half at which the model runs
    depth_range: DepthRange  # per condition frame (render resolution)
    condition_posterior: Posterior  # [1, 16, T_lat, h, w] of the condition composite
    reference_posterior: Posterior  # [1, 16, 1, h, w] of the reference composite
    visibility: torch.Tensor  # [1, 1, T_lat, h, w] +1 known / -1 unknown
    reference_image: torch.Tensor  # [3, 2H+16, W] in [0, 1]: the reference composite the text encoder sees
    latents: Optional[ConditionLatents] = None  # drawn by the first denoise of the clip


class VoyagerGenerator:
    """Voyager (HunyuanVideo-I2V + RGB-D condition) behind the ``ClipGenerator`` protocol.

    Args:
        transformer: a ``VoyagerTransformer3DModel`` (or diffusers ``HunyuanVideoTransformer3DModel`` with
            ``in_channels=50``).
        vae: ``AutoencoderKLHunyuanVideo``.
        text: a fixed :class:`TextConditioning`, or a callable ``text(image [3, 2H+16, W]) -> TextConditioning``
            evaluated once, on the first clip's reference composite (prompt-embedding cache / encoders).
        guidance_scale: classifier-free guidance (1.0 = conditional pass only).
        shift: flow-matching time shift of the schedule.
        sampler: ``generate.sampler`` (see :data:`voyager_pipe.generate.sampler.SAMPLERS`).
        vae_latents: ``"sample"`` (the released inference: a draw from the VAE posterior, from the run's
            generator) or ``"mode"`` (its mean) for the condition and reference latents.
        i2v_stability: start a clip from ``0.999 noise + 0.001 reference latent``.
        device: execution device. placer: a :class:`~voyager_pipe.models.memory.VoyagerRuntime` (offload,
            step cache, compile; default: everything on ``device``, no cache).
        size: ``(H, W)`` of one half at which the model runs (default: the condition's size).

    The reference image of a clip starting at trajectory frame 0 is the run's input image; a later
    clip's is its first rendered frame (generated by the previous clip).
    """

    name = "voyager"
    temporal_compression = 4
    supports_per_frame_sigma = False
    condition_render = RELEASED_CONDITION  # half-resolution z-buffer, linear upsampling, sky as a far layer

    def __init__(self, transformer: torch.nn.Module, vae: torch.nn.Module,
                 text: TextConditioning | Callable[[torch.Tensor], TextConditioning], *,
                 guidance_scale: float = 6.0, shift: float = 7.0, sampler: str = "euler",
                 vae_latents: str = "sample", i2v_stability: bool = True,
                 device: torch.device | str = "cpu", placer=None, size: Optional[tuple[int, int]] = None):
        from voyager_pipe.models.memory import VoyagerRuntime

        if vae_latents not in VAE_LATENTS:
            raise InputError(f"voyager.vae_latents: {vae_latents!r} is not one of {list(VAE_LATENTS)}")
        self.transformer = transformer
        self.vae = vae
        self._text_source = text
        self._text: Optional[TextConditioning] = text if isinstance(text, TextConditioning) else None
        self.guidance_scale = float(guidance_scale)
        self.shift = float(shift)
        self.sampler = check_sampler(sampler)
        self.vae_latents = vae_latents
        self.i2v_stability = bool(i2v_stability)
        self.device = torch.device(device)
        self.dtype = torch.float32  # latents; the networks run in their own dtype
        self.placer = placer if placer is not None else VoyagerRuntime(transformer, vae, self.device)
        self.size = size
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 0.476986))
        self.spatial_compression = int(getattr(vae, "spatial_compression_ratio", 8))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, vcfg: "VoyagerConfig", generate: "GenerateConfig",
                    device: torch.device | str | None = None) -> "VoyagerGenerator":
        """Load the converted model of ``vcfg.model_dir`` with its memory options (``generate`` for the schedule)."""
        from voyager_pipe.device import resolve_device
        from voyager_pipe.models.loading import load_runtime

        check_sampler(generate.sampler)
        device = resolve_device(device)
        size = None
        if vcfg.height is not None or vcfg.width is not None:
            if vcfg.height is None or vcfg.width is None:
                raise InputError("voyager.height / voyager.width: set both or neither")
            size = (vcfg.height, vcfg.width)
        latent_size = None if size is None else (num_latent_frames(generate.clip_len, cls.temporal_compression),
                                                 (2 * size[0] + SEPARATOR_ROWS) // 8, size[1] // 8)
        components, placer = load_runtime(vcfg, device, latent_size, cfg_batched=vcfg.guidance_scale != 1.0)
        return cls(components.transformer, components.vae, make_text_provider(vcfg, device),
                   guidance_scale=vcfg.guidance_scale, shift=generate.shift, sampler=generate.sampler,
                   vae_latents=vcfg.vae_latents, i2v_stability=vcfg.i2v_stability, device=device,
                   placer=placer, size=size)

    # ------------------------------------------------------------------ protocol: shapes / noise
    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        height, width = self._model_size(height, width)
        s = self.spatial_compression
        return (num_latent_frames(num_frames, self.temporal_compression), LATENT_CHANNELS,
                (2 * height + SEPARATOR_ROWS) // s, width // s)

    def noise_like(self, latents: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        return _randn(latents.shape, generator, latents.device).to(latents.dtype)  # [T_lat, C, h, w]

    # ------------------------------------------------------------------ protocol: prepare
    def prepare(self, condition: ClipCondition) -> VoyagerPreparedClip:
        """Encode the clip's condition and reference composites once (the handle the other calls take)."""
        size = self._model_size(condition.height, condition.width)
        frames = prepare_condition(condition.rgb, condition.depth, condition.mask, size)  # composite [T, 3, 2H+16, W]
        visibility = latent_visibility(frames.visible, self.temporal_compression, self.spatial_compression)  # [1, 1, T_lat, h, w]
        reference_rgb, reference_depth = self._reference_frame(condition)  # [3, H0, W0], [1, H0, W0]
        reference = prepare_reference(reference_rgb, reference_depth, slice_range(frames.depth_range, slice(0, 1)),
                                      size)  # [1, 3, 2H+16, W]
        return VoyagerPreparedClip(
            condition=condition, model_size=size, depth_range=frames.depth_range,
            condition_posterior=self._vae_posterior(frames.composite), reference_posterior=self._vae_posterior(reference),
            visibility=visibility.float(), reference_image=composite_image(reference[0]))

    # ------------------------------------------------------------------ protocol: VAE
    def encode(self, rgb: torch.Tensor, depth: torch.Tensor, prepared: VoyagerPreparedClip) -> torch.Tensor:
        """RGB-D frames -> clean latents ``[T_lat, 16, h, w]`` (posterior mean); depth normalised with the clip's first frames' ranges."""
        depth_range = _first_ranges(prepared.depth_range, depth.shape[0])
        normalized = normalize_depth_with(depth.float(), depth_range)  # [T, 1, H0, W0]
        ones = torch.ones_like(normalized)  # [T, 1, H0, W0]
        rgb, normalized, _ = resize_to_model(rgb.float(), normalized, ones, prepared.model_size)  # [T, 3, H, W], [T, 1, H, W]
        composite = compose(rgb * 2 - 1, (normalized * 2 - 1).expand(-1, 3, -1, -1))  # [T, 3, 2H+16, W]
        latents = self._vae_posterior(composite).mean * self.scaling_factor  # [1, 16, T_lat, h, w]
        return latents[0].permute(1, 0, 2, 3).contiguous()  # [T_lat, 16, h, w]

    def decode(self, latents: torch.Tensor, prepared: VoyagerPreparedClip) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents -> ALL frames: ``rgb [T, 3, H0, W0]`` in [0, 1] and z-depth ``[T, 1, H0, W0]`` at the render size."""
        z = latents.permute(1, 0, 2, 3)[None] / self.scaling_factor  # [1, 16, T_lat, h, w]
        with torch.no_grad(), self.placer.use("vae") as vae:
            frames = vae.decode(z.to(self.device, vae.dtype), return_dict=False)[0]  # [1, 3, T, 2H+16, W]
        frames = (frames[0].permute(1, 0, 2, 3).float() / 2 + 0.5).clamp(0, 1)  # [T, 3, 2H+16, W]
        rgb, depth_normalized = split_composite(frames)  # [T, 3, H, W], [T, 1, H, W]
        render_size = (prepared.condition.height, prepared.condition.width)
        ones = torch.ones_like(depth_normalized)  # [T, 1, H, W]
        rgb, depth_normalized, _ = resize_to_model(rgb, depth_normalized, ones, render_size)  # [T, C, H0, W0]
        depth = depth_from_normalized(depth_normalized, _first_ranges(prepared.depth_range, frames.shape[0]))  # [T, 1, H0, W0]
        return rgb, depth

    # ------------------------------------------------------------------ protocol: sampling
    @torch.no_grad()
    def denoise(self, latents: torch.Tensor, prepared: VoyagerPreparedClip, sigma_from: float, sigma_to: float,
                steps: int, generator: Optional[torch.Generator] = None,
                per_frame_sigma: Optional[torch.Tensor] = None, callback: Optional[StepCallback] = None) -> torch.Tensor:
        """Flow matching from ``sigma_from`` to ``sigma_to`` with ``generate.sampler`` (CFG batched); ``[T_lat, 16, h, w]`` in and out."""
        if per_frame_sigma is not None:
            raise ValueError("the Voyager transformer takes one timestep per clip (supports_per_frame_sigma=False)")
        inputs = self._condition_latents(prepared, generator)
        x = latents.permute(1, 0, 2, 3)[None].to(self.device, torch.float32)  # [1, 16, T_lat, h, w]
        expected = inputs.condition.shape  # [1, 16, T_lat, h, w]
        if x.shape[2] != expected[2] or x.shape[3:] != expected[3:]:
            raise ValueError(f"latents {tuple(latents.shape)} do not match the condition {tuple(expected)}")
        if self.i2v_stability and sigma_from >= 1.0:
            x = I2V_STABILITY_NOISE * x + (1 - I2V_STABILITY_NOISE) * inputs.reference_full  # [1, 16, T_lat, h, w]
        text = self._text_conditioning(prepared)
        sigmas = flow_sigmas(sigma_from, sigma_to, steps, self.shift)  # [steps + 1]
        self.placer.begin_denoise(len(flow_schedule(sigmas, self.sampler).model_sigmas), tuple(x.shape))
        x = sample_flow(x, lambda x, sigma: self._guided_velocity(x, inputs, sigma, text), sigmas, self.sampler,
                        generator, callback)  # [1, 16, T_lat, h, w]
        return x[0].permute(1, 0, 2, 3).to(latents.dtype)  # [T_lat, 16, h, w]

    def _guided_velocity(self, x: torch.Tensor, inputs: ConditionLatents, sigma: float,
                         text: TextConditioning) -> torch.Tensor:
        """Guided velocity at noise level ``sigma`` for ``x [1, 16, T_lat, h, w]`` (one batched forward)."""
        model_input = inputs.model_input(x)  # [1, 50, T_lat, h, w]
        use_cfg = self.guidance_scale != 1.0 and text.negative is not None
        prompts = [text.negative, text.positive] if use_cfg else [text.positive]  # reference order: uncond, cond
        output = self._forward(model_input.expand(len(prompts), -1, -1, -1, -1), sigma, prompts)  # [B, 16, T_lat, h, w]
        if not use_cfg:
            return output
        uncond, cond = output.chunk(2)  # [1, 16, T_lat, h, w] each
        return uncond + self.guidance_scale * (cond - uncond)

    def _forward(self, model_input: torch.Tensor, sigma: float, prompts: list[PromptEmbeddings]) -> torch.Tensor:
        """One transformer call on a batch ``[B, 50, T_lat, h, w]`` with one prompt per item -> float32 velocity.

        The timestep is float32 whatever the transformer's dtype (the released pipeline hands the
        scheduler's float32 timesteps to the model); a bf16/fp16 transformer runs under autocast, as
        the released inference does.
        """
        length = max(p.embeds.shape[1] for p in prompts)
        padded = [pad_to_length(p, length) for p in prompts]
        with self.placer.use("transformer", timestep=sigma * 1000.0) as transformer:
            dtype = transformer.dtype
            embeds = torch.cat([p.embeds for p in padded]).to(self.device, dtype)  # [B, L, 4096]
            mask = torch.cat([p.mask for p in padded]).to(self.device)  # [B, L]
            pooled = torch.cat([p.pooled for p in padded]).to(self.device, dtype)  # [B, 768]
            timestep = torch.full((model_input.shape[0],), sigma * 1000.0, device=self.device, dtype=torch.float32)  # [B]
            with _autocast(self.device, dtype):
                out = transformer(hidden_states=model_input.to(dtype), timestep=timestep, encoder_hidden_states=embeds,
                                  encoder_attention_mask=mask, pooled_projections=pooled, return_dict=False)[0]
        return out.float()  # [B, 16, T_lat, h, w]

    def memory_report(self) -> dict:
        """Memory settings, estimate and measured peak (written to run.json by the pipeline)."""
        return self.placer.memory_report()

    # ------------------------------------------------------------------ conditioning
    def _text_conditioning(self, prepared: VoyagerPreparedClip) -> TextConditioning:
        if self._text is None:
            self._text = self._text_source(prepared.reference_image)
        return self._text

    def _condition_latents(self, prepared: VoyagerPreparedClip, generator: Optional[torch.Generator]) -> ConditionLatents:
        """The clip's conditioning latents, drawn once (at its first denoise, from the run's generator)."""
        if prepared.latents is not None:
            return prepared.latents
        condition = self._draw(prepared.condition_posterior, generator)  # [1, 16, T_lat, h, w]
        reference_latent = self._draw(prepared.reference_posterior, generator)  # [1, 16, 1, h, w]
        num_latents = condition.shape[2]
        reference = torch.zeros_like(condition)  # [1, 16, T_lat, h, w]
        reference[:, :, :1] = reference_latent
        first_frame = torch.zeros_like(prepared.visibility)  # [1, 1, T_lat, h, w]
        first_frame[:, :, 0] = 1.0
        prepared.latents = ConditionLatents(
            reference=reference, reference_full=reference_latent.expand(-1, -1, num_latents, -1, -1),
            first_frame=first_frame.to(self.device), condition=condition, visibility=prepared.visibility.to(self.device))
        return prepared.latents

    def _draw(self, posterior: Posterior, generator: Optional[torch.Generator]) -> torch.Tensor:
        """Scaled latents from a posterior: its mean (``mode``) or ``mean + std * eps`` (``sample``)."""
        latents = posterior.mean
        if self.vae_latents == "sample":
            latents = latents + posterior.std * _randn(latents.shape, generator, latents.device)
        return latents * self.scaling_factor

    def _reference_frame(self, condition: ClipCondition) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference (rgb ``[3, H0, W0]``, depth ``[1, H0, W0]``) of a clip at the render size."""
        starts_trajectory = condition.frame_indices is None or int(condition.frame_indices[0]) == 0
        if starts_trajectory:
            return condition.reference_rgb.float(), condition.reference_depth.float()
        valid = condition.mask[0].to(torch.bool)  # [1, H0, W0]
        return condition.rgb[0].float() * valid, condition.depth[0].float() * valid  # generated by the previous clip

    def _vae_posterior(self, composite: torch.Tensor) -> Posterior:
        """``[T, 3, Hc, W]`` in [-1, 1] -> the VAE posterior ``[1, 16, T_lat, h, w]`` (float32, unscaled)."""
        video = composite.permute(1, 0, 2, 3)[None]  # [1, 3, T, Hc, W]
        with torch.no_grad(), self.placer.use("vae") as vae:
            dist = vae.encode(video.to(self.device, vae.dtype)).latent_dist
        return Posterior(mean=dist.mean.float(), std=dist.std.float())

    # ------------------------------------------------------------------ resolution
    def _model_size(self, height: int, width: int) -> tuple[int, int]:
        height, width = self.size if self.size is not None else (height, width)
        if height % 16 or width % 16:
            raise InputError(f"voyager: model size {height}x{width} (per half) must be a multiple of 16; "
                             "set voyager.height / voyager.width or render at such a size")
        return height, width


# ---------------------------------------------------------------------- helpers
def make_text_provider(vcfg: "VoyagerConfig", device: torch.device) -> Callable[[torch.Tensor], TextConditioning]:
    """``provider(image) -> TextConditioning`` from ``--prompt-embeds``, the disk cache or the encoders."""
    from pathlib import Path

    from voyager_pipe.models.memory import release_accelerator_memory
    from voyager_pipe.models.text import HunyuanI2VTextEncoder, encoder_identity, get_text_conditioning

    encoder_dir = vcfg.text_encoder_dir or vcfg.model_dir
    use_negative = vcfg.guidance_scale != 1.0

    def provider(image: torch.Tensor) -> TextConditioning:
        encoder_id = encoder_identity(encoder_dir) if encoder_dir and Path(encoder_dir).expanduser().is_dir() else ""
        factory = None if not encoder_dir else (lambda: HunyuanI2VTextEncoder(
            encoder_dir, device=device, dtype=torch.float16 if device.type == "cuda" else torch.float32,
            max_sequence_length=vcfg.max_sequence_length))
        text = get_text_conditioning(vcfg.prompt, vcfg.negative_prompt, image, use_negative=use_negative,
                                     prompt_embeds_path=vcfg.prompt_embeds, cache_dir=vcfg.prompt_cache_dir,
                                     encoder_id=encoder_id, encoder_factory=factory)
        release_accelerator_memory()  # the encoders are dropped: free their GPU memory before the transformer moves in
        return text

    return provider


def _randn(shape, generator: Optional[torch.Generator], device: torch.device) -> torch.Tensor:
    """Standard normal float32 noise drawn on the generator's device (reproducible across devices), moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=torch.float32).to(device)


def _first_ranges(depth_range: DepthRange, num_frames: int) -> DepthRange:
    if depth_range.p_low.shape[0] < num_frames:
        raise ValueError(f"{num_frames} frames but the condition has {depth_range.p_low.shape[0]}")
    return slice_range(depth_range, slice(0, num_frames))


def _autocast(device: torch.device, dtype: torch.dtype):
    """bf16/fp16 autocast on ``device`` (the released transformer call); nothing for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
