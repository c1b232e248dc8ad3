"""Before/after figures of issue 12 items 2 (VAE temporal tiling) and 3 (float32 timestep), tiny random models, CPU.

    python tools/check_voyager_fidelity.py

Item 2: relative difference ``|a - b| / |b|`` of a VAE encode (posterior mean) and decode of 21- and
49-frame clips against the same VAE run without any split, with diffusers' default tile sizes (before)
and with the released sizes set by our loading path (after).

Item 3: over the 50-step shift-7 schedule, how many timesteps change when built in bf16, the largest
change, and the relative difference of the time embedding and of the bf16 transformer's velocity
against an fp32 copy of the same model, with a bf16 timestep (before) and a float32 one (after).
"""

from __future__ import annotations

import copy

import torch

from voyager_pipe.generate.sampler import flow_sigmas
from voyager_pipe.models.converted import apply_vae_tiling
from voyager_pipe.testing.voyager import build_tiny_components


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def vae_figures() -> None:
    vae = build_tiny_components(seed=0).vae
    vae.enable_tiling()  # as the backend runs it (voyager.vae_tiling: true); diffusers' default sizes
    after = copy.deepcopy(vae)
    apply_vae_tiling(after, None)  # the released sizes (256 px, 64 frames), as loading sets them
    reference = copy.deepcopy(vae)
    reference.use_framewise_encoding = reference.use_framewise_decoding = reference.use_tiling = False
    for frames in (21, 49):
        video = torch.rand(1, 3, frames, 32, 32, generator=torch.Generator().manual_seed(frames)) * 2 - 1
        with torch.no_grad():
            latents = reference.encode(video).latent_dist.mean
            decoded = reference.decode(latents).sample
            for label, model in (("before", vae), ("after", after)):
                enc = relative(model.encode(video).latent_dist.mean, latents)
                dec = relative(model.decode(latents).sample, decoded)
                print(f"item 2  {frames:2d} frames  {label:6s}  encode {enc:.3e}  decode {dec:.3e}")


def timestep_figures() -> None:
    sigmas = flow_sigmas(1.0, 0.0, 50, 7.0)[:-1].double()  # [50]
    t32 = (sigmas * 1000.0).float()  # [50]
    t16 = t32.to(torch.bfloat16).float()  # [50]
    changed = int((t16 != t32).sum())
    print(f"item 3  timesteps changed by bf16: {changed} of 50, largest change {float((t16 - t32).abs().max()):.2f}")

    fp32 = build_tiny_components(seed=0).transformer
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    bf16.proj_out.float()  # as loaded: the fp32 modules stay fp32
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 50, 2, 6, 2, generator=g)
    text, mask, pooled = torch.randn(1, 5, 16, generator=g), torch.ones(1, 5), torch.randn(1, 8, generator=g)
    embed = fp32.time_text_embed
    rel_emb, rel_out = {"before": [], "after": []}, {"before": [], "after": []}
    with torch.no_grad():
        for t_exact, t_bf16 in zip(t32, t16):
            t = t_exact.reshape(1)
            ref_emb = embed(t, pooled)[0]
            ref_out = fp32(x, t, text, mask, pooled).sample
            for label, timestep in (("before", t_bf16.reshape(1).to(torch.bfloat16)), ("after", t)):
                rel_emb[label].append(relative(embed(timestep.float(), pooled)[0], ref_emb))
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=label == "after"):
                    out = bf16(x.bfloat16(), timestep, text.bfloat16(), mask, pooled.bfloat16()).sample
                rel_out[label].append(relative(out, ref_out))
    for label in ("before", "after"):
        print(f"item 3  {label:6s}  time embedding rel. diff max {max(rel_emb[label]):.3e}  "
              f"bf16 velocity vs fp32 model: mean {sum(rel_out[label]) / 50:.3e}, max {max(rel_out[label]):.3e}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    vae_figures()
    timestep_figures()
