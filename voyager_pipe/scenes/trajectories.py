"""Camera paths that fit inside a synthetic scene's free region.

All of them start at the identity pose (world = first camera), so the first ground-truth frame
is the input image of ``gen`` and its depth is the input depth.
"""

from __future__ import annotations

import numpy as np
import torch

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.scenes.layouts import Scene

SCENE_TRAJECTORIES = ("forward", "orbit", "loop", "long", "pan", "outback")


def _yaw_pitch_c2w(positions: np.ndarray, yaw: np.ndarray, pitch: np.ndarray | None = None) -> np.ndarray:
    """OpenCV c2w ``[T, 4, 4]`` at ``positions`` [T, 3], turned by ``yaw`` [T] (radians, + = to the right)
    about the world's vertical axis (y, down) and ``pitch`` [T] (+ = looking up)."""
    T = len(positions)
    pitch = np.zeros(T) if pitch is None else pitch
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    R_yaw = np.zeros((T, 3, 3))  # rotation about +y: turning right moves +z towards +x
    R_yaw[:, 0, 0], R_yaw[:, 0, 2], R_yaw[:, 1, 1], R_yaw[:, 2, 0], R_yaw[:, 2, 2] = cy, sy, 1, -sy, cy
    R_pitch = np.zeros((T, 3, 3))  # rotation about +x: looking up moves +z towards -y
    R_pitch[:, 0, 0], R_pitch[:, 1, 1], R_pitch[:, 1, 2], R_pitch[:, 2, 1], R_pitch[:, 2, 2] = 1, cp, sp, -sp, cp
    c2w = np.tile(np.eye(4), (T, 1, 1))  # [T, 4, 4]
    c2w[:, :3, :3] = R_yaw @ R_pitch
    c2w[:, :3, 3] = positions
    return c2w


def scene_trajectory(scene: Scene, name: str, frames: int, width: int, height: int, fov_deg: float = 60.0) -> Cameras:
    """A named camera path through ``scene`` (float64 CPU :class:`Cameras`).

    * ``forward``: walk straight ahead, looking ahead.
    * ``orbit``: arc around a point ~3.5 units ahead, always looking at it (ends 25 degrees round).
    * ``loop``: out and back on a closed curve; the last pose equals the first (return-to-start).
    * ``long``: a slow closed tour (meant for 200+ frames), panning left and right; ends at the start.
    * ``pan``: stand still and turn 30 degrees to the right and back.
    * ``outback``: out along a curve (forward, turning left), then back to the start along the
      same curve shifted up to 10 cm up and sideways, facing the same way: the way back sees
      only surfaces the way out saw (an out-and-back walk, not a replay of the same poses).
    """
    if frames < 2:
        raise ValueError("a scene trajectory needs at least 2 frames")
    s = np.linspace(0.0, 1.0, frames)  # [T] path parameter
    lo, hi = scene.free_min, scene.free_max
    reach_z = min(hi[2], 3.0)  # how far forward the free region lets us go
    reach_x = min(-lo[0], hi[0], 1.2)
    if name == "forward":
        positions = np.stack([np.zeros_like(s), np.zeros_like(s), s * 0.8 * reach_z], -1)
        c2w = _yaw_pitch_c2w(positions, np.zeros_like(s))
    elif name == "orbit":
        radius = 3.5
        angle = np.radians(25.0) * s  # [T]
        target = np.array([0.0, 0.0, radius])
        positions = target + np.stack([-radius * np.sin(angle), np.zeros_like(s), -radius * np.cos(angle)], -1)
        c2w = _yaw_pitch_c2w(positions, angle)  # looking at the target
    elif name == "loop":
        phase = 2 * np.pi * s
        positions = np.stack([0.5 * reach_x * np.sin(phase), np.zeros_like(s), 0.35 * reach_z * (1 - np.cos(phase))], -1)
        c2w = _yaw_pitch_c2w(positions, np.radians(15.0) * np.sin(phase))
    elif name == "long":
        phase = 2 * np.pi * s
        positions = np.stack([reach_x * np.sin(2 * phase) * 0.8, -0.15 * np.sin(phase) ** 2,
                              0.45 * reach_z * (1 - np.cos(phase))], -1)
        c2w = _yaw_pitch_c2w(positions, np.radians(35.0) * np.sin(2 * phase), np.radians(5.0) * np.sin(phase))
    elif name == "outback":
        u = 1.0 - np.abs(1.0 - 2.0 * s)  # [T] 0 -> 1 -> 0
        back = (s > 0.5)[:, None]  # [T, 1]
        bump = np.sin(np.pi * u)[:, None] * np.array([0.1, -0.1, 0.0]) * back  # [T, 3] 0 at both ends
        positions = np.stack([-0.5 * reach_x * u ** 2, np.zeros_like(u), 0.8 * reach_z * u], -1) + bump
        c2w = _yaw_pitch_c2w(positions, -np.radians(30.0) * u)
    elif name == "pan":
        c2w = _yaw_pitch_c2w(np.zeros((frames, 3)), np.radians(30.0) * np.sin(np.pi * s))
    else:
        raise ValueError(f"scene trajectory {name!r}: expected one of {SCENE_TRAJECTORIES}")
    c2w[0] = np.eye(4)  # exact identity first pose
    K = intrinsics_from_fov(fov_deg, width, height)  # [3, 3]
    return Cameras.from_c2w(torch.from_numpy(c2w), K.expand(frames, 3, 3).clone(), width, height)
