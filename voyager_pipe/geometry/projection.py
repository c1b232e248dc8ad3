"""Pinhole projection and unprojection in the project's one convention.

OpenCV axes, ``w2c`` 4x4, ``K`` in pixels, pixel centres at integer + 0.5 (see
:mod:`voyager_pipe.camera.cameras`). Depth is z-depth. ``K`` and ``w2c`` are cast to the dtype
and device of the depth / points they are applied to.
"""

from __future__ import annotations

import torch

from voyager_pipe.camera.cameras import pixel_centers


def _batched(K: torch.Tensor, w2c: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``K`` [N,3,3] and ``w2c`` [N,4,4] (a single [3,3]/[4,4] gets a batch axis), cast like ``like``."""
    if K.ndim == 2:
        K = K.unsqueeze(0)  # [1, 3, 3]
    if w2c.ndim == 2:
        w2c = w2c.unsqueeze(0)  # [1, 4, 4]
    if K.shape[-2:] != (3, 3) or w2c.shape[-2:] != (4, 4):
        raise ValueError(f"K must be [N,3,3] and w2c [N,4,4], got {tuple(K.shape)} and {tuple(w2c.shape)}")
    return K.to(like), w2c.to(like)


def pixel_rays(K: torch.Tensor, w2c: torch.Tensor, height: int, width: int,
               offsets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Viewing rays through every pixel centre: THE one place that builds them.

    Args:
        K: ``[N, 3, 3]`` intrinsics in pixels (or ``[3, 3]``); its dtype/device are used.
        w2c: ``[N, 4, 4]`` world-to-camera (or ``[4, 4]``).
        height, width: image size.
        offsets: optional ``[k, 2]`` sub-pixel offsets ``(du, dv)`` added to every centre
            (supersampling); the rays then get a leading offset axis.

    Returns:
        origins: ``[N, 3]`` camera centres in world coordinates.
        directions: ``[N, H, W, 3]`` (``[N, k, H, W, 3]`` with offsets) world directions scaled
        so that their camera-space z is 1: the point at z-depth ``d`` is ``origin + d * direction``;
        ``1 / |direction|`` is the cosine between the ray and the optical axis.
    """
    if K.ndim == 2:
        K = K.unsqueeze(0)  # [1, 3, 3]
    w2c = (w2c.unsqueeze(0) if w2c.ndim == 2 else w2c).to(K)  # [N, 4, 4]
    N = max(K.shape[0], w2c.shape[0])
    K, w2c = K.expand(N, 3, 3), w2c.expand(N, 4, 4)
    uv = pixel_centers(height, width, device=K.device, dtype=K.dtype)  # [H, W, 2]
    if offsets is not None:
        uv = uv + offsets.to(uv)[:, None, None, :]  # [k, H, W, 2]
    uv1 = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)  # [..., H, W, 3]
    R = w2c[:, :3, :3]  # [N, 3, 3]
    to_world = R.transpose(1, 2) @ torch.linalg.inv(K)  # [N, 3, 3]: pixel (u, v, 1) -> world direction, z_cam = 1
    shape = (N,) + (1,) * (uv1.ndim - 1) + (3, 3)
    directions = (to_world.view(shape) @ uv1.unsqueeze(-1)).squeeze(-1)  # [N, (k,) H, W, 3]
    origins = -(R.transpose(1, 2) @ w2c[:, :3, 3:])[..., 0]  # [N, 3] = -R^T t
    return origins, directions


def unproject(depth: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor) -> torch.Tensor:
    """Lift every pixel centre of a z-depth map to world coordinates.

    Args:
        depth: ``[N, 1, H, W]`` z-depth (0 / non-finite = no value).
        K: ``[N, 3, 3]`` intrinsics in pixels (or ``[3, 3]`` shared).
        w2c: ``[N, 4, 4]`` world-to-camera, OpenCV axes (or ``[4, 4]`` shared).

    Returns:
        points: ``[N, H, W, 3]`` world coordinates, organised like the image. Pixels without a
        depth give meaningless points: select with ``valid = (depth > 0) & depth.isfinite()``.

    Pixel ``(i, j)`` has centre ``(u, v) = (j + 0.5, i + 0.5)``; its world point is
    ``centre + depth * R^T K^-1 [u, v, 1]`` (:func:`pixel_rays`).
    """
    if depth.ndim != 4 or depth.shape[1] != 1:
        raise ValueError(f"unproject: depth must be [N,1,H,W], got {tuple(depth.shape)}")
    N, _, H, W = depth.shape
    K, w2c = _batched(K, w2c, depth)
    origins, directions = pixel_rays(K, w2c, H, W)  # [n, 3], [n, H, W, 3]
    return origins[:, None, None, :] + directions * depth[:, 0, :, :, None]  # [N, H, W, 3]


def world_to_camera(points: torch.Tensor, w2c: torch.Tensor) -> torch.Tensor:
    """``points`` [P, 3] or [N, P, 3] (world) -> ``[N, P, 3]`` camera coordinates for ``w2c`` [N, 4, 4]."""
    if w2c.ndim == 2:
        w2c = w2c.unsqueeze(0)  # [1, 4, 4]
    w2c = w2c.to(points)
    R = w2c[:, :3, :3]  # [N, 3, 3]
    t = w2c[:, None, :3, 3]  # [N, 1, 3]
    if points.ndim == 2:
        return torch.einsum("nij,pj->npi", R, points) + t  # [N, P, 3]
    return torch.einsum("nij,npj->npi", R, points) + t  # [N, P, 3]


def project(points: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into ``N`` cameras.

    Args:
        points: ``[P, 3]`` (shared by all cameras) or ``[N, P, 3]`` world coordinates.
        K: ``[N, 3, 3]`` intrinsics in pixels (or ``[3, 3]``).
        w2c: ``[N, 4, 4]`` world-to-camera, OpenCV axes (or ``[4, 4]``).

    Returns:
        uv: ``[N, P, 2]`` continuous pixel coordinates (pixel centres at integer + 0.5; the point
        falls in pixel row ``floor(v)``, column ``floor(u)``); ``inf``/``nan`` where ``z == 0``.
        z: ``[N, P]`` z-depth in the camera (``<= 0`` behind the camera).
    """
    if points.shape[-1] != 3 or points.ndim not in (2, 3):
        raise ValueError(f"project: points must be [P,3] or [N,P,3], got {tuple(points.shape)}")
    K, w2c = _batched(K, w2c, points)
    N = max(K.shape[0], w2c.shape[0], points.shape[0] if points.ndim == 3 else 1)
    K = K.expand(N, 3, 3)  # [N, 3, 3]
    w2c = w2c.expand(N, 4, 4)  # [N, 4, 4]
    if points.ndim == 3:
        points = points.expand(N, -1, 3)  # [N, P, 3]
    cam = world_to_camera(points, w2c)  # [N, P, 3]
    z = cam[..., 2]  # [N, P]
    pix = torch.einsum("nij,npj->npi", K[:, :2, :], cam)  # [N, P, 2] = (K @ cam)[:2]
    uv = pix / z.unsqueeze(-1)  # [N, P, 2]
    return uv, z
