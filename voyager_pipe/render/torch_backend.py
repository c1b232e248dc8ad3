"""Pure-torch point renderer: project, cull, one ``scatter_reduce(amin)`` z-buffer, gather.

The z-buffer packs, per point and covered pixel, a 64-bit key::

    key = (float32 bits of z) << 32 | point index

For positive float32 values the IEEE-754 bit pattern is monotonic in the value, so the key
orders by depth exactly (no quantisation loss beyond float32) and, for equal depth, by the
smaller point index: deterministic on CPU and CUDA. All cameras share one flattened
``camera * pixel`` index space, so a whole batch is a single scatter; only very large batches
are split into camera chunks to bound memory (``max_elements``). A square splat of radius
``r`` is a ``(2r+1)^2`` minimum filter of the key image (exactly the same winners as splatting
every point, at the cost of a few image passes).
"""

from __future__ import annotations

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.render.base import ZBufferRenderer

_EMPTY = torch.iinfo(torch.int64).max
_INDEX_BITS = 32
_INDEX_MASK = (1 << _INDEX_BITS) - 1


def _min_filter(keys: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable ``(2r+1) x (2r+1)`` minimum of a padded key image ``[N, H+2r, W+2r]`` -> ``[N, H, W]``.

    A point binned into pixel ``q`` covers every pixel ``p`` with ``|p - q|_inf <= r``, so the
    winner of ``p`` is the minimum key over the ``(2r+1)^2`` bins around it: a square splat costs
    a few passes over the image instead of ``(2r+1)^2`` copies of every point.
    """
    h = keys.shape[1] - 2 * radius
    w = keys.shape[2] - 2 * radius
    rows = keys[:, :, 0:w].clone()  # [N, H+2r, W]
    for d in range(1, 2 * radius + 1):  # loop over the footprint width, not over points
        torch.minimum(rows, keys[:, :, d:d + w], out=rows)
    out = rows[:, 0:h].clone()  # [N, H, W]
    for d in range(1, 2 * radius + 1):
        torch.minimum(out, rows[:, d:d + h], out=out)
    return out


def zbuffer(points: torch.Tensor, cameras: Cameras, near: float = 1e-3, splat_radius: int = 0,
            max_elements: int = 1 << 26) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest point per pixel for every camera.

    Args:
        points: ``[P, 3]`` world coordinates (P < 2**32).
        cameras: ``N`` cameras; the image is ``cameras.height x cameras.width``.
        near: points with z-depth ``<= near`` (or non-finite) are culled.
        splat_radius: each point covers the ``(2r+1) x (2r+1)`` pixel square centred on the
            pixel it projects into, at its own depth (points just outside the image still
            cover the pixels of their square that are inside).
        max_elements: bound on ``cameras_per_chunk * P``; larger batches are split into camera
            chunks (a loop over cameras, for memory only: ~40 bytes per point and camera).

    Returns:
        index: ``[N, H, W]`` int64 winning point, -1 where empty.
        depth: ``[N, H, W]`` float32 z-depth of the winner (0 where empty).
    """
    N, H, W = len(cameras), cameras.height, cameras.width
    P = points.shape[0]
    if P >= 1 << _INDEX_BITS:
        raise ValueError(f"render: at most {1 << _INDEX_BITS} points per call, got {P}")
    if splat_radius < 0:
        raise ValueError(f"render.splat_radius must be >= 0, got {splat_radius}")
    per_chunk = max(1, max_elements // max(1, P))
    if N > per_chunk:
        parts = [zbuffer(points, cameras[s:s + per_chunk], near, splat_radius, max_elements) for s in range(0, N, per_chunk)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    device = points.device
    r = splat_radius
    Hp, Wp = H + 2 * r, W + 2 * r  # bins of the padded image (pixel (i, j) is bin (i + r, j + r))
    # 1. Project: one [N,3,4] matrix K [R|t] applied to all points (K's last row keeps z).
    K = cameras.K.to(device=device, dtype=points.dtype)  # [N, 3, 3]
    w2c = cameras.w2c.to(device=device, dtype=points.dtype)  # [N, 4, 4]
    M = K @ w2c[:, :3, :]  # [N, 3, 4]
    pix = torch.baddbmm(M[:, :, 3:], M[:, :, :3], points.T.unsqueeze(0).expand(N, 3, P))  # [N, 3, P]
    z = pix[:, 2].float()  # [N, P]
    col = (pix[:, 0] / pix[:, 2]).floor_().add_(r)  # [N, P] padded bin column
    row = (pix[:, 1] / pix[:, 2]).floor_().add_(r)  # [N, P] padded bin row
    # 2. Cull: behind the near plane, non-finite, or outside the padded image (NaN compares False).
    keep = (z > near) & (z < float("inf"))  # [N, P]
    keep &= (col >= 0) & (col < Wp) & (row >= 0) & (row < Hp)
    # 3. Packed key: monotonic float32 bits of z (> 0) in the high half, point index low.
    key = (z.view(torch.int32).to(torch.int64) << _INDEX_BITS) | torch.arange(P, device=device, dtype=torch.int64)  # [N, P]
    dump = N * Hp * Wp  # one extra slot takes every culled point (cheaper than compacting)
    slot = row.to(torch.int64).mul_(Wp).add_(col.to(torch.int64))  # [N, P]
    if N > 1:
        slot += (torch.arange(N, device=device, dtype=torch.int64) * (Hp * Wp)).unsqueeze(1)
    slot.masked_fill_(~keep, dump)
    # 4. One scatter-min over the flattened camera x pixel space.
    buffer = torch.full((dump + 1,), _EMPTY, dtype=torch.int64, device=device)  # [N*Hp*Wp + 1]
    buffer.scatter_reduce_(0, slot.view(-1), key.view(-1), reduce="amin", include_self=True)
    buffer = buffer[:dump].view(N, Hp, Wp)  # [N, Hp, Wp]
    if r > 0:
        buffer = _min_filter(buffer, r)  # [N, H, W]
    # 5. Unpack: winner index and its exact float32 depth.
    hit = buffer != _EMPTY  # [N, H, W]
    index = torch.where(hit, buffer & _INDEX_MASK, -1)  # [N, H, W]
    depth = torch.where(hit, (buffer >> _INDEX_BITS).to(torch.int32).view(torch.float32), 0.0)  # [N, H, W]
    return index, depth


class TorchPointRenderer(ZBufferRenderer):
    """Nearest-point z-buffer renderer in plain torch (CPU and CUDA).

    Args:
        cfg: ``splat_radius`` (square footprint, pixels), ``render_scale`` (rasterise at this
            fraction of the size, then nearest-upsample every output: depth, index and colour
            are never blended across edges) and ``near`` (culling plane).
        device: where to render (default: where the points are).
    """

    name = "torch"

    def _rasterize(self, points: torch.Tensor, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
        return zbuffer(points, cameras, near=self.cfg.near, splat_radius=self.cfg.splat_radius)  # [N, h, w] x2
