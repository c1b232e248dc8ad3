"""Context-parallel plan of the Voyager transformer, applied with diffusers' own machinery.

:func:`parallelize_transformer` is what a ``torchrun`` launch calls on the loaded transformer:

* **Context parallelism** (``parallel.ulysses_degree``): ``ModelMixin.enable_parallelism`` with a
  ``ContextParallelConfig`` and :func:`voyager_cp_plan`. The video tokens are split across the ranks
  right after the patch embedding, the text tokens right after the token refiner (which runs whole
  on every rank), RoPE tables with them; each attention call gathers the sequence with Ulysses
  all-to-all (diffusers' templated attention) and ``proj_out`` gathers the tokens back.
  The text mask stays exact: ``encoder_attention_mask`` is split like the text tokens, so each rank
  builds the mask of its own tokens (valid tokens first within every slice) and diffusers'
  Ulysses all-gathers the masks into the gathered sequence's layout. The refiner gets the whole
  mask back through :class:`_GatherArgumentHook`. Text is padded (masked) to a multiple of the
  degree. The context branch runs under the same split (its condition tokens split after
  ``condition_embedder``); its residuals are aligned with the last image tokens on the gathered
  sequence (:func:`align_to_last_tokens`), then split again.
* **CFG parallelism** (``parallel.cfg``): :class:`_BatchParallelHook` gives batch item ``i`` (the
  unconditional / conditional pass) to the ranks with cfg index ``i`` and all-gathers the outputs;
  the generator still makes one batched call.

Ring attention is not offered: diffusers' ring attention applies each rank's key mask to every
rotated key block, which is wrong for padded text, and SDPA ("native") returns no LSE.
"""

from __future__ import annotations

import inspect
from typing import Optional

import torch
import torch.nn.functional as F
from diffusers.hooks import HookRegistry, ModelHook

from voyager_pipe.errors import InputError

#: Names of the transformer hooks registered here (diffusers HookRegistry).
_BATCH_HOOK = "voyager_pipe_batch_parallel"
_MASK_HOOK = "voyager_pipe_gather_refiner_mask"
_TOKEN_CHECK_HOOK = "voyager_pipe_token_count_check"


def voyager_cp_plan(transformer: torch.nn.Module) -> dict:
    """diffusers context-parallel plan (module name -> split/gather spec) for a (Voyager) HunyuanVideo transformer."""
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    tokens = ContextParallelInput(split_dim=1, expected_dims=3, split_output=True)  # [B, N, D] outputs
    rope_table = ContextParallelInput(split_dim=0, expected_dims=2, split_output=True)  # [N, Dh] cos / sin
    plan = {
        "": {"encoder_attention_mask": ContextParallelInput(split_dim=1, expected_dims=2)},  # [B, L] -> local text mask
        "rope": {0: rope_table, 1: rope_table},
        "x_embedder": {0: tokens},
        "context_embedder": {0: tokens},  # refined text tokens
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }
    if hasattr(transformer, "condition_embedder"):  # Voyager's context branch
        plan["condition_embedder"] = {0: tokens}
    return plan


def cp_mesh(transformer: torch.nn.Module):
    """The flattened context-parallel mesh of ``transformer`` (None when it is not parallelized)."""
    config = getattr(transformer, "_parallel_config", None)
    cp = getattr(config, "context_parallel_config", None) if config is not None else None
    return cp._flattened_mesh if cp is not None else None


def align_to_last_tokens(residual: torch.Tensor, num_tokens: int, transformer: torch.nn.Module) -> torch.Tensor:
    """Left-pad ``residual [B, n, D]`` with zeros to ``num_tokens`` (it belongs to the LAST image tokens).

    Under context parallelism both are this rank's slices: the residual is gathered, padded on the
    whole sequence and split again, so each rank adds exactly the part over its own tokens.
    """
    mesh = cp_mesh(transformer)
    if mesh is None:
        return F.pad(residual, (0, 0, num_tokens - residual.shape[1], 0))  # [B, num_tokens, D]
    from diffusers.hooks.context_parallel import EquipartitionSharder

    full = EquipartitionSharder.unshard(residual, 1, mesh)  # [B, n_total, D]
    total = num_tokens * mesh.size()
    full = F.pad(full, (0, 0, total - full.shape[1], 0))  # [B, N_total, D]
    return EquipartitionSharder.shard(full, 1, mesh)  # [B, num_tokens, D]


def parallelize_transformer(transformer: torch.nn.Module, config) -> bool:
    """Apply ``config`` (:class:`voyager_pipe.distributed.ParallelConfig`) under torchrun; False (no-op) otherwise."""
    import torch.distributed as dist

    from voyager_pipe.distributed import degrees

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return False
    cfg, ring, ulysses = degrees(config, dist.get_world_size())
    heads = transformer.config.num_attention_heads
    if heads % ulysses:
        raise InputError(f"parallel.ulysses_degree: {ulysses} does not divide the transformer's {heads} attention heads")
    from torch.distributed.device_mesh import init_device_mesh

    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    mesh = init_device_mesh(device_type, (cfg, ring, ulysses), mesh_dim_names=("cfg", "ring", "ulysses"))
    if ulysses > 1:
        _enable_context_parallel(transformer, mesh, ulysses)
    _register(transformer, _BATCH_HOOK, _BatchParallelHook(mesh["cfg"] if cfg > 1 else None, ulysses))
    return True


def _enable_context_parallel(transformer: torch.nn.Module, mesh, ulysses: int) -> None:
    from diffusers import ContextParallelConfig
    from diffusers.models._modeling_parallel import ParallelConfig as DiffusersParallelConfig

    cp_config = ContextParallelConfig(ulysses_degree=ulysses, ring_degree=1, mesh=mesh)
    if torch.accelerator.device_count() == 0:
        # diffusers 0.42 picks the rank's device as rank % accelerator count, which divides by zero on a
        # CPU-only torch: resolve the config for the CPU here, then let enable_parallelism do the rest.
        import torch.distributed as dist

        resolved = DiffusersParallelConfig(context_parallel_config=cp_config)
        resolved.setup(dist.get_rank(), dist.get_world_size(), torch.device("cpu"), mesh=mesh)

        def resolve_on_cpu(_config):
            transformer._parallel_config = resolved
            return resolved

        transformer._resolve_parallel_config = resolve_on_cpu
    for name, what in (("x_embedder", "video tokens"), ("condition_embedder", "context-branch tokens")):
        if hasattr(transformer, name):  # registered first: checked before the split hooks run
            _register(getattr(transformer, name), _TOKEN_CHECK_HOOK, _TokenCountCheck(what, ulysses))
    transformer.enable_parallelism(config=cp_config, cp_plan=voyager_cp_plan(transformer))
    _register(transformer.context_embedder, _MASK_HOOK, _GatherArgumentHook("attention_mask", dim=1, mesh=cp_mesh(transformer)))


def _register(module: torch.nn.Module, name: str, hook) -> None:
    HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)


class _GatherArgumentHook(ModelHook):
    """Give a module the whole of one argument that the plan split (the token refiner's text mask)."""

    def __init__(self, name: str, dim: int, mesh) -> None:
        super().__init__()
        self.name, self.dim, self.mesh = name, dim, mesh
        self.index: Optional[int] = None

    def initialize_hook(self, module):
        self.index = list(inspect.signature(type(module).forward).parameters)[1:].index(self.name)
        return module

    def pre_forward(self, module, *args, **kwargs):
        from diffusers.hooks.context_parallel import EquipartitionSharder

        args = list(args)
        if self.name in kwargs and kwargs[self.name] is not None:
            kwargs[self.name] = EquipartitionSharder.unshard(kwargs[self.name], self.dim, self.mesh)
        elif self.index < len(args) and args[self.index] is not None:
            args[self.index] = EquipartitionSharder.unshard(args[self.index], self.dim, self.mesh)
        return tuple(args), kwargs


class _BatchParallelHook(ModelHook):
    """Outermost transformer hook: same input on every rank, text padded for the split, CFG passes split.

    * ``hidden_states`` is broadcast from rank 0 (rank 0's pipeline is the one that is written);
    * text tokens are padded (masked out) to a multiple of the context-parallel degree;
    * with a cfg mesh, a batch of 2 (unconditional, conditional) is split: cfg rank ``i`` runs item
      ``i`` and the outputs are all-gathered along the batch.
    """

    BATCHED = ("hidden_states", "timestep", "encoder_hidden_states", "encoder_attention_mask", "pooled_projections", "guidance")

    def __init__(self, cfg_mesh, cp_degree: int) -> None:
        super().__init__()
        self.cfg_mesh, self.cp_degree = cfg_mesh, cp_degree
        self.split_batch = False

    def initialize_hook(self, module):
        self.signature = inspect.signature(type(module).forward)
        return module

    def pre_forward(self, module, *args, **kwargs):
        import torch.distributed as dist

        bound = self.signature.bind(module, *args, **kwargs)
        values = bound.arguments
        hidden = values["hidden_states"]  # [B, C, F, H, W]
        hidden = hidden.contiguous() if dist.get_rank() == 0 else hidden.clone(memory_format=torch.contiguous_format)
        dist.broadcast(hidden, src=0)  # received into a copy: the caller's tensor is left alone
        values["hidden_states"] = hidden
        if self.cp_degree > 1:
            values["encoder_hidden_states"], values["encoder_attention_mask"] = _pad_text(
                values["encoder_hidden_states"], values["encoder_attention_mask"], self.cp_degree)
        size = self.cfg_mesh.size() if self.cfg_mesh is not None else 1
        self.split_batch = size > 1 and hidden.shape[0] == size
        if self.split_batch:
            index = self.cfg_mesh.get_local_rank()
            for name in self.BATCHED:
                if isinstance(values.get(name), torch.Tensor):
                    values[name] = values[name][index:index + 1]
        return bound.args[1:], bound.kwargs  # without the module itself

    def post_forward(self, module, output):
        if not self.split_batch:
            return output
        from diffusers.hooks.context_parallel import EquipartitionSharder

        def gather(x: torch.Tensor) -> torch.Tensor:
            return EquipartitionSharder.unshard(x, 0, self.cfg_mesh)  # [B, ...]

        if isinstance(output, torch.Tensor):
            return gather(output)
        if isinstance(output, (tuple, list)):
            return type(output)(gather(x) for x in output)
        output.sample = gather(output.sample)
        return output


class _TokenCountCheck(ModelHook):
    """Before a patch embedding whose output the plan splits: its token count must divide by the degree."""

    def __init__(self, what: str, degree: int) -> None:
        super().__init__()
        self.what, self.degree = what, degree

    def pre_forward(self, module, latents: torch.Tensor, *args, **kwargs):
        p_t, p, _ = module.proj.kernel_size  # [B, C, F, H, W] -> (F / p_t) x (H / p) x (W / p) tokens
        frames, height, width = latents.shape[2] // p_t, latents.shape[3] // p, latents.shape[4] // p
        if (frames * height * width) % self.degree:
            raise InputError(f"parallel.ulysses_degree: {self.degree} does not divide the {frames * height * width} {self.what} "
                             f"of this clip ({frames} latent frames x {height} x {width}); change the degree, the size or "
                             "generate.clip_len")
        return (latents, *args), kwargs


def _pad_text(tokens: torch.Tensor, mask: torch.Tensor, multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad text ``tokens [B, L, E]`` and ``mask [B, L]`` with masked tokens to a length divisible by ``multiple``."""
    extra = -tokens.shape[1] % multiple
    if extra == 0:
        return tokens, mask
    return F.pad(tokens, (0, 0, 0, extra)), F.pad(mask, (0, extra))  # [B, L + extra, E], [B, L + extra]
