"""Point renderers: a nearest-point z-buffer from a coloured point cloud into N cameras.

``get_renderer(cfg, device).render(points [P,3], colors [P,3], cameras, normals=None)``
returns a :class:`RenderOutput` (rgb, depth, mask, index of the winning point, normals).
Backends: ``torch`` (pure torch, CPU/CUDA), ``pytorch3d`` (when it imports), ``auto``.
"""

from voyager_pipe.render.base import PointRenderer, RenderOutput
from voyager_pipe.render.config import RenderConfig
from voyager_pipe.render.registry import RENDERERS, get_renderer, pytorch3d_available
from voyager_pipe.render.torch_backend import TorchPointRenderer, zbuffer

__all__ = ["PointRenderer", "RENDERERS", "RenderConfig", "RenderOutput", "TorchPointRenderer",
           "get_renderer", "pytorch3d_available", "zbuffer"]
