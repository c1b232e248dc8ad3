"""PyTorch3D point renderer (optional: used when ``pytorch3d`` imports; meant for CUDA).

Our OpenCV cameras are converted with ``pytorch3d.utils.cameras_from_opencv_projection``
(which drops the skew ``K[0, 1]``). PyTorch3D's NDC puts pixel column ``j`` of a ``W``-wide
image at ``x = -(j + 0.5 - W / 2) / (min(H, W) / 2)`` (+X left, +Y up), i.e. the same
integer + 0.5 pixel centres as ours, so the conversion needs no half-pixel shift.

PyTorch3D rasterises points as discs (a pixel is covered when its centre lies within the
radius). To bin a point into the pixel that *contains* it, exactly as the torch backend does,
each projected point is snapped to the centre of its pixel before rasterising with a
half-pixel radius and ``points_per_pixel=1``; with ``splat_radius = r > 0`` the footprint is a
disc of radius ``r + 0.5`` pixels (the torch backend uses a square). Ties in depth may be
broken differently from the torch backend.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.errors import MissingDependencyError
from voyager_pipe.render.base import ZBufferRenderer
from voyager_pipe.render.config import RenderConfig


def _import_pytorch3d():
    try:
        from pytorch3d.renderer import PointsRasterizer, PointsRasterizationSettings
        from pytorch3d.renderer.points.rasterize_points import rasterize_points
        from pytorch3d.structures import Pointclouds
        from pytorch3d.utils import cameras_from_opencv_projection
    except Exception as exc:  # ImportError, or a build without compiled ops
        raise MissingDependencyError(
            f"render.backend=pytorch3d: PyTorch3D is not usable ({exc.__class__.__name__}: {exc}); install it "
            "(https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md) or use render.backend=torch"
        ) from None
    return PointsRasterizer, PointsRasterizationSettings, rasterize_points, Pointclouds, cameras_from_opencv_projection


def _ndc_ranges(height: int, width: int) -> tuple[float, float]:
    """Half-extent of PyTorch3D's NDC along x and y (the shorter side spans [-1, 1])."""
    short = min(height, width)
    return width / short, height / short


class PyTorch3DPointRenderer(ZBufferRenderer):
    """Nearest-point renderer on PyTorch3D's rasteriser (``points_per_pixel=1``)."""

    name = "pytorch3d"

    def __init__(self, cfg: RenderConfig | None = None, device=None):
        super().__init__(cfg, device)
        _import_pytorch3d()

    def _rasterize(self, points: torch.Tensor, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
        """``index [N, H, W]`` (-1 empty) and ``depth [N, H, W]`` via PyTorch3D."""
        (PointsRasterizer, PointsRasterizationSettings, rasterize_points, Pointclouds,
         cameras_from_opencv_projection) = _import_pytorch3d()
        N, H, W, P = len(cameras), cameras.height, cameras.width, points.shape[0]
        device = points.device
        points = points.float()  # [P, 3]
        w2c = cameras.w2c.to(device=device, dtype=torch.float32)  # [N, 4, 4]
        K = cameras.K.to(device=device, dtype=torch.float32)  # [N, 3, 3]
        image_size = torch.tensor([[H, W]], device=device, dtype=torch.float32).expand(N, 2)  # [N, 2] (h, w)
        p3d_cameras = cameras_from_opencv_projection(R=w2c[:, :3, :3], tvec=w2c[:, :3, 3], camera_matrix=K,
                                                     image_size=image_size)
        settings = PointsRasterizationSettings(image_size=(H, W), radius=0.0, points_per_pixel=1)
        rasterizer = PointsRasterizer(cameras=p3d_cameras, raster_settings=settings)
        clouds = Pointclouds(points=points.unsqueeze(0).expand(N, P, 3))
        ndc = rasterizer.transform(clouds).points_padded().clone()  # [N, P, 3] NDC xy, view z

        # Snap each point to the centre of the pixel that contains it (our binning rule).
        rx, ry = _ndc_ranges(H, W)
        u = (rx - ndc[..., 0]) * (W / (2 * rx))  # [N, P] continuous pixel coordinate
        v = (ry - ndc[..., 1]) * (H / (2 * ry))  # [N, P]
        z = ndc[..., 2]  # [N, P] view-space z-depth
        inside = (z > self.cfg.near) & z.isfinite() & (u >= 0) & (u < W) & (v >= 0) & (v < H)  # [N, P]
        r = self.cfg.splat_radius
        if r > 0:  # points just outside still cover pixels inside the image
            inside = (z > self.cfg.near) & z.isfinite() & (u >= -r) & (u < W + r) & (v >= -r) & (v < H + r)
        ndc[..., 0] = rx - (u.floor() + 0.5) * (2 * rx / W)
        ndc[..., 1] = ry - (v.floor() + 0.5) * (2 * ry / H)
        ndc = torch.nan_to_num(ndc, nan=0.0, posinf=0.0, neginf=0.0)  # [N, P, 3]
        ndc[..., 2] = torch.where(inside, ndc[..., 2], torch.full_like(z, -1.0))  # PyTorch3D skips z < 0
        snapped = clouds.update_padded(ndc)

        pixel_ndc = 2.0 / min(H, W)  # one pixel in NDC units
        radius = (r + 0.5) * pixel_ndc
        bin_size, max_per_bin = self._bins(u, v, inside, H, W, r)
        idx, zbuf, _ = rasterize_points(snapped, image_size=(H, W), radius=radius, points_per_pixel=1,
                                        bin_size=bin_size, max_points_per_bin=max_per_bin)  # [N, H, W, 1] x2
        idx = idx[..., 0].long()  # [N, H, W] packed index n * P + p
        index = torch.where(idx >= 0, idx % max(P, 1), -1)  # [N, H, W]
        return index, zbuf[..., 0]  # [N, H, W], [N, H, W]

    @staticmethod
    def _bins(u, v, inside, H, W, r) -> tuple[int | None, int | None]:
        """Coarse-to-fine bin size (CUDA) and a safe ``max_points_per_bin``.

        PyTorch3D silently drops points when a bin overflows; the bound is the largest number
        of points in any 3x3 block of bins, which contains every point that can touch a bin.
        """
        if not u.is_cuda:
            return 0, None  # naive rasteriser (PyTorch3D's only complete CPU path)
        bin_size = int(2 ** max(torch.tensor(float(max(H, W))).log2().ceil().item() - 4, 4))
        if r + 1 > bin_size:
            return 0, None
        nby, nbx = -(-H // bin_size), -(-W // bin_size)
        N = u.shape[0]
        by = (v.floor() / bin_size).floor().clamp(0, nby - 1).long()  # [N, P]
        bx = (u.floor() / bin_size).floor().clamp(0, nbx - 1).long()  # [N, P]
        flat = (torch.arange(N, device=u.device)[:, None] * (nby * nbx) + by * nbx + bx)[inside]  # [M]
        counts = torch.bincount(flat, minlength=N * nby * nbx).view(N, 1, nby, nbx).float()  # [N, 1, nby, nbx]
        block = F.avg_pool2d(counts, 3, stride=1, padding=1, count_include_pad=True) * 9  # [N, 1, nby, nbx]
        return bin_size, int(block.max().item()) + 16
