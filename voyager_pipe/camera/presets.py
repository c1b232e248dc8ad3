"""Named camera paths. Every preset starts at the identity pose: the camera of the input image.

Directions are those of the first camera (OpenCV axes: x right, y down, z forward), so
``forward`` moves along +z, ``up`` along -y, ``turn_left`` yaws the view towards -x.
Lengths are in scene units (the units of the depth map); ``depth`` is the distance of the
subject / look-at point, e.g. the median scene depth.

==============  =======================================================================
preset          motion (``distance`` total translation, ``angle`` degrees)
==============  =======================================================================
forward         move along +z by ``distance``
backward        move along -z by ``distance``
left / right    move along -x / +x by ``distance``
up / down       move along -y / +y by ``distance``
turn_left       yaw in place by ``angle`` towards -x
turn_right      yaw in place by ``angle`` towards +x
pan             rotate in place by ``angle`` towards ``direction`` (left, right, up, down)
orbit           circle the look-at point ``(0, 0, depth)`` by ``angle`` around the vertical
                axis, always looking at it (positive angle: camera moves right)
spiral          widening circle of ``radius`` (``turns`` loops) while moving forward by
                ``distance`` (< depth), always looking at ``(0, 0, depth)``
zoom_in         fixed pose, focal length grows geometrically to ``zoom`` x
zoom_out        fixed pose, focal length shrinks geometrically to 1 / ``zoom`` x
dolly_zoom      move forward by ``distance`` (negative: backward) while the focal length
                changes so that the plane at ``depth`` keeps its image size
==============  =======================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.camera.rotations import axis_angle_matrix, look_at_c2w
from voyager_pipe.errors import InputError

_DTYPE = torch.float64
_UP = torch.tensor([0.0, -1.0, 0.0], dtype=_DTYPE)  # OpenCV world up of the first camera


@dataclass
class PresetParams:
    """Parameters of every preset (each preset reads the ones it needs)."""

    distance: float | None = None  # total translation; default 0.5 * depth
    speed: float | None = None  # translation per frame; overrides distance when given
    angle: float | None = None  # degrees; default 30
    depth: float = 2.0  # look-at distance (scene units)
    radius: float | None = None  # spiral radius; default 0.1 * depth
    turns: float = 1.0  # spiral loops
    zoom: float = 1.5  # zoom factor for zoom_in / zoom_out
    direction: str = "left"  # pan direction: left, right, up, down
    ease: bool = False  # smooth start and stop (smoothstep timing) instead of constant speed


def _translation(direction: tuple[float, float, float]):
    def preset(t: torch.Tensor, p: PresetParams, distance: float):
        c2w = torch.eye(4, dtype=_DTYPE).repeat(t.shape[0], 1, 1)  # [N, 4, 4]
        c2w[:, :3, 3] = t[:, None] * distance * torch.tensor(direction, dtype=_DTYPE)  # [N, 3]
        return c2w, torch.ones_like(t)
    return preset


def _rotation(axis: str, sign: float):
    def preset(t: torch.Tensor, p: PresetParams, distance: float):
        c2w = torch.eye(4, dtype=_DTYPE).repeat(t.shape[0], 1, 1)  # [N, 4, 4]
        c2w[:, :3, :3] = axis_angle_matrix(axis, sign * math.radians(_angle(p)) * t)  # [N, 3, 3]
        return c2w, torch.ones_like(t)
    return preset


def _angle(p: PresetParams) -> float:
    return 30.0 if p.angle is None else float(p.angle)


# Camera-frame rotations: Ry(phi) turns the forward axis to (sin phi, 0, cos phi), so a yaw to
# the left (towards -x) is a negative phi; Rx(phi) turns it to (0, -sin phi, cos phi): tilt up is positive.
_PAN = {"left": ("y", -1.0), "right": ("y", 1.0), "up": ("x", 1.0), "down": ("x", -1.0)}


def _pan(t, p, distance):
    if p.direction not in _PAN:
        raise InputError(f"direction: pan direction must be one of {', '.join(_PAN)}, got {p.direction!r}")
    return _rotation(*_PAN[p.direction])(t, p, distance)


def _orbit(t, p, distance):
    theta = -math.radians(_angle(p)) * t  # [N] negative Ry angle moves the camera towards +x
    R = axis_angle_matrix("y", theta)  # [N, 3, 3]
    target = torch.tensor([0.0, 0.0, p.depth], dtype=_DTYPE)  # [3]
    c2w = torch.eye(4, dtype=_DTYPE).repeat(t.shape[0], 1, 1)  # [N, 4, 4]
    c2w[:, :3, :3] = R
    c2w[:, :3, 3] = target - p.depth * R[:, :, 2]  # [N, 3] one depth behind the target along the view axis
    return c2w, torch.ones_like(t)


def _spiral(t, p, distance):
    if not distance < p.depth:
        raise InputError(f"distance: spiral must stay in front of the look-at depth ({distance} >= depth {p.depth})")
    radius = 0.1 * p.depth if p.radius is None else float(p.radius)
    phase = 2 * math.pi * p.turns * t  # [N]
    centers = torch.stack([radius * t * torch.cos(phase), radius * t * torch.sin(phase), distance * t], dim=-1)  # [N, 3]
    targets = torch.tensor([[0.0, 0.0, p.depth]], dtype=_DTYPE).expand_as(centers)  # [N, 3]
    return look_at_c2w(centers, targets, _UP), torch.ones_like(t)


def _zoom(sign: float):
    def preset(t, p, distance):
        if p.zoom <= 0:
            raise InputError(f"zoom: must be positive, got {p.zoom}")
        return torch.eye(4, dtype=_DTYPE).repeat(t.shape[0], 1, 1), p.zoom ** (sign * t)  # [N, 4, 4], [N]
    return preset


def _dolly_zoom(t, p, distance):
    if not distance < p.depth:
        raise InputError(f"distance: dolly_zoom must stay in front of the subject ({distance} >= depth {p.depth})")
    c2w, _ = _translation((0.0, 0.0, 1.0))(t, p, distance)  # [N, 4, 4]
    # Image size of an object at depth d is f / d; keep f(t) / (depth - z(t)) = f0 / depth.
    return c2w, (p.depth - distance * t) / p.depth  # [N]


PRESETS: dict[str, Callable] = {
    "forward": _translation((0.0, 0.0, 1.0)),
    "backward": _translation((0.0, 0.0, -1.0)),
    "left": _translation((-1.0, 0.0, 0.0)),
    "right": _translation((1.0, 0.0, 0.0)),
    "up": _translation((0.0, -1.0, 0.0)),
    "down": _translation((0.0, 1.0, 0.0)),
    "turn_left": _rotation("y", -1.0),
    "turn_right": _rotation("y", 1.0),
    "pan": _pan,
    "orbit": _orbit,
    "spiral": _spiral,
    "zoom_in": _zoom(1.0),
    "zoom_out": _zoom(-1.0),
    "dolly_zoom": _dolly_zoom,
}


def make_preset(name: str, frames: int, width: int, height: int, fov: float = 60.0, K: torch.Tensor | None = None,
                **params) -> Cameras:
    """Build the camera path ``name`` with ``frames`` frames.

    Args:
        name: a key of :data:`PRESETS`.
        frames: number of frames (the first is the identity pose).
        width, height: image size in pixels.
        fov: horizontal field of view in degrees of the first frame (square pixels, centred
            principal point); ignored when ``K`` [3, 3] is given.
        **params: fields of :class:`PresetParams` (distance, speed, angle, depth, radius, turns,
            zoom, direction, ease).

    Returns:
        float64 :class:`Cameras` with ``frames`` cameras; ``w2c[0]`` is the identity.
    """
    if name not in PRESETS:
        raise InputError(f"preset {name!r}: unknown (available: {', '.join(PRESETS)})")
    if int(frames) != frames or frames < 1:
        raise InputError(f"frames: must be a positive integer, got {frames}")
    unknown = set(params) - set(PresetParams.__dataclass_fields__)
    if unknown:
        raise InputError(f"preset {name!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
    p = PresetParams(**{k: v for k, v in params.items() if v is not None or k in ("distance", "speed", "angle", "radius")})
    if p.depth <= 0:
        raise InputError(f"depth: must be positive, got {p.depth}")
    if K is None:
        if not 0 < fov < 180:
            raise InputError(f"fov: must be in (0, 180) degrees, got {fov}")
        K = intrinsics_from_fov(fov, width, height)  # [3, 3]
    K = torch.as_tensor(K, dtype=_DTYPE)  # [3, 3]

    frames = int(frames)
    distance = 0.5 * p.depth if p.distance is None else float(p.distance)
    if p.speed is not None:
        distance = float(p.speed) * (frames - 1)
    t = torch.linspace(0.0, 1.0, frames, dtype=_DTYPE) if frames > 1 else torch.zeros(1, dtype=_DTYPE)  # [N]
    if p.ease:
        t = t * t * (3 - 2 * t)  # [N] smoothstep
    c2w, focal_scale = PRESETS[name](t, p, distance)  # [N, 4, 4], [N]
    Ks = K.expand(frames, 3, 3).clone()  # [N, 3, 3]
    Ks[:, 0, 0] *= focal_scale
    Ks[:, 1, 1] *= focal_scale
    c2w[0] = torch.eye(4, dtype=_DTYPE)  # exact identity for the input camera (removes rounding in cos/sin at 0)
    return Cameras.from_c2w(c2w, Ks, width, height)
