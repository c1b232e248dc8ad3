#!/usr/bin/env python3
"""Benchmarks of the Voyager backend.

CPU (default): a tiny random model run through the real ClipScheduler + WorldCache + frame
writing; prints the time spent OUTSIDE the networks (render, cache update, fusion, condition
preparation, I/O) as a fraction of the total. Target <= 5% (with a real-size model the networks
dominate far more than with the tiny one, so this is an upper bound of the overhead share).

    python tools/bench_voyager.py [--frames 25] [--size 64] [--steps 4]

GPU: the FULL-SIZE transformer (20 double + 40 single blocks, hidden 3072, 24 heads, 50 input
channels) with random bf16 weights; one CFG-batched denoising step (batch 2) at 512x768 per half
(composite 1040x768) x 49 frames; prints seconds per step, the implied 50-step time, peak memory
and the ratio to a FLOP bound.

    python tools/bench_voyager.py --full-size --device cuda [--attention-backend flash] [--compile]

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


# --------------------------------------------------------------------------- GPU: full-size step
def bench_full_size(args) -> None:
    from voyager_pipe.models.transformer import VoyagerTransformer3DModel

    device = torch.device(args.device)
    if device.type != "cuda" or not torch.cuda.is_available():
        raise SystemExit("--full-size needs --device cuda and a CUDA GPU")
    height, width, frames, text_tokens = 512, 768, 49, 544
    latent_t, latent_h, latent_w = (frames - 1) // 4 + 1, (2 * height + 16) // 8, width // 8
    torch.cuda.reset_peak_memory_stats(device)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build the 13B weights directly in bf16 on the GPU
    try:
        with device:
            model = VoyagerTransformer3DModel(use_context_block=args.context).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    params = sum(p.numel() for p in model.parameters())
    if args.attention_backend:
        model.set_attention_backend(args.attention_backend)
    if args.compile:
        model.compile_repeated_blocks(fullgraph=True)
    x = torch.randn(2, 50, latent_t, latent_h, latent_w, device=device, dtype=torch.bfloat16)
    embeds = torch.randn(2, text_tokens, 4096, device=device, dtype=torch.bfloat16)
    mask = torch.zeros(2, text_tokens, dtype=torch.long, device=device)
    mask[:, :400] = 1
    pooled = torch.randn(2, 768, device=device, dtype=torch.bfloat16)
    timestep = torch.full((2,), 700.0, device=device, dtype=torch.bfloat16)

    def step():
        with torch.no_grad():
            out = model(hidden_states=x, timestep=timestep, encoder_hidden_states=embeds,
                        encoder_attention_mask=mask, pooled_projections=pooled, return_dict=False)[0]
            uncond, cond = out.float().chunk(2)
            return uncond + 6.0 * (cond - uncond)

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize(device)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        step()
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    per_step = statistics.median(times)
    flops = flop_count(latent_t, latent_h, latent_w, text_tokens)
    peak_tflops = args.peak_tflops
    bound = flops / (peak_tflops * 1e12)
    print(f"full-size transformer: {params / 1e9:.2f} B params, bf16, context={args.context}, "
          f"attention={args.attention_backend or 'default SDPA'}, compile={args.compile}")
    print(f"  input [2, 50, {latent_t}, {latent_h}, {latent_w}] ({height}x{width} per half x {frames} frames), text {text_tokens}")
    print(f"  seconds per CFG step (median of {args.repeats}): {per_step:.2f}")
    print(f"  implied 50 steps: {50 * per_step:.0f} s (reference: 1925 s per clip on one H20)")
    print(f"  peak memory: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    print(f"  FLOPs per step: {flops:.3e}; bound at {peak_tflops:.0f} TFLOP/s: {bound:.2f} s; "
          f"ratio measured / bound: {per_step / bound:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-size", action="store_true", help="full-size transformer step on a GPU")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=25, help="CPU: trajectory length")
    parser.add_argument("--clip-len", type=int, default=17, help="CPU: clip length (1 + 4k)")
    parser.add_argument("--size", type=int, default=64, help="CPU: pixels per half (multiple of 16)")
    parser.add_argument("--steps", type=int, default=4, help="CPU: denoising steps per clip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="GPU: untimed steps first")
    parser.add_argument("--context", action="store_true", help="GPU: with the context branch")
    parser.add_argument("--attention-backend", default=None, help="GPU: diffusers attention backend (flash, _native_cudnn, ...)")
    parser.add_argument("--compile", action="store_true", help="GPU: torch.compile the repeated blocks")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="GPU: dense bf16 peak of the card (H100/H200 SXM: 989)")
    args = parser.parse_args()
    if args.full_size:
        bench_full_size(args)
    else:
        bench_cpu(args)


if __name__ == "__main__":
    main()
