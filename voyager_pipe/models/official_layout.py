"""The OFFICIAL (HunyuanVideo / Voyager) checkpoint layout: tensor names, shapes and files.

Used by the converter (file locations) and by tests (:mod:`voyager_pipe.testing.voyager` builds tiny
random checkpoints in exactly the layout of the public weights, see
``../shared/data/voyager_checkpoint_schema.json``). Nothing here reads real weights.

Official file layout under the checkpoint folder (``ckpts/`` of the public release)::

    Voyager/transformers/mp_rank_00_model_states.pt          {"module": state_dict}  (852 keys)
    Voyager/transformers/mp_rank_00_model_states_context.pt  {"module": state_dict}  (890 keys)
    hunyuan-video-i2v-720p/vae/pytorch_model.pt              state_dict (248 keys)
    hunyuan-video-i2v-720p/vae/config.json                   AutoencoderKLCausal3D config
"""

from __future__ import annotations

from dataclasses import dataclass
__all__ = [
    "TRANSFORMER_FILE",
    "TRANSFORMER_CONTEXT_FILE",
    "VAE_FILE",
    "VAE_CONFIG_FILE",
    "OfficialTransformerShape",
    "official_transformer_shapes",
]

TRANSFORMER_FILE = "Voyager/transformers/mp_rank_00_model_states.pt"
TRANSFORMER_CONTEXT_FILE = "Voyager/transformers/mp_rank_00_model_states_context.pt"
VAE_FILE = "hunyuan-video-i2v-720p/vae/pytorch_model.pt"
VAE_CONFIG_FILE = "hunyuan-video-i2v-720p/vae/config.json"


@dataclass(frozen=True)
class OfficialTransformerShape:
    """Sizes of an official HunyuanVideo/Voyager transformer (defaults: HYVideo-T/2 as used by Voyager)."""

    hidden_size: int = 3072
    heads_num: int = 24
    double_blocks: int = 20
    single_blocks: int = 40
    refiner_blocks: int = 2
    mlp_width_ratio: int = 4
    in_channels: int = 50
    out_channels: int = 16
    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_states_dim: int = 4096
    text_states_dim_2: int = 768
    guidance_embed: bool = False
    use_context_block: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads_num


def _double_block_shapes(prefix: str, hidden: int, mlp: int, head_dim: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for stream in ("img", "txt"):
        shapes[f"{prefix}.{stream}_mod.linear.weight"] = (6 * hidden, hidden)
        shapes[f"{prefix}.{stream}_mod.linear.bias"] = (6 * hidden,)
        shapes[f"{prefix}.{stream}_attn_qkv.weight"] = (3 * hidden, hidden)
        shapes[f"{prefix}.{stream}_attn_qkv.bias"] = (3 * hidden,)
        shapes[f"{prefix}.{stream}_attn_q_norm.weight"] = (head_dim,)
        shapes[f"{prefix}.{stream}_attn_k_norm.weight"] = (head_dim,)
        shapes[f"{prefix}.{stream}_attn_proj.weight"] = (hidden, hidden)
        shapes[f"{prefix}.{stream}_attn_proj.bias"] = (hidden,)
        shapes[f"{prefix}.{stream}_mlp.fc1.weight"] = (mlp, hidden)
        shapes[f"{prefix}.{stream}_mlp.fc1.bias"] = (mlp,)
        shapes[f"{prefix}.{stream}_mlp.fc2.weight"] = (hidden, mlp)
        shapes[f"{prefix}.{stream}_mlp.fc2.bias"] = (hidden,)
    return shapes


def _single_block_shapes(prefix: str, hidden: int, mlp: int, head_dim: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.linear1.weight": (3 * hidden + mlp, hidden),
        f"{prefix}.linear1.bias": (3 * hidden + mlp,),
        f"{prefix}.linear2.weight": (hidden, hidden + mlp),
        f"{prefix}.linear2.bias": (hidden,),
        f"{prefix}.q_norm.weight": (head_dim,),
        f"{prefix}.k_norm.weight": (head_dim,),
        f"{prefix}.modulation.linear.weight": (3 * hidden, hidden),
        f"{prefix}.modulation.linear.bias": (3 * hidden,),
    }


def official_transformer_shapes(shape: OfficialTransformerShape = OfficialTransformerShape()) -> dict[str, tuple[int, ...]]:
    """Every tensor name -> shape of an official transformer state dict (the ``module`` entry)."""
    h, mlp, hd = shape.hidden_size, shape.hidden_size * shape.mlp_width_ratio, shape.head_dim
    pt, ph, pw = shape.patch_size
    shapes: dict[str, tuple[int, ...]] = {
        "img_in.proj.weight": (h, shape.in_channels, pt, ph, pw),
        "img_in.proj.bias": (h,),
        "txt_in.input_embedder.weight": (h, shape.text_states_dim),
        "txt_in.input_embedder.bias": (h,),
        "txt_in.t_embedder.mlp.0.weight": (h, 256),
        "txt_in.t_embedder.mlp.0.bias": (h,),
        "txt_in.t_embedder.mlp.2.weight": (h, h),
        "txt_in.t_embedder.mlp.2.bias": (h,),
        "txt_in.c_embedder.linear_1.weight": (h, shape.text_states_dim),
        "txt_in.c_embedder.linear_1.bias": (h,),
        "txt_in.c_embedder.linear_2.weight": (h, h),
        "txt_in.c_embedder.linear_2.bias": (h,),
    }
    for i in range(shape.refiner_blocks):
        p = f"txt_in.individual_token_refiner.blocks.{i}"
        shapes.update({
            f"{p}.norm1.weight": (h,), f"{p}.norm1.bias": (h,),
            f"{p}.self_attn_qkv.weight": (3 * h, h), f"{p}.self_attn_qkv.bias": (3 * h,),
            f"{p}.self_attn_proj.weight": (h, h), f"{p}.self_attn_proj.bias": (h,),
            f"{p}.norm2.weight": (h,), f"{p}.norm2.bias": (h,),
            f"{p}.mlp.fc1.weight": (mlp, h), f"{p}.mlp.fc1.bias": (mlp,),
            f"{p}.mlp.fc2.weight": (h, mlp), f"{p}.mlp.fc2.bias": (h,),
            f"{p}.adaLN_modulation.1.weight": (2 * h, h), f"{p}.adaLN_modulation.1.bias": (2 * h,),
        })
    shapes.update({
        "time_in.mlp.0.weight": (h, 256), "time_in.mlp.0.bias": (h,),
        "time_in.mlp.2.weight": (h, h), "time_in.mlp.2.bias": (h,),
        "vector_in.in_layer.weight": (h, shape.text_states_dim_2), "vector_in.in_layer.bias": (h,),
        "vector_in.out_layer.weight": (h, h), "vector_in.out_layer.bias": (h,),
    })
    if shape.guidance_embed:
        shapes.update({
            "guidance_in.mlp.0.weight": (h, 256), "guidance_in.mlp.0.bias": (h,),
            "guidance_in.mlp.2.weight": (h, h), "guidance_in.mlp.2.bias": (h,),
        })
    for i in range(shape.double_blocks):
        shapes.update(_double_block_shapes(f"double_blocks.{i}", h, mlp, hd))
    for i in range(shape.single_blocks):
        shapes.update(_single_block_shapes(f"single_blocks.{i}", h, mlp, hd))
    out = pt * ph * pw * shape.out_channels
    shapes.update({
        "final_layer.linear.weight": (out, h), "final_layer.linear.bias": (out,),
        "final_layer.adaLN_modulation.1.weight": (2 * h, h), "final_layer.adaLN_modulation.1.bias": (2 * h,),
    })
    if shape.use_context_block:
        shapes.update({"condition_in.proj.weight": (h, shape.in_channels, pt, ph, pw), "condition_in.proj.bias": (h,)})
        shapes.update(_double_block_shapes("context_block1", h, mlp, hd))
        shapes.update(_single_block_shapes("context_block2", h, mlp, hd))
        shapes.update({
            "zero_linear1.weight": (h, h), "zero_linear1.bias": (h,),
            "zero_linear2.weight": (h, h), "zero_linear2.bias": (h,),
        })
    return shapes
