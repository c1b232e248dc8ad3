"""VoyagerTransformer3DModel: diffusers' HunyuanVideo transformer + the context branch."""

from __future__ import annotations

import pytest
import torch

from voyager_pipe.models.transformer import VoyagerTransformer3DModel, condition_rows

TINY = dict(
    in_channels=50, out_channels=16, num_attention_heads=2, attention_head_dim=24, num_layers=1,
    num_single_layers=2, num_refiner_layers=1, text_embed_dim=20, pooled_projection_dim=12, rope_axes_dim=(4, 10, 10),
)


def inputs(seed=0, height=10):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(2, 50, 2, height, 6, generator=g),  # [B, 50, F, H, W]
        torch.tensor([700.0, 10.0]),  # [B]
        torch.randn(2, 4, 20, generator=g),  # [B, L, text]
        torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]),  # [B, L]
        torch.randn(2, 12, generator=g),  # [B, pooled]
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VoyagerTransformer3DModel(**TINY, use_context_block=True).eval()


def test_condition_rows():
    # 512-px halves: (2 * 512 + 16) / 8 = 130 latent rows -> 64 depth rows
    assert condition_rows(130) == 64 and condition_rows(10) == 4


def test_zero_init_branch_equals_diffusers(model):
    """Freshly built, the context projections are zero: output equals diffusers' model with the same weights."""
    from diffusers import HunyuanVideoTransformer3DModel

    assert torch.count_nonzero(model.context_proj_double.weight) == 0 and torch.count_nonzero(model.context_proj_single.bias) == 0
    base = HunyuanVideoTransformer3DModel(**TINY, guidance_embeds=False, image_condition_type="latent_concat").eval()
    missing, unexpected = base.load_state_dict(model.state_dict(), strict=False)
    assert missing == [] and all(k.startswith(("condition_embedder", "context_")) for k in unexpected)
    with torch.no_grad():
        ours = model(*inputs()).sample
        theirs = base(*inputs()).sample
    assert ours.shape == (2, 16, 2, 10, 6)
    torch.testing.assert_close(ours, theirs)


def test_context_branch_reads_only_depth_half():
    """The branch sees the last (H - 2) // 2 latent rows only and lands on the last image tokens (public forward)."""
    torch.manual_seed(2)
    model = VoyagerTransformer3DModel(**TINY, use_context_block=True).eval()
    torch.nn.init.normal_(model.context_proj_double.weight)  # zero at init: make the residuals visible
    torch.nn.init.normal_(model.context_proj_single.weight)
    seen = {}
    model.context_proj_double.register_forward_hook(lambda m, args, out: seen.__setitem__("double", out.clone()))
    model.context_proj_single.register_forward_hook(
        lambda m, args, out: seen.setdefault("single", []).append(out.clone()))  # visual tokens, then text tokens

    def branch(x):
        seen.clear()
        with torch.no_grad():
            out = model(x, *inputs(1)[1:]).sample
        return [seen["double"], *seen["single"]], out

    x = inputs(1)[0]
    ref, ref_out = branch(x)
    top = x.clone()
    top[..., : 10 - condition_rows(10), :] += 1.0  # RGB half + separator
    same, top_out = branch(top)
    bottom = x.clone()
    bottom[..., -1, :] += 1.0  # a depth row
    changed, _ = branch(bottom)
    for a, b in zip(ref, same):
        torch.testing.assert_close(a, b)
    assert (top_out - ref_out).abs().max() > 1e-4  # the main branch does see the top half
    assert ref[0].shape == (2, 2 * (condition_rows(10) // 2) * 3, 48)  # [B, F * h/2 * W/2, D]
    assert all((a - b).abs().max() > 1e-4 for a, b in zip(ref, changed))


def test_trained_projection_changes_output(model):
    """A non-zero context projection (as in the trained checkpoint) changes the prediction."""
    torch.manual_seed(5)
    trained = VoyagerTransformer3DModel(**TINY, use_context_block=True).eval()
    trained.load_state_dict(model.state_dict())
    torch.nn.init.normal_(trained.context_proj_double.weight, std=0.5)
    x, t, txt, mask, pooled = inputs(2)
    with torch.no_grad():
        base = model(x, t, txt, mask, pooled).sample
        ours = trained(x, t, txt, mask, pooled).sample
    assert (ours - base).abs().max() > 1e-3


def test_save_and_load_round_trip(model, tmp_path):
    torch.manual_seed(1)
    torch.nn.init.normal_(model.context_proj_single.weight, std=0.2)
    model.save_pretrained(tmp_path / "t")
    loaded = VoyagerTransformer3DModel.from_pretrained(tmp_path / "t").eval()
    assert loaded.config.use_context_block is True and loaded.config.in_channels == 50
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs()).sample, model(*inputs()).sample)
    torch.nn.init.zeros_(model.context_proj_single.weight)


def test_gradient_checkpointing_same_output(model):
    model.enable_gradient_checkpointing()
    try:
        x = inputs(3)
        out_ckpt = model(*x).sample
        out_ckpt.sum().backward()
        assert model.condition_embedder.proj.weight.grad is not None
    finally:
        model.disable_gradient_checkpointing()
        model.zero_grad(set_to_none=True)
    with torch.no_grad():
        torch.testing.assert_close(out_ckpt.detach(), model(*x).sample)


def test_too_small_for_context_branch(model):
    x, t, txt, mask, pooled = inputs(height=4)  # (4 - 2) // 2 = 1 row < patch 2
    with pytest.raises(ValueError, match="too small"):
        model(x, t, txt, mask, pooled)
