"""The ``transformers`` backend: any ``AutoModelForDepthEstimation`` model from LOCAL weights.

Models load with ``local_files_only=True`` from a folder (a ``save_pretrained`` output or a
snapshot of the local Hugging Face cache); nothing is ever downloaded.

What the model predicts (``cfg.model_output="auto"``), from its config:

* ``depth_estimation_type == "metric"`` (Depth Anything metric), ``zoedepth``, ``glpn``,
  ``prompt_depth_anything`` -> metric depth, used as is;
* ``depth_pro`` -> canonical inverse depth + field of view -> metric depth
  ``1 / (2 tan(fov / 2) * prediction)`` (what transformers' own post-processing computes);
* everything else (Depth Anything relative, DPT/MiDaS, unknown) -> relative disparity,
  turned into depth by :func:`disparity_to_depth`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import torch

from voyager_pipe.depth.base import DepthEstimate
from voyager_pipe.depth.config import DepthConfig
from voyager_pipe.depth.finish import finish_estimate
from voyager_pipe.errors import InputError, MissingDependencyError

log = logging.getLogger(__name__)

_METRIC_MODEL_TYPES = {"zoedepth", "glpn", "prompt_depth_anything"}
_RELATIVE_MODEL_TYPES = {"dpt", "depth_anything"}
_LOADED: dict[tuple[str, str], tuple] = {}
_LOCK = threading.Lock()


def disparity_to_depth(disparity: torch.Tensor, eps: float = 0.01, shift: float = 0.0,
                       median_depth: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative (affine-invariant) disparity ``[h, w]`` -> depth ``[h, w]`` and valid ``[h, w]``.

    ``valid = disparity > eps * p99(disparity)`` (sky and the infinitely far have ~0 disparity);
    ``depth = 1 / (disparity / median(disparity) + shift)``, rescaled so its median over valid
    pixels is ``median_depth``. The unknown shift of affine-invariant disparity is taken as
    ``shift`` (0: plain inverse). Invalid pixels get depth 0.
    """
    disparity = disparity.to(torch.float32)  # [h, w]
    finite = torch.isfinite(disparity) & (disparity > 0)  # [h, w]
    if not bool(finite.any()):
        return torch.zeros_like(disparity), finite
    high = torch.quantile(disparity[finite], 0.99)
    valid = finite & (disparity > eps * high)  # [h, w]
    normalised = disparity / disparity[valid].median() + shift  # [h, w]
    valid &= normalised > 0
    depth = torch.where(valid, 1.0 / normalised.clamp_min(1e-12), torch.zeros_like(normalised))  # [h, w]
    if bool(valid.any()):
        depth = depth * (median_depth / depth[valid].median())
    return depth, valid


def normalise_depth(depth: torch.Tensor, median_depth: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative depth ``[h, w]`` -> scaled so the median of valid (finite, > 0) pixels is ``median_depth``."""
    valid = torch.isfinite(depth) & (depth > 0)  # [h, w]
    if not bool(valid.any()):
        return torch.zeros_like(depth), valid
    return torch.where(valid, depth * (median_depth / depth[valid].median()), torch.zeros_like(depth)), valid


def model_output_kind(config, requested: str = "auto") -> str:
    """``metric_depth`` | ``metric_inverse_depth`` | ``relative_depth`` | ``relative_disparity`` for a model config."""
    if requested != "auto":
        return requested
    model_type = getattr(config, "model_type", "")
    estimation_type = getattr(config, "depth_estimation_type", None)
    if estimation_type == "metric":
        return "metric_depth"
    if estimation_type == "relative":
        return "relative_disparity"
    if model_type == "depth_pro":
        return "metric_inverse_depth"
    if model_type in _METRIC_MODEL_TYPES:
        return "metric_depth"
    if model_type not in _RELATIVE_MODEL_TYPES:
        log.warning("depth model type %r: output kind unknown, treated as relative disparity "
                    "(set depth.model_output to override)", model_type)
    return "relative_disparity"


def _load(path: Path, device: torch.device):
    key = (str(path.resolve()), str(device))
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
    try:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation
    except ImportError:
        raise MissingDependencyError("the transformers depth backend needs `pip install transformers`") from None
    try:
        processor = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForDepthEstimation.from_pretrained(str(path), local_files_only=True)
    except ImportError as exc:  # e.g. an image processor that exists only in a torchvision flavour
        raise MissingDependencyError(f"{path}: loading this model needs a missing package ({exc})") from None
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: cannot load a depth-estimation model with transformers "
                         f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    model = model.to(device).eval()
    with _LOCK:
        _LOADED.clear()  # keep one model in memory
        _LOADED[key] = (processor, model)
    return processor, model


class TransformersDepthEstimator:
    """Monocular depth with a local transformers depth model (Depth Anything V2, Depth Pro, DPT, ...)."""

    name = "transformers"

    def __init__(self, path: str | Path, cfg: DepthConfig, device: torch.device | str = "cpu", name: str | None = None):
        self.path = Path(path)
        self.cfg = cfg
        self.device = torch.device(device)
        self.label = name or str(path)

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Raw model output ``[h, w]`` at the model's resolution and facts about it."""
        processor, model = _load(self.path, self.device)
        pixels = (image.detach().clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()  # [H, W, 3]
        inputs = processor(images=np.ascontiguousarray(pixels), return_tensors="pt")
        inputs = {k: v.to(self.device, dtype=model.dtype) if v.is_floating_point() else v.to(self.device)
                  for k, v in inputs.items()}
        outputs = model(**inputs)
        raw = outputs.predicted_depth  # [1, h, w]
        facts = {"model_resolution": tuple(raw.shape[-2:])}
        fov = getattr(outputs, "field_of_view", None)
        if fov is not None:
            facts["fov_deg"] = float(fov.reshape(-1)[0])
        return raw.reshape(raw.shape[-2:]).float().cpu(), facts  # [h, w]

    def estimate(self, image: torch.Tensor) -> DepthEstimate:  # image [3, H, W] float in [0, 1]
        height, width = image.shape[-2:]
        raw, facts = self.predict(image)  # [h, w]
        _, model = _load(self.path, self.device)
        kind = model_output_kind(model.config, self.cfg.model_output)
        facts["model_output"] = kind
        valid = None
        if kind == "relative_disparity":
            depth, valid = disparity_to_depth(raw, self.cfg.disparity_eps, self.cfg.disparity_shift,
                                              self.cfg.relative_scale)  # [h, w]
        elif kind == "relative_depth":
            depth, valid = normalise_depth(raw, self.cfg.relative_scale)  # [h, w]
        elif kind == "metric_inverse_depth":
            if "fov_deg" not in facts:
                raise InputError(f"{self.label}: model predicts inverse depth without a field of view; "
                                 "set depth.model_output")
            tan_half = float(np.tan(np.deg2rad(facts["fov_deg"]) / 2))
            depth = 1.0 / (2 * tan_half * raw.clamp(min=1e-4, max=1e4))  # [h, w]
        else:
            depth = raw
        return finish_estimate(depth, height, width, self.cfg, learned=True, is_metric=kind.startswith("metric"),
                               source=f"transformers:{self.label}", valid=valid, details=facts)
