"""The whole Voyager path on a tiny random model: official release layout -> `voyager-pipe convert`
-> `voyager-pipe gen --backend voyager` (loading by from_pretrained, precomputed prompt embeddings,
ClipScheduler over several clips, world cache, outputs)."""

from __future__ import annotations

import json

import numpy as np
import torch

from voyager_pipe.cli import main
from voyager_pipe.testing.voyager import save_tiny_release, tiny_official_shape

SIZE, FRAMES = 32, 9
TINY = tiny_official_shape()


def _inputs(root):
    import cv2

    from voyager_pipe.camera.presets import make_preset
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.models.text import PromptEmbeddings, TextConditioning, save_prompt_embeddings

    g = torch.Generator().manual_seed(0)
    cv2.imwrite(str(root / "image.png"), np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    np.save(root / "depth.npy", (2.0 + np.random.default_rng(1).random((SIZE, SIZE))).astype(np.float32))
    write_trajectory(root / "traj.json", make_preset("forward", FRAMES, SIZE, SIZE, distance=0.3))

    def prompt(length):
        return PromptEmbeddings(torch.randn(1, length, TINY.text_states_dim, generator=g), torch.ones(1, length),
                                torch.randn(1, TINY.text_states_dim_2, generator=g))

    save_prompt_embeddings(root / "prompt.pt", TextConditioning(positive=prompt(5), negative=prompt(3)))


def test_convert_then_gen_with_the_voyager_backend(tmp_path):
    release, model = tmp_path / "ckpts", tmp_path / "voyager-diffusers"
    save_tiny_release(release)
    assert main(["convert", "--src", str(release), "--dst", str(model), "--dtype", "fp32"]) == 0
    _inputs(tmp_path)

    def gen(out):
        return main(["gen", "--image", str(tmp_path / "image.png"), "--traj", str(tmp_path / "traj.json"),
                     "--depth", str(tmp_path / "depth.npy"), "--out", str(out), "--backend", "voyager", "--no-progress",
                     "--set", "device=cpu", "--set", f"voyager.model_dir={model}",
                     "--set", f"voyager.prompt_embeds={tmp_path / 'prompt.pt'}", "--set", "voyager.dtype=fp32",
                     "--set", "voyager.vae_dtype=fp32", "--set", "voyager.vae_tiling=false",
                     "--set", "generate.clip_len=5", "--set", "generate.steps=2", "--set", "generate.refine_steps=1"])

    assert gen(tmp_path / "a") == 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["backend"] == "voyager" and run["frames"] == FRAMES and run["clips"] >= 2
    frames = sorted((tmp_path / "a" / "frames").glob("*.png"))
    depth = np.stack([np.load(p) for p in sorted((tmp_path / "a" / "depth").glob("*.npy"))])
    assert len(frames) == FRAMES and depth.shape == (FRAMES, SIZE, SIZE)
    assert np.isfinite(depth).all() and (depth > 0).mean() > 0.5  # generated depth mapped back to z-depth
    # same seed, same result
    assert gen(tmp_path / "b") == 0
    for name in ("frames/00004.png", "depth/00008.npy", "world.ply"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
