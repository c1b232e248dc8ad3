"""Tiny random Voyager components and fake official checkpoints (tests, CPU benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from voyager_pipe.models.loading import VoyagerComponents
from voyager_pipe.models.official_layout import TRANSFORMER_CONTEXT_FILE, TRANSFORMER_FILE, VAE_CONFIG_FILE, VAE_FILE
from voyager_pipe.models.text import PromptEmbeddings, TextConditioning

#: Text sizes of the tiny transformer (LLaVA hidden size stand-in, CLIP pooled size stand-in).
TINY_TEXT_DIM, TINY_POOLED_DIM = 16, 8


def build_tiny_components(seed: int = 0, use_context_block: bool = False) -> VoyagerComponents:
    """Random, tiny Voyager components with the real architecture.

    Transformer: 1 double + 1 single block, 2 heads of 8, text dim 16, pooled dim 8.
    VAE: AutoencoderKLHunyuanVideo with 8 channels per level (still 8x spatial, 4x temporal, 16 latent channels).
    """
    from diffusers import AutoencoderKLHunyuanVideo

    from voyager_pipe.models.transformer import VoyagerTransformer3DModel

    torch.manual_seed(seed)
    transformer = VoyagerTransformer3DModel(
        in_channels=50, out_channels=16, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, text_embed_dim=TINY_TEXT_DIM, pooled_projection_dim=TINY_POOLED_DIM,
        rope_axes_dim=(2, 2, 4), use_context_block=use_context_block)
    vae = AutoencoderKLHunyuanVideo(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4)
    return VoyagerComponents(transformer=transformer.eval(), vae=vae.eval())


def tiny_prompt(length: int, seed: int) -> PromptEmbeddings:
    """Random prompt embeddings of ``length`` tokens for the tiny transformer."""
    gen = torch.Generator().manual_seed(seed)
    return PromptEmbeddings(embeds=torch.randn(1, length, TINY_TEXT_DIM, generator=gen),
                            mask=torch.ones(1, length, dtype=torch.long),
                            pooled=torch.randn(1, TINY_POOLED_DIM, generator=gen))


def tiny_text_conditioning() -> TextConditioning:
    """Positive (5 tokens) and negative (3 tokens) embeddings: different lengths exercise the padding."""
    return TextConditioning(positive=tiny_prompt(5, 1), negative=tiny_prompt(3, 2))


def random_official_state_dict(
    shapes: dict[str, tuple[int, ...]], seed: int = 0, dtype: torch.dtype = torch.float32, std: float = 0.2
) -> dict[str, torch.Tensor]:
    """Seeded random tensors for ``shapes`` (norm weights around 1 so that they are not degenerate)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in shapes.items():
        tensor = torch.randn(shape, generator=generator) * std  # [*shape]
        if "norm" in name and name.endswith("weight") and len(shape) == 1:
            tensor = tensor + 1.0
        state[name] = tensor.to(dtype)
    return state


def save_official_transformer(ckpt_dir: str | Path, state_dict: dict[str, torch.Tensor], context: bool = False) -> Path:
    """Write ``state_dict`` as the DeepSpeed-style official file (``{"module": ..., ...}``) under ``ckpt_dir``."""
    path = Path(ckpt_dir) / (TRANSFORMER_CONTEXT_FILE if context else TRANSFORMER_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"module": state_dict, "dp_world_size": 1, "mp_world_size": 1}, path)
    return path


def save_official_vae(ckpt_dir: str | Path, state_dict: dict[str, torch.Tensor], config: dict) -> Path:
    """Write a VAE state dict and its ``config.json`` (AutoencoderKLCausal3D keys) in the official layout."""
    path = Path(ckpt_dir) / VAE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, path)
    (Path(ckpt_dir) / VAE_CONFIG_FILE).write_text(json.dumps(config, indent=2))
    return path


#: A tiny transformer in the official layout (head dim 24: the converter knows its RoPE split (4, 10, 10)).
def tiny_official_shape(use_context_block: bool = True):
    from voyager_pipe.models.official_layout import OfficialTransformerShape

    return OfficialTransformerShape(hidden_size=48, heads_num=2, double_blocks=1, single_blocks=1, refiner_blocks=1,
                                    text_states_dim=24, text_states_dim_2=8, use_context_block=use_context_block)


#: The official VAE config.json of a tiny AutoencoderKLCausal3D, with the released tile sizes (256 px, 64 frames).
TINY_VAE_OFFICIAL_CONFIG = {
    "_class_name": "AutoencoderKLCausal3D", "act_fn": "silu", "block_out_channels": [8, 8, 8, 8],
    "down_block_types": ["DownEncoderBlockCausal3D"] * 4, "up_block_types": ["UpDecoderBlockCausal3D"] * 4,
    "in_channels": 3, "out_channels": 3, "latent_channels": 16, "layers_per_block": 1, "norm_num_groups": 4,
    "scaling_factor": 0.476986, "time_compression_ratio": 4, "mid_block_add_attention": True,
    "sample_size": 256, "sample_tsize": 64,
}


def save_tiny_release(root: str | Path, seed: int = 1, use_context_block: bool = True) -> dict[str, torch.Tensor]:
    """A tiny random release in the official layout under ``root`` (transformer + VAE); returns the transformer state."""
    from diffusers import AutoencoderKLHunyuanVideo

    from voyager_pipe.models.official_layout import official_transformer_shapes

    state = random_official_state_dict(official_transformer_shapes(tiny_official_shape(use_context_block)), seed=seed)
    save_official_transformer(root, state, context=use_context_block)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLHunyuanVideo(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4)
    save_official_vae(root, vae.state_dict(), TINY_VAE_OFFICIAL_CONFIG)
    return state
