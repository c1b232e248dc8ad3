"""The world cache: an incremental coloured point cloud with visibility and normal pruning.

Algorithm (Voyager paper, Algorithm 1), for each frame ``i`` with RGB ``I_i``, z-depth ``D_i``
and camera ``c_i``:

1. Unproject ``D_i`` into a point map ``[H, W, 3]`` coloured by ``I_i``; estimate its normals
   (image-space neighbours, oriented towards the camera).
2. Render the *existing* cache from ``c_i``: per pixel, whether a cached point is visible and
   the normal of the visible (winning) point.
3. Add the pixel's point only where
   (a) no cached point is visible, or
   (b) the visible cached point faces away from the camera: the angle between its normal and
       the direction from the pixel's surface to the camera exceeds ``normal_angle_deg`` (90).
   Nothing else is added.

Pixels with zero, NaN, inf or beyond ``max_depth`` depth, or outside ``valid_mask``, never enter
the cache. Rendered visibility masks get a morphological closing of radius ``fill_holes`` so
that the pinholes a one-pixel splat leaves when a surface is seen slightly closer than before
do not count as "nothing visible". Optional bounds for long runs: ``voxel_size`` (a new point
whose voxel already holds a point is dropped) and ``max_points`` (uniform random thinning that
keeps the first frame's points). The defaults (no voxel merge, no bound) keep every added
pixel exactly as it was unprojected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from voyager_pipe.camera.cameras import Cameras, pixel_centers
from voyager_pipe.errors import InputError
from voyager_pipe.world.config import CacheConfig

_KEY_BITS = 21  # voxel keys pack three signed 21-bit integers into one int64
_KEY_OFFSET = 1 << (_KEY_BITS - 1)


@dataclass
class FrameStats:
    """What one frame did to the cache (pixel counts)."""

    frame_id: int
    pixels: int  # H * W
    invalid: int  # sky / far / zero / non-finite / masked out: never candidates
    candidates: int  # valid pixels, tested against the cache
    covered: int  # candidates with a cached point visible (rule a does not add them)
    back_facing: int  # covered candidates added anyway because the cached point faces away (rule b)
    rejected: int  # covered candidates whose cached point faces the camera: not added
    merged: int  # accepted by the rules but dropped by the voxel merge
    added: int  # points appended to the cache


@dataclass
class UpdateStats:
    """Result of :meth:`WorldCache.update`: per-frame counts and the cache size afterwards."""

    frames: list[FrameStats] = field(default_factory=list)
    thinned: int = 0  # points removed by the max_points bound during this update
    total_points: int = 0

    @property
    def added(self) -> int:
        return sum(f.added for f in self.frames)


def _frame_output(rgb, depth, mask, index, normals):
    """A RenderOutput of the render package (imported lazily: the renderer is a sibling module)."""
    from voyager_pipe.render import RenderOutput

    return RenderOutput(rgb=rgb, depth=depth, mask=mask, index=index, normals=normals)


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name}: expected a torch tensor or numpy array, got {type(value).__name__}")
    return value


class WorldCache:
    """Incremental point cloud of the generated world (xyz, rgb, normal and source frame per point).

    Two verbs: :meth:`update` adds RGB-D frames with the paper's pruning, :meth:`render` draws the
    cache from any cameras. Points live on ``device`` in float32.

    Args:
        cfg: :class:`~voyager_pipe.world.config.CacheConfig` (defaults when ``None``).
        renderer: a ``PointRenderer``; ``voyager_pipe.render.get_renderer(None, device)`` when ``None``.
        device: where the points live and rendering happens (default CPU).
    """

    def __init__(self, cfg: CacheConfig | None = None, renderer=None, device=None):
        self.cfg = cfg or CacheConfig()
        if self.cfg.normal_angle_deg <= 0 or self.cfg.normal_angle_deg > 180:
            raise InputError(f"cache.normal_angle_deg: must be in (0, 180], got {self.cfg.normal_angle_deg}")
        if self.cfg.max_depth < 0 or self.cfg.voxel_size < 0 or self.cfg.max_points < 0 or self.cfg.fill_holes < 0:
            raise InputError("cache: max_depth, voxel_size, max_points and fill_holes must be >= 0")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if renderer is None:
            from voyager_pipe.render import get_renderer

            renderer = get_renderer(None, device=self.device)
        self.renderer = renderer
        self.points = torch.zeros(0, 3, device=self.device)  # [P, 3]
        self.colors = torch.zeros(0, 3, device=self.device)  # [P, 3] in [0, 1]
        self.normals = torch.zeros(0, 3, device=self.device)  # [P, 3] unit or zero
        self.frame_ids = torch.zeros(0, dtype=torch.long, device=self.device)  # [P]
        self.history: list[FrameStats] = []
        self._next_frame_id = 0
        self._voxel_keys_sorted: torch.Tensor | None = None  # [P] int64, only with voxel_size > 0
        self._thinned = 0

    _STATE_KEYS = ("points", "colors", "normals", "frame_ids", "history", "_next_frame_id", "_voxel_keys_sorted",
                   "_thinned")

    def state_dict(self) -> dict:
        """Exact in-memory state (the PLY quantises colours to 8 bits, so it cannot resume a run exactly)."""
        return {key: getattr(self, key) for key in self._STATE_KEYS}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (tensors move to this cache's device)."""
        for key in self._STATE_KEYS:
            value = state[key]
            setattr(self, key, value.to(self.device) if isinstance(value, torch.Tensor) else value)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def num_points(self) -> int:
        return len(self)

    def render(self, cameras: Cameras):
        """Render the cache from ``cameras`` -> ``RenderOutput`` (rgb, depth, mask, index, normals)."""
        cameras = cameras.to(self.device, torch.float32)
        if len(self) == 0:
            n, h, w = len(cameras), cameras.height, cameras.width
            return _frame_output(
                torch.zeros(n, 3, h, w, device=self.device),  # [N, 3, H, W]
                torch.zeros(n, 1, h, w, device=self.device),  # [N, 1, H, W]
                torch.zeros(n, 1, h, w, dtype=torch.bool, device=self.device),  # [N, 1, H, W]
                torch.full((n, h, w), -1, dtype=torch.long, device=self.device),  # [N, H, W]
                torch.zeros(n, 3, h, w, device=self.device),  # [N, 3, H, W]
            )
        return self.renderer.render(self.points, self.colors, cameras, normals=self.normals)

    # ------------------------------------------------------------------ update
    def update(self, rgb, depth, cameras: Cameras, valid_mask=None, frame_ids=None) -> UpdateStats:
        """Add RGB-D frames, one after the other, with visibility and normal pruning.

        Args:
            rgb: ``[T, 3, H, W]`` float in [0, 1].
            depth: ``[T, 1, H, W]`` float z-depth; 0 / NaN / inf / beyond ``max_depth`` = no value.
            cameras: ``T`` cameras of size ``W x H``.
            valid_mask: optional ``[T, 1, H, W]`` bool; False pixels never enter the cache.
            frame_ids: optional ``T`` ints stored per point (default: a running frame counter).

        Returns:
            :class:`UpdateStats`. On an empty cache the first frame adds all its valid pixels.

        Raises:
            InputError: shapes / dtypes that do not match, or no valid depth pixel at all.
        """
        rgb, depth, valid = self._check_inputs(rgb, depth, cameras, valid_mask)  # [T,3,H,W], [T,1,H,W], [T,H,W]
        T = rgb.shape[0]
        if frame_ids is None:
            frame_ids = list(range(self._next_frame_id, self._next_frame_id + T))
        elif len(frame_ids) != T:
            raise InputError(f"frame_ids: {len(frame_ids)} ids for {T} frames")
        cameras = cameras.to(self.device, torch.float32)
        stats = UpdateStats()
        thinned_before = self._thinned
        for t in range(T):  # frames are sequential: each one is tested against the cache the previous ones built
            stats.frames.append(self._integrate_frame(rgb[t], depth[t], valid[t], cameras[t], int(frame_ids[t])))
        self._next_frame_id = max(self._next_frame_id, max(int(f) for f in frame_ids) + 1)
        self.history.extend(stats.frames)
        stats.thinned = self._thinned - thinned_before
        stats.total_points = len(self)
        return stats

    def _check_inputs(self, rgb, depth, cameras: Cameras, valid_mask):
        rgb = _as_tensor(rgb, "rgb")
        depth = _as_tensor(depth, "depth")
        if rgb.ndim == 3:
            rgb = rgb.unsqueeze(0)  # [1, 3, H, W]
        if depth.ndim == 3:
            depth = depth.unsqueeze(0)  # [1, 1, H, W]
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise InputError(f"rgb: expected shape [T, 3, H, W], got {list(rgb.shape)}")
        if depth.ndim != 4 or depth.shape[1] != 1:
            raise InputError(f"depth: expected shape [T, 1, H, W], got {list(depth.shape)}")
        if not rgb.is_floating_point():
            raise InputError(f"rgb: expected float values in [0, 1], got dtype {rgb.dtype}")
        if not depth.is_floating_point():
            raise InputError(f"depth: expected float z-depth, got dtype {depth.dtype}")
        if rgb.shape[0] != depth.shape[0] or rgb.shape[-2:] != depth.shape[-2:]:
            raise InputError(f"depth: shape {list(depth.shape)} does not match rgb {list(rgb.shape)}")
        T, _, H, W = rgb.shape
        if not isinstance(cameras, Cameras):
            raise InputError(f"cameras: expected a Cameras batch, got {type(cameras).__name__}")
        if len(cameras) != T:
            raise InputError(f"cameras: {len(cameras)} cameras for {T} frames")
        if (cameras.width, cameras.height) != (W, H):
            raise InputError(f"cameras: size {cameras.width}x{cameras.height} does not match frames {W}x{H}")
        rgb = rgb.to(self.device, torch.float32)  # [T, 3, H, W]
        depth = depth.to(self.device, torch.float32)  # [T, 1, H, W]
        valid = depth.isfinite() & (depth > 0)  # [T, 1, H, W]
        if self.cfg.max_depth > 0:
            valid &= depth <= self.cfg.max_depth
        if valid_mask is not None:
            valid_mask = _as_tensor(valid_mask, "valid_mask")
            if valid_mask.ndim == 3:
                valid_mask = valid_mask.unsqueeze(0)  # [1, 1, H, W]
            if tuple(valid_mask.shape) != (T, 1, H, W):
                raise InputError(f"valid_mask: expected shape [{T}, 1, {H}, {W}], got {list(valid_mask.shape)}")
            if valid_mask.dtype != torch.bool:
                raise InputError(f"valid_mask: expected dtype bool, got {valid_mask.dtype}")
            valid &= valid_mask.to(self.device)
        if not bool(valid.any()):
            limit = f" and <= cache.max_depth={self.cfg.max_depth}" if self.cfg.max_depth > 0 else ""
            raise InputError(f"depth: no valid pixel (need finite depth > 0{limit}"
                             f"{' inside valid_mask' if valid_mask is not None else ''})")
        depth = torch.where(valid, depth, torch.zeros_like(depth))  # [T, 1, H, W]
        return rgb, depth, valid[:, 0]

    def _integrate_frame(self, rgb: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor,
                         camera: Cameras, frame_id: int) -> FrameStats:
        """Algorithm 1 for one frame: rgb [3,H,W], depth [1,H,W], valid [H,W], one camera."""
        from voyager_pipe.geometry import point_map_normals, unproject

        H, W = valid.shape
        candidates = int(valid.sum())
        if len(self) == 0:
            covered = torch.zeros_like(valid)  # [H, W]
            faces_away = torch.zeros_like(valid)  # [H, W]
        else:
            covered, faces_away = self._visibility(camera)  # [H, W], [H, W]
        add = valid & (~covered | faces_away)  # [H, W]
        covered_valid = int((valid & covered).sum())
        back_facing = int((valid & covered & faces_away).sum())

        # Normals only use the 1-pixel neighbourhood, so unprojecting and estimating them on the
        # bounding box of the added pixels plus a 1-pixel margin gives the whole frame's values.
        rows, cols = add.any(dim=1).nonzero()[:, 0], add.any(dim=0).nonzero()[:, 0]  # [r], [c]
        if rows.numel() == 0:
            return FrameStats(frame_id=frame_id, pixels=H * W, invalid=H * W - candidates, candidates=candidates,
                              covered=covered_valid, back_facing=back_facing, rejected=covered_valid - back_facing,
                              merged=0, added=0)
        r0, r1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, H)
        c0, c1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, W)
        K_crop = camera.K.clone()  # [1, 3, 3]
        K_crop[:, 0, 2] -= c0
        K_crop[:, 1, 2] -= r0
        point_map = unproject(depth[None, :, r0:r1, c0:c1], K_crop, camera.w2c)[0]  # [h, w, 3]
        normal_map = point_map_normals(point_map[None], valid[None, r0:r1, c0:c1], camera.centers)[0]  # [h, w, 3]
        add_crop = add[r0:r1, c0:c1]  # [h, w]

        new_points = point_map[add_crop]  # [A, 3]
        new_colors = rgb[:, r0:r1, c0:c1].permute(1, 2, 0)[add_crop].clamp(0, 1)  # [A, 3]
        new_normals = normal_map[add_crop]  # [A, 3]
        accepted = int(new_points.shape[0])
        if self.cfg.voxel_size > 0 and accepted:
            keep = self._voxel_filter(new_points)  # [A]
            new_points, new_colors, new_normals = new_points[keep], new_colors[keep], new_normals[keep]
        added = int(new_points.shape[0])
        self.points = torch.cat([self.points, new_points])  # [P + A, 3]
        self.colors = torch.cat([self.colors, new_colors])  # [P + A, 3]
        self.normals = torch.cat([self.normals, new_normals])  # [P + A, 3]
        self.frame_ids = torch.cat([self.frame_ids, torch.full((added,), frame_id, dtype=torch.long, device=self.device)])
        if self.cfg.max_points > 0 and len(self) > self.cfg.max_points:
            self._thin(self.cfg.max_points)
        return FrameStats(frame_id=frame_id, pixels=H * W, invalid=H * W - candidates, candidates=candidates,
                          covered=covered_valid, back_facing=back_facing, rejected=covered_valid - back_facing,
                          merged=accepted - added, added=added)

    def _visibility(self, camera: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
        """Render the cache from ``camera``: (covered [H, W], faces_away [H, W]) bool."""
        out = self.render(camera)
        covered = out.mask[0, 0]  # [H, W]
        if out.normals is not None:
            cached_normals = out.normals[0]  # [3, H, W]
        else:  # a backend that does not gather normals: gather them by the winning index
            index = out.index[0]  # [H, W]
            cached_normals = (self.normals[index.clamp_min(0)] * (index >= 0).unsqueeze(-1)).permute(2, 0, 1)  # [3, H, W]
        cached_normals = cached_normals.to(torch.float32)
        if self.cfg.fill_holes > 0:
            covered, cached_normals = _close_holes(covered, cached_normals, self.cfg.fill_holes)
        # Direction from the surface seen at each pixel to the camera: minus the pixel's viewing ray.
        rays = _world_rays(camera)  # [3, H, W] unit
        cosine = -(cached_normals * rays).sum(dim=0)  # [H, W]
        has_normal = (cached_normals * cached_normals).sum(dim=0) > 0.25  # [H, W]; zero (undefined) normals never face away
        threshold = math.cos(math.radians(self.cfg.normal_angle_deg))
        faces_away = covered & has_normal & (cosine < threshold - 1e-6)  # [H, W]
        return covered, faces_away

    def _voxel_filter(self, new_points: torch.Tensor) -> torch.Tensor:
        """Keep mask [A] of new points whose voxel holds no cached point and no earlier new point."""
        keys = _voxel_keys(new_points, self.cfg.voxel_size)  # [A]
        if self._voxel_keys_sorted is None or self._voxel_keys_sorted.numel() != len(self):
            self._voxel_keys_sorted = torch.sort(_voxel_keys(self.points, self.cfg.voxel_size)).values  # [P]
        existing = self._voxel_keys_sorted
        if existing.numel():
            pos = torch.searchsorted(existing, keys).clamp_max(existing.numel() - 1)  # [A]
            free = existing[pos] != keys  # [A]
        else:
            free = torch.ones_like(keys, dtype=torch.bool)  # [A]
        unique, inverse = torch.unique(keys, return_inverse=True)  # [U], [A]
        order = torch.arange(keys.numel(), device=keys.device)  # [A]
        first = torch.full((unique.numel(),), keys.numel(), dtype=torch.long, device=keys.device)
        first = first.scatter_reduce(0, inverse, order, reduce="amin")  # [U] first new point per voxel
        is_first = torch.zeros_like(free)  # [A]
        is_first[first] = True
        keep = free & is_first  # [A]
        self._voxel_keys_sorted = torch.sort(torch.cat([existing, keys[keep]])).values  # [P + kept]
        return keep

    def _thin(self, max_points: int) -> None:
        """Uniform random thinning down to ``max_points``; the first frame's points go last."""
        generator = torch.Generator().manual_seed(self.cfg.seed + len(self.history))
        score = torch.rand(len(self), generator=generator).to(self.device)  # [P] in [0, 1)
        first_frame = int(self.frame_ids.min())
        score = torch.where(self.frame_ids == first_frame, score - 1.0, score)  # [P] first frame preferred
        keep = torch.sort(torch.topk(score, max_points, largest=False).indices).values  # [max_points]
        self._thinned += len(self) - max_points
        self.points, self.colors = self.points[keep], self.colors[keep]
        self.normals, self.frame_ids = self.normals[keep], self.frame_ids[keep]
        self._voxel_keys_sorted = None

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict:
        """Summary: total points, points added per frame, and the fraction of pixels each rule removed.

        Keys: ``total_points``, ``frames``, ``added_per_update`` (list, one per frame),
        ``rejected_invalid_fraction`` (pixels dropped as sky / far / invalid, of all pixels),
        ``covered_fraction`` (candidates with a visible cached point: rule a rejects them),
        ``readmitted_back_facing_fraction`` (of the candidates, covered but added by rule b),
        ``rejected_fraction`` (candidates not added by rules a + b),
        ``rejected_voxel_fraction`` (candidates dropped by the voxel merge), ``thinned`` (points
        removed by ``max_points``). Fractions cover every frame after the first, whose pixels
        are all added by definition (``nan`` before the second frame).
        """
        later = self.history[1:]
        pixels = sum(f.pixels for f in self.history)
        candidates = sum(f.candidates for f in later)

        def frac(num: int, den: int) -> float:
            return num / den if den else float("nan")

        return {
            "total_points": len(self),
            "frames": len(self.history),
            "added_per_update": [f.added for f in self.history],
            "rejected_invalid_fraction": frac(sum(f.invalid for f in self.history), pixels),
            "covered_fraction": frac(sum(f.covered for f in later), candidates),
            "readmitted_back_facing_fraction": frac(sum(f.back_facing for f in later), candidates),
            "rejected_fraction": frac(sum(f.rejected for f in later), candidates),
            "rejected_voxel_fraction": frac(sum(f.merged for f in later), candidates),
            "thinned": self._thinned,
        }

    # ------------------------------------------------------------------ files
    def save(self, path) -> Path:
        """Write the cache as a binary PLY (xyz float32, normals float32, rgb uchar, int frame_id)."""
        from voyager_pipe.world.ply import write_ply

        return write_ply(path, self.points, self.colors, self.normals,
                         extra={"frame_id": self.frame_ids.to(torch.int32)})

    @classmethod
    def load(cls, path, cfg: CacheConfig | None = None, renderer=None, device=None) -> "WorldCache":
        """A cache holding the points of a PLY (colours quantised to 8 bits; missing normals = 0)."""
        from voyager_pipe.world.ply import read_ply

        data = read_ply(path)
        cache = cls(cfg, renderer=renderer, device=device)
        count = data["xyz"].shape[0]
        cache.points = torch.from_numpy(data["xyz"]).to(cache.device)  # [P, 3]
        rgb = data["rgb"] if data["rgb"] is not None else np.full((count, 3), 255, np.uint8)
        cache.colors = (torch.from_numpy(rgb).to(cache.device, torch.float32) / 255.0)  # [P, 3]
        normals = data["normals"] if data["normals"] is not None else np.zeros((count, 3), np.float32)
        cache.normals = torch.from_numpy(normals).to(cache.device)  # [P, 3]
        ids = data["extra"].get("frame_id")
        ids = np.zeros(count, np.int64) if ids is None else ids.astype(np.int64)
        cache.frame_ids = torch.from_numpy(ids).to(cache.device)  # [P]
        cache._next_frame_id = int(ids.max()) + 1 if count else 0
        return cache


# ---------------------------------------------------------------------- helpers
def _world_rays(camera: Cameras) -> torch.Tensor:
    """Unit viewing rays ``[3, H, W]`` in world coordinates through every pixel centre of one camera."""
    uv = pixel_centers(camera.height, camera.width, device=camera.device, dtype=torch.float32)  # [H, W, 2]
    K = camera.K[0].to(torch.float64)  # [3, 3]
    R = camera.w2c[0, :3, :3].to(torch.float64)  # [3, 3]
    K_inv = torch.linalg.inv(K)  # [3, 3]
    to_world = (R.T @ K_inv).to(torch.float32)  # [3, 3]: pixel (u, v, 1) -> world ray
    uv1 = torch.cat([uv.permute(2, 0, 1), torch.ones_like(uv[None, ..., 0])], dim=0)  # [3, H, W]
    rays = (to_world @ uv1.reshape(3, -1)).reshape(uv1.shape)  # [3, H, W]
    # rsqrt of a plain sum: torch's vector_norm over the leading axis of [3, H, W] is ~50x slower on CPU
    return rays * rays.square().sum(dim=0, keepdim=True).rsqrt()  # [3, H, W]


def _close_holes(covered: torch.Tensor, normals: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Morphological closing of ``covered`` [H, W]; filled pixels get the mean normal [3, H, W] of their neighbours."""
    size = 2 * radius + 1
    mask = covered[None, None].float()  # [1, 1, H, W]
    dilated = F.max_pool2d(mask, size, stride=1, padding=radius)  # [1, 1, H, W]
    closed = -F.max_pool2d(-dilated, size, stride=1, padding=radius)  # [1, 1, H, W]
    filled = (closed[0, 0] > 0.5) & ~covered  # [H, W]
    if not bool(filled.any()):
        return covered, normals
    summed = F.avg_pool2d((normals * mask[0])[None], size, stride=1, padding=radius)[0]  # [3, H, W]
    mean = F.normalize(summed, dim=0)  # [3, H, W]
    normals = torch.where(filled[None], mean, normals)  # [3, H, W]
    return covered | filled, normals


def _voxel_keys(points: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """One int64 key per point ``[P]`` for the voxel grid of edge ``voxel_size`` (21 bits per axis)."""
    cells = torch.floor(points.to(torch.float64) / voxel_size).long()  # [P, 3]
    cells = (cells + _KEY_OFFSET).clamp(0, (1 << _KEY_BITS) - 1)  # [P, 3]
    return (cells[:, 0] << (2 * _KEY_BITS)) | (cells[:, 1] << _KEY_BITS) | cells[:, 2]  # [P]
