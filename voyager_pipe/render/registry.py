"""Renderer registry: name -> factory ``(cfg, device) -> PointRenderer``."""

from __future__ import annotations

from typing import Callable

import torch

from voyager_pipe.errors import InputError
from voyager_pipe.render.base import PointRenderer
from voyager_pipe.render.config import RenderConfig


def _torch_factory(cfg: RenderConfig, device) -> PointRenderer:
    from voyager_pipe.render.torch_backend import TorchPointRenderer

    return TorchPointRenderer(cfg, device)


def _pytorch3d_factory(cfg: RenderConfig, device) -> PointRenderer:
    from voyager_pipe.render.pytorch3d_backend import PyTorch3DPointRenderer

    return PyTorch3DPointRenderer(cfg, device)


def pytorch3d_available() -> bool:
    """True when ``pytorch3d`` (with its compiled ops) imports."""
    try:
        import pytorch3d.renderer  # noqa: F401
    except Exception:  # ImportError, or a broken build raising something else
        return False
    return True


def _auto_factory(cfg: RenderConfig, device) -> PointRenderer:
    """PyTorch3D on a CUDA device when it imports, the torch renderer otherwise.

    PyTorch3D's CPU rasteriser is far slower than the torch z-buffer, so it is never picked
    automatically on CPU.
    """
    on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    if on_cuda and pytorch3d_available():
        return _pytorch3d_factory(cfg, device if device is not None else "cuda")
    return _torch_factory(cfg, device)


RENDERERS: dict[str, Callable[[RenderConfig, object], PointRenderer]] = {
    "torch": _torch_factory,
    "pytorch3d": _pytorch3d_factory,
    "auto": _auto_factory,
}


def get_renderer(cfg: RenderConfig | None = None, device=None) -> PointRenderer:
    """The renderer named by ``cfg.backend`` ("auto", "torch", "pytorch3d") for ``device``.

    ``device=None`` renders where the points are (torch backend) / on CUDA when available (auto).
    """
    cfg = cfg if cfg is not None else RenderConfig()
    try:
        factory = RENDERERS[cfg.backend]
    except KeyError:
        raise InputError(f"render.backend: {cfg.backend!r} is not one of {sorted(RENDERERS)}") from None
    try:
        return factory(cfg, device)
    except InputError:  # includes MissingDependencyError
        raise
    except ValueError as exc:  # bad render.* values
        raise InputError(str(exc)) from None
