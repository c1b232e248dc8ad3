"""The Voyager video transformer: diffusers' HunyuanVideo transformer + Voyager's context branch.

Voyager (HunyuanWorld-Voyager) is HunyuanVideo-I2V ("HYVideo-T/2") with a 50-channel input

    [noisy latent 16 | reference-image latent 16 | first-frame mask 1 | RGB-D condition latent 16 | visibility 1]

and, in its ``_context`` checkpoint, a small control branch:

* ``condition_embedder``: a second patch embedding (same shape as ``x_embedder``: all 50 channels) of
  the DEPTH HALF of the input, i.e. the last ``(H - 2) // 2`` latent rows of the composite
  (RGB on top, a 2-latent-row separator band, depth below);
* ``context_block``: one double-stream block on (condition tokens, text tokens), with RoPE tables of
  the cropped grid (positions start at 0);
* ``context_single_block``: one single-stream block on its output;
* ``context_proj_double`` / ``context_proj_single``: zero-initialised linears whose outputs are added
  after EVERY main block. As in the reference, the condition tokens are aligned with the LAST
  ``N_cond`` image tokens of the (t, h, w)-flattened sequence (the reference left-pads with zeros);
  the single-stream residual also touches the text tokens.

Everything else is exactly :class:`diffusers.HunyuanVideoTransformer3DModel` (same forward signature,
same attention processors, same ``save_pretrained`` / ``from_pretrained``), except the precision of
:data:`FP32_MODULES`: the released model builds its final linear and the context branch's zero
linears without the model dtype, so they stay float32 in a bf16 model. Here too: ``convert`` stores
them in fp32, ``from_pretrained`` with a bf16/fp16 ``torch_dtype`` reloads them from the files in
fp32, and hooks cast their input to fp32 and their output back to the activations' dtype (under the
released autocast, which the Voyager backend uses, the matmul itself then runs in bf16 as released).
"""

from __future__ import annotations

from typing import Any

import json
from pathlib import Path

import torch
import torch.nn as nn

from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.transformer_hunyuan_video import (
    HunyuanVideoPatchEmbed,
    HunyuanVideoSingleTransformerBlock,
    HunyuanVideoTransformer3DModel,
    HunyuanVideoTransformerBlock,
)

from voyager_pipe.models.parallel import align_to_last_tokens

__all__ = [
    "FP32_MODULES",
    "VoyagerSingleTransformerBlock",
    "VoyagerTransformer3DModel",
    "VoyagerTransformerBlock",
    "condition_rows",
    "is_fp32_parameter",
    "text_attention_mask",
]

#: Module paths kept in float32 in a bf16/fp16 model, as in the released model (its ``final_layer.linear``,
#: ``zero_linear1/2``). Exact top-level paths: the single blocks' ``proj_out`` is NOT one, and the final
#: layer's modulation (``norm_out``) stays in the model dtype, as released.
FP32_MODULES = ("proj_out", "context_proj_double", "context_proj_single")

#: Latent rows of the separator band between the RGB and the depth half (16 pixels / 8).
SEPARATOR_LATENT_ROWS = 2


def is_fp32_parameter(name: str) -> bool:
    """True for a parameter name (e.g. ``proj_out.weight``) of one of :data:`FP32_MODULES`."""
    return name.rsplit(".", 1)[0] in FP32_MODULES


def _input_to_weight_dtype(module: nn.Module, args: tuple) -> tuple:
    module._activation_dtype = args[0].dtype
    return (args[0].to(module.weight.dtype),) + tuple(args[1:])


def _output_to_activation_dtype(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return output.to(module._activation_dtype)


def condition_rows(latent_height: int) -> int:
    """Latent rows of the depth half of a composite latent of height ``latent_height`` (reference crop)."""
    return (latent_height - SEPARATOR_LATENT_ROWS) // 2


def text_attention_mask(num_visual_tokens: int, encoder_attention_mask: torch.Tensor) -> torch.Tensor:
    """Key mask over [visual tokens | text tokens] that hides padded text tokens.

    ``encoder_attention_mask`` is ``[B, L]`` with the valid tokens first (as the reference's
    ``cu_seqlens`` assume). Returns bool ``[B, 1, 1, N + L]`` (True = attend).
    """
    batch_size, text_length = encoder_attention_mask.shape
    valid_text = encoder_attention_mask.sum(dim=1, dtype=torch.int)  # [B]
    positions = torch.arange(num_visual_tokens + text_length, device=encoder_attention_mask.device)  # [N+L]
    mask = positions[None, :] < (num_visual_tokens + valid_text)[:, None]  # [B, N+L]
    return mask[:, None, None, :]  # [B, 1, 1, N+L]


class _ContextResidualBlock:
    """Mixin: run the diffusers block, then add the context branch's residuals (image and text tokens).

    Inside the block (not after it in the model's loop) so that diffusers' block-skipping caches
    (first-block cache, MagCache) skip or replay the residuals together with the block.
    """

    def forward(
        self,
        hidden_states: torch.Tensor,  # [B, N, D]
        encoder_hidden_states: torch.Tensor,  # [B, L, D]
        temb: torch.Tensor,  # [B, D]
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        context_residual: torch.Tensor | None = None,  # [B, N, D]
        context_text_residual: torch.Tensor | None = None,  # [B, L, D] (single-stream blocks only)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden_states, encoder_hidden_states = super().forward(
            hidden_states, encoder_hidden_states, temb, attention_mask, image_rotary_emb
        )  # [B, N, D], [B, L, D]
        if context_residual is not None:
            hidden_states = hidden_states + context_residual
        if context_text_residual is not None:
            encoder_hidden_states = encoder_hidden_states + context_text_residual
        return hidden_states, encoder_hidden_states


class VoyagerTransformerBlock(_ContextResidualBlock, HunyuanVideoTransformerBlock):
    """Double-stream block that adds the context branch's residual to its image tokens itself."""


class VoyagerSingleTransformerBlock(_ContextResidualBlock, HunyuanVideoSingleTransformerBlock):
    """Single-stream block that adds the context branch's residuals (image and text tokens) itself."""


class VoyagerTransformer3DModel(HunyuanVideoTransformer3DModel):
    r"""HunyuanVideo transformer with Voyager's defaults (50 input channels) and optional context branch.

    Args: those of :class:`~diffusers.HunyuanVideoTransformer3DModel` (defaults changed to Voyager's:
    ``in_channels=50``, ``guidance_embeds=False``, ``image_condition_type="latent_concat"``), plus

        use_context_block (`bool`, defaults to `False`): build the context (control) branch.
    """

    _skip_layerwise_casting_patterns = ["x_embedder", "condition_embedder", "context_embedder", "norm"]
    _no_split_modules = HunyuanVideoTransformer3DModel._no_split_modules + [
        "VoyagerTransformerBlock", "VoyagerSingleTransformerBlock"]
    _repeated_blocks = HunyuanVideoTransformer3DModel._repeated_blocks + [
        "VoyagerTransformerBlock", "VoyagerSingleTransformerBlock"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 50,
        out_channels: int = 16,
        num_attention_heads: int = 24,
        attention_head_dim: int = 128,
        num_layers: int = 20,
        num_single_layers: int = 40,
        num_refiner_layers: int = 2,
        mlp_ratio: float = 4.0,
        patch_size: int = 2,
        patch_size_t: int = 1,
        qk_norm: str = "rms_norm",
        guidance_embeds: bool = False,
        text_embed_dim: int = 4096,
        pooled_projection_dim: int = 768,
        rope_theta: float = 256.0,
        rope_axes_dim: tuple[int, ...] = (16, 56, 56),
        image_condition_type: str | None = "latent_concat",
        use_context_block: bool = False,
    ) -> None:
        if image_condition_type == "token_replace" and use_context_block:
            raise ValueError("use_context_block is only supported with image_condition_type 'latent_concat' or None")
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            num_layers=num_layers,
            num_single_layers=num_single_layers,
            num_refiner_layers=num_refiner_layers,
            mlp_ratio=mlp_ratio,
            patch_size=patch_size,
            patch_size_t=patch_size_t,
            qk_norm=qk_norm,
            guidance_embeds=guidance_embeds,
            text_embed_dim=text_embed_dim,
            pooled_projection_dim=pooled_projection_dim,
            rope_theta=rope_theta,
            rope_axes_dim=rope_axes_dim,
            image_condition_type=image_condition_type,
        )
        inner_dim = num_attention_heads * attention_head_dim
        if use_context_block:
            # the main blocks add the context residuals themselves (same parameters as diffusers' blocks)
            self.transformer_blocks = nn.ModuleList([
                VoyagerTransformerBlock(num_attention_heads, attention_head_dim, mlp_ratio=mlp_ratio, qk_norm=qk_norm)
                for _ in range(num_layers)
            ])
            self.single_transformer_blocks = nn.ModuleList([
                VoyagerSingleTransformerBlock(num_attention_heads, attention_head_dim, mlp_ratio=mlp_ratio, qk_norm=qk_norm)
                for _ in range(num_single_layers)
            ])
            self.condition_embedder = HunyuanVideoPatchEmbed((patch_size_t, patch_size, patch_size), in_channels, inner_dim)
            self.context_block = HunyuanVideoTransformerBlock(
                num_attention_heads, attention_head_dim, mlp_ratio=mlp_ratio, qk_norm=qk_norm
            )
            self.context_single_block = HunyuanVideoSingleTransformerBlock(
                num_attention_heads, attention_head_dim, mlp_ratio=mlp_ratio, qk_norm=qk_norm
            )
            self.context_proj_double = nn.Linear(inner_dim, inner_dim)
            self.context_proj_single = nn.Linear(inner_dim, inner_dim)
            for layer in (self.context_proj_double, self.context_proj_single):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        self._register_fp32_hooks()

    # ------------------------------------------------------------------ forward helpers
    def _run_block(self, block: nn.Module, *args) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(block, *args)
        return block(*args)

    def _context_residuals(
        self,
        latents: torch.Tensor,  # [B, C, F, H, W] the full 50-channel input
        text_tokens: torch.Tensor,  # [B, L, D] refined text tokens
        temb: torch.Tensor,  # [B, D]
        encoder_attention_mask: torch.Tensor,  # [B, L]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Context branch outputs: (image-token residual, text-token residual of the single blocks, double residual).

        Returns ``double [B, N_cond, D]``, ``single_visual [B, N_cond, D]``, ``single_text [B, L, D]``,
        to be added to the LAST ``N_cond`` image tokens (and to all text tokens for the single blocks).
        """
        height = condition_rows(latents.shape[-2])
        if height < self.config.patch_size:
            raise ValueError(
                f"latent height {latents.shape[-2]} is too small for the context branch "
                "(expected an RGB-over-depth composite: 2 * h + 2 latent rows)"
            )
        condition = latents[..., -height:, :]  # [B, C, F, h, W] depth half
        condition_rope = self.rope(condition)  # ([N_cond, Dh], [N_cond, Dh])
        condition_tokens = self.condition_embedder(condition)  # [B, N_cond, D]
        mask = text_attention_mask(condition_tokens.shape[1], encoder_attention_mask)  # [B, 1, 1, N_cond+L]

        condition_1, text_1 = self._run_block(
            self.context_block, condition_tokens, text_tokens, temb, mask, condition_rope
        )  # [B, N_cond, D], [B, L, D]
        condition_2, text_2 = self._run_block(
            self.context_single_block, condition_1, text_1, temb, mask, condition_rope
        )  # [B, N_cond, D], [B, L, D]
        double_residual = self.context_proj_double(condition_1)  # [B, N_cond, D]
        single_visual = self.context_proj_single(condition_2)  # [B, N_cond, D]
        single_text = self.context_proj_single(text_2)  # [B, L, D]
        return double_residual, single_visual, single_text

    def forward(
        self,
        hidden_states: torch.Tensor,  # [B, C_in, F, H, W]
        timestep: torch.Tensor,  # [B]
        encoder_hidden_states: torch.Tensor,  # [B, L, text_embed_dim]
        encoder_attention_mask: torch.Tensor,  # [B, L] (valid tokens first)
        pooled_projections: torch.Tensor,  # [B, pooled_projection_dim]
        guidance: torch.Tensor | None = None,  # [B] (guidance-distilled models only)
        attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
    ) -> tuple[torch.Tensor] | Transformer2DModelOutput:
        """Same contract as :meth:`diffusers.HunyuanVideoTransformer3DModel.forward`; output ``[B, C_out, F, H, W]``."""
        if not self.config.use_context_block:  # exactly diffusers' model
            return super().forward(
                hidden_states, timestep, encoder_hidden_states, encoder_attention_mask, pooled_projections,
                guidance=guidance, attention_kwargs=attention_kwargs, return_dict=return_dict,
            )
        batch_size, _, num_frames, height, width = hidden_states.shape
        p, p_t = self.config.patch_size, self.config.patch_size_t
        post_patch_frames, post_patch_height, post_patch_width = num_frames // p_t, height // p, width // p

        # 1. RoPE of the full grid
        image_rotary_emb = self.rope(hidden_states)  # ([N, Dh], [N, Dh])

        # 2. Conditioning vector, patch and text embeddings
        temb, _ = self.time_text_embed(timestep, pooled_projections, guidance)  # [B, D]
        latents = hidden_states
        hidden_states = self.x_embedder(latents)  # [B, N, D]
        encoder_hidden_states = self.context_embedder(
            encoder_hidden_states, timestep, encoder_attention_mask
        )  # [B, L, D]
        num_tokens = hidden_states.shape[1]
        attention_mask = text_attention_mask(num_tokens, encoder_attention_mask)  # [B, 1, 1, N+L]

        # 3. Context branch (computed once, added by every main block)
        double_residual, single_visual, single_text = self._context_residuals(
            latents, encoder_hidden_states, temb, encoder_attention_mask)
        # the condition sits on the LAST image tokens (context parallel: this rank's part of them)
        double_residual = align_to_last_tokens(double_residual, num_tokens, self)  # [B, N, D]
        single_visual = align_to_last_tokens(single_visual, num_tokens, self)  # [B, N, D]

        # 4. Dual-stream then single-stream blocks (the reference adds the context residuals after each;
        #    the Voyager blocks add them inside, so block-skipping caches treat them as part of the block)
        for block in self.transformer_blocks:
            hidden_states, encoder_hidden_states = self._run_block(
                block, hidden_states, encoder_hidden_states, temb, attention_mask, image_rotary_emb, double_residual
            )  # [B, N, D], [B, L, D]
        for block in self.single_transformer_blocks:
            hidden_states, encoder_hidden_states = self._run_block(
                block, hidden_states, encoder_hidden_states, temb, attention_mask, image_rotary_emb,
                single_visual, single_text,
            )  # [B, N, D], [B, L, D]

        # 5. Output projection and unpatchify
        hidden_states = self.norm_out(hidden_states, temb)  # [B, N, D]
        hidden_states = self.proj_out(hidden_states)  # [B, N, p_t*p*p*C_out]
        hidden_states = hidden_states.reshape(
            batch_size, post_patch_frames, post_patch_height, post_patch_width, -1, p_t, p, p
        )  # [B, F', H', W', C_out, p_t, p, p]
        hidden_states = hidden_states.permute(0, 4, 1, 5, 2, 6, 3, 7)  # [B, C_out, F', p_t, H', p, W', p]
        output = hidden_states.flatten(6, 7).flatten(4, 5).flatten(2, 3)  # [B, C_out, F, H, W]

        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)

    # ------------------------------------------------------------------ fp32 modules
    def _register_fp32_hooks(self) -> None:
        """Cast the input of each fp32 module to its weight dtype and its output back to the input's dtype."""
        for name in FP32_MODULES:
            module = getattr(self, name, None)
            if module is not None:
                module.register_forward_pre_hook(_input_to_weight_dtype)
                module.register_forward_hook(_output_to_activation_dtype)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """diffusers' ``from_pretrained``; with a bf16/fp16 ``torch_dtype`` the fp32 modules are then reloaded
        from the files in float32 (diffusers casts every tensor to ``torch_dtype`` on load)."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        if kwargs.get("torch_dtype") not in (None, torch.float32):
            model._reload_fp32_modules(Path(pretrained_model_name_or_path) / (kwargs.get("subfolder") or ""))
        return model

    def _reload_fp32_modules(self, folder: Path) -> None:
        from safetensors import safe_open

        index = folder / "diffusion_pytorch_model.safetensors.index.json"
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
        else:
            weight_map = {}
            single = folder / "diffusion_pytorch_model.safetensors"
            if single.is_file():
                with safe_open(single, "pt") as f:
                    weight_map = {k: single.name for k in f.keys()}
        for name, param in self.named_parameters():
            if not is_fp32_parameter(name):
                continue
            if name in weight_map:
                with safe_open(folder / weight_map[name], "pt") as f:
                    value = f.get_tensor(name)
            else:  # not a local safetensors folder: the rounded value is all there is
                value = param.data
            param.data = value.to(device=param.device, dtype=torch.float32)
