"""One video on several processes: ``torchrun --nproc-per-node N -m voyager_pipe gen ...``.

Every rank runs the whole ``gen`` pipeline on the same inputs with the same seed, so the noise,
the depth, the world cache and the rendered conditions are the same on every rank; only the
transformer is split (:mod:`voyager_pipe.models.parallel`: context parallelism over the video
tokens with diffusers' hooks, optionally the conditional / unconditional passes of CFG on
different ranks). Why the cache and rendering run on every rank rather than on rank 0 with a
broadcast: they take milliseconds to seconds per clip against minutes for the transformer,
replicating them needs no extra communication and keeps every rank able to ``--resume`` from the
same state file; the transformer's input is still broadcast from rank 0 before each call, so a
last-bit difference between GPUs cannot make the ranks disagree.

Only rank 0 writes the output folder: the other ranks write into a private scratch folder that is
deleted when the process exits (:func:`rank_output_dir`).

An error on any rank: that rank prints its one-line message and exits with its code; torchrun
(and ``torch.multiprocessing``) then stop the other ranks. ``parallel.timeout_s`` bounds how long
a rank waits in a collective for a peer that is gone (launchers that do not stop the others).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from voyager_pipe.errors import InputError
from voyager_pipe.options import option


@dataclass
class ParallelConfig:
    """Section ``parallel`` (read by voyager_pipe.distributed and voyager_pipe.models.parallel)."""

    ulysses_degree: Optional[int] = option(
        None, "Ulysses (all-to-all) context-parallel degree under torchrun (null = every rank not used by cfg)", min=1, max=1024)
    ring_degree: int = option(1, "ring-attention degree; only 1 is accepted (see docs/distributed.md)", min=1, max=1024)
    cfg: bool = option(False, "classifier-free guidance in parallel: conditional and unconditional passes on different ranks")
    timeout_s: int = option(1800, "seconds a rank waits in a collective before giving up (a peer died)", min=10, max=86400)


@dataclass(frozen=True)
class World:
    rank: int
    local_rank: int
    size: int


def world() -> World:
    """This process's place in a torchrun launch (rank 0 of 1 without torchrun)."""
    return World(rank=int(os.environ.get("RANK", 0)), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                 size=int(os.environ.get("WORLD_SIZE", 1)))


def is_main_process() -> bool:
    return world().rank == 0


def init_from_env(config: ParallelConfig) -> World:
    """Join the process group torchrun describes (NCCL on CUDA, else gloo); nothing without torchrun."""
    import datetime

    import torch
    import torch.distributed as dist

    here = world()
    if here.size == 1 or dist.is_initialized():
        return here
    if here.rank != 0:
        os.environ.setdefault("TQDM_DISABLE", "1")  # one set of progress bars (rank 0's)
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(here.local_rank)  # "cuda" now means this rank's GPU
        backend = "nccl"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=config.timeout_s))
    atexit.register(_destroy)
    return here


def _destroy() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def degrees(config: ParallelConfig, world_size: int) -> tuple[int, int, int]:
    """``(cfg, ring, ulysses)`` degrees whose product is ``world_size``; InputError naming the field otherwise."""
    cfg = 2 if config.cfg else 1
    if config.ring_degree != 1:
        raise InputError(f"parallel.ring_degree: {config.ring_degree}: only 1 is supported (diffusers' ring attention applies "
                         "one key mask to every rotated KV block, which is wrong for the padded text tokens); use parallel.ulysses_degree")
    if world_size % cfg:
        raise InputError(f"parallel.cfg: needs an even number of processes, got {world_size}")
    ulysses = config.ulysses_degree if config.ulysses_degree is not None else world_size // cfg
    if ulysses < 1 or cfg * ulysses != world_size:
        raise InputError(f"parallel.ulysses_degree: {ulysses} x cfg {cfg} must equal the number of processes ({world_size})")
    return cfg, 1, ulysses


# --------------------------------------------------------------------------- outputs
_SCRATCH: Optional[tempfile.TemporaryDirectory] = None


def rank_output_dir(out_dir: str | Path, resume: bool = False, state_dir: str = "state") -> Path:
    """The folder this rank writes ``out_dir`` to: ``out_dir`` itself on rank 0 (or without torchrun),
    a private scratch copy elsewhere (removed at exit; seeded with rank 0's resume state, the
    ``state_dir`` subfolder of ``<out_dir>.partial``)."""
    from voyager_pipe.io.atomic import MARKER, partial_path

    global _SCRATCH
    out_dir = Path(out_dir)
    if is_main_process():
        return out_dir
    if _SCRATCH is None:
        _SCRATCH = tempfile.TemporaryDirectory(prefix=f"voyager_pipe_rank{world().rank}_")
    scratch = Path(_SCRATCH.name) / out_dir.name
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(partial_path(scratch), ignore_errors=True)
    if resume and (partial_path(out_dir) / state_dir).is_dir():  # rank 0's resume state (read only)
        shutil.copytree(partial_path(out_dir) / state_dir, partial_path(scratch) / state_dir)
        shutil.copy2(partial_path(out_dir) / MARKER, partial_path(scratch) / MARKER)
    return scratch
