"""Context and CFG parallelism on CPU: 2 processes on gloo against 1 process.

What runs here: Ulysses context parallelism (all-to-all on gloo, SDPA "native" attention) over a
tiny Voyager transformer with and without its context branch, CFG parallelism, both through
diffusers' enable_parallelism hooks, and a whole `torchrun -m voyager_pipe gen` run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from voyager_pipe.distributed import ParallelConfig, degrees
from voyager_pipe.errors import InputError

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _transformer_case(seed: int, use_context_block: bool):
    from voyager_pipe.testing.voyager import build_tiny_components

    transformer = build_tiny_components(seed=0, use_context_block=use_context_block).transformer
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # the context projections start at zero: give every weight a value that matters
        for param in transformer.parameters():
            param.copy_(0.2 * torch.randn(param.shape, generator=gen))
    inputs = dict(
        hidden_states=torch.randn(2, 50, 2, 6, 4, generator=gen),  # [B, C, T_lat, h, w]: 6 video / 2 context tokens per frame... x2
        timestep=torch.tensor([700.0, 700.0]),
        encoder_hidden_states=torch.randn(2, 5, 16, generator=gen),  # [B, L, E]: L = 5 is padded to 6 for the split
        encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),  # uncond / cond: padded text is masked
        pooled_projections=torch.randn(2, 8, generator=gen),
    )
    return transformer, inputs


def _rank_main(rank: int, port: int, out_dir: str) -> None:
    """One rank: the same transformer forward, single-process reference first, then each parallel layout."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from voyager_pipe.distributed import init_from_env
    from voyager_pipe.models.parallel import parallelize_transformer

    init_from_env(ParallelConfig())
    results = {}
    for name, use_context_block, config in [("ulysses_context", True, ParallelConfig(ulysses_degree=2)),
                                            ("ulysses_plain", False, ParallelConfig(ulysses_degree=2)),
                                            ("cfg_context", True, ParallelConfig(cfg=True))]:
        transformer, inputs = _transformer_case(seed=1, use_context_block=use_context_block)
        with torch.no_grad():
            reference = transformer(**inputs, return_dict=False)[0]  # [2, 16, 2, 6, 4]
            assert parallelize_transformer(transformer, config)
            parallel = transformer(**inputs, return_dict=False)[0]
            again = transformer(**inputs, return_dict=False)[0]  # the hooks keep no state between calls
        results[name] = torch.stack([reference, parallel, again])
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    # Both ranks reach this point before either tears the group down: otherwise the first to exit can
    # close gloo's connection while the other still uses it (seen once in CI as a SIGABRT, "terminate
    # called without an active exception", in rank 0 after its results were saved).
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def test_degrees_check_the_process_count():
    assert degrees(ParallelConfig(), 4) == (1, 1, 4)
    assert degrees(ParallelConfig(cfg=True), 4) == (2, 1, 2)
    with pytest.raises(InputError, match="parallel.ulysses_degree: 3 x cfg 1 must equal the number of processes"):
        degrees(ParallelConfig(ulysses_degree=3), 2)
    with pytest.raises(InputError, match="parallel.ring_degree"):
        degrees(ParallelConfig(ring_degree=2), 2)
    with pytest.raises(InputError, match="parallel.cfg: needs an even number"):
        degrees(ParallelConfig(cfg=True), 3)


def test_two_gloo_ranks_match_one_process(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in ("ulysses_context", "ulysses_plain", "cfg_context"):
        reference, parallel, again = rank0[name]
        assert reference.abs().max() > 1.0  # a real signal, not all zeros
        # float32 on CPU: only the order of the attention sums differs (keys arrive per rank)
        torch.testing.assert_close(parallel, reference, atol=1e-5, rtol=1e-5, msg=name)
        assert torch.equal(again, parallel), name
        assert torch.equal(rank1[name][1], parallel), name  # every rank ends with the same gathered output


# --------------------------------------------------------------------------- torchrun -m voyager_pipe gen
SIZE = 32  # 32 x 32 image: composite latent 10 x 4 -> 20 video and 8 context-branch tokens per clip, both even


def _tiny_model_and_inputs(root: Path) -> None:
    """A tiny random release converted with `voyager-pipe convert` (context branch on), inputs, prompt embeddings."""
    import cv2

    from voyager_pipe.camera.presets import make_preset
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.cli import main
    from voyager_pipe.models.text import PromptEmbeddings, TextConditioning, save_prompt_embeddings
    from voyager_pipe.testing.voyager import save_tiny_release, tiny_official_shape

    save_tiny_release(root / "ckpts")  # every weight random, the context projections included
    assert main(["convert", "--src", str(root / "ckpts"), "--dst", str(root / "model"), "--dtype", "fp32"]) == 0
    cv2.imwrite(str(root / "image.png"), np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    np.save(root / "depth.npy", (2.0 + np.random.default_rng(1).random((SIZE, SIZE))).astype(np.float32))
    write_trajectory(root / "traj.json", make_preset("forward", 9, SIZE, SIZE, distance=0.3))
    shape, gen = tiny_official_shape(), torch.Generator().manual_seed(5)

    def prompt(length: int) -> PromptEmbeddings:
        mask = torch.ones(1, length)
        mask[:, length - 1:] = 0  # one padded token: the text mask matters
        return PromptEmbeddings(torch.randn(1, length, shape.text_states_dim, generator=gen), mask,
                                torch.randn(1, shape.text_states_dim_2, generator=gen))

    save_prompt_embeddings(root / "prompt.pt", TextConditioning(positive=prompt(5), negative=prompt(4)))


def _gen_args(root: Path, out: Path, *sets: str) -> list[str]:
    args = ["gen", "--image", str(root / "image.png"), "--traj", str(root / "traj.json"), "--depth", str(root / "depth.npy"),
            "--out", str(out), "--backend", "voyager", "--no-progress"]
    for item in ("device=cpu", f"voyager.model_dir={root / 'model'}", f"voyager.prompt_embeds={root / 'prompt.pt'}",
                 "voyager.dtype=fp32", "voyager.vae_dtype=fp32", "voyager.vae_tiling=false", "generate.clip_len=5",
                 "generate.steps=2", "generate.refine_steps=1", *sets):
        args += ["--set", item]
    return args


def _torchrun(root: Path, out: Path, *sets: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
               "-m", "voyager_pipe", *_gen_args(root, out, *sets)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=root)


def test_torchrun_gen_matches_one_process_and_only_rank0_writes(tmp_path):
    from voyager_pipe.cli import main
    from voyager_pipe.io.frames import read_frame_folder

    _tiny_model_and_inputs(tmp_path)
    assert main(_gen_args(tmp_path, tmp_path / "single")) == 0
    before = set(os.listdir(tmp_path))
    result = _torchrun(tmp_path, tmp_path / "ulysses", "parallel.ulysses_degree=2")  # CFG parallel: see the test above
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(os.listdir(tmp_path)) - before == {"ulysses"}  # rank 1 wrote nothing beside the output
    single, parallel = read_frame_folder(tmp_path / "single"), read_frame_folder(tmp_path / "ulysses")
    assert single.rgb.shape == parallel.rgb.shape == (9, 3, SIZE, SIZE)
    # 8-bit frames at most one level apart (float32 attention sums in another order); depth within 1e-3 relative
    assert np.abs(single.rgb.numpy() * 255 - parallel.rgb.numpy() * 255).max() <= 1.0 + 1e-4
    torch.testing.assert_close(parallel.depth, single.depth, rtol=1e-3, atol=1e-4)
    assert (tmp_path / "ulysses" / "world.ply").is_file() and (tmp_path / "ulysses" / "run.json").is_file()


def test_torchrun_error_stops_every_rank_with_one_line(tmp_path):
    _tiny_model_and_inputs(tmp_path)
    result = _torchrun(tmp_path, tmp_path / "bad", "parallel.ulysses_degree=3")
    assert result.returncode != 0
    line = "voyager-pipe gen: error: parallel.ulysses_degree: 3 x cfg 1 must equal the number of processes (2)"
    assert line in result.stderr
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()
