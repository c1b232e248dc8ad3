"""The converted (diffusers-style) model folder: its index, format version and VAE tiling.

Written by :func:`voyager_pipe.models.convert.convert_checkpoint`, read by every loader
(:func:`voyager_pipe.models.loading.load_components`, :func:`load_converted`)::

    MODEL_DIR/model_index.json   components + "_voyager": format, version, sources, dtype, vae_tiling
    MODEL_DIR/transformer/       VoyagerTransformer3DModel
    MODEL_DIR/vae/               diffusers AutoencoderKLHunyuanVideo

VAE tiling: the released VAE (``AutoencoderKLCausal3D``) splits a clip in time only above its
config's ``sample_tsize`` frames (64) and in space above ``sample_size`` pixels (256), tiles
overlapping by a quarter. diffusers' ``AutoencoderKLHunyuanVideo`` has the same tiling maths but
splits in time above 16 frames by default, whether or not tiling is enabled, which changes a
21- or 49-frame encode/decode. ``convert`` stores the official sizes in the index and loading sets
them on the diffusers VAE (:func:`apply_vae_tiling`), so a 49-frame clip is never split in time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from voyager_pipe.errors import InputError, MissingDependencyError

MODEL_INDEX = "model_index.json"
FORMAT_NAME = "voyager_pipe.diffusers"
#: 1: first release; 2: adds ``vae_tiling`` and keeps the fp32 modules of the transformer in fp32.
FORMAT_VERSION = 2
#: Overlap of neighbouring VAE tiles in the released code (``tile_overlap_factor``).
TILE_OVERLAP_FACTOR = 0.25
#: The released VAE config's tile sizes (``sample_size``, ``sample_tsize``) when its config.json lacks them.
DEFAULT_SAMPLE_SIZE, DEFAULT_SAMPLE_TSIZE = 256, 64


def vae_tiling_from_official(official_config: dict) -> dict:
    """diffusers tile sizes and strides equal to the released VAE's, from its ``config.json``.

    Released: tiles of ``sample_size`` pixels (``sample_tsize`` frames) starting every
    ``int(size * (1 - 0.25))``; diffusers: ``tile_sample_min_*`` and ``tile_sample_stride_*``.
    """
    size = official_config.get("sample_size", DEFAULT_SAMPLE_SIZE)
    height, width = (size[0], size[-1]) if isinstance(size, (list, tuple)) else (size, size)
    frames = int(official_config.get("sample_tsize", DEFAULT_SAMPLE_TSIZE))
    keep = 1.0 - TILE_OVERLAP_FACTOR
    return {
        "tile_sample_min_height": int(height),
        "tile_sample_min_width": int(width),
        "tile_sample_min_num_frames": frames,
        "tile_sample_stride_height": int(height * keep),
        "tile_sample_stride_width": int(width * keep),
        "tile_sample_stride_num_frames": int(frames * keep),
    }


def apply_vae_tiling(vae: torch.nn.Module, tiling: Optional[dict]) -> None:
    """Set the tile sizes and strides of a diffusers HunyuanVideo VAE (``enable_tiling()`` keeps them).

    ``tiling`` is the index's ``vae_tiling`` (``None``: the released defaults, 256 px / 64 frames).
    The temporal split applies with or without ``enable_tiling()`` (diffusers' frame-wise coding).
    """
    tiling = tiling or vae_tiling_from_official({})
    for name, value in tiling.items():
        if not hasattr(vae, name):
            raise ValueError(f"{type(vae).__name__} has no tiling attribute {name!r}")
        setattr(vae, name, value)


def read_model_index(model_dir: str | Path) -> dict:
    """``model_index.json`` of a converted folder, checked: format name and a version this code reads."""
    path = Path(model_dir).expanduser() / MODEL_INDEX
    if not path.is_file():
        raise MissingDependencyError(
            f"{path}: not found; convert the official weights first: voyager-pipe convert --src CKPTS --dst {model_dir}")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    meta = index.get("_voyager") if isinstance(index, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise InputError(f"{path}: _voyager.format: not a voyager_pipe converted folder")
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(f"{path}: _voyager.version: {version!r} is not a format this voyager_pipe reads "
                         f"(up to {FORMAT_VERSION}); update voyager_pipe")
    if version < FORMAT_VERSION:
        raise InputError(f"{path}: _voyager.version: {version} is an older format (VAE tiling and fp32 modules "
                         f"missing); convert the official weights again with this voyager_pipe")
    return index


def load_pretrained(cls, folder: Path, **kwargs):
    """``cls.from_pretrained(folder, local_files_only=True, **kwargs)``; any unreadable file -> one InputError naming it."""
    try:
        return cls.from_pretrained(folder, local_files_only=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - truncated/foreign/wrongly shaped files all surface here
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{folder}: cannot load {cls.__name__} ({first_line[:300]})") from None


def load_converted(model_dir: str | Path, torch_dtype: torch.dtype | None = None, load_vae: bool = True):
    """Load ``(transformer, vae or None, index)`` from a converted folder (format checked, VAE tiling set)."""
    from diffusers import AutoencoderKLHunyuanVideo

    from voyager_pipe.models.transformer import VoyagerTransformer3DModel

    model_dir = Path(model_dir).expanduser()
    index = read_model_index(model_dir)
    transformer = load_pretrained(VoyagerTransformer3DModel, model_dir / "transformer", torch_dtype=torch_dtype)
    vae = None
    if load_vae:
        if index.get("vae", [None])[0] is None:
            raise MissingDependencyError(f"{model_dir}: converted without a VAE; rerun convert with the VAE files")
        vae = load_pretrained(AutoencoderKLHunyuanVideo, model_dir / "vae", torch_dtype=torch_dtype)
        apply_vae_tiling(vae, index["_voyager"].get("vae_tiling"))
    return transformer, vae, index
