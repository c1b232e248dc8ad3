"""Build the Voyager components from a converted (diffusers-format) folder, with memory options.

Layout written by ``voyager-pipe convert``::

    MODEL_DIR/transformer/          config.json + diffusion_pytorch_model*.safetensors
    MODEL_DIR/transformer_context/  (optional) the variant with the context branch
    MODEL_DIR/vae/                  AutoencoderKLHunyuanVideo
    MODEL_DIR/text_encoder/ ...     (optional) text encoders, see voyager_pipe.models.text

Memory options are diffusers' own (see :mod:`voyager_pipe.models.memory`): the weight format is
applied here while the weights are still on the CPU; offload / cache / compile / attention backend by
:class:`~voyager_pipe.models.memory.VoyagerRuntime`, which places each network on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch

from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.models.config import VoyagerConfig
from voyager_pipe.models.memory import apply_weight_format

if TYPE_CHECKING:  # pragma: no cover
    from voyager_pipe.models.memory import VoyagerRuntime

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_device(name: Optional[str]) -> torch.device:
    """``None``/``"auto"`` -> cuda when available, else cpu; otherwise ``torch.device(name)``."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class VoyagerComponents:
    """The networks of one Voyager model (text conditioning is handled separately, see ``text``)."""

    transformer: torch.nn.Module
    vae: torch.nn.Module


def load_components(cfg: VoyagerConfig, device: torch.device | str | None = None) -> VoyagerComponents:
    """``from_pretrained`` the transformer and the VAE of ``cfg.model_dir`` (on the CPU, in cfg dtypes)."""
    if not cfg.model_dir:
        raise InputError("voyager.model_dir: not set (convert the official weights with `voyager-pipe convert` first)")
    root = Path(cfg.model_dir).expanduser()
    for sub in (cfg.transformer_subfolder, cfg.vae_subfolder):
        if not (root / sub / "config.json").is_file():
            raise MissingDependencyError(
                f"{root / sub}: no config.json (expected a folder written by `voyager-pipe convert`)")
    try:
        from diffusers import AutoencoderKLHunyuanVideo

        from voyager_pipe.models.transformer import VoyagerTransformer3DModel
    except ImportError as exc:
        raise MissingDependencyError(f"the voyager backend needs diffusers ({exc})") from None
    transformer = VoyagerTransformer3DModel.from_pretrained(
        root, subfolder=cfg.transformer_subfolder, torch_dtype=DTYPES[cfg.dtype], local_files_only=True)
    has_context = bool(transformer.config.get("use_context_block", False))
    if cfg.use_context_block is not None and has_context != cfg.use_context_block:
        raise InputError(
            f"voyager.use_context_block: {cfg.use_context_block} but {root / cfg.transformer_subfolder} was converted "
            f"with use_context_block={has_context} (reconvert with or without --no-context)")
    vae = AutoencoderKLHunyuanVideo.from_pretrained(
        root, subfolder=cfg.vae_subfolder, torch_dtype=DTYPES[cfg.vae_dtype], local_files_only=True)
    apply_weight_format(transformer, cfg.weights, DTYPES[cfg.dtype])  # on the CPU: fp8 halves host memory too
    return VoyagerComponents(transformer=transformer.eval(), vae=vae.eval())


def configure_components(components: VoyagerComponents, cfg: VoyagerConfig) -> None:
    """Apply the VAE tiling/slicing options of ``cfg`` in place (the transformer's: :class:`VoyagerRuntime`)."""
    vae = components.vae
    if cfg.vae_tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if cfg.vae_slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()


def load_runtime(cfg: VoyagerConfig, device: torch.device, latent_size: Optional[tuple[int, int, int]] = None,
                 cfg_batched: bool = True) -> tuple[VoyagerComponents, "VoyagerRuntime"]:
    """Check the memory estimate (when the clip size is known), load, and wrap in a :class:`VoyagerRuntime`.

    ``latent_size = (T_lat, h, w)`` of the composite latent; the check then runs before any weight is
    read (from config.json on the ``meta`` device), otherwise at the first denoising call.
    """
    from voyager_pipe.models.memory import VoyagerRuntime, check_fits, check_settings, estimate_memory, meta_transformer

    check_settings(cfg)
    if latent_size is not None and cfg.memory_check and device.type == "cuda" and cfg.model_dir:
        meta = meta_transformer(cfg.model_dir, cfg.transformer_subfolder)

        def estimate_for(candidate: VoyagerConfig):
            return estimate_memory(meta, None, candidate, latent_size, cfg_batched=cfg_batched)

        check_fits(estimate_for(cfg), device, cfg, estimate_for)
    components = load_components(cfg, device)
    configure_components(components, cfg)
    return components, VoyagerRuntime(components.transformer, components.vae, device, cfg)


def build_tiny_components(seed: int = 0, use_context_block: bool = False) -> VoyagerComponents:
    """Random, tiny Voyager components with the real architecture (tests, CPU benchmarks).

    Transformer: 1 double + 1 single block, 2 heads of 8, text dim 16, pooled dim 8.
    VAE: AutoencoderKLHunyuanVideo with 8 channels per level (still 8x spatial, 4x temporal, 16 latent channels).
    """
    from diffusers import AutoencoderKLHunyuanVideo

    from voyager_pipe.models.transformer import VoyagerTransformer3DModel

    torch.manual_seed(seed)
    transformer = VoyagerTransformer3DModel(
        in_channels=50, out_channels=16, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, text_embed_dim=16, pooled_projection_dim=8,
        rope_axes_dim=(2, 2, 4), use_context_block=use_context_block)
    vae = AutoencoderKLHunyuanVideo(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4)
    return VoyagerComponents(transformer=transformer.eval(), vae=vae.eval())
