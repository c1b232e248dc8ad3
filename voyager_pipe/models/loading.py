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

from voyager_pipe.device import DTYPES
from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.models.config import VoyagerConfig
from voyager_pipe.models.memory import apply_weight_format

if TYPE_CHECKING:  # pragma: no cover
    from voyager_pipe.models.memory import VoyagerRuntime


@dataclass
class VoyagerComponents:
    """The networks of one Voyager model (text conditioning is handled separately, see ``text``)."""

    transformer: torch.nn.Module
    vae: torch.nn.Module


def load_components(cfg: VoyagerConfig, device: torch.device | str | None = None) -> VoyagerComponents:
    """``from_pretrained`` the transformer and the VAE of ``cfg.model_dir`` (on the CPU, in cfg dtypes).

    The folder's format version is checked first and the VAE gets the released tile sizes
    (:mod:`voyager_pipe.models.converted`).
    """
    if not cfg.model_dir:
        raise InputError("voyager.model_dir: not set (convert the official weights with `voyager-pipe convert` first)")
    root = Path(cfg.model_dir).expanduser()
    for sub in (cfg.transformer_subfolder, cfg.vae_subfolder):
        if not (root / sub / "config.json").is_file():
            raise MissingDependencyError(
                f"{root / sub}: no config.json (expected a folder written by `voyager-pipe convert`)")
    try:
        from diffusers import AutoencoderKLHunyuanVideo

        from voyager_pipe.models.converted import apply_vae_tiling, load_pretrained, read_model_index
        from voyager_pipe.models.transformer import VoyagerTransformer3DModel
    except ImportError as exc:
        raise MissingDependencyError(f"the voyager backend needs diffusers ({exc})") from None
    index = read_model_index(root)
    transformer = load_pretrained(VoyagerTransformer3DModel, root / cfg.transformer_subfolder, torch_dtype=DTYPES[cfg.dtype])
    has_context = bool(transformer.config.get("use_context_block", False))
    if cfg.use_context_block is not None and has_context != cfg.use_context_block:
        raise InputError(
            f"voyager.use_context_block: {cfg.use_context_block} but {root / cfg.transformer_subfolder} was converted "
            f"with use_context_block={has_context} (reconvert with or without --no-context)")
    vae = load_pretrained(AutoencoderKLHunyuanVideo, root / cfg.vae_subfolder, torch_dtype=DTYPES[cfg.vae_dtype])
    apply_vae_tiling(vae, index["_voyager"].get("vae_tiling"))
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
