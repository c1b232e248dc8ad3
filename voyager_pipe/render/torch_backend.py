"""Pure-torch point renderer: project, cull, one ``scatter_reduce(amin)`` z-buffer, gather.

The z-buffer packs, per point and covered pixel, a 64-bit key::

    key = (float32 bits of z) << 32 | point index

For positive float32 values the IEEE-754 bit pattern is monotonic in the value, so the key
orders by depth exactly (no quantisation loss beyond float32) and, for equal depth, by the
smaller point index: deterministic on CPU and CUDA. All cameras share one flattened
``camera * pixel`` index space, so a whole batch is a single scatter; only very large batches
are split into camera chunks to bound memory (``max_elements``).
"""

from __future__ import annotations

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.geometry.projection import project
from voyager_pipe.render.base import RenderOutput, check_inputs, gather_output, nearest_upsample
from voyager_pipe.render.config import RenderConfig

_EMPTY = torch.iinfo(torch.int64).max
_INDEX_BITS = 32
_INDEX_MASK = (1 << _INDEX_BITS) - 1


def low_res_size(width: int, height: int, render_scale: float) -> tuple[int, int]:
    """Size ``(w, h)`` at which a ``width x height`` frame is rasterised for ``render_scale``."""
    if not 0 < render_scale <= 1:
        raise ValueError(f"render.render_scale must be in (0, 1], got {render_scale}")
    return max(1, round(width * render_scale)), max(1, round(height * render_scale))


def _splat_offsets(radius: int, device) -> torch.Tensor:
    """``[(2r+1)^2, 2]`` integer (drow, dcol) offsets of a square footprint."""
    r = torch.arange(-radius, radius + 1, device=device)
    drow, dcol = torch.meshgrid(r, r, indexing="ij")  # [2r+1, 2r+1] each
    return torch.stack([drow.reshape(-1), dcol.reshape(-1)], dim=-1)  # [F, 2]


def zbuffer(points: torch.Tensor, cameras: Cameras, near: float = 1e-3, splat_radius: int = 0,
            max_elements: int = 1 << 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest point per pixel for every camera.

    Args:
        points: ``[P, 3]`` world coordinates (P < 2**32).
        cameras: ``N`` cameras; the image is ``cameras.height x cameras.width``.
        near: points with z-depth ``<= near`` (or non-finite) are culled.
        splat_radius: each point covers the ``(2r+1) x (2r+1)`` pixel square around the pixel
            it projects into (at its own depth); parts outside the image are dropped.
        max_elements: bound on ``cameras_per_chunk * P * (2r+1)^2``; larger batches are split
            into camera chunks (a loop over cameras, for memory only).

    Returns:
        index: ``[N, H, W]`` int64 winning point, -1 where empty.
        depth: ``[N, H, W]`` float32 z-depth of the winner (0 where empty).
    """
    N, H, W = len(cameras), cameras.height, cameras.width
    P = points.shape[0]
    if P >= 1 << _INDEX_BITS:
        raise ValueError(f"render: at most {1 << _INDEX_BITS} points per call, got {P}")
    footprint = (2 * splat_radius + 1) ** 2
    per_chunk = max(1, max_elements // max(1, P * footprint))
    if N > per_chunk:
        parts = [zbuffer(points, cameras[s:s + per_chunk], near, splat_radius, max_elements) for s in range(0, N, per_chunk)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    device = points.device
    K = cameras.K.to(device=device, dtype=points.dtype)  # [N, 3, 3]
    w2c = cameras.w2c.to(device=device, dtype=points.dtype)  # [N, 4, 4]
    uv, z = project(points, K, w2c)  # [N, P, 2], [N, P]
    z = z.float()  # [N, P]
    col = uv[..., 0].floor()  # [N, P] (pixel centres at integer + 0.5)
    row = uv[..., 1].floor()  # [N, P]
    r = splat_radius
    keep = (z > near) & z.isfinite() & (col >= -r) & (col < W + r) & (row >= -r) & (row < H + r)  # [N, P]
    # Packed key: monotonic float32 bits of z (positive) in the high half, point index low.
    z_bits = torch.where(keep, z, torch.ones_like(z)).view(torch.int32).long()  # [N, P]
    point_ids = torch.arange(P, device=device, dtype=torch.int64)  # [P]
    key = (z_bits << _INDEX_BITS) | point_ids  # [N, P]
    dump = N * H * W  # one extra slot receives every culled sample (no boolean compaction)
    camera_base = (torch.arange(N, device=device, dtype=torch.int64) * (H * W))[:, None]  # [N, 1]
    row = torch.where(keep, row, torch.zeros_like(row)).long()  # [N, P]
    col = torch.where(keep, col, torch.zeros_like(col)).long()  # [N, P]
    if r == 0:
        slot = torch.where(keep, camera_base + row * W + col, dump)  # [N, P]
        keys = key  # [N, P]
    else:
        offsets = _splat_offsets(r, device)  # [F, 2]
        rows = row[..., None] + offsets[:, 0]  # [N, P, F]
        cols = col[..., None] + offsets[:, 1]  # [N, P, F]
        inside = keep[..., None] & (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)  # [N, P, F]
        slot = torch.where(inside, camera_base[..., None] + rows * W + cols, dump)  # [N, P, F]
        keys = key[..., None].expand_as(slot)  # [N, P, F]
    buffer = torch.full((dump + 1,), _EMPTY, dtype=torch.int64, device=device)  # [N*H*W + 1]
    buffer.scatter_reduce_(0, slot.reshape(-1), keys.reshape(-1), reduce="amin", include_self=True)
    buffer = buffer[:dump].view(N, H, W)  # [N, H, W]
    hit = buffer != _EMPTY  # [N, H, W]
    index = torch.where(hit, buffer & _INDEX_MASK, -1)  # [N, H, W]
    depth_bits = (buffer >> _INDEX_BITS).to(torch.int32)  # [N, H, W]
    depth = torch.where(hit, depth_bits.view(torch.float32), 0.0)  # [N, H, W]
    return index, depth


class TorchPointRenderer:
    """Nearest-point z-buffer renderer in plain torch (CPU and CUDA).

    Args:
        cfg: ``splat_radius`` (square footprint, pixels), ``render_scale`` (rasterise at this
            fraction of the size, then nearest-upsample every output: depth, index and colour
            are never blended across edges) and ``near`` (culling plane).
        device: where to render (default: where the points are).
    """

    name = "torch"

    def __init__(self, cfg: RenderConfig | None = None, device=None):
        self.cfg = cfg if cfg is not None else RenderConfig()
        self.device = None if device is None else torch.device(device)
        low_res_size(1, 1, self.cfg.render_scale)  # validate early
        if self.cfg.splat_radius < 0:
            raise ValueError(f"render.splat_radius must be >= 0, got {self.cfg.splat_radius}")

    def render(self, points: torch.Tensor, colors: torch.Tensor, cameras: Cameras,
               normals: torch.Tensor | None = None) -> RenderOutput:
        check_inputs(points, colors, normals)
        if self.device is not None:
            points, colors = points.to(self.device), colors.to(self.device)
            normals = None if normals is None else normals.to(self.device)
        W, H = cameras.width, cameras.height
        w, h = low_res_size(W, H, self.cfg.render_scale)
        raster_cameras = cameras if (w, h) == (W, H) else cameras.resize(w, h)
        index, depth = zbuffer(points, raster_cameras, near=self.cfg.near, splat_radius=self.cfg.splat_radius)  # [N, h, w] x2
        if (w, h) != (W, H):
            index = nearest_upsample(index, H, W)  # [N, H, W]
            depth = nearest_upsample(depth, H, W)  # [N, H, W]
        return gather_output(index, depth, colors, normals)
