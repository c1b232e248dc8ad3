"""``estimate_depth`` and the backend registry ``DEPTH_ESTIMATORS``.

``auto`` picks, in order: an explicit depth file (``depth_path`` argument, then
``cfg.file``), a sidecar depth file next to the image, a learned model named by
``cfg.model`` / ``$VOYAGER_PIPE_DEPTH_MODEL``, a well-known model in the local Hugging Face
cache (MoGe first when ``moge`` imports, then Depth Anything V2 L/B/S, Depth Pro, DPT-large);
otherwise it raises InputError naming the options and where weights were looked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from voyager_pipe.depth.base import DepthEstimate, DepthEstimator
from voyager_pipe.depth.config import DepthConfig
from voyager_pipe.depth.file_backend import FileDepthEstimator
from voyager_pipe.depth.files import SIDECAR_PATTERNS, find_sidecar
from voyager_pipe.depth.locate import LocatedModel, find_default_model, locate_model, requested_model, where_looked
from voyager_pipe.device import resolve_device
from voyager_pipe.errors import InputError, MissingDependencyError

EstimatorFactory = Callable[..., DepthEstimator]


def _explicit_file(cfg: DepthConfig, depth_path) -> Path | None:
    if depth_path is not None:
        return Path(depth_path)
    return Path(cfg.file) if cfg.file else None


def _learned(found: LocatedModel, cfg: DepthConfig, device) -> DepthEstimator:
    if found.backend == "moge":
        from voyager_pipe.depth.moge_backend import MoGeDepthEstimator

        return MoGeDepthEstimator(found.path, cfg, resolve_device(device), name=found.name)
    from voyager_pipe.depth.transformers_backend import TransformersDepthEstimator

    return TransformersDepthEstimator(found.path, cfg, resolve_device(device), name=found.name)


def _requested_learned(cfg: DepthConfig, backend: str | None) -> LocatedModel | None:
    """The model named by cfg.model / env (InputError when named but not found locally), else None."""
    spec = requested_model(cfg.model)
    if spec is None:
        return None
    found = locate_model(spec, backend)
    if found is None:
        kind = f"{backend} " if backend else ""
        raise MissingDependencyError(
            f"depth.model: {spec!r} is not a local {kind}depth model (a folder with config.json for "
            f"transformers, a model.pt for MoGe) nor a Hugging Face name in the local cache; nothing is "
            f"downloaded: fetch it first (e.g. `huggingface-cli download {spec}`)")
    return found


def make_file(cfg: DepthConfig, image_path=None, depth_path=None, device=None) -> DepthEstimator:
    path = _explicit_file(cfg, depth_path)
    if path is None and image_path is not None and cfg.sidecar:
        path = find_sidecar(image_path)
    if path is None:
        raise InputError("depth.file: no depth file given and none found next to the image "
                         f"({', '.join(p + '.<npy|exr|pfm|tif|png>' for p in SIDECAR_PATTERNS)})")
    return FileDepthEstimator(path, cfg)


def make_transformers(cfg: DepthConfig, image_path=None, depth_path=None, device=None) -> DepthEstimator:
    found = _requested_learned(cfg, "transformers") or find_default_model("transformers")
    if found is None:
        raise MissingDependencyError(f"depth.model: no local transformers depth model; looked in "
                                     f"{where_looked('transformers')}")
    return _learned(found, cfg, device)


def make_moge(cfg: DepthConfig, image_path=None, depth_path=None, device=None) -> DepthEstimator:
    from voyager_pipe.depth.moge_backend import import_moge

    import_moge()
    found = _requested_learned(cfg, "moge") or find_default_model("moge")
    if found is None:
        raise MissingDependencyError(f"depth.model: no local MoGe checkpoint; looked in {where_looked('moge')}")
    return _learned(found, cfg, device)


def make_auto(cfg: DepthConfig, image_path=None, depth_path=None, device=None) -> DepthEstimator:
    """Explicit choices first: a depth file (--depth / depth.file), then a named model (--depth-model /
    depth.model: an error when it is not found, never silently replaced); then a sidecar next to the
    image, the model of the environment variable, and a well-known model in the local cache."""
    path = _explicit_file(cfg, depth_path)
    if path is not None:
        return FileDepthEstimator(path, cfg)
    if cfg.model:
        return _learned(_requested_learned(cfg, None), cfg, device)
    if image_path is not None and cfg.sidecar:
        sidecar = find_sidecar(image_path)
        if sidecar is not None:
            return FileDepthEstimator(sidecar, cfg)
    found = _requested_learned(cfg, None) or find_default_model(None)
    if found is not None:
        return _learned(found, cfg, device)
    raise MissingDependencyError(
        "depth: no depth for the image. Give one of: a depth file (--depth FILE / depth.file: npy, "
        "16-bit png, exr, pfm), a sidecar next to the image (<stem>_depth.npy, ...), or a local learned "
        f"model (depth.model / --depth-model). Weights were looked for in: {where_looked(None)}")


#: backend name -> factory(cfg, image_path=None, depth_path=None, device=None) -> DepthEstimator
DEPTH_ESTIMATORS: dict[str, EstimatorFactory] = {
    "auto": make_auto,
    "file": make_file,
    "transformers": make_transformers,
    "moge": make_moge,
}


def get_depth_estimator(cfg: DepthConfig | None = None, image_path=None, depth_path=None,
                        device=None) -> DepthEstimator:
    """The estimator ``cfg.backend`` selects for this image (see module docstring for ``auto``)."""
    cfg = cfg or DepthConfig()
    if cfg.backend not in DEPTH_ESTIMATORS:
        raise InputError(f"depth.backend: {cfg.backend!r} is not one of {sorted(DEPTH_ESTIMATORS)}")
    return DEPTH_ESTIMATORS[cfg.backend](cfg, image_path=image_path, depth_path=depth_path, device=device)


def estimate_depth(image: torch.Tensor, cfg: DepthConfig | None = None, image_path=None, depth_path=None,
                   device=None) -> DepthEstimate:
    """Depth of ``image [3, H, W]`` (float in [0, 1]) at its own size -> :class:`DepthEstimate`.

    ``image_path`` enables sidecar detection; ``depth_path`` (or ``cfg.file``) forces a depth
    file; ``device`` runs learned models (None/"auto": CUDA when available).
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image: expected [3, H, W], got {tuple(image.shape)}")
    estimator = get_depth_estimator(cfg, image_path=image_path, depth_path=depth_path, device=device)
    return estimator.estimate(image)
