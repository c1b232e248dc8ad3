"""The action API: pose arithmetic of one exploration segment (OpenCV camera axes, w2c).

An action appends one *segment*: ``frames`` new cameras that continue from the current camera
without a jump, the motion spread evenly over them (camera ``k = 1..frames`` has done ``k / frames``
of it). In the current camera's own axes (OpenCV: x right, y down, z forward):

* translations keep the orientation and move the centre by ``step`` along forward = +z,
  backward = -z, right = +x, left = -x, up = -y, down = +y;
* turns rotate in place by ``turn_deg`` about the camera's vertical (y) axis: turn_right brings the
  view direction towards +x, turn_left towards -x;
* looks rotate in place about the camera's horizontal (x) axis: look_up brings the view
  direction towards -y (up), look_down towards +y.

With ``c2w = [R | c]``, a translation ``d`` (camera axes) gives ``c' = c + R d``; a rotation
``R_rel`` (camera axes) gives ``R' = R R_rel``; equivalently ``w2c' = [R_rel^T | -R_rel^T d] w2c``.
"""

from __future__ import annotations

import math

import torch

from voyager_pipe.errors import InputError

# action -> (unit translation in camera axes, rotation axis, sign of the rotation angle)
_TRANSLATIONS = {
    "forward": (0.0, 0.0, 1.0), "backward": (0.0, 0.0, -1.0),
    "right": (1.0, 0.0, 0.0), "left": (-1.0, 0.0, 0.0),
    "up": (0.0, -1.0, 0.0), "down": (0.0, 1.0, 0.0),
}
_ROTATIONS = {
    "turn_right": ("y", 1.0), "turn_left": ("y", -1.0),  # R_y(+a) @ z = (sin a, 0, cos a): towards +x
    "look_up": ("x", 1.0), "look_down": ("x", -1.0),  # R_x(+a) @ z = (0, -sin a, cos a): towards -y
}
ACTIONS = tuple(_TRANSLATIONS) + tuple(_ROTATIONS)
MAX_REPEAT = 100  # "forward:N": a bound against typos such as forward:1000000


def parse_actions(text: str) -> list[str]:
    """``"forward:3,turn_left:2,forward"`` -> ``["forward"] * 3 + ["turn_left"] * 2 + ["forward"]``."""
    actions: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, count = item.partition(":")
        name = name.strip().replace("-", "_")
        if name not in ACTIONS:
            raise InputError(f"--actions: unknown action {name!r} (one of {', '.join(ACTIONS)})")
        try:
            repeat = int(count) if count else 1
        except ValueError:
            raise InputError(f"--actions: {item!r}: the count after ':' must be an integer") from None
        if not 1 <= repeat <= MAX_REPEAT:
            raise InputError(f"--actions: {item!r}: the count must be in 1..{MAX_REPEAT}")
        actions += [name] * repeat
    if not actions:
        raise InputError("--actions: no action given (e.g. \"forward:3,turn_left:2,forward\")")
    return actions


def relative_motion(action: str, fraction: torch.Tensor, step: float, turn_deg: float) -> torch.Tensor:
    """``[F, 4, 4]`` camera-frame motions (new camera in the old camera's axes, a c2w) for fractions ``[F]``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    from voyager_pipe.camera.rotations import axis_angle_matrix

    fraction = fraction.to(torch.float64)
    motion = torch.eye(4, dtype=torch.float64).repeat(fraction.shape[0], 1, 1)  # [F, 4, 4]
    if action in _TRANSLATIONS:
        direction = torch.tensor(_TRANSLATIONS[action], dtype=torch.float64)  # [3]
        motion[:, :3, 3] = fraction[:, None] * step * direction  # [F, 3]
    else:
        axis, sign = _ROTATIONS[action]
        motion[:, :3, :3] = axis_angle_matrix(axis, sign * math.radians(turn_deg) * fraction)  # [F, 3, 3]
    return motion


def segment_poses(w2c: torch.Tensor, action: str, frames: int, step: float = 0.25, turn_deg: float = 15.0) -> torch.Tensor:
    """The ``frames`` new world-to-camera matrices ``[frames, 4, 4]`` (float64) of one segment after pose ``w2c`` [4, 4]."""
    if frames < 1:
        raise ValueError(f"segment_poses: frames must be >= 1, got {frames}")
    from voyager_pipe.camera.cameras import rigid_inverse

    fraction = torch.arange(1, frames + 1, dtype=torch.float64) / frames  # [F]
    c2w = rigid_inverse(w2c.to(torch.float64).reshape(4, 4))  # [4, 4]
    return rigid_inverse(c2w @ relative_motion(action, fraction, step, turn_deg))  # [F, 4, 4]
