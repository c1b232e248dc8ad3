"""Convert the official Voyager checkpoint into a diffusers-style folder (read back by :mod:`~voyager_pipe.models.converted`).

Input (``src_dir`` is the release's ``ckpts/`` folder or its parent; see
:mod:`voyager_pipe.models.official_layout`)::

    Voyager/transformers/mp_rank_00_model_states[_context].pt   {"module": state_dict}
    hunyuan-video-i2v-720p/vae/pytorch_model.pt (+ config.json)

Output (``dst_dir``)::

    model_index.json                      components + conversion metadata ("_voyager")
    transformer/config.json + *.safetensors   VoyagerTransformer3DModel (sharded)
    vae/config.json + *.safetensors           diffusers AutoencoderKLHunyuanVideo

The transformer's fp32 modules (:data:`~voyager_pipe.models.transformer.FP32_MODULES`: the final
projection and the context branch's zero-initialised output linears, fp32 in the released model too)
are stored in float32 whatever ``dtype`` is. Every source tensor must be consumed and every target
parameter filled; otherwise the conversion
fails with an :class:`~voyager_pipe.errors.InputError` naming the keys. Tensors are read with
``torch.load(..., mmap=True, weights_only=True)`` and the target model is built on the meta device,
so a 25 GB checkpoint is never held twice in memory (when the stored dtype equals ``dtype`` the
tensors are not even copied before they are written).

Name mapping (official -> diffusers), with the fused layers split by rows:

* ``*_attn_qkv`` / ``self_attn_qkv`` ``[3D, D]``: rows ``[q | k | v]`` (each head-major) -> ``to_q/to_k/to_v``
  (text stream of double blocks: ``add_q_proj/add_k_proj/add_v_proj``);
* single blocks ``linear1`` ``[3D + M, D]``: rows ``[q | k | v | mlp_in]`` -> ``attn.to_q/to_k/to_v``, ``proj_mlp``;
  ``linear2`` (input ``[attn | mlp]``) -> ``proj_out``;
* modulations keep their chunk order (double ``shift1, scale1, gate1, shift2, scale2, gate2``; single
  ``shift, scale, gate``; refiner ``gate_msa, gate_mlp``), except the final layer: official
  ``(shift, scale)`` -> diffusers ``norm_out.linear`` ``(scale, shift)``;
* context branch: ``condition_in`` -> ``condition_embedder``, ``context_block1`` -> ``context_block``,
  ``context_block2`` -> ``context_single_block``, ``zero_linear1/2`` -> ``context_proj_double/single``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

import torch

from voyager_pipe.device import DTYPES, resolve_dtype
from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import atomic_write_text, check_output_dir, output_dir
from voyager_pipe.models.converted import FORMAT_NAME, FORMAT_VERSION, MODEL_INDEX, vae_tiling_from_official
from voyager_pipe.models.official_layout import (
    TRANSFORMER_CONTEXT_FILE,
    TRANSFORMER_FILE,
    VAE_CONFIG_FILE,
    VAE_FILE,
)

__all__ = [
    "ConversionReport",
    "convert_checkpoint",
    "convert_transformer_state_dict",
    "convert_vae_state_dict",
    "official_key_targets",
    "transformer_config_from_official",
    "vae_config_from_official",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- name mapping tables
# Within one double-stream block (official suffix -> diffusers suffix).
_DOUBLE_RENAME = {
    "img_mod.linear": "norm1.linear",
    "txt_mod.linear": "norm1_context.linear",
    "img_attn_q_norm": "attn.norm_q",
    "img_attn_k_norm": "attn.norm_k",
    "txt_attn_q_norm": "attn.norm_added_q",
    "txt_attn_k_norm": "attn.norm_added_k",
    "img_attn_proj": "attn.to_out.0",
    "txt_attn_proj": "attn.to_add_out",
    "img_mlp.fc1": "ff.net.0.proj",
    "img_mlp.fc2": "ff.net.2",
    "txt_mlp.fc1": "ff_context.net.0.proj",
    "txt_mlp.fc2": "ff_context.net.2",
}
_DOUBLE_FUSED = {
    "img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
}
# Within one single-stream block.
_SINGLE_RENAME = {
    "linear2": "proj_out",
    "q_norm": "attn.norm_q",
    "k_norm": "attn.norm_k",
    "modulation.linear": "norm.linear",
}
_SINGLE_FUSED = {"linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")}
# Within one token-refiner block of the text embedder.
_REFINER_RENAME = {
    "norm1": "norm1",
    "norm2": "norm2",
    "self_attn_proj": "attn.to_out.0",
    "mlp.fc1": "ff.net.0.proj",
    "mlp.fc2": "ff.net.2",
    "adaLN_modulation.1": "norm_out.linear",
}
_REFINER_FUSED = {"self_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v")}
# Whole-model modules outside the blocks.
_TOP_RENAME = {
    "img_in.proj": "x_embedder.proj",
    "condition_in.proj": "condition_embedder.proj",
    "time_in.mlp.0": "time_text_embed.timestep_embedder.linear_1",
    "time_in.mlp.2": "time_text_embed.timestep_embedder.linear_2",
    "guidance_in.mlp.0": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.mlp.2": "time_text_embed.guidance_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "txt_in.input_embedder": "context_embedder.proj_in",
    "txt_in.t_embedder.mlp.0": "context_embedder.time_text_embed.timestep_embedder.linear_1",
    "txt_in.t_embedder.mlp.2": "context_embedder.time_text_embed.timestep_embedder.linear_2",
    "txt_in.c_embedder.linear_1": "context_embedder.time_text_embed.text_embedder.linear_1",
    "txt_in.c_embedder.linear_2": "context_embedder.time_text_embed.text_embedder.linear_2",
    "final_layer.linear": "proj_out",
    "zero_linear1": "context_proj_double",
    "zero_linear2": "context_proj_single",
}
_TOP_SWAPPED = {"final_layer.adaLN_modulation.1": "norm_out.linear"}  # (shift, scale) -> (scale, shift)

# Block containers: regex on the module path -> (target prefix, rename table, fused table).
_BLOCKS: list[tuple[re.Pattern, Callable[[re.Match], str], dict, dict]] = [
    (re.compile(r"double_blocks\.(\d+)\.(.+)"), lambda m: f"transformer_blocks.{m[1]}", _DOUBLE_RENAME, _DOUBLE_FUSED),
    (re.compile(r"context_block1\.(.+)"), lambda m: "context_block", _DOUBLE_RENAME, _DOUBLE_FUSED),
    (re.compile(r"single_blocks\.(\d+)\.(.+)"), lambda m: f"single_transformer_blocks.{m[1]}", _SINGLE_RENAME, _SINGLE_FUSED),
    (re.compile(r"context_block2\.(.+)"), lambda m: "context_single_block", _SINGLE_RENAME, _SINGLE_FUSED),
    (re.compile(r"txt_in\.individual_token_refiner\.blocks\.(\d+)\.(.+)"),
     lambda m: f"context_embedder.token_refiner.refiner_blocks.{m[1]}", _REFINER_RENAME, _REFINER_FUSED),
]

Transform = Literal["copy", "split", "swap_halves"]


def official_key_targets(name: str) -> tuple[tuple[str, ...], Transform] | None:
    """Diffusers names that official tensor ``name`` fills, and how.

    Returns ``(targets, transform)``: ``"copy"`` (one target), ``"split"`` (rows split into the
    targets in order: equal thirds for qkv; ``[D, D, D, rest]`` for a single block's ``linear1``)
    or ``"swap_halves"`` (final modulation). ``None`` for a name that has no mapping.
    """
    if "." not in name:
        return None
    module, param = name.rsplit(".", 1)
    if param not in ("weight", "bias"):
        return None
    if module in _TOP_RENAME:
        return (f"{_TOP_RENAME[module]}.{param}",), "copy"
    if module in _TOP_SWAPPED:
        return (f"{_TOP_SWAPPED[module]}.{param}",), "swap_halves"
    for pattern, prefix_of, rename, fused in _BLOCKS:
        match = pattern.fullmatch(module)
        if match is None:
            continue
        part = match.groups()[-1]
        prefix = prefix_of(match)
        if part in rename:
            return (f"{prefix}.{rename[part]}.{param}",), "copy"
        if part in fused:
            return tuple(f"{prefix}.{target}.{param}" for target in fused[part]), "split"
        return None
    return None


def _split_rows(tensor: torch.Tensor, count: int, hidden_size: int) -> tuple[torch.Tensor, ...]:
    """Rows ``[q | k | v]`` (count 3) or ``[q | k | v | rest]`` (count 4) of a fused weight/bias."""
    rows = tensor.shape[0]
    if count == 3:
        if rows != 3 * hidden_size:
            raise ValueError(f"expected {3 * hidden_size} rows (fused qkv), got {rows}")
        sizes = [hidden_size] * 3
    else:
        if rows <= 3 * hidden_size:
            raise ValueError(f"expected more than {3 * hidden_size} rows (fused qkv + mlp), got {rows}")
        sizes = [hidden_size] * 3 + [rows - 3 * hidden_size]
    return tuple(torch.split(tensor, sizes, dim=0))


def convert_transformer_state_dict(
    items: Iterable[tuple[str, torch.Tensor]],
    hidden_size: int,
    dtype: torch.dtype | None = None,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map official ``(name, tensor)`` pairs to diffusers names.

    Returns ``(converted, unconsumed)``: the new state dict (tensors cast to ``dtype`` when given,
    except those of :data:`FP32_MODULES`, cast to float32; row splits of a contiguous tensor stay
    views, so mmapped sources are not copied when the dtype does not change) and the official names
    that have no mapping.
    """
    from voyager_pipe.models.transformer import is_fp32_parameter

    converted: dict[str, torch.Tensor] = {}
    unconsumed: list[str] = []
    for name, tensor in items:
        plan = official_key_targets(name)
        if plan is None:
            unconsumed.append(name)
            continue
        targets, transform = plan
        if transform == "copy":
            pieces: tuple[torch.Tensor, ...] = (tensor,)
        elif transform == "swap_halves":
            shift, scale = tensor.chunk(2, dim=0)  # official (shift, scale)
            pieces = (torch.cat([scale, shift], dim=0),)  # diffusers (scale, shift)
        else:
            try:
                pieces = _split_rows(tensor, len(targets), hidden_size)
            except ValueError as exc:
                raise InputError(f"{name}: {exc}") from None
        for target, piece in zip(targets, pieces):
            if target in converted:
                raise InputError(f"{name}: target {target} is filled twice")
            if dtype is not None:
                piece = piece.to(torch.float32 if is_fp32_parameter(target) else dtype)
            converted[target] = piece.contiguous()
    return converted, unconsumed


# ---------------------------------------------------------------- configs
def _default_rope_axes(head_dim: int) -> tuple[int, int, int]:
    """RoPE split of the head dimension (t, h, w): (16, 56, 56) for 128 (HYVideo-T/2), (12, 42, 42) for 96."""
    t = 2 * round(head_dim / 16)
    hw = (head_dim - t) // 2
    if hw % 2 or t + 2 * hw != head_dim:
        raise InputError(f"head dimension {head_dim}: no default RoPE axes; pass rope_axes_dim")
    return t, hw, hw


def transformer_config_from_official(
    state: dict[str, torch.Tensor], source: str = "transformer", rope_axes_dim: tuple[int, ...] | None = None
) -> dict:
    """``VoyagerTransformer3DModel`` config inferred from the shapes of an official state dict."""
    def shape_of(key: str) -> tuple[int, ...]:
        if key not in state:
            raise InputError(f"{source}: missing tensor {key!r}; is this a HunyuanVideo/Voyager transformer checkpoint?")
        return tuple(state[key].shape)

    hidden, in_channels, patch_t, patch_h, patch_w = shape_of("img_in.proj.weight")
    if patch_h != patch_w:
        raise InputError(f"{source}: img_in.proj.weight: non-square patch {patch_h}x{patch_w} is not supported")
    head_dim = shape_of("double_blocks.0.img_attn_q_norm.weight")[0]
    if hidden % head_dim:
        raise InputError(f"{source}: hidden size {hidden} is not a multiple of the head dimension {head_dim}")
    num_layers = len({k.split(".")[1] for k in state if k.startswith("double_blocks.")})
    num_single = len({k.split(".")[1] for k in state if k.startswith("single_blocks.")})
    num_refiner = len({k.split(".")[3] for k in state if k.startswith("txt_in.individual_token_refiner.blocks.")})
    out_features = shape_of("final_layer.linear.weight")[0]
    patch_volume = patch_t * patch_h * patch_w
    if out_features % patch_volume:
        raise InputError(f"{source}: final_layer.linear.weight rows {out_features} not a multiple of the patch volume")
    return {
        "in_channels": in_channels,
        "out_channels": out_features // patch_volume,
        "num_attention_heads": hidden // head_dim,
        "attention_head_dim": head_dim,
        "num_layers": num_layers,
        "num_single_layers": num_single,
        "num_refiner_layers": num_refiner,
        "mlp_ratio": shape_of("double_blocks.0.img_mlp.fc1.weight")[0] / hidden,
        "patch_size": patch_h,
        "patch_size_t": patch_t,
        "qk_norm": "rms_norm",
        "guidance_embeds": "guidance_in.mlp.0.weight" in state,
        "text_embed_dim": shape_of("txt_in.input_embedder.weight")[1],
        "pooled_projection_dim": shape_of("vector_in.in_layer.weight")[1],
        "rope_theta": 256.0,
        "rope_axes_dim": tuple(rope_axes_dim) if rope_axes_dim is not None else _default_rope_axes(head_dim),
        "image_condition_type": "latent_concat",
        "use_context_block": "condition_in.proj.weight" in state,
    }


_OFFICIAL_VAE_BLOCKS = {"DownEncoderBlockCausal3D": "HunyuanVideoDownBlock3D", "UpDecoderBlockCausal3D": "HunyuanVideoUpBlock3D"}
#: The standard HunyuanVideo "884-16c-hy" VAE config (used when the release folder lacks config.json).
STANDARD_VAE_CONFIG = {
    "_class_name": "AutoencoderKLCausal3D",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlockCausal3D"] * 4,
    "in_channels": 3,
    "latent_channels": 16,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "up_block_types": ["UpDecoderBlockCausal3D"] * 4,
    "scaling_factor": 0.476986,
    "time_compression_ratio": 4,
    "mid_block_add_attention": True,
}


def vae_config_from_official(official: dict, source: str = "vae config") -> dict:
    """diffusers ``AutoencoderKLHunyuanVideo`` config from the official ``AutoencoderKLCausal3D`` config.json."""
    def block_types(field_name: str) -> list[str]:
        names = official.get(field_name, STANDARD_VAE_CONFIG[field_name])
        unknown = sorted(set(names) - set(_OFFICIAL_VAE_BLOCKS))
        if unknown:
            raise InputError(f"{source}: {field_name}: unsupported block types {unknown}")
        return [_OFFICIAL_VAE_BLOCKS[n] for n in names]

    def get(key: str):
        return official.get(key, STANDARD_VAE_CONFIG.get(key))

    return {
        "in_channels": get("in_channels"),
        "out_channels": get("out_channels"),
        "latent_channels": get("latent_channels"),
        "down_block_types": block_types("down_block_types"),
        "up_block_types": block_types("up_block_types"),
        "block_out_channels": list(get("block_out_channels")),
        "layers_per_block": get("layers_per_block"),
        "act_fn": get("act_fn"),
        "norm_num_groups": get("norm_num_groups"),
        "scaling_factor": get("scaling_factor"),
        "spatial_compression_ratio": official.get("spatial_compression_ratio", 8),
        "temporal_compression_ratio": get("time_compression_ratio"),
        "mid_block_add_attention": get("mid_block_add_attention"),
    }


def convert_vae_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official VAE names equal diffusers' (a ``{"state_dict": ...}`` wrapper and a ``vae.`` prefix are removed)."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {(k[len("vae."):] if k.startswith("vae.") else k): v for k, v in state.items()}


# ---------------------------------------------------------------- file handling
def _load_official(path: Path):
    """``torch.load`` with mmap (falls back to a plain load for legacy, non-zip files); any failure is one InputError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc).lower() and "zip" not in str(exc).lower():
            raise InputError(f"{path}: cannot read checkpoint: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - unpickling / zip / EOF errors of a damaged or foreign file
        raise InputError(f"{path}: cannot read checkpoint: {type(exc).__name__}: {_first_line(exc)}") from None
    logger.warning("%s: not a zip checkpoint, loading without mmap (needs RAM for the whole file)", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: cannot read checkpoint: {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _tensor_dict(obj, source: str, allow_wrapper: bool = False) -> dict[str, torch.Tensor]:
    """``obj`` as a ``{name: tensor}`` state dict, or an InputError naming ``source``."""
    if allow_wrapper and isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"{source}: expected a state dict of tensors, found {type(obj).__name__}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(f"{source}: entries that are not named tensors: {_describe(sorted(bad))}")
    return obj


def _find(src_dir: Path, relative: str) -> Path | None:
    for root in (src_dir, src_dir / "ckpts"):
        if (root / relative).is_file():
            return root / relative
    return None


def _describe(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _check_against_model(
    converted: dict[str, torch.Tensor], expected: dict[str, torch.Size], source: str, unconsumed: list[str]
) -> None:
    """Raise InputError naming every unconsumed source key, unfilled target key and shape mismatch."""
    problems = []
    if unconsumed:
        problems.append(f"{len(unconsumed)} source tensors not consumed: {_describe(sorted(unconsumed))}")
    unexpected = sorted(set(converted) - set(expected))
    if unexpected:
        problems.append(f"{len(unexpected)} mapped tensors have no place in the model: {_describe(unexpected)}")
    missing = sorted(set(expected) - set(converted))
    if missing:
        problems.append(f"{len(missing)} model parameters not filled: {_describe(missing)}")
    wrong = sorted(
        f"{k} {tuple(converted[k].shape)} vs {tuple(expected[k])}"
        for k in set(converted) & set(expected) if converted[k].shape != expected[k]
    )
    if wrong:
        problems.append(f"{len(wrong)} shape mismatches: {_describe(wrong)}")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))


def _assign_and_save(model: torch.nn.Module, converted: dict[str, torch.Tensor], out_dir: Path, max_shard_size: str) -> None:
    model.load_state_dict(converted, strict=True, assign=True)
    still_meta = [n for n, p in list(model.named_parameters()) + list(model.named_buffers()) if p.is_meta]
    if still_meta:
        raise RuntimeError(f"parameters left on the meta device after loading: {_describe(still_meta)}")
    model.save_pretrained(out_dir, safe_serialization=True, max_shard_size=max_shard_size)


@dataclass
class ConversionReport:
    """What :func:`convert_checkpoint` did."""

    dst_dir: Path
    transformer_source: Path
    use_context_block: bool
    transformer_tensors: int
    transformer_parameters: int
    dtype: str
    vae_source: Path | None = None
    vae_tensors: int = 0
    notes: list[str] = field(default_factory=list)


def _resolve_dtype(dtype: str | torch.dtype) -> tuple[str, torch.dtype]:
    """``(name, torch dtype)`` of ``--dtype``."""
    torch_dtype = resolve_dtype(dtype, "--dtype")
    return {v: k for k, v in DTYPES.items()}[torch_dtype], torch_dtype


def convert_checkpoint(
    src_dir: str | Path,
    dst_dir: str | Path,
    dtype: str | torch.dtype = "bf16",
    include_context: bool | Literal["auto"] = "auto",
    include_vae: bool = True,
    load_key: str = "module",
    rope_axes_dim: tuple[int, ...] | None = None,
    max_shard_size: str = "5GB",
    overwrite: bool = False,
    progress: bool = True,
) -> ConversionReport:
    """Convert the official Voyager release under ``src_dir`` into a diffusers folder ``dst_dir``.

    Args:
        src_dir: the release's ``ckpts/`` folder (or its parent).
        dst_dir: output folder (must not exist unless ``overwrite``, and then be one this tool wrote); built
            in ``<dst>.partial`` first (:func:`voyager_pipe.io.atomic.output_dir`).
        dtype: ``"bf16"``, ``"fp16"`` or ``"fp32"`` for the transformer (the VAE and the transformer's
            fp32 modules, :data:`~voyager_pipe.models.transformer.FP32_MODULES`, are kept in fp32).
        include_context: ``"auto"`` takes the ``_context`` transformer when present, ``True`` requires
            it, ``False`` takes the plain one.
        include_vae: convert ``hunyuan-video-i2v-720p/vae`` too (required unless False).
        load_key: entry of the DeepSpeed file that holds the state dict (``"module"``; ``"ema"``).
        rope_axes_dim: RoPE split of the head dimension; inferred (``(16, 56, 56)`` for the real model).
        max_shard_size: safetensors shard size.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    dtype_name, torch_dtype = _resolve_dtype(dtype)
    if not src_dir.is_dir():
        raise InputError(f"--src {src_dir}: not a folder")
    check_output_dir(dst_dir, inputs=(src_dir,), overwrite=overwrite, option="--dst")  # before reading anything
    transformer_path, use_context = _locate_transformer(src_dir, include_context)
    vae_path = _find(src_dir, VAE_FILE) if include_vae else None
    if include_vae and vae_path is None:
        raise InputError(f"--src {src_dir}: {VAE_FILE} not found (or convert without the VAE)")

    notes: list[str] = []
    with output_dir(dst_dir, inputs=(src_dir,), overwrite=overwrite, option="--dst") as partial_dir:
        num_tensors, num_params = _convert_transformer_file(
            transformer_path, use_context, partial_dir / "transformer", torch_dtype, load_key, rope_axes_dim,
            max_shard_size, progress)
        vae_config, vae_tiling, vae_tensors = (None, None, 0)
        if vae_path is not None:
            vae_config, vae_tiling, vae_tensors = _convert_vae_file(vae_path, partial_dir / "vae", max_shard_size, notes)
        _write_index(partial_dir, transformer_path, vae_path, use_context, dtype_name, vae_config, vae_tiling, notes)
    for note in notes:
        logger.warning(note)
    return ConversionReport(
        dst_dir=dst_dir,
        transformer_source=transformer_path,
        use_context_block=use_context,
        transformer_tensors=num_tensors,
        transformer_parameters=num_params,
        dtype=dtype_name,
        vae_source=vae_path,
        vae_tensors=vae_tensors,
        notes=notes,
    )


def _locate_transformer(src_dir: Path, include_context: bool | Literal["auto"]) -> tuple[Path, bool]:
    """The transformer file to convert and whether it is the context variant."""
    base_path = _find(src_dir, TRANSFORMER_FILE)
    context_path = _find(src_dir, TRANSFORMER_CONTEXT_FILE)
    if include_context is True and context_path is None:
        raise InputError(f"--src {src_dir}: {TRANSFORMER_CONTEXT_FILE} not found (drop the context request or add the file)")
    use_context = context_path is not None if include_context == "auto" else bool(include_context)
    transformer_path = context_path if use_context else base_path
    if transformer_path is None:
        raise InputError(f"--src {src_dir}: neither {TRANSFORMER_FILE} nor {TRANSFORMER_CONTEXT_FILE} found")
    return transformer_path, use_context


def _convert_transformer_file(path: Path, use_context: bool, out_dir: Path, torch_dtype: torch.dtype, load_key: str,
                              rope_axes_dim: tuple[int, ...] | None, max_shard_size: str,
                              progress: bool) -> tuple[int, int]:
    """Read (mmap), map names, check, assign into a meta-built model, save. Returns (tensors, parameters)."""
    from tqdm.auto import tqdm

    from voyager_pipe.models.transformer import VoyagerTransformer3DModel

    checkpoint = _load_official(path)
    if not isinstance(checkpoint, dict) or load_key not in checkpoint:
        found = sorted(map(str, checkpoint))[:10] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise InputError(f"{path}: no {load_key!r} entry (found {found})")
    official = _tensor_dict(checkpoint[load_key], f"{path}: {load_key}")
    config = transformer_config_from_official(official, str(path), rope_axes_dim)
    if config["use_context_block"] != use_context:
        raise InputError(f"{path}: context-branch tensors {'missing' if use_context else 'present'}")
    items = tqdm(official.items(), total=len(official), desc="transformer", unit="tensor", disable=not progress)
    converted, unconsumed = convert_transformer_state_dict(
        items, config["num_attention_heads"] * config["attention_head_dim"], torch_dtype)
    with torch.device("meta"):  # no memory, no random init; filled by assignment below
        transformer = VoyagerTransformer3DModel(**config)
    expected = {k: v.shape for k, v in transformer.state_dict().items()}
    _check_against_model(converted, expected, str(path), unconsumed)
    counts = len(official), sum(v.numel() for v in official.values())
    _assign_and_save(transformer, converted, out_dir, max_shard_size)
    return counts


def _convert_vae_file(vae_path: Path, out_dir: Path, max_shard_size: str, notes: list[str]) -> tuple[dict, dict, int]:
    """VAE: identical names; config (and tile sizes) from config.json or the standard one. Returns (config, tiling, tensors)."""
    from diffusers import AutoencoderKLHunyuanVideo

    config_path = vae_path.parent / Path(VAE_CONFIG_FILE).name
    if config_path.is_file():
        try:
            official_vae_config = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{config_path}: not valid JSON ({exc})") from None
        if not isinstance(official_vae_config, dict):
            raise InputError(f"{config_path}: expected a JSON object")
    else:
        official_vae_config = dict(STANDARD_VAE_CONFIG)
        notes.append(f"{config_path} missing: used the standard HunyuanVideo 884-16c-hy VAE config")
    vae_config = vae_config_from_official(official_vae_config, str(config_path))
    vae_state = _tensor_dict(_load_official(vae_path), str(vae_path), allow_wrapper=True)
    vae_converted = {k: v.to(torch.float32).contiguous() for k, v in convert_vae_state_dict(vae_state).items()}
    with torch.device("meta"):
        vae = AutoencoderKLHunyuanVideo(**vae_config)
    vae_expected = {k: v.shape for k, v in vae.state_dict().items()}
    _check_against_model(vae_converted, vae_expected, str(vae_path), [])
    _assign_and_save(vae, vae_converted, out_dir, max_shard_size)
    return vae_config, vae_tiling_from_official(official_vae_config), len(vae_converted)


def _write_index(folder: Path, transformer_path: Path, vae_path: Path | None, use_context: bool, dtype_name: str,
                 vae_config: dict | None, vae_tiling: dict | None, notes: list[str]) -> None:
    from diffusers import __version__ as diffusers_version

    index = {
        "_class_name": "VoyagerGenerator",  # the class that runs these components (not a diffusers pipeline)
        "_class_module": "voyager_pipe.generate.voyager",
        "_diffusers_version": diffusers_version,
        "transformer": ["voyager_pipe.models.transformer", "VoyagerTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLHunyuanVideo"] if vae_path is not None else [None, None],
        "_voyager": {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "transformer_source": str(transformer_path),
            "vae_source": str(vae_path) if vae_path is not None else None,
            "use_context_block": use_context,
            "dtype": dtype_name,
            "vae_scaling_factor": vae_config["scaling_factor"] if vae_config else None,
            "vae_tiling": vae_tiling,
            "notes": notes,
        },
    }
    atomic_write_text(folder / MODEL_INDEX, json.dumps(index, indent=2) + "\n")
