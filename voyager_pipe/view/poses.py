"""The one conversion from the project's cameras (OpenCV w2c) to viser's.

viser places cameras and frusta with a camera-to-world rotation (quaternion ``wxyz``) and a
position, in OpenCV camera axes (+z forward, +x right, +y down), so the conversion is the rigid
inverse of ``w2c`` and a matrix -> quaternion step; nothing is flipped.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from voyager_pipe.camera.cameras import rigid_inverse
from voyager_pipe.camera.rotations import matrix_to_quaternion


def viser_poses(w2c) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera ``[N, 4, 4]`` -> viser ``(wxyz [N, 4], position [N, 3])`` float64 numpy."""
    c2w = rigid_inverse(torch.as_tensor(w2c, dtype=torch.float64))  # [N, 4, 4]
    wxyz = matrix_to_quaternion(c2w[:, :3, :3])  # [N, 4]
    return wxyz.numpy(), c2w[:, :3, 3].numpy()


def vertical_fov(K, height: int) -> float:
    """Vertical field of view in radians of intrinsics ``K`` [3, 3] for an image ``height`` pixels tall."""
    fy = float(torch.as_tensor(K, dtype=torch.float64).reshape(-1, 3, 3)[0, 1, 1])
    return 2.0 * math.atan(0.5 * height / fy)


def look_at_up(w2c, distance: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera centre, a point ``distance`` ahead and the up direction (-y) of one w2c [4, 4] (float64 numpy)."""
    c2w = rigid_inverse(torch.as_tensor(w2c, dtype=torch.float64).reshape(4, 4)).numpy()  # [4, 4]
    position = c2w[:3, 3]
    return position, position + distance * c2w[:3, 2], -c2w[:3, 1]
