"""The world cache: the generated world as points, with the paper's update policy.

Point storage is :class:`~voyager_pipe.world.points.PointStore` (two of them: the geometry,
and a far *background* layer for depthless pixels such as sky). This module is the policy:
which pixels of a new frame enter (Algorithm 1 of the Voyager paper) and how the layers are
rendered together.

Algorithm 1, for each frame ``i`` with RGB ``I_i``, z-depth ``D_i`` and camera ``c_i``:

1. Unproject ``D_i`` into a point map ``[H, W, 3]`` coloured by ``I_i``; estimate its normals
   (image-space neighbours, oriented towards the camera).
2. Render the *existing* cache from ``c_i``: per pixel, whether a cached point is visible and
   the normal of the visible (winning) point.
3. Add the pixel's point only where
   (a) no cached point is visible, or
   (b) the visible cached point faces away from the camera: the angle between its normal and
       the direction from the pixel's surface to the camera exceeds ``normal_angle_deg`` (110; the paper: 90, see the config help).
   Nothing else is added.

Sampling-aware gaps (``gap_tolerance`` > 0): a surface seen slightly closer than before shows
one- or two-pixel gaps between its points. An empty pixel between two rendered pixels of
agreeing depth (:func:`voyager_pipe.render.gaps.close_gaps`) counts as covered in step 3 only
when the new pixel's own depth agrees with that interpolated depth too. Likewise an empty
pixel next to the frontier of what the cache knows (:func:`~voyager_pipe.render.gaps.extend_frontier`:
a point stands for its source pixel, half a pixel beyond its centre) when its depth agrees
with that neighbour's. Gap closing is rasterised with a 2-pixel margin around the frame, so
border pixels have their neighbours too. The cache's default render fills the same pixels,
so a frame rendered back from its own camera still shows every valid pixel. (At a frontier
that advances one pixel per frame this stores every other column there; renders close the
one-pixel gaps.)

Background layer (``background``): pixels without a usable depth (zero, NaN, inf, beyond
``max_depth``) inside ``valid_mask`` are placed at z-depth ``far_depth`` = the first frame's
largest finite depth + ``far_margin`` (the released data engine's rule for sky) in a separate
store, added where nothing is rendered yet, rendered behind all geometry, and never part of
:attr:`WorldCache.points` / ``world.ply``. Later frames whose depth reaches half of
``far_depth`` (a render of that layer coming back from a generator) feed the layer too.

Optional bounds for long runs: ``voxel_size`` (a new point whose voxel already holds a point
is dropped) and ``max_points`` (uniform random thinning that keeps the first frame's points).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.errors import InputError
from voyager_pipe.render.base import RenderOutput
from voyager_pipe.render.condition import ConditionRender, upsample_render
from voyager_pipe.render.gaps import close_gaps, extend_frontier
from voyager_pipe.world.config import CacheConfig
from voyager_pipe.world.points import PointStore

_NEAR_CULL = 1e-6  # blocks wholly behind this z-depth are out of every renderer's view (their near planes are larger)
_CULL_GROUP = 4  # cameras rendered together (sharing one culled set of blocks)
_GAP_MARGIN = 2  # pixels rasterised around a frame for gap closing (the widest gap pair reaches 2 pixels)
_KEY_BITS = 21  # voxel keys pack three signed 21-bit integers into one int64
_KEY_OFFSET = 1 << (_KEY_BITS - 1)


@dataclass
class FrameStats:
    """What one frame did to the cache (pixel counts)."""

    frame_id: int
    pixels: int  # H * W
    invalid: int  # sky / far / zero / non-finite / masked out: never geometry candidates
    candidates: int  # valid pixels, tested against the cache
    covered: int  # candidates with a cached point visible (rule a does not add them)
    back_facing: int  # covered candidates added anyway because the cached point faces away (rule b)
    rejected: int  # covered candidates whose cached point faces the camera: not added
    merged: int  # accepted by the rules but dropped by the voxel merge
    added: int  # geometry points appended to the cache
    background_added: int = 0  # far-layer (sky) points appended


@dataclass
class UpdateStats:
    """Result of :meth:`WorldCache.update`: per-frame counts and the cache size afterwards."""

    frames: list[FrameStats] = field(default_factory=list)
    thinned: int = 0  # points removed by the max_points bound during this update
    total_points: int = 0

    @property
    def added(self) -> int:
        return sum(f.added for f in self.frames)


def _empty_render(n: int, height: int, width: int, device: torch.device) -> RenderOutput:
    return RenderOutput(
        rgb=torch.zeros(n, 3, height, width, device=device),  # [N, 3, H, W]
        depth=torch.zeros(n, 1, height, width, device=device),  # [N, 1, H, W]
        mask=torch.zeros(n, 1, height, width, dtype=torch.bool, device=device),  # [N, 1, H, W]
        index=torch.full((n, height, width), -1, dtype=torch.long, device=device),  # [N, H, W]
        normals=torch.zeros(n, 3, height, width, device=device),  # [N, 3, H, W]
    )


class WorldCache:
    """Incremental point cloud of the generated world, with the paper's pruning and a far layer.

    Two verbs: :meth:`update` adds RGB-D frames, :meth:`render` draws the cache from any
    cameras. :attr:`points` (and ``colors``, ``normals``, ``frame_ids``) are the geometry only;
    the far layer is :attr:`background`.

    Args:
        cfg: :class:`~voyager_pipe.world.config.CacheConfig` (defaults when ``None``).
        renderer: a ``PointRenderer``; ``voyager_pipe.render.get_renderer(None, device)`` when ``None``.
        device: where the points live and rendering happens (default CPU).
        seed: seed of the random thinning used by ``cfg.max_points`` (``gen`` passes the run's ``seed``).
    """

    def __init__(self, cfg: CacheConfig | None = None, renderer=None, device=None, seed: int = 0):
        self.cfg = cfg or CacheConfig()
        self.seed = int(seed)  # the run's seed (one seed setting): random thinning of max_points
        if self.cfg.normal_angle_deg <= 0 or self.cfg.normal_angle_deg > 180:
            raise InputError(f"cache.normal_angle_deg: must be in (0, 180], got {self.cfg.normal_angle_deg}")
        for name in ("max_depth", "voxel_size", "max_points", "gap_tolerance", "far_margin"):
            if getattr(self.cfg, name) is not None and not getattr(self.cfg, name) >= 0:
                raise InputError(f"cache.{name}: must be >= 0, got {getattr(self.cfg, name)}")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if renderer is None:
            from voyager_pipe.render import get_renderer

            renderer = get_renderer(None, device=self.device)
        self.renderer = renderer
        self.geometry = PointStore(self.device)
        self.background = PointStore(self.device)
        self.far_depth: float | None = None  # z-depth of the far layer, fixed by the first frame
        self.history: list[FrameStats] = []
        self._next_frame_id = 0
        self._voxel_keys_sorted: torch.Tensor | None = None  # [P] int64, only with voxel_size > 0
        self._thinned = 0

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.geometry)

    @property
    def num_points(self) -> int:
        return len(self)

    @property
    def points(self) -> torch.Tensor:
        return self.geometry.xyz  # [P, 3]

    @property
    def colors(self) -> torch.Tensor:
        return self.geometry.rgb  # [P, 3]

    @property
    def normals(self) -> torch.Tensor:
        return self.geometry.normals  # [P, 3]

    @property
    def frame_ids(self) -> torch.Tensor:
        return self.geometry.frame_ids  # [P]

    @property
    def far_threshold(self) -> float:
        """Depth from which a value belongs to the far layer (inf before the first frame)."""
        return 0.5 * self.far_depth if self.far_depth is not None else float("inf")

    def meta(self) -> dict:
        """Everything but the points, as plain JSON-able values (for resume states)."""
        return {"history": [vars(f).copy() for f in self.history], "next_frame_id": self._next_frame_id,
                "thinned": self._thinned, "far_depth": self.far_depth}

    def load_meta(self, meta: dict) -> None:
        """Restore :meth:`meta` (validated by the caller)."""
        self.history = [f if isinstance(f, FrameStats) else FrameStats(**f) for f in meta["history"]]
        self._next_frame_id = int(meta["next_frame_id"])
        self._thinned = int(meta["thinned"])
        self.far_depth = None if meta["far_depth"] is None else float(meta["far_depth"])
        self._voxel_keys_sorted = None

    def state_dict(self) -> dict:
        """Exact in-memory state (copies): ``<layer>_<column>`` tensors of both layers plus :meth:`meta`'s values
        (the PLY quantises colours to 8 bits, so it cannot restore a cache exactly)."""
        state = {f"{layer}_{name}": value.clone() for layer, store in (("geometry", self.geometry),
                                                                        ("background", self.background))
                 for name, value in store.rows().items()}
        state.update(history=list(self.history), next_frame_id=self._next_frame_id, thinned=self._thinned,
                     far_depth=self.far_depth)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (tensors move to this cache's device)."""
        from voyager_pipe.world.points import COLUMNS

        for layer, store in (("geometry", self.geometry), ("background", self.background)):
            store.replace(**{name: state[f"{layer}_{name}"].to(self.device) for name in COLUMNS})
        self.load_meta(state)

    # ------------------------------------------------------------------ render
    def render(self, cameras: Cameras, recipe: ConditionRender | None = None) -> RenderOutput:
        """Render the cache from ``cameras`` -> ``RenderOutput`` (rgb, depth, mask, index, normals).

        Args:
            recipe: how to render (:class:`~voyager_pipe.render.condition.ConditionRender`);
                default: full resolution, nearest z-buffer, gaps closed and the frontier
                extended by a pixel when ``gap_tolerance > 0`` (as the visibility test sees the
                cache), far layer included.
        """
        recipe = recipe or ConditionRender(close_gaps=True, extend_frontier=True)
        if len(cameras) > _CULL_GROUP:  # each few cameras see fewer blocks than the whole clip does
            return RenderOutput.cat([self.render(cameras[s: s + _CULL_GROUP], recipe)
                                     for s in range(0, len(cameras), _CULL_GROUP)])
        cameras = cameras.to(self.device, torch.float32)
        H, W = cameras.height, cameras.width
        w, h = (W, H) if recipe.scale == 1.0 else (max(1, round(W * recipe.scale)), max(1, round(H * recipe.scale)))
        raster = cameras if (w, h) == (W, H) else cameras.resize(w, h)
        if recipe.close_gaps and self.cfg.gap_tolerance > 0:
            out, _ = self._render_gaps_closed(raster, recipe.background, frontier=recipe.extend_frontier)
        else:
            out = self._render_layers(raster, recipe.background)
        if recipe.resample == "splat":
            from voyager_pipe.render.splat import splat_resample

            tol = self.cfg.gap_tolerance if self.cfg.gap_tolerance > 0 else 0.03
            xyz, rgb, _, _ = self._geometry_in_view(raster)
            out = splat_resample(xyz, rgb, raster, out, tol)
            if recipe.background and len(self.background):
                out = splat_resample(self.background.xyz, self.background.rgb, raster, out, tol)
        if (w, h) != (W, H):
            out = upsample_render(out, H, W, recipe)
        return out

    def _geometry_in_view(self, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(xyz, rgb, normals, rows)`` of the geometry blocks ``cameras`` can see
        (:meth:`PointStore.rows_in_view`); ``rows [V]`` maps them back, ``None`` = all points."""
        store = self.geometry
        rows = store.rows_in_view(cameras.K, cameras.w2c, cameras.width, cameras.height, near=_NEAR_CULL)
        if rows is None:
            return store.xyz, store.rgb, store.normals, None
        return store.xyz[rows], store.rgb[rows], store.normals[rows], rows  # [V, 3] x3, [V]

    def _render_layers(self, cameras: Cameras, background: bool = True) -> RenderOutput:
        """Nearest z-buffer of the geometry, with the far layer behind it where nothing else is hit."""
        n, H, W = len(cameras), cameras.height, cameras.width
        if len(self.geometry):
            xyz, rgb, normals, rows = self._geometry_in_view(cameras)
            out = self.renderer.render(xyz, rgb, cameras, normals=normals)
            if rows is not None:  # indices into the whole geometry
                out = dataclasses.replace(out, index=torch.where(out.index >= 0, rows[out.index.clamp_min(0)], -1))
        else:
            out = _empty_render(n, H, W, self.device)
        if not background or not len(self.background):
            return out
        far = self.renderer.render(self.background.xyz, self.background.rgb, cameras)
        sky = far.mask & ~out.mask  # [N, 1, H, W]
        normals = out.normals if out.normals is not None else torch.zeros_like(out.rgb)  # [N, 3, H, W]
        return RenderOutput(
            rgb=torch.where(sky, far.rgb, out.rgb),  # [N, 3, H, W]
            depth=torch.where(sky, far.depth, out.depth),  # [N, 1, H, W]
            mask=out.mask | sky,  # [N, 1, H, W]
            index=torch.where(sky[:, 0], far.index + len(self.geometry), out.index),  # [N, H, W] into [geometry; background]
            normals=torch.where(sky, torch.zeros_like(normals), normals),  # [N, 3, H, W]
        )

    def _render_gaps_closed(self, cameras: Cameras, background: bool = True, prefer: torch.Tensor | None = None,
                            frontier: bool = True) -> tuple[RenderOutput, torch.Tensor]:
        """:meth:`_render_layers` with gaps closed and the frontier extended by one pixel
        (:mod:`voyager_pipe.render.gaps`) -> ``(render, filled [N, 1, H, W])``.

        Rasterised :data:`_GAP_MARGIN` pixels beyond the frame on every side, so that a border
        pixel has the pair of samples that closes its gap (the sample beyond the border would
        otherwise be missing, and the pixel would count as unseen). ``prefer [N, 1, H, W]``: the
        depth a frontier pixel should match when it has several rendered neighbours.
        """
        m = _GAP_MARGIN
        padded = self._render_layers(cameras.pad(m), background)
        closed, filled = close_gaps(padded, self.cfg.gap_tolerance)
        if frontier:
            closed, extended = extend_frontier(closed, None if prefer is None else F.pad(prefer, (m, m, m, m)))
            filled = filled | extended
        return closed.crop(m), filled[..., m:-m, m:-m]  # [N, 1, H, W]

    # ------------------------------------------------------------------ update
    def update(self, rgb, depth, cameras: Cameras, valid_mask=None, frame_ids=None) -> UpdateStats:
        """Add RGB-D frames, one after the other, with visibility and normal pruning.

        Args:
            rgb: ``[T, 3, H, W]`` float in [0, 1].
            depth: ``[T, 1, H, W]`` float z-depth; 0 / NaN / inf / beyond ``max_depth`` = no value
                (such pixels feed the far background layer when ``background`` is on).
            cameras: ``T`` cameras of size ``W x H``.
            valid_mask: optional ``[T, 1, H, W]`` bool; False pixels never enter the cache.
            frame_ids: optional ``T`` ints stored per point (default: a running frame counter).

        Returns:
            :class:`UpdateStats`. On an empty cache the first frame adds all its valid pixels.

        Raises:
            ValueError: shapes / dtypes that do not match, or (on an empty cache) no valid depth
                pixel at all. These are programming errors: callers validate user files first.
        """
        rgb, depth, valid, sky = self._check_inputs(rgb, depth, cameras, valid_mask)  # [T,3,H,W], [T,1,H,W], [T,H,W] x2
        T = rgb.shape[0]
        if frame_ids is None:
            frame_ids = list(range(self._next_frame_id, self._next_frame_id + T))
        elif len(frame_ids) != T:
            raise ValueError(f"frame_ids: {len(frame_ids)} ids for {T} frames")
        cameras = cameras.to(self.device, torch.float32)
        if self.far_depth is None:
            self.far_depth = float(depth[valid[:, None]].max()) + self.cfg.far_margin
        stats = UpdateStats()
        thinned_before = self._thinned
        for t in range(T):  # frames are sequential: each one is tested against the cache the previous ones built
            stats.frames.append(self._integrate_frame(rgb[t], depth[t], valid[t], sky[t], cameras[t], int(frame_ids[t])))
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
            raise ValueError(f"rgb: expected shape [T, 3, H, W], got {list(rgb.shape)}")
        if depth.ndim != 4 or depth.shape[1] != 1:
            raise ValueError(f"depth: expected shape [T, 1, H, W], got {list(depth.shape)}")
        if not rgb.is_floating_point():
            raise ValueError(f"rgb: expected float values in [0, 1], got dtype {rgb.dtype}")
        if not depth.is_floating_point():
            raise ValueError(f"depth: expected float z-depth, got dtype {depth.dtype}")
        if rgb.shape[0] != depth.shape[0] or rgb.shape[-2:] != depth.shape[-2:]:
            raise ValueError(f"depth: shape {list(depth.shape)} does not match rgb {list(rgb.shape)}")
        T, _, H, W = rgb.shape
        if not isinstance(cameras, Cameras):
            raise TypeError(f"cameras: expected a Cameras batch, got {type(cameras).__name__}")
        if len(cameras) != T:
            raise ValueError(f"cameras: {len(cameras)} cameras for {T} frames")
        if (cameras.width, cameras.height) != (W, H):
            raise ValueError(f"cameras: size {cameras.width}x{cameras.height} does not match frames {W}x{H}")
        rgb = rgb.to(self.device, torch.float32)  # [T, 3, H, W]
        depth = depth.to(self.device, torch.float32)  # [T, 1, H, W]
        inside = torch.ones_like(depth, dtype=torch.bool)  # [T, 1, H, W]
        if valid_mask is not None:
            valid_mask = _as_tensor(valid_mask, "valid_mask")
            if valid_mask.ndim == 3:
                valid_mask = valid_mask.unsqueeze(0)  # [1, 1, H, W]
            if tuple(valid_mask.shape) != (T, 1, H, W):
                raise ValueError(f"valid_mask: expected shape [{T}, 1, {H}, {W}], got {list(valid_mask.shape)}")
            if valid_mask.dtype != torch.bool:
                raise ValueError(f"valid_mask: expected dtype bool, got {valid_mask.dtype}")
            inside = valid_mask.to(self.device)
        finite = depth.isfinite() & (depth > 0)  # [T, 1, H, W]
        valid = finite & inside & (depth < self.far_threshold)  # [T, 1, H, W]
        if self.cfg.max_depth is not None:
            valid &= depth <= self.cfg.max_depth
        if self.far_depth is None and not bool(valid.any()):
            limit = f" and <= cache.max_depth={self.cfg.max_depth}" if self.cfg.max_depth is not None else ""
            raise ValueError(f"depth: no valid pixel (need finite depth > 0{limit}"
                             f"{' inside valid_mask' if valid_mask is not None else ''})")
        sky = inside & ~valid if self.cfg.background else torch.zeros_like(valid)  # [T, 1, H, W]
        depth = torch.where(valid, depth, torch.zeros_like(depth))  # [T, 1, H, W]
        return rgb, depth, valid[:, 0], sky[:, 0]

    def _integrate_frame(self, rgb: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, sky: torch.Tensor,
                         camera: Cameras, frame_id: int) -> FrameStats:
        """Algorithm 1 for one frame: rgb [3,H,W], depth [1,H,W], valid [H,W], sky [H,W], one camera."""
        from voyager_pipe.geometry import pixel_rays, point_map_normals, unproject

        H, W = valid.shape
        candidates = int(valid.sum())
        covered, faces_away, anything = self._visibility(camera, depth[0])  # [H, W] x3
        add = valid & (~covered | faces_away)  # [H, W]
        covered_valid = int((valid & covered).sum())
        back_facing = int((valid & covered & faces_away).sum())
        counts = dict(frame_id=frame_id, pixels=H * W, invalid=H * W - candidates, candidates=candidates,
                      covered=covered_valid, back_facing=back_facing, rejected=covered_valid - back_facing)

        add_sky = sky & ~anything  # [H, W]
        background_added = int(add_sky.sum())
        if background_added:
            origin, directions = pixel_rays(camera.K[0], camera.w2c[0], H, W)  # [1, 3], [1, H, W, 3]
            far_points = origin[0] + self.far_depth * directions[0][add_sky]  # [B, 3]
            self.background.append(far_points, rgb.permute(1, 2, 0)[add_sky].clamp(0, 1), torch.zeros_like(far_points),
                                   torch.full((background_added,), frame_id, dtype=torch.long, device=self.device))

        # Normals only use the 1-pixel neighbourhood, so unprojecting and estimating them on the
        # bounding box of the added pixels plus a 1-pixel margin gives the whole frame's values.
        rows, cols = add.any(dim=1).nonzero()[:, 0], add.any(dim=0).nonzero()[:, 0]  # [r], [c]
        if rows.numel() == 0:
            return FrameStats(**counts, merged=0, added=0, background_added=background_added)
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
        self.geometry.append(new_points, new_colors, new_normals,
                             torch.full((added,), frame_id, dtype=torch.long, device=self.device))
        if self.cfg.max_points > 0 and len(self) > self.cfg.max_points:
            self._thin(self.cfg.max_points)
        return FrameStats(**counts, merged=accepted - added, added=added, background_added=background_added)

    def _visibility(self, camera: Cameras, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Render the cache from ``camera`` for the frame's z-depth ``depth [H, W]``.

        Returns:
            ``covered [H, W]`` (geometry visible, or a closed gap whose depth agrees with ``depth``),
            ``faces_away [H, W]`` (covered and the visible point's normal faces away) and
            ``anything [H, W]`` (any layer rendered there, gaps included).
        """
        H, W = depth.shape
        if len(self) == 0 and len(self.background) == 0:
            nothing = torch.zeros(H, W, dtype=torch.bool, device=self.device)
            return nothing, nothing, nothing
        if self.cfg.gap_tolerance > 0:
            out, filled = self._render_gaps_closed(camera, prefer=depth[None, None])
        else:
            out = self._render_layers(camera)
            filled = torch.zeros_like(out.mask)
        cached_depth = out.depth[0, 0]  # [H, W]
        geometry = out.mask[0, 0] & (cached_depth < self.far_threshold)  # [H, W] a point or a closed gap
        agrees = (depth - cached_depth).abs() <= self.cfg.gap_tolerance * cached_depth  # [H, W]
        covered = geometry & (~filled[0, 0] | agrees)  # a closed gap covers only the frame's own surface
        cached_normals = out.normals[0].to(torch.float32)  # [3, H, W]
        # Direction from the surface seen at each pixel to the camera: minus the pixel's viewing ray.
        rays = _unit_rays(camera)  # [3, H, W]
        cosine = -(cached_normals * rays).sum(dim=0)  # [H, W]
        has_normal = (cached_normals * cached_normals).sum(dim=0) > 0.25  # [H, W]; zero (undefined) normals never face away
        threshold = math.cos(math.radians(self.cfg.normal_angle_deg))
        faces_away = covered & has_normal & (cosine < threshold - 1e-6)  # [H, W]
        return covered, faces_away, out.mask[0, 0]

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
        generator = torch.Generator().manual_seed(self.seed + len(self.history))
        score = torch.rand(len(self), generator=generator).to(self.device)  # [P] in [0, 1)
        first_frame = int(self.frame_ids.min())
        score = torch.where(self.frame_ids == first_frame, score - 1.0, score)  # [P] first frame preferred
        keep = torch.sort(torch.topk(score, max_points, largest=False).indices).values  # [max_points]
        self._thinned += len(self) - max_points
        self.geometry.select(keep)
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
        rgb = data["rgb"] if data["rgb"] is not None else np.full((count, 3), 255, np.uint8)
        normals = data["normals"] if data["normals"] is not None else np.zeros((count, 3), np.float32)
        ids = data["extra"].get("frame_id")
        ids = np.zeros(count, np.int64) if ids is None else ids.astype(np.int64)
        cache.geometry.replace(torch.from_numpy(data["xyz"]),  # [P, 3]
                               torch.from_numpy(rgb).to(torch.float32) / 255.0,  # [P, 3]
                               torch.from_numpy(normals),  # [P, 3]
                               torch.from_numpy(ids))  # [P]
        cache._next_frame_id = int(ids.max()) + 1 if count else 0
        return cache


# ---------------------------------------------------------------------- helpers
def _unit_rays(camera: Cameras) -> torch.Tensor:
    """Unit viewing rays ``[3, H, W]`` in world coordinates through every pixel centre of one camera."""
    from voyager_pipe.geometry import pixel_rays

    _, directions = pixel_rays(camera.K[0].double(), camera.w2c[0].double(), camera.height, camera.width)  # [1, H, W, 3]
    rays = directions[0].permute(2, 0, 1).to(torch.float32)  # [3, H, W]
    # rsqrt of a plain sum: torch's vector_norm over the leading axis of [3, H, W] is ~50x slower on CPU
    return rays * rays.square().sum(dim=0, keepdim=True).rsqrt()  # [3, H, W]


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch tensor or numpy array, got {type(value).__name__}")
    return value


def _voxel_keys(points: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """One int64 key per point ``[P]`` for the voxel grid of edge ``voxel_size`` (21 bits per axis)."""
    cells = torch.floor(points.to(torch.float64) / voxel_size).long()  # [P, 3]
    cells = (cells + _KEY_OFFSET).clamp(0, (1 << _KEY_BITS) - 1)  # [P, 3]
    return (cells[:, 0] << (2 * _KEY_BITS)) | (cells[:, 1] << _KEY_BITS) | cells[:, 2]  # [P]
