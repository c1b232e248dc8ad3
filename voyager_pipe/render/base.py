"""What every point renderer returns, the protocol it implements, and shared helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.render.config import RenderConfig


@dataclass
class RenderOutput:
    """Result of rendering a point cloud into ``N`` cameras (``H x W`` = the cameras' size).

    Attributes:
        rgb: ``[N, 3, H, W]`` float colours of the winning points (0 where empty).
        depth: ``[N, 1, H, W]`` float32 z-depth of the winning points (0 where empty).
        mask: ``[N, 1, H, W]`` bool, pixels hit by at least one point.
        index: ``[N, H, W]`` int64 index of the winning point in the input cloud (-1 where empty).
        normals: ``[N, 3, H, W]`` normals of the winning points (0 where empty) when normals were
            given, else ``None``.
    """

    rgb: torch.Tensor  # [N, 3, H, W]
    depth: torch.Tensor  # [N, 1, H, W]
    mask: torch.Tensor  # [N, 1, H, W]
    index: torch.Tensor  # [N, H, W]
    normals: torch.Tensor | None = None  # [N, 3, H, W]

    def __len__(self) -> int:
        return self.index.shape[0]

    @staticmethod
    def cat(parts: list["RenderOutput"]) -> "RenderOutput":
        """The renders of consecutive camera batches as one (normals kept when every part has them)."""
        normals = None if any(p.normals is None for p in parts) else torch.cat([p.normals for p in parts])
        return RenderOutput(rgb=torch.cat([p.rgb for p in parts]), depth=torch.cat([p.depth for p in parts]),
                            mask=torch.cat([p.mask for p in parts]), index=torch.cat([p.index for p in parts]),
                            normals=normals)

    def crop(self, margin: int) -> "RenderOutput":
        """The render without ``margin`` pixels on every side (undoes :meth:`Cameras.pad`)."""
        if margin == 0:
            return self
        inner = (..., slice(margin, -margin), slice(margin, -margin))
        return RenderOutput(rgb=self.rgb[inner], depth=self.depth[inner], mask=self.mask[inner], index=self.index[inner],
                            normals=None if self.normals is None else self.normals[inner])


@runtime_checkable
class PointRenderer(Protocol):
    """Renders a coloured point cloud with a nearest-point z-buffer."""

    name: str

    def render(self, points: torch.Tensor, colors: torch.Tensor, cameras: Cameras,
               normals: torch.Tensor | None = None) -> RenderOutput:
        """``points`` [P, 3] world, ``colors`` [P, 3], ``normals`` [P, 3] | None -> RenderOutput
        at ``cameras.height x cameras.width``."""
        ...


def low_res_size(width: int, height: int, render_scale: float) -> tuple[int, int]:
    """Size ``(w, h)`` at which a ``width x height`` frame is rasterised for ``render_scale``."""
    if not 0 < render_scale <= 1:
        raise ValueError(f"render.render_scale must be in (0, 1], got {render_scale}")
    return max(1, round(width * render_scale)), max(1, round(height * render_scale))


def check_inputs(points: torch.Tensor, colors: torch.Tensor, normals: torch.Tensor | None) -> None:
    """Shape checks at the renderer boundary (clear errors instead of broadcasting surprises)."""
    if points.ndim != 2 or points.shape[-1] != 3:
        raise ValueError(f"render: points must be [P,3], got {tuple(points.shape)}")
    if colors.shape != points.shape:
        raise ValueError(f"render: colors must be [P,3] like points {tuple(points.shape)}, got {tuple(colors.shape)}")
    if normals is not None and normals.shape != points.shape:
        raise ValueError(f"render: normals must be [P,3] like points {tuple(points.shape)}, got {tuple(normals.shape)}")


def nearest_upsample(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour resize of ``[N, ..., h, w]`` to ``[N, ..., height, width]`` by pixel centres.

    Output pixel ``i`` takes input pixel ``floor((i + 0.5) * h / height)``: no value is ever
    blended (depth across edges, indices), any dtype.
    """
    h, w = image.shape[-2:]
    rows = ((torch.arange(height, device=image.device, dtype=torch.float64) + 0.5) * (h / height)).floor().long().clamp_(0, h - 1)  # [height]
    cols = ((torch.arange(width, device=image.device, dtype=torch.float64) + 0.5) * (w / width)).floor().long().clamp_(0, w - 1)  # [width]
    return image[..., rows[:, None], cols[None, :]]  # [N, ..., height, width]


def gather_output(index: torch.Tensor, depth: torch.Tensor, colors: torch.Tensor,
                  normals: torch.Tensor | None) -> RenderOutput:
    """Build a :class:`RenderOutput` from the winning point per pixel.

    Args:
        index: ``[N, H, W]`` int64 winning point index, -1 where empty.
        depth: ``[N, H, W]`` z-depth of the winner (any value where empty).
        colors: ``[P, 3]``; normals: ``[P, 3]`` or None.
    """
    hit = index >= 0  # [N, H, W]
    safe = index.clamp_min(0)  # [N, H, W]
    if colors.shape[0] == 0:  # empty cloud: nothing can be hit
        safe = torch.zeros_like(safe)
        colors = torch.zeros(1, 3, dtype=colors.dtype, device=colors.device)
        normals = None if normals is None else torch.zeros(1, 3, dtype=normals.dtype, device=normals.device)
    zero = torch.zeros((), dtype=colors.dtype, device=colors.device)
    rgb = torch.where(hit[..., None], colors[safe], zero).permute(0, 3, 1, 2).contiguous()  # [N, 3, H, W]
    out_normals = None
    if normals is not None:
        nzero = torch.zeros((), dtype=normals.dtype, device=normals.device)
        out_normals = torch.where(hit[..., None], normals[safe], nzero).permute(0, 3, 1, 2).contiguous()  # [N, 3, H, W]
    depth = torch.where(hit, depth.float(), torch.zeros((), device=depth.device)).unsqueeze(1)  # [N, 1, H, W]
    return RenderOutput(rgb=rgb, depth=depth, mask=hit.unsqueeze(1), index=index, normals=out_normals)


class ZBufferRenderer:
    """Shared ``render`` of the backends: rasterise (at ``render_scale``), upsample, gather.

    A backend implements
    ``_rasterize(points [P, 3], cameras) -> (index [N, h, w] int64, depth [N, h, w])``.
    """

    def __init__(self, cfg: RenderConfig | None = None, device=None):
        self.cfg = cfg if cfg is not None else RenderConfig()
        self.device = None if device is None else torch.device(device)
        low_res_size(1, 1, self.cfg.render_scale)  # validate early
        if self.cfg.splat_radius < 0:
            raise ValueError(f"render.splat_radius must be >= 0, got {self.cfg.splat_radius}")

    def _rasterize(self, points: torch.Tensor, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def render(self, points: torch.Tensor, colors: torch.Tensor, cameras: Cameras,
               normals: torch.Tensor | None = None) -> RenderOutput:
        check_inputs(points, colors, normals)
        if self.device is not None:
            points, colors = points.to(self.device), colors.to(self.device)
            normals = None if normals is None else normals.to(self.device)
        W, H = cameras.width, cameras.height
        w, h = low_res_size(W, H, self.cfg.render_scale)
        raster_cameras = cameras if (w, h) == (W, H) else cameras.resize(w, h)
        index, depth = self._rasterize(points, raster_cameras)  # [N, h, w] x2
        if (w, h) != (W, H):
            index = nearest_upsample(index, H, W)  # [N, H, W]
            depth = nearest_upsample(depth, H, W)  # [N, H, W]
        return gather_output(index, depth, colors, normals)
