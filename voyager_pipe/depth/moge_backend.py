"""The ``moge`` backend: MoGe / MoGe-2 (the reference system's depth model) from a LOCAL checkpoint.

Needs ``pip install git+https://github.com/microsoft/MoGe.git`` (package ``moge``) and a
checkpoint file (``model.pt``) on disk or in the local Hugging Face cache (see
:mod:`voyager_pipe.depth.locate`). MoGe-2 checkpoints (``moge-2-*``) give metric depth;
MoGe-1 gives affine-invariant geometry, rescaled to a median depth of ``cfg.relative_scale``.
MoGe's own mask (sky, undefined geometry) becomes ``valid=False``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from voyager_pipe.depth.base import DepthEstimate
from voyager_pipe.depth.config import DepthConfig
from voyager_pipe.depth.finish import finish_estimate
from voyager_pipe.errors import InputError, MissingDependencyError

_LOADED: dict[tuple[str, str], tuple] = {}


def import_moge():
    """The ``moge.model`` module, or MissingDependencyError saying how to install it."""
    try:
        import moge.model as moge_model
    except ImportError:
        raise MissingDependencyError("the moge depth backend needs the `moge` package: "
                                     "pip install git+https://github.com/microsoft/MoGe.git "
                                     "(or use depth.backend=transformers / a depth file)") from None
    return moge_model


def _load(path: Path, device: torch.device):
    key = (str(path), str(device))
    if key in _LOADED:
        return _LOADED[key]
    moge_model = import_moge()
    errors = []
    for version in ("v2", "v1"):  # a v1 checkpoint does not load into the v2 class and vice versa
        try:
            model_class = moge_model.import_model_class_by_version(version)
            model = model_class.from_pretrained(str(path)).to(device).eval()
        except Exception as exc:  # noqa: BLE001 - any failure: try the other version, report both
            errors.append(f"{version}: {exc.__class__.__name__}")
            continue
        _LOADED.clear()
        _LOADED[key] = (model, version)
        return model, version
    raise InputError(f"{path}: not a MoGe checkpoint ({'; '.join(errors)})")


class MoGeDepthEstimator:
    """Monocular geometry with MoGe; depth = z of its point map, mask = its validity mask."""

    name = "moge"

    def __init__(self, path: str | Path, cfg: DepthConfig, device: torch.device | str = "cpu", name: str | None = None):
        if not Path(path).is_file():
            raise InputError(f"{path}: MoGe checkpoint not found")
        import_moge()
        self.path = Path(path)
        self.cfg = cfg
        self.device = torch.device(device)
        self.label = name or str(path)

    @torch.no_grad()
    def estimate(self, image: torch.Tensor) -> DepthEstimate:  # image [3, H, W] float in [0, 1]
        height, width = image.shape[-2:]
        model, version = _load(self.path, self.device)
        output = model.infer(image.to(self.device, torch.float32))
        depth = output["depth"].float().cpu().reshape(height, width)  # [H, W]
        valid = output["mask"].bool().cpu().reshape(height, width) if "mask" in output else None  # [H, W]
        is_metric = version == "v2"
        if not is_metric:
            ok = torch.isfinite(depth) & (depth > 0) & (valid if valid is not None else True)  # [H, W]
            if bool(ok.any()):
                depth = depth * (self.cfg.relative_scale / depth[ok].median())
        return finish_estimate(depth, height, width, self.cfg, learned=True, is_metric=is_metric,
                               source=f"moge:{self.label}", valid=valid, details={"moge_version": version})
