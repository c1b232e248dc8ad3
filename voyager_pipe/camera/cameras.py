"""The one camera type used inside voyager_pipe.

Convention (stated once, used everywhere):

* Axes are OpenCV's: x right, y down, z forward (the camera looks along +z).
* Extrinsics are world-to-camera 4x4 matrices ``w2c``: ``x_cam = R @ x_world + t``.
* Intrinsics ``K`` are 3x3 in pixels: ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.
* Pixel centres sit at integer + 0.5: the pixel in row ``i`` and column ``j`` covers
  ``u in [j, j + 1)``, ``v in [i, i + 1)`` and its centre is ``(j + 0.5, i + 0.5)``.
  A projected point ``(u, v)`` therefore falls in pixel ``(floor(v), floor(u))``, and a
  principal point at the image centre is ``(W / 2, H / 2)`` (as in RealEstate10K and
  nerfstudio files). :func:`pixel_centers` is the single place that encodes this.
* Depth is z-depth (distance along the optical axis), not ray length.

Conversions to other conventions (OpenGL c2w, normalised intrinsics, PyTorch3D NDC) happen
only at the edges: the trajectory readers/writers and the PyTorch3D backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# OpenCV camera axes -> OpenGL camera axes (x right, y up, z backward): flip y and z.
_CV_TO_GL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


def pixel_centers(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Continuous pixel coordinates of every pixel centre.

    Returns:
        uv: ``[H, W, 2]`` with ``uv[i, j] = (j + 0.5, i + 0.5)``.
    """
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )  # [H, W] each
    return torch.stack([u, v], dim=-1)  # [H, W, 2]


def intrinsics_from_fov(fov_x_deg: float, width: int, height: int, fov_y_deg: float | None = None) -> torch.Tensor:
    """Pinhole ``K`` [3, 3] (float64) for a horizontal field of view, principal point at the centre.

    With ``fov_y_deg`` omitted the pixels are square (``fy = fx``).
    """
    import math

    fx = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    fy = fx if fov_y_deg is None else 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    return torch.tensor([[fx, 0.0, width / 2], [0.0, fy, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)


@dataclass
class Cameras:
    """A batch of ``N`` pinhole cameras sharing one image size.

    Attributes:
        K: ``[N, 3, 3]`` intrinsics in pixels.
        w2c: ``[N, 4, 4]`` world-to-camera, OpenCV axes.
        width, height: image size in pixels that ``K`` refers to.
    """

    K: torch.Tensor  # [N, 3, 3]
    w2c: torch.Tensor  # [N, 4, 4]
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.K.ndim == 2:
            self.K = self.K.unsqueeze(0).expand(self.w2c.shape[0] if self.w2c.ndim == 3 else 1, 3, 3).clone()
        if self.w2c.ndim == 2:
            self.w2c = self.w2c.unsqueeze(0)
        if self.K.shape[-2:] != (3, 3) or self.w2c.shape[-2:] != (4, 4):
            raise ValueError(f"Cameras: K must be [N,3,3] and w2c [N,4,4], got {tuple(self.K.shape)} and {tuple(self.w2c.shape)}")
        if self.K.shape[0] != self.w2c.shape[0]:
            if self.K.shape[0] == 1:
                self.K = self.K.expand(self.w2c.shape[0], 3, 3).clone()
            else:
                raise ValueError(f"Cameras: {self.K.shape[0]} intrinsics for {self.w2c.shape[0]} poses")
        self.width = int(self.width)
        self.height = int(self.height)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return self.w2c.shape[0]

    def __getitem__(self, index) -> "Cameras":
        if isinstance(index, int):  # keep the batch axis: cams[i] is a batch of one
            if not -len(self) <= index < len(self):
                raise IndexError(f"camera index {index} out of range for {len(self)} cameras")
            index = slice(index % len(self), index % len(self) + 1)
        return Cameras(K=self.K[index], w2c=self.w2c[index], width=self.width, height=self.height)

    @property
    def device(self) -> torch.device:
        return self.w2c.device

    def to(self, device=None, dtype=None) -> "Cameras":
        return Cameras(K=self.K.to(device=device, dtype=dtype), w2c=self.w2c.to(device=device, dtype=dtype),
                       width=self.width, height=self.height)

    @staticmethod
    def cat(cameras: list["Cameras"]) -> "Cameras":
        sizes = {(c.width, c.height) for c in cameras}
        if len(sizes) != 1:
            raise ValueError(f"Cameras.cat: different image sizes {sorted(sizes)}")
        return Cameras(K=torch.cat([c.K for c in cameras]), w2c=torch.cat([c.w2c for c in cameras]),
                       width=cameras[0].width, height=cameras[0].height)

    # ----------------------------------------------------------------- derived
    @property
    def c2w(self) -> torch.Tensor:
        """``[N, 4, 4]`` camera-to-world (OpenCV axes), the rigid inverse of ``w2c``."""
        return rigid_inverse(self.w2c)

    @property
    def centers(self) -> torch.Tensor:
        """``[N, 3]`` camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    def resize(self, width: int, height: int) -> "Cameras":
        """Same cameras for another image size: scales ``K`` (pixel-centre convention kept)."""
        sx, sy = width / self.width, height / self.height
        # Row 0 (fx, skew, cx) scales with sx, row 1 (fy, cy) with sy: continuous pixel
        # coordinates scale linearly under the +0.5 pixel-centre convention.
        scale = torch.tensor([[sx, sx, sx], [sy, sy, sy], [1, 1, 1]], dtype=self.K.dtype, device=self.K.device)
        return Cameras(K=self.K * scale, w2c=self.w2c.clone(), width=width, height=height)

    def pad(self, margin: int) -> "Cameras":
        """Same cameras seeing ``margin`` more pixels on every side (size + 2 margin, principal point + margin)."""
        K = self.K.clone()  # [N, 3, 3]
        K[:, 0, 2] += margin
        K[:, 1, 2] += margin
        return Cameras(K=K, w2c=self.w2c.clone(), width=self.width + 2 * margin, height=self.height + 2 * margin)

    # ------------------------------------------------------------ conversions
    def to_opengl_c2w(self) -> torch.Tensor:
        """``[N, 4, 4]`` camera-to-world with OpenGL camera axes (x right, y up, z backward)."""
        return self.c2w @ _CV_TO_GL.to(self.w2c)

    @staticmethod
    def from_opengl_c2w(c2w_gl: torch.Tensor, K: torch.Tensor, width: int, height: int) -> "Cameras":
        """Inverse of :meth:`to_opengl_c2w` (``c2w_gl`` [N, 4, 4])."""
        c2w_cv = c2w_gl @ _CV_TO_GL.to(c2w_gl)  # [N, 4, 4]
        return Cameras(K=K, w2c=rigid_inverse(c2w_cv), width=width, height=height)

    @staticmethod
    def from_c2w(c2w: torch.Tensor, K: torch.Tensor, width: int, height: int) -> "Cameras":
        """Cameras from OpenCV camera-to-world matrices ``c2w`` [N, 4, 4]."""
        return Cameras(K=K, w2c=rigid_inverse(c2w), width=width, height=height)


def rigid_inverse(T: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid transforms ``T`` [..., 4, 4] (rotation transposed, no general inverse)."""
    R = T[..., :3, :3]  # [..., 3, 3]
    t = T[..., :3, 3:]  # [..., 3, 1]
    out = torch.zeros_like(T)
    out[..., :3, :3] = R.transpose(-1, -2)
    out[..., :3, 3:] = -R.transpose(-1, -2) @ t
    out[..., 3, 3] = 1
    return out
