"""Checkpoint conversion: official Voyager layout -> diffusers folder.

The tiny official checkpoints are built from the OFFICIAL key layout (names and relative shapes of
``voyager_checkpoint_schema.json``), and the converted model is compared with a forward pass written
here directly on the official tensors, following the reference's maths (fused qkv split as
``(K H D)``, modulation chunk order, final (shift, scale), single-block ``linear1`` rows
``[q | k | v | mlp]``), so that the splits and orderings are proven, not assumed.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from voyager_pipe.cli import main as cli_main
from voyager_pipe.errors import InputError
from voyager_pipe.models.convert import convert_checkpoint, convert_transformer_state_dict, transformer_config_from_official
from voyager_pipe.models.converted import load_converted
from voyager_pipe.models.official_layout import OfficialTransformerShape, official_transformer_shapes
from voyager_pipe.testing.voyager import random_official_state_dict, save_official_transformer, save_official_vae

HIDDEN, HEADS, ROPE = 48, 2, (4, 10, 10)
TINY = OfficialTransformerShape(
    hidden_size=HIDDEN, heads_num=HEADS, double_blocks=1, single_blocks=1, refiner_blocks=2,
    text_states_dim=32, text_states_dim_2=16, use_context_block=True,
)
TINY_VAE_OFFICIAL_CONFIG = {
    "_class_name": "AutoencoderKLCausal3D", "act_fn": "silu", "block_out_channels": [8, 8, 16, 16],
    "down_block_types": ["DownEncoderBlockCausal3D"] * 4, "up_block_types": ["UpDecoderBlockCausal3D"] * 4,
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 4,
    "scaling_factor": 0.476986, "time_compression_ratio": 4, "mid_block_add_attention": True,
}
TINY_VAE_DIFFUSERS_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16), layers_per_block=1,
    norm_num_groups=4, spatial_compression_ratio=8, temporal_compression_ratio=4,
)


# ---------------------------------------------------------------- reference maths on OFFICIAL tensors
def ref_linear(sd, name, x):
    return F.linear(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"))


def ref_rms(x, weight, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def ref_layer_norm(x):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def ref_split_heads(qkv, heads):
    """'B L (K H D) -> K B L H D' with K = 3."""
    b, l, _ = qkv.shape
    return qkv.reshape(b, l, 3, heads, -1).permute(2, 0, 1, 3, 4)


def ref_rope_tables(frames, height, width, axes=ROPE, theta=256.0):
    """Interleaved real cos/sin tables [N, head_dim] over the (t, h, w) grid (positions from 0)."""
    grid = torch.stack(torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij"))
    grid = grid.reshape(3, -1).double()  # [3, N]
    cos, sin = [], []
    for axis, dim in enumerate(axes):
        freqs = 1.0 / theta ** (torch.arange(0, dim, 2).double() / dim)  # [dim/2]
        angles = grid[axis][:, None] * freqs[None]  # [N, dim/2]
        cos.append(angles.cos().repeat_interleave(2, dim=1))
        sin.append(angles.sin().repeat_interleave(2, dim=1))
    return torch.cat(cos, 1).float(), torch.cat(sin, 1).float()  # [N, Dh]


def ref_apply_rope(x, tables):
    """x [B, N, H, D]; pairs (x0, x1) rotate to (-x1, x0)."""
    cos, sin = tables
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos[None, :, None] + rotated * sin[None, :, None]


def ref_attention(q, k, v, key_valid):
    """q, k, v [B, N, H, D]; key_valid [B, N] bool; plain softmax attention -> [B, N, H*D]."""
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
    out = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v)
    return out.flatten(2)


def ref_timestep(t, dim=256, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def ref_mlp(sd, name, x, act):
    return ref_linear(sd, f"{name}.fc2", act(ref_linear(sd, f"{name}.fc1", x)))


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def ref_text_refiner(sd, txt, t, mask):
    """txt_in (single_refiner): input embedder + token refiner blocks."""
    maskf = mask.float()[..., None]
    pooled = (txt * maskf).sum(1) / maskf.sum(1)
    c = ref_linear(sd, "txt_in.t_embedder.mlp.2", F.silu(ref_linear(sd, "txt_in.t_embedder.mlp.0", ref_timestep(t))))
    c = c + ref_linear(sd, "txt_in.c_embedder.linear_2", F.silu(ref_linear(sd, "txt_in.c_embedder.linear_1", pooled)))
    x = ref_linear(sd, "txt_in.input_embedder", txt)
    valid = mask.bool()
    pair_mask = valid[:, None, :] & valid[:, :, None]  # [B, L, L]
    pair_mask[:, :, 0] = True
    i = 0
    while f"txt_in.individual_token_refiner.blocks.{i}.norm1.weight" in sd:
        p = f"txt_in.individual_token_refiner.blocks.{i}"
        gate_msa, gate_mlp = ref_linear(sd, f"{p}.adaLN_modulation.1", F.silu(c)).chunk(2, dim=-1)
        h = F.layer_norm(x, x.shape[-1:], sd[f"{p}.norm1.weight"], sd[f"{p}.norm1.bias"], eps=1e-6)
        q, k, v = ref_split_heads(ref_linear(sd, f"{p}.self_attn_qkv", h), HEADS)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~pair_mask[:, None], float("-inf"))
        attn = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).flatten(2)
        x = x + ref_linear(sd, f"{p}.self_attn_proj", attn) * gate_msa[:, None]
        h = F.layer_norm(x, x.shape[-1:], sd[f"{p}.norm2.weight"], sd[f"{p}.norm2.bias"], eps=1e-6)
        x = x + ref_mlp(sd, f"{p}.mlp", h, F.silu) * gate_mlp[:, None]
        i += 1
    return x


def ref_double_block(sd, p, img, txt, vec, rope, key_valid):
    img_mod = ref_linear(sd, f"{p}.img_mod.linear", F.silu(vec)).chunk(6, dim=-1)
    txt_mod = ref_linear(sd, f"{p}.txt_mod.linear", F.silu(vec)).chunk(6, dim=-1)

    def qkv(stream, x, mod):
        x = ref_layer_norm(x) * (1 + mod[1][:, None]) + mod[0][:, None]
        q, k, v = ref_split_heads(ref_linear(sd, f"{p}.{stream}_attn_qkv", x), HEADS)
        return ref_rms(q, sd[f"{p}.{stream}_attn_q_norm.weight"]), ref_rms(k, sd[f"{p}.{stream}_attn_k_norm.weight"]), v

    iq, ik, iv = qkv("img", img, img_mod)
    iq, ik = ref_apply_rope(iq, rope), ref_apply_rope(ik, rope)
    tq, tk, tv = qkv("txt", txt, txt_mod)
    attn = ref_attention(torch.cat([iq, tq], 1), torch.cat([ik, tk], 1), torch.cat([iv, tv], 1), key_valid)
    img_attn, txt_attn = attn[:, : img.shape[1]], attn[:, img.shape[1]:]
    img = img + ref_linear(sd, f"{p}.img_attn_proj", img_attn) * img_mod[2][:, None]
    img = img + ref_mlp(sd, f"{p}.img_mlp", ref_layer_norm(img) * (1 + img_mod[4][:, None]) + img_mod[3][:, None], gelu_tanh) * img_mod[5][:, None]
    txt = txt + ref_linear(sd, f"{p}.txt_attn_proj", txt_attn) * txt_mod[2][:, None]
    txt = txt + ref_mlp(sd, f"{p}.txt_mlp", ref_layer_norm(txt) * (1 + txt_mod[4][:, None]) + txt_mod[3][:, None], gelu_tanh) * txt_mod[5][:, None]
    return img, txt


def ref_single_block(sd, p, x, txt_len, vec, rope, key_valid):
    shift, scale, gate = ref_linear(sd, f"{p}.modulation.linear", F.silu(vec)).chunk(3, dim=-1)
    h = ref_layer_norm(x) * (1 + scale[:, None]) + shift[:, None]
    fused = ref_linear(sd, f"{p}.linear1", h)
    qkv, mlp = fused[..., : 3 * HIDDEN], fused[..., 3 * HIDDEN:]
    q, k, v = ref_split_heads(qkv, HEADS)
    q, k = ref_rms(q, sd[f"{p}.q_norm.weight"]), ref_rms(k, sd[f"{p}.k_norm.weight"])
    q = torch.cat([ref_apply_rope(q[:, :-txt_len], rope), q[:, -txt_len:]], 1)
    k = torch.cat([ref_apply_rope(k[:, :-txt_len], rope), k[:, -txt_len:]], 1)
    attn = ref_attention(q, k, v, key_valid)
    return x + ref_linear(sd, f"{p}.linear2", torch.cat([attn, gelu_tanh(mlp)], -1)) * gate[:, None]


def ref_patch_embed(sd, name, x):
    return F.conv3d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=TINY.patch_size).flatten(2).transpose(1, 2)


def ref_final_layer(sd, x, vec):
    shift, scale = ref_linear(sd, "final_layer.adaLN_modulation.1", F.silu(vec)).chunk(2, dim=-1)
    return ref_linear(sd, "final_layer.linear", ref_layer_norm(x) * (1 + scale[:, None]) + shift[:, None])


def ref_forward(sd, x, t, txt, mask, pooled):
    """The whole Voyager transformer (context variant) written on the official tensors."""
    b, _, frames, height, width = x.shape
    pt, ph, pw = TINY.patch_size
    vec = ref_linear(sd, "time_in.mlp.2", F.silu(ref_linear(sd, "time_in.mlp.0", ref_timestep(t))))
    vec = vec + ref_linear(sd, "vector_in.out_layer", F.silu(ref_linear(sd, "vector_in.in_layer", pooled)))
    txt = ref_text_refiner(sd, txt, t, mask)
    img = ref_patch_embed(sd, "img_in.proj", x)
    rope = ref_rope_tables(frames // pt, height // ph, width // pw)
    txt_valid = mask.bool()
    key_valid = torch.cat([torch.ones(b, img.shape[1], dtype=torch.bool), txt_valid], 1)

    cond_rows = (height - 2) // 2
    cond = ref_patch_embed(sd, "condition_in.proj", x[..., -cond_rows:, :])
    cond_rope = ref_rope_tables(frames // pt, cond_rows // ph, width // pw)
    cond_valid = torch.cat([torch.ones(b, cond.shape[1], dtype=torch.bool), txt_valid], 1)
    cond1, txt1 = ref_double_block(sd, "context_block1", cond, txt, vec, cond_rope, cond_valid)
    cond2 = ref_single_block(sd, "context_block2", torch.cat([cond1, txt1], 1), txt.shape[1], vec, cond_rope, cond_valid)
    cond1 = ref_linear(sd, "zero_linear1", cond1)
    cond2 = ref_linear(sd, "zero_linear2", cond2)
    cond1 = torch.cat([torch.zeros(b, img.shape[1] - cond1.shape[1], HIDDEN), cond1], 1)  # left pad (reference)
    cond2 = torch.cat([torch.zeros(b, img.shape[1] + txt.shape[1] - cond2.shape[1], HIDDEN), cond2], 1)

    img, txt = ref_double_block(sd, "double_blocks.0", img, txt, vec, rope, key_valid)
    img = img + cond1
    seq = torch.cat([img, txt], 1)
    seq = ref_single_block(sd, "single_blocks.0", seq, txt.shape[1], vec, rope, key_valid) + cond2
    out = ref_final_layer(sd, seq[:, : img.shape[1]], vec)  # [B, N, pt*ph*pw*C]
    out = out.reshape(b, frames // pt, height // ph, width // pw, -1, pt, ph, pw)
    out = torch.einsum("nthwcopq->nctohpwq", out)
    return out.reshape(b, -1, frames, height, width)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def official_state():
    return random_official_state_dict(official_transformer_shapes(TINY), seed=7)


@pytest.fixture(scope="module")
def tiny_vae():
    from diffusers import AutoencoderKLHunyuanVideo

    torch.manual_seed(3)
    return AutoencoderKLHunyuanVideo(**TINY_VAE_DIFFUSERS_CONFIG).eval()


@pytest.fixture(scope="module")
def converted(tmp_path_factory, official_state, tiny_vae):
    """Official-layout release (context + plain transformer, VAE) converted through the CLI."""
    src = tmp_path_factory.mktemp("ckpts")
    save_official_transformer(src, official_state, context=True)
    plain = {k: v for k, v in official_state.items() if not k.startswith(("condition_in", "context_block", "zero_linear"))}
    save_official_transformer(src, plain, context=False)
    save_official_vae(src, {k: v.clone() for k, v in tiny_vae.state_dict().items()}, TINY_VAE_OFFICIAL_CONFIG)
    dst = tmp_path_factory.mktemp("out") / "voyager-diffusers"
    # rope axes are not stored in the checkpoint; the tiny head dim 24 has the default split (4, 10, 10)
    assert cli_main(["convert", "--src", str(src), "--dst", str(dst), "--dtype", "fp32", "--max-shard-size", "200KB"]) == 0
    transformer, vae, index = load_converted(dst)
    return src, dst, transformer.eval(), vae.eval(), index


def tiny_inputs(seed=0, latent_height=10):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 50, 2, latent_height, 6, generator=g)  # [B, 50, F, H, W]: depth half = last (H-2)//2 rows
    t = torch.tensor([900.0, 30.0])
    txt = torch.randn(2, 5, TINY.text_states_dim, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    pooled = torch.randn(2, TINY.text_states_dim_2, generator=g)
    return x, t, txt, mask, pooled


# ---------------------------------------------------------------- tests
def test_layout_matches_schema(shared_dir):
    """The official-layout builder reproduces the schema's key names and shapes exactly."""
    schema = json.loads((shared_dir / "data" / "voyager_checkpoint_schema.json").read_text())
    plain = {k: tuple(v) for k, v in schema["transformer"]["keys"].items()}
    context = dict(plain, **{k: tuple(v) for k, v in schema["transformer_context"]["keys"].items()})
    assert official_transformer_shapes() == plain
    assert official_transformer_shapes(OfficialTransformerShape(use_context_block=True)) == context
    assert sum(math.prod(s) for s in context.values()) == schema["transformer_context"]["param_count"]


def test_full_size_mapping_fills_real_model():
    """Every tensor of the real (context) checkpoint maps onto the full-size model, shapes included (meta device)."""
    from voyager_pipe.models.transformer import VoyagerTransformer3DModel

    shapes = official_transformer_shapes(OfficialTransformerShape(use_context_block=True))
    state = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    config = transformer_config_from_official(state)
    assert config["rope_axes_dim"] == (16, 56, 56) and config["num_layers"] == 20 and config["in_channels"] == 50
    converted, unconsumed = convert_transformer_state_dict(state.items(), 3072)
    with torch.device("meta"):
        model = VoyagerTransformer3DModel(**config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert unconsumed == []
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    assert len(expected) == 1260 + 52  # diffusers' 1260 + context branch


def test_cli_conversion_consumes_everything(converted, official_state):
    src, dst, transformer, vae, index = converted
    assert index["_voyager"]["use_context_block"] is True
    assert transformer.config.use_context_block and transformer.config.in_channels == 50
    assert len(list((dst / "transformer").glob("*.safetensors"))) > 1  # sharded
    assert (dst / "transformer" / "diffusion_pytorch_model.safetensors.index.json").is_file()
    # every official scalar lands exactly once in the converted model
    assert sum(p.numel() for p in transformer.parameters()) == sum(v.numel() for v in official_state.values())


def test_patch_embedding_matches_official(converted, official_state):
    transformer = converted[2]
    x = tiny_inputs()[0]
    with torch.no_grad():
        ours = transformer.x_embedder(x)
        ours_cond = transformer.condition_embedder(x)
    torch.testing.assert_close(ours, ref_patch_embed(official_state, "img_in.proj", x))
    torch.testing.assert_close(ours_cond, ref_patch_embed(official_state, "condition_in.proj", x))


def test_double_block_qkv_split_and_qk_norm(converted, official_state):
    """q/k/v of the image and text streams (fused rows split as (K H D)) incl. RMS qk-norm."""
    block = converted[2].transformer_blocks[0].attn
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 7, HIDDEN, generator=g)
    for stream, (to_q, to_k, to_v, norm_q, norm_k) in {
        "img": (block.to_q, block.to_k, block.to_v, block.norm_q, block.norm_k),
        "txt": (block.add_q_proj, block.add_k_proj, block.add_v_proj, block.norm_added_q, block.norm_added_k),
    }.items():
        q, k, v = ref_split_heads(ref_linear(official_state, f"double_blocks.0.{stream}_attn_qkv", x), HEADS)
        q = ref_rms(q, official_state[f"double_blocks.0.{stream}_attn_q_norm.weight"])
        k = ref_rms(k, official_state[f"double_blocks.0.{stream}_attn_k_norm.weight"])
        with torch.no_grad():
            torch.testing.assert_close(norm_q(to_q(x).unflatten(2, (HEADS, -1))), q)
            torch.testing.assert_close(norm_k(to_k(x).unflatten(2, (HEADS, -1))), k)
            torch.testing.assert_close(to_v(x).unflatten(2, (HEADS, -1)), v)


def test_final_layer_modulation_order(converted, official_state):
    transformer = converted[2]
    g = torch.Generator().manual_seed(2)
    x, vec = torch.randn(2, 7, HIDDEN, generator=g), torch.randn(2, HIDDEN, generator=g)
    with torch.no_grad():
        ours = transformer.proj_out(transformer.norm_out(x, vec))
    torch.testing.assert_close(ours, ref_final_layer(official_state, x, vec))


def test_full_forward_matches_official_maths(converted, official_state):
    """Whole model incl. refiner, double/single blocks, RoPE, text mask and the context branch."""
    transformer = converted[2]
    x, t, txt, mask, pooled = tiny_inputs()
    with torch.no_grad():
        ours = transformer(x, t, txt, mask, pooled).sample
    expected = ref_forward(official_state, x, t, txt, mask, pooled)
    assert ours.shape == (2, 16, 2, 10, 6)
    torch.testing.assert_close(ours, expected, atol=2e-4, rtol=1e-4)
    assert (ours - ref_forward({**official_state, "zero_linear2.weight": torch.zeros(HIDDEN, HIDDEN)}, x, t, txt, mask, pooled)).abs().max() > 1e-3  # the branch matters


def test_plain_variant_and_dtype(converted, tmp_path, official_state):
    src = converted[0]
    report = convert_checkpoint(src, tmp_path / "plain", dtype="bf16", include_context=False, include_vae=False, progress=False)
    assert not report.use_context_block and report.vae_source is None
    from safetensors import safe_open

    shards = sorted((tmp_path / "plain" / "transformer").glob("*.safetensors"))
    stored = {k: f.get_slice(k).get_dtype() for shard in shards for f in [safe_open(shard, "pt")] for k in f.keys()}
    # everything bf16 except the released model's fp32 final projection (its modulation norm_out stays bf16)
    assert {k for k, v in stored.items() if v != "BF16"} == {"proj_out.weight", "proj_out.bias"}
    assert stored["proj_out.weight"] == "F32" and stored["norm_out.linear.weight"] == "BF16"
    assert stored["single_transformer_blocks.0.proj_out.weight"] == "BF16"
    transformer, vae, index = load_converted(tmp_path / "plain", torch_dtype=torch.bfloat16, load_vae=False)
    assert vae is None and not transformer.config.use_context_block
    torch.testing.assert_close(transformer.x_embedder.proj.weight, official_state["img_in.proj.weight"].bfloat16())
    # the fp32 projection is loaded unrounded
    assert transformer.proj_out.weight.dtype == torch.float32
    assert torch.equal(transformer.proj_out.weight, official_state["final_layer.linear.weight"])


@pytest.mark.parametrize("damage", ["extra", "missing", "no_module", "bad_qkv"])
def test_mismatches_fail_by_name(tmp_path, official_state, damage):
    state = dict(official_state)
    if damage == "extra":
        state["double_blocks.0.img_attn_extra.weight"] = torch.zeros(3)
    elif damage == "missing":
        del state["single_blocks.0.q_norm.weight"]
    elif damage == "bad_qkv":
        state["double_blocks.0.img_attn_qkv.bias"] = torch.zeros(3 * HIDDEN + 2)
    src = tmp_path / "src"
    if damage == "no_module":
        path = save_official_transformer(src, state, context=True)
        torch.save({"ema": state}, path)
    else:
        save_official_transformer(src, state, context=True)
    with pytest.raises(InputError) as info:
        convert_checkpoint(src, tmp_path / "dst", include_vae=False, progress=False)
    expected_name = {"extra": "double_blocks.0.img_attn_extra.weight", "missing": "single_transformer_blocks.0.attn.norm_q.weight",
                     "no_module": "'module'", "bad_qkv": "double_blocks.0.img_attn_qkv.bias"}[damage]
    assert expected_name in str(info.value)
    assert not (tmp_path / "dst").exists() and not (tmp_path / "dst.partial").exists()


def test_cli_bad_source_exits_2(tmp_path, capsys):
    assert cli_main(["convert", "--src", str(tmp_path), "--dst", str(tmp_path / "out")]) == 2
    assert "mp_rank_00_model_states" in capsys.readouterr().err


def test_vae_round_trip(converted, tiny_vae):
    """The VAE names are diffusers' already: key set and forward are identical after conversion."""
    vae = converted[3]
    assert set(vae.state_dict()) == set(tiny_vae.state_dict())
    assert vae.config.temporal_compression_ratio == 4 and vae.config.spatial_compression_ratio == 8
    video = torch.rand(1, 3, 5, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1  # [B, 3, T, H, W]
    with torch.no_grad():
        ours = vae(video, sample_posterior=False).sample
        expected = tiny_vae(video, sample_posterior=False).sample
    assert ours.shape == (1, 3, 5, 16, 16)
    torch.testing.assert_close(ours, expected)
