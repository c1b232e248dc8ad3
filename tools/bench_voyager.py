#!/usr/bin/env python3
"""Benchmarks of the Voyager backend.

CPU (default): a tiny random model run through the real ClipScheduler + WorldCache + frame
writing; prints the time spent OUTSIDE the networks (render, cache update, fusion, condition
preparation, I/O) as a fraction of the total. Target <= 5% (with a real-size model the networks
dominate far more than with the tiny one, so this is an upper bound of the overhead share).

    python tools/bench_voyager.py [--frames 25] [--size 64] [--steps 4]

Settings table (issue 13): the FULL-SIZE transformer (20 double + 40 single blocks, hidden 3072,
24 heads, 50 input channels, context branch) with random bf16 weights, CFG-batched steps (batch 2)
at 512x768 per half (composite 1040x768) x 49 frames; one row per memory/speed setting (none,
group, fp8, fp8+group, each cache, regional compile): estimated and measured peak GB, seconds per
step, implied 50-step clip, share of attention computed. Targets: a setting within 24 GB at
<= 1.5x the fastest; the best cache >= 1.8x faster than none.

    python tools/bench_voyager.py --full-size --device cuda [--attention-backend _native_cudnn] [--only none,fp8]
    python tools/bench_voyager.py --settings            # the same table on a small model, CPU

FLOP count (multiply-adds x 2), per forward of one batch item, S = N + L tokens
(N = T_lat * h/2 * w/2 image tokens, L text tokens), D = 3072, MLP ratio 4:
  double block: img + txt streams each qkv 3D^2 + proj D^2 + MLP 8D^2 = 12 D^2 MAC/token -> 24 D^2 S
                attention QK^T + AV: 2 * S^2 * D MAC -> 4 S^2 D
  single block: linear1 D -> 7D (qkv + MLP in), linear2 5D -> D: 12 D^2 MAC/token -> 24 D^2 S; attention 4 S^2 D
  total ~ 60 * (24 D^2 S + 4 S^2 D) (+ embeddings / final layer / token refiner, < 0.1%), x2 for CFG.
At 512x768x49: N = 13 * 65 * 48 = 40560, L = 544 -> about 3.6e15 FLOP per CFG step.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def flop_count(latent_frames: int, latent_height: int, latent_width: int, text_tokens: int,
               hidden: int = 3072, blocks: int = 60, patch: int = 2, batch: int = 2) -> float:
    """FLOPs of one CFG step of the transformer (see the module docstring)."""
    tokens = latent_frames * (latent_height // patch) * (latent_width // patch) + text_tokens
    per_block = 24 * hidden**2 * tokens + 4 * tokens**2 * hidden
    return float(batch * blocks * per_block)


# --------------------------------------------------------------------------- CPU: overhead share
def bench_cpu(args) -> None:
    from voyager_pipe.camera.cameras import Cameras
    from voyager_pipe.generate.config import GenerateConfig
    from voyager_pipe.generate.scheduler import ClipScheduler
    from voyager_pipe.generate.voyager import VoyagerGenerator
    from voyager_pipe.io.frames import write_frames
    from voyager_pipe.testing.voyager import build_tiny_components
    from voyager_pipe.models.text import PromptEmbeddings, TextConditioning
    from voyager_pipe.world.cache import WorldCache

    torch.manual_seed(0)
    size = args.size
    comps = build_tiny_components()
    prompt = lambda n: PromptEmbeddings(torch.randn(1, n, 16), torch.ones(1, n, dtype=torch.long), torch.randn(1, 8))  # noqa: E731
    gen = VoyagerGenerator(comps.transformer, comps.vae, TextConditioning(prompt(8), prompt(6)))

    # time spent inside the networks
    model_time = [0.0]

    def timed(fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                model_time[0] += time.perf_counter() - t
        return wrapper

    comps.transformer.forward = timed(comps.transformer.forward)
    comps.vae.encode = timed(comps.vae.encode)
    comps.vae.decode = timed(comps.vae.decode)

    n = args.frames
    K = torch.tensor([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1]], dtype=torch.float64).expand(n, 3, 3).clone()
    w2c = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    w2c[:, 2, 3] = -0.03 * torch.arange(n, dtype=torch.float64)
    cameras = Cameras(K=K, w2c=w2c, width=size, height=size)
    ref_rgb = torch.rand(3, size, size)
    ref_depth = 2 + torch.rand(1, size, size)
    cfg = GenerateConfig(backend="voyager", clip_len=args.clip_len, steps=args.steps, refine_steps=2, progress=False)

    totals, shares = [], []
    for _ in range(args.repeats):
        model_time[0] = 0.0
        t0 = time.perf_counter()
        cache = WorldCache()
        cache.update(ref_rgb[None], ref_depth[None], cameras[0:1])
        with tempfile.TemporaryDirectory() as out:
            start = 0
            for result in ClipScheduler(gen, cfg).run(cameras, cache, ref_rgb, ref_depth, torch.Generator().manual_seed(0)):
                write_frames(out, result.rgb, result.depth, start=start)
                start += result.rgb.shape[0]
        total = time.perf_counter() - t0
        totals.append(total)
        shares.append(1 - model_time[0] / total)
    print(f"cpu tiny model: {n} frames at {size}x{size} (composite {2 * size + 16}x{size}), clip {args.clip_len}, "
          f"{args.steps} steps + 2 refine, CFG batched")
    print(f"  total per run (median of {args.repeats}): {statistics.median(totals):.3f} s")
    print(f"  time outside the networks: {100 * statistics.median(shares):.1f}% (target <= 5%)")


# --------------------------------------------------------------------------- memory / speed settings table
#: (label, voyager.* settings) rows of the settings table (issue 13).
SETTINGS: tuple[tuple[str, dict], ...] = (
    ("none", {}),
    ("group", {"offload": "group"}),
    ("fp8", {"weights": "fp8"}),
    ("fp8+group", {"weights": "fp8", "offload": "group"}),
    ("fp8+group+first_block", {"weights": "fp8", "offload": "group", "cache": "first_block"}),
    ("first_block", {"cache": "first_block"}),
    ("mag", {"cache": "mag", "cache_options": {"mag_ratios": [1.0] * 50}}),
    ("taylorseer", {"cache": "taylorseer", "cache_options": {"cache_interval": 5, "disable_cache_before_step": 3}}),
    ("faster", {"cache": "faster"}),
    ("regional compile", {"compile": "regional"}),
    ("fp8+group+regional compile", {"weights": "fp8", "offload": "group", "compile": "regional"}),
)


def _model_config(full_size: bool) -> dict:
    if full_size:  # the released Voyager transformer (13B; context branch as in the _context checkpoint)
        return {"use_context_block": True}
    return dict(num_attention_heads=4, attention_head_dim=32, num_layers=2, num_single_layers=2, num_refiner_layers=1,
                text_embed_dim=32, pooled_projection_dim=16, rope_axes_dim=(8, 12, 12), use_context_block=True)


def bench_settings(args) -> None:
    """One row per setting: estimated / measured peak, seconds per CFG-batched step, implied 50-step clip."""
    from voyager_pipe.models.config import VoyagerConfig
    from voyager_pipe.models.memory import VoyagerRuntime, apply_weight_format, estimate_memory
    from voyager_pipe.models.transformer import VoyagerTransformer3DModel

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.full_size and not (cuda and torch.cuda.is_available()):
        raise SystemExit("--full-size needs --device cuda and a CUDA GPU (the CPU variant: drop --full-size)")
    if not cuda:
        torch.set_num_threads(max(1, args.threads))
    if args.full_size:
        height, width, frames, text_tokens = 512, 768, 49, 544
    else:
        height, width, frames, text_tokens = args.size, args.size, args.clip_len, 16
    latent = ((frames - 1) // 4 + 1, (2 * height + 16) // 8, width // 8)  # T_lat, h, w of the composite
    config = _model_config(args.full_size)
    with torch.device("meta"):
        master_meta = VoyagerTransformer3DModel(**config)
    torch.manual_seed(0)
    master = {}  # one set of random bf16 weights on the CPU, shared by every setting (load_state_dict assign)
    for name, tensor in master_meta.state_dict().items():
        master[name] = (torch.randn(tensor.shape, dtype=torch.float32) * 0.02).to(torch.bfloat16)
    dtype = torch.bfloat16
    text_dim, pooled_dim = master_meta.config.text_embed_dim, master_meta.config.pooled_projection_dim
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 16, *latent, generator=gen)  # [1, 16, T, h, w]
    conditioning = torch.randn(1, 34, *latent, generator=gen)  # [1, 34, T, h, w]
    embeds = torch.randn(2, text_tokens, text_dim, generator=gen).to(device, dtype)  # [2, L, D_text]
    mask = torch.ones(2, text_tokens, dtype=torch.long, device=device)  # [2, L]
    mask[0, text_tokens * 3 // 4:] = 0  # padded negative prompt
    pooled = torch.randn(2, pooled_dim, generator=gen).to(device, dtype)  # [2, D_pooled]

    only = set(args.only.split(",")) if args.only else None
    rows = []
    for label, settings in SETTINGS:
        if only is not None and label not in only:
            continue
        if "compile" in settings and not (cuda or args.compile):
            continue  # CPU inductor compile of every block takes minutes on a shared CPU; --compile to include
        cfg = VoyagerConfig(guidance_scale=6.0, memory_check=False, attention_backend=args.attention_backend, **settings)
        with torch.device("meta"):
            model = VoyagerTransformer3DModel(**config).eval()
        model.load_state_dict(master, assign=True)
        apply_weight_format(model, cfg.weights, dtype)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        computed = [0, 0]  # rows through the main blocks' query projections: [done, full]
        for name, module in model.named_modules():
            if name.endswith("attn.to_q") and name.split(".")[0] in ("transformer_blocks", "single_transformer_blocks"):
                module.register_forward_hook(lambda _m, a, _o: computed.__setitem__(0, computed[0] + a[0].shape[0]))
        runtime = VoyagerRuntime(model, torch.nn.Identity(), device, cfg)
        blocks = len(model.transformer_blocks) + len(model.single_transformer_blocks)
        steps = args.cache_steps if cfg.cache != "none" else args.warmup + args.repeats
        sigmas = torch.linspace(1.0, 0.0, steps + 1).tolist()
        times = []
        x = x0.to(device)
        runtime.begin_denoise(steps, tuple(x.shape))
        for i in range(steps):
            t = time.perf_counter()
            with torch.no_grad(), runtime.use("transformer", timestep=sigmas[i] * 1000.0) as transformer:
                model_input = torch.cat([x, conditioning.to(device)], dim=1).expand(2, -1, -1, -1, -1).to(dtype)
                timestep = torch.full((2,), sigmas[i] * 1000.0, device=device)
                with torch.autocast(device.type, dtype=dtype):
                    out = transformer(hidden_states=model_input, timestep=timestep, encoder_hidden_states=embeds,
                                      encoder_attention_mask=mask, pooled_projections=pooled, return_dict=False)[0]
                uncond, cond = out.float().chunk(2)
                x = x + (sigmas[i + 1] - sigmas[i]) * (uncond + 6.0 * (cond - uncond))
            if cuda:
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t)
            computed[1] += 2 * blocks
        timed = times[args.warmup:] if cfg.cache == "none" else times  # a cache's speed is its whole trajectory's
        per_step = statistics.mean(timed)
        estimate = estimate_memory(model, None, cfg, latent, text_tokens=text_tokens, device_type=device.type)
        peak = torch.cuda.max_memory_allocated(device) / 1e9 if cuda else None
        rows.append((label, estimate.peak / 1e9, peak, per_step, 50 * per_step, computed[0] / max(computed[1], 1)))
        del runtime, model, transformer
        gc.collect()  # group offloading's pinned CPU copies go with the model
        if cuda:
            torch.cuda.empty_cache()

    where = "GPU " + torch.cuda.get_device_name(device) if cuda else "CPU (small model, NOT the full-size figures)"
    print(f"{where}: {sum(v.numel() for v in master.values()) / 1e9:.3f} B params, {height}x{width} per half x {frames} "
          f"frames (latent {latent}), {text_tokens} text tokens, CFG batched (batch 2), random bf16 weights")
    hidden = master_meta.config.num_attention_heads * master_meta.config.attention_head_dim
    flops = flop_count(*latent, text_tokens, hidden=hidden, blocks=len(master_meta.transformer_blocks)
                       + len(master_meta.single_transformer_blocks))
    print(f"FLOPs per CFG step {flops:.3e}: {flops / (args.peak_tflops * 1e12):.3f} s at {args.peak_tflops:.0f} TFLOP/s")
    print(f"caches: mean over a {args.cache_steps}-step trajectory (random weights: the skip pattern is not a trained "
          "model's; 'computed' = share of the main blocks' attention rows run)")
    print(f"{'setting':28s} {'est. peak GB':>12s} {'peak GB':>8s} {'s/step':>8s} {'s/clip(50)':>10s} {'computed':>8s}")
    fastest = min(r[3] for r in rows) if rows else 0.0
    for label, est, peak, per_step, per_clip, share in rows:
        peak_text = f"{peak:8.2f}" if peak is not None else f"{'n/a':>8s}"
        print(f"{label:28s} {est:12.2f} {peak_text} {per_step:8.3f} {per_clip:10.1f} {share:8.2f}")
    if cuda and rows:
        fits = [r for r in rows if r[2] is not None and r[2] <= 24.0]
        best = min(fits, key=lambda r: r[3]) if fits else None
        print(f"fastest: {fastest:.3f} s/step; fastest within 24 GB: "
              + (f"{best[0]} at {best[3] / fastest:.2f}x the fastest" if best else "none"))
    no_cache = next((r[3] for r in rows if r[0] == "none"), None)
    caches = [r for r in rows if r[0] in ("first_block", "mag", "taylorseer", "faster")]
    if no_cache and caches:
        best_cache = min(caches, key=lambda r: r[3])
        print(f"best cache: {best_cache[0]}, {no_cache / best_cache[3]:.2f}x faster than no cache (target >= 1.8x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-size", action="store_true", help="settings table of the full-size transformer (GPU)")
    parser.add_argument("--settings", action="store_true", help="settings table on a small model (CPU or GPU)")
    parser.add_argument("--only", default=None, help="settings table: comma-separated row labels to run")
    parser.add_argument("--cache-steps", type=int, default=10, help="settings table: trajectory length of cache rows")
    parser.add_argument("--threads", type=int, default=1, help="CPU settings table: torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=25, help="CPU: trajectory length")
    parser.add_argument("--clip-len", type=int, default=17, help="CPU: clip length (1 + 4k)")
    parser.add_argument("--size", type=int, default=64, help="CPU: pixels per half (multiple of 16)")
    parser.add_argument("--steps", type=int, default=4, help="CPU: denoising steps per clip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="GPU: untimed steps first")
    parser.add_argument("--attention-backend", default=None, help="GPU: diffusers attention backend (flash, _native_cudnn, ...)")
    parser.add_argument("--compile", action="store_true", help="CPU settings table: include the compile rows (slow)")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the card (H100/H200 SXM: 989)")
    args = parser.parse_args()
    if args.full_size or args.settings:
        bench_settings(args)
    else:
        bench_cpu(args)


if __name__ == "__main__":
    main()
