"""Build the Voyager components from a converted (diffusers-format) folder, with memory options.

Layout written by ``voyager-pipe convert``::

    MODEL_DIR/transformer/          config.json + diffusion_pytorch_model*.safetensors
    MODEL_DIR/transformer_context/  (optional) the variant with the context branch
    MODEL_DIR/vae/                  AutoencoderKLHunyuanVideo
    MODEL_DIR/text_encoder/ ...     (optional) text encoders, see voyager_pipe.models.text

Memory options mirror diffusers': ``offload="model"`` keeps one component on the device at a time
(the others wait on the CPU), ``offload="sequential"`` streams weights module by module through
accelerate hooks (least memory, slowest), VAE tiling / slicing, bf16 / fp16 weights.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import torch

from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.models.config import VoyagerConfig

from voyager_pipe.device import DTYPES


class ComponentPlacer:
    """Moves components to the execution device when used, according to the offload mode.

    * ``none``: everything lives on the device.
    * ``model``: ``with placer.use("vae"):`` brings the VAE to the device and sends every other
      component back to the CPU (diffusers' ``enable_model_cpu_offload`` behaviour).
    * ``sequential``: accelerate's ``cpu_offload`` hooks stream each module's weights (diffusers'
      ``enable_sequential_cpu_offload``); ``use`` is then a no-op.
    """

    def __init__(self, components: dict[str, torch.nn.Module], device: torch.device, mode: str = "none"):
        if mode not in ("none", "model", "sequential"):
            raise InputError(f"voyager.offload: {mode!r} is not one of ['none', 'model', 'sequential']")
        self.components = components
        self.device = torch.device(device)
        self.mode = "none" if self.device.type == "cpu" else mode
        self._on_device: Optional[str] = None
        if self.mode == "none":
            for module in components.values():
                module.to(self.device)
        elif self.mode == "model":
            for module in components.values():
                module.to("cpu")
        else:
            try:
                from accelerate import cpu_offload
            except ImportError as exc:
                raise MissingDependencyError(f"voyager.offload=sequential needs accelerate ({exc})") from None
            for module in components.values():
                cpu_offload(module, execution_device=self.device)

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[torch.nn.Module]:
        module = self.components[name]
        if self.mode == "model" and self._on_device != name:
            if self._on_device is not None:
                self.components[self._on_device].to("cpu")
            module.to(self.device)
            self._on_device = name
        yield module


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
    return VoyagerComponents(transformer=transformer.eval(), vae=vae.eval())


def configure_components(components: VoyagerComponents, cfg: VoyagerConfig) -> None:
    """Apply the VAE tiling/slicing, attention backend and compile options of ``cfg`` in place."""
    vae = components.vae
    if cfg.vae_tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if cfg.vae_slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    transformer = components.transformer
    if cfg.attention_backend:
        try:
            transformer.set_attention_backend(cfg.attention_backend)
        except (ValueError, ImportError, RuntimeError) as exc:
            raise InputError(f"voyager.attention_backend: {cfg.attention_backend!r} is not usable here ({exc})") from None
    if cfg.compile:
        transformer.compile_repeated_blocks(fullgraph=True)
