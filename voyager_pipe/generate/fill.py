"""Hole filling of rendered RGB-D frames (used by the weight-free warp backend).

A hole is what the cache does not know: a disocclusion (what lies *behind* a foreground edge)
or new content at the image border. Both are filled from the BACKGROUND side:

* Depth (:func:`fill_depth_background`): along each row and each column, the hole takes the
  nearer of its two known boundary pixels that is the farther one in depth (the background
  side) and continues that surface as a plane: inverse depth is affine in the image for a
  plane, so it is extrapolated linearly with the slope measured on the known pixels behind
  the boundary (slope 0 where they do not lie on one plane). Of the row and column answers the
  farther boundary wins. What no row or column reaches takes the largest (farthest) depth
  among its neighbours (iterated 3x3 max filtering, then a max-pool pyramid). Vectorised.
* RGB (:func:`fill_rgb_background`): a multi-scale push-pull fill that, when it averages known
  pixels into a coarser level, keeps only the farthest ones of each 2x2 block, so holes take
  smooth background colours without the streaks of front-propagating inpainting.
  :func:`inpaint_rgb` (OpenCV Telea / Navier-Stokes) stays available (``warp.inpaint_method``).

Cost: both fills run a few frames at a time on the CPU (:data:`CHUNK_PIXELS`), the chunks
shared by ``torch.get_num_threads()`` threads that run single-threaded ops (frames are
independent, so the numbers depend on neither), and the planar continuation is evaluated at
the hole pixels only, with slopes at the known pixels beside a hole only.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


def inpaint_rgb(rgb: torch.Tensor, holes: torch.Tensor, radius: int = 3, method: str = "telea") -> torch.Tensor:
    """Fill ``holes`` of ``rgb`` by OpenCV inpainting.

    Args:
        rgb: ``[T, 3, H, W]`` float in [0, 1].
        holes: ``[T, 1, H, W]`` bool, True where a pixel has no value.
    Returns:
        ``[T, 3, H, W]`` with hole pixels inpainted and the others unchanged.
    """
    import cv2

    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    out = rgb.clone()  # [T, 3, H, W]
    rgb8 = (rgb.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # [T, H, W, 3]
    holes8 = holes[:, 0].cpu().numpy().astype(np.uint8)  # [T, H, W]
    for t in range(rgb.shape[0]):  # one C call per frame
        if not holes8[t].any():
            continue
        if holes8[t].all():  # nothing to inpaint from: grey
            out[t] = 0.5
            continue
        filled = cv2.inpaint(np.ascontiguousarray(rgb8[t]), holes8[t], radius, flag)  # [H, W, 3] uint8
        filled_t = torch.from_numpy(filled).to(rgb).permute(2, 0, 1) / 255.0  # [3, H, W]
        out[t] = torch.where(holes[t], filled_t, rgb[t])
    return out


# Frames are processed in chunks of about this many pixels on the CPU: every step is per frame,
# and whole-clip tensors ([49, 1, 512, 512] = 51 MB each) make each of the ~300 elementwise ops
# of the fill stream through memory (and through fresh pages from the allocator), while ~1 MB
# tensors (one 512x512 frame) stay in cache: several times faster, same numbers.
CHUNK_PIXELS = 1 << 18


def frame_chunks(num_frames: int, height: int, width: int, device: torch.device | str = "cpu") -> list[slice]:
    """Slices of ``range(num_frames)`` of about :data:`CHUNK_PIXELS` pixels each (one slice off the CPU)."""
    if torch.device(device).type != "cpu":
        return [slice(0, num_frames)]
    step = max(1, CHUNK_PIXELS // max(height * width, 1))
    return [slice(s, min(s + step, num_frames)) for s in range(0, num_frames, step)]


def _for_each_chunk(work: Callable[[slice], None], chunks: list[slice]) -> None:
    """``work(chunk)`` for every chunk; on the CPU the chunks are shared by ``torch.get_num_threads()``
    Python threads that each run their ops single-threaded (torch releases the GIL): thousands of
    small ops each split over all cores would wait at a barrier after every op, which collapses
    when another process holds one of the cores. Torch's thread count is restored afterwards."""
    previous = torch.get_num_threads()
    threads = min(previous, len(chunks))
    if threads <= 1:
        for chunk in chunks:
            work(chunk)
        return
    from concurrent.futures import ThreadPoolExecutor

    torch.set_num_threads(1)  # new threads take torch's count at their first op: 1
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for done in [pool.submit(work, chunk) for chunk in chunks]:
                done.result()  # the first error is raised
    finally:
        torch.set_num_threads(previous)


def fill_depth_background(depth: torch.Tensor, valid: torch.Tensor, fallback: float | None = None,
                          local_iters: int = 4) -> torch.Tensor:
    """Fill invalid depth from the background side, continuing its surface as a plane.

    Args:
        depth: ``[T, 1, H, W]`` z-depth.
        valid: ``[T, 1, H, W]`` bool; pixels outside it are filled.
        fallback: depth for frames with no valid pixel at all (default: median of all valid
            depth of the batch, 1.0 when there is none).
        local_iters: 3x3 max-filter passes before the coarse pyramid takes over (pixels no
            row or column reaches).
    Returns:
        ``[T, 1, H, W]`` depth > 0 everywhere; valid pixels unchanged.
    """
    valid = valid & (depth > 0) & depth.isfinite()  # [T, 1, H, W]
    if fallback is None:
        good = depth[valid]  # [M]
        fallback = float(good.median()) if good.numel() else 1.0
    out = torch.empty_like(depth)  # [T, 1, H, W]

    def work(chunk: slice) -> None:  # frames are independent
        out[chunk] = _fill_depth_frames(depth[chunk], valid[chunk], fallback, local_iters)

    _for_each_chunk(work, frame_chunks(depth.shape[0], depth.shape[-2], depth.shape[-1], depth.device))
    return out


def _fill_depth_frames(depth: torch.Tensor, valid: torch.Tensor, fallback: float, local_iters: int) -> torch.Tensor:
    """:func:`fill_depth_background` of a few frames ``[t, 1, H, W]`` (``valid`` already checked).

    The planar continuation is evaluated at the hole pixels only (and the slopes it needs at
    the known pixels next to a hole only): what the other pixels would get is never used."""
    t, _, height, width = depth.shape
    valid = valid.contiguous()
    inverse = torch.where(valid, 1.0 / depth.clamp_min(1e-12), torch.zeros_like(depth)).contiguous()  # [t, 1, H, W]
    filled = torch.where(valid, depth, torch.zeros_like(depth)).contiguous()  # [t, 1, H, W]
    holes = (~valid).view(-1).nonzero().squeeze(1)  # [M] flat indices of the hole pixels
    if holes.numel():
        row_q, row_b = _extrapolate_rows(inverse, valid, holes)  # [M] x2 (boundary inverse depth, 0 = none)
        # columns: the same scan on the transposed frames (scans along the last, contiguous axis are ~5x faster)
        frame, rest = holes // (height * width), holes % (height * width)
        holes_t = frame * (height * width) + (rest % width) * height + rest // width  # [M] the same pixels, transposed
        col_q, col_b = _extrapolate_rows(inverse.transpose(2, 3).contiguous(), valid.transpose(2, 3).contiguous(), holes_t)
        use_col = (col_b > 0) & ((row_b <= 0) | (col_b < row_b))  # the farther boundary (smaller inverse depth) wins
        planar_q = torch.where(use_col, col_q, row_q)  # [M]
        filled.view(-1)[holes] = torch.where(planar_q > 0, 1.0 / planar_q.clamp_min(1e-12), torch.zeros_like(planar_q))
    filled = _fill_recursive(filled, local_iters)  # [t, 1, H, W] what no line reached
    return torch.where(filled > 0, filled, torch.full_like(filled, fallback))


def _extrapolate_rows(inverse: torch.Tensor, valid: torch.Tensor, holes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Planar continuation of the background along the rows (the last axis) into the hole pixels.

    Args:
        inverse: ``[t, 1, H, W]`` contiguous inverse depth (0 where not valid); valid: ``[t, 1, H, W]``.
        holes: ``[M]`` flat indices of hole pixels (not ``valid``).
    Returns:
        ``(q, boundary)`` ``[M]``: the extrapolated inverse depth of each hole pixel and the inverse
        depth of the boundary it came from (both 0 where the row holds no known pixel).
    """
    n = inverse.shape[3]
    pos = torch.arange(n, device=inverse.device).view(1, 1, 1, n)  # [1, 1, 1, W]
    before = torch.where(valid, pos, -1).cummax(3).values  # [t, 1, H, W] last known <= x
    after = torch.where(valid.flip(3), pos.flip(3), n).cummin(3).values.flip(3)  # first known >= x
    slope = _row_boundary_slope(inverse, valid)  # [t, 1, H, W] (at the pixels next to a hole)
    column = holes % n  # [M]
    row_start = holes - column  # [M] flat index of the row's first pixel
    flat_q, flat_slope = inverse.view(-1), slope.view(-1)

    def side(boundary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # boundary: [M] column, -1 / n = none
        exists = (boundary >= 0) & (boundary < n)
        b = row_start + boundary.clamp(0, n - 1)  # [M] flat index of the boundary pixel
        q0, g = flat_q[b], flat_slope[b]  # [M]
        q = (q0 + g * (column - boundary).to(inverse.dtype)).clamp(min=0.5 * q0, max=2.0 * q0)
        return torch.where(exists, q, torch.zeros_like(q)), torch.where(exists, q0, torch.zeros_like(q0))

    q_before, b_before = side(before.view(-1)[holes])
    q_after, b_after = side(after.view(-1)[holes])
    use_after = (b_after > 0) & ((b_before <= 0) | (b_after < b_before))  # the farther side
    return torch.where(use_after, q_after, q_before), torch.where(use_after, b_after, b_before)


def _row_boundary_slope(inverse: torch.Tensor, valid: torch.Tensor, reach: int = 4,
                        plane_tol: float = 0.01, surface_tol: float = 0.05) -> torch.Tensor:
    """Smoothed slope ``d(inverse depth) / d(column)`` of the known surfaces ``[t, 1, H, W]`` along the rows,
    at the known pixels with a hole beside them on their row (0 elsewhere: not needed).

    Central differences where three consecutive known samples lie on one plane (second
    difference below ``plane_tol`` times the value: creases and depth edges are left out),
    averaged across the row over ``2 reach + 1`` neighbours of the same surface (inverse depth
    within ``surface_tol``); 0 where there is no such sample.
    """
    t, _, height, n = inverse.shape
    slope = torch.zeros_like(inverse)  # [t, 1, H, W]
    if n < 3:  # no pixel has two neighbours on its row
        return slope
    prev_q, here_q, next_q = inverse[..., :-2], inverse[..., 1:-1], inverse[..., 2:]  # [t, 1, H, W-2] views
    ok = valid[..., :-2] & valid[..., 1:-1] & valid[..., 2:]  # [t, 1, H, W-2] (the first and last column: none)
    ok &= (next_q - 2 * here_q + prev_q).abs() <= plane_tol * here_q
    gradient = torch.where(ok, (next_q - prev_q) / 2, torch.zeros_like(here_q))  # [t, 1, H, W-2]
    gradient, ok = F.pad(gradient, (1, 1)), F.pad(ok, (1, 1))  # [t, 1, H, W]
    # separable averaging over the same surface: 2 samples each way along the row (so that a
    # boundary pixel, whose own difference is undefined, gets the slope behind it) ...
    gradient, ok = _same_surface_mean(gradient, ok, inverse, 2, surface_tol)  # [t, 1, H, W]
    # ... then across, only where it is used: at the known pixels beside a hole on their row
    beside = torch.zeros_like(valid)  # [t, 1, H, W]
    beside[..., :-1] |= ~valid[..., 1:]
    beside[..., 1:] |= ~valid[..., :-1]
    points = (beside & valid).view(-1).nonzero().squeeze(1)  # [P] flat indices
    if not points.numel():
        return slope
    row = (points // n) % height  # [P]
    here = inverse.view(-1)[points]  # [P]
    limit = surface_tol * here
    flat_gradient, flat_ok, flat_q = gradient.reshape(-1), ok.reshape(-1), inverse.view(-1)
    total, count = torch.zeros_like(here), torch.zeros_like(here)
    for k in range(-reach, reach + 1):  # a loop over the few offsets, not over pixels
        inside = (row + k >= 0) & (row + k < height)  # [P]
        other = torch.where(inside, points + k * n, points)  # [P] the neighbour k rows away
        same = inside & flat_ok[other] & ((flat_q[other] - here).abs() <= limit)
        total += torch.where(same, flat_gradient[other], torch.zeros_like(total))
        count += same
    slope.view(-1)[points] = torch.where(count > 0, total / count.clamp_min(1.0), torch.zeros_like(total))
    return slope


def _same_surface_mean(values: torch.Tensor, ok: torch.Tensor, inverse: torch.Tensor, reach: int,
                       surface_tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``values`` ``[t, 1, H, W]`` over ``ok`` neighbours within ``reach`` along the rows whose inverse depth is within ``surface_tol``."""
    n = inverse.shape[3]
    nan = float("nan")  # never within tolerance: stands for "not ok" and for beyond the image
    candidates = F.pad(torch.where(ok, inverse, torch.full_like(inverse, nan)), (reach, reach), value=nan)  # [t, 1, H, W+2r]
    padded = F.pad(values, (reach, reach))  # [t, 1, H, W+2r]
    limit = surface_tol * inverse  # [t, 1, H, W]
    total, count = torch.zeros_like(values), torch.zeros_like(values)
    for k in range(-reach, reach + 1):  # a loop over the few offsets, not over pixels
        q = candidates[..., reach + k: reach + k + n]  # [t, 1, H, W] view: the neighbour k along the row
        same = (q - inverse).abs() <= limit
        total += torch.where(same, padded[..., reach + k: reach + k + n], 0.0)
        count += same
    has = count > 0
    return torch.where(has, total / count.clamp_min(1.0), torch.zeros_like(total)), has


def fill_rgb_background(rgb: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor,
                        filled_depth: torch.Tensor | None = None, rel_tol: float = 0.05) -> torch.Tensor:
    """Streak-free, background-preferring push-pull fill of the holes of ``rgb``.

    Args:
        rgb: ``[T, 3, H, W]``; depth: ``[T, 1, H, W]`` z-depth of the known pixels;
        valid: ``[T, 1, H, W]`` bool, known pixels (the others are filled).
        filled_depth: ``[T, 1, H, W]`` the holes' filled depth (:func:`fill_depth_background`,
            computed when omitted): a known pixel nearer than the holes around it (the
            foreground at a disocclusion) never gives them its colour.
        rel_tol: in each 2x2 block only known pixels within ``rel_tol`` of the block's farthest
            depth are averaged into the coarser level.
    Returns:
        ``[T, 3, H, W]`` with hole pixels filled and the others unchanged.
    """
    if filled_depth is None:
        filled_depth = fill_depth_background(depth, valid)
    out = torch.empty_like(rgb)  # [T, 3, H, W]

    def work(chunk: slice) -> None:  # frames are independent
        out[chunk] = _fill_rgb_frames(rgb[chunk], depth[chunk], valid[chunk], filled_depth[chunk], rel_tol)

    _for_each_chunk(work, frame_chunks(rgb.shape[0], rgb.shape[-2], rgb.shape[-1], rgb.device))
    return out


def _fill_rgb_frames(rgb: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, filled_depth: torch.Tensor,
                     rel_tol: float) -> torch.Tensor:
    """:func:`fill_rgb_background` of a few frames ``[t, 3, H, W]``.

    Every level's weight is 0 or 1 (known or not), so its colour is already the mean colour
    (no division) and the finest level's known pixels are ``rgb`` itself."""
    levels = []
    inverse = torch.where(valid, 1.0 / depth.clamp_min(1e-12), torch.zeros_like(depth))  # [t, 1, H, W]
    target = torch.where(valid, torch.full_like(depth, float("inf")), 1.0 / filled_depth.clamp_min(1e-12))  # holes' inverse depth
    colour, known = rgb * valid, valid  # [t, 3, H, W], [t, 1, H, W] bool
    while min(colour.shape[-2:]) > 1:
        levels.append((colour, inverse, known, target))
        colour, inverse, known, target = _pull_background(colour, inverse, known, target, rel_tol)
    filled = torch.where(known, colour, torch.full_like(colour, 0.5))  # [t, 3, h, w] coarsest
    filled_q = torch.where(known, inverse, torch.zeros_like(inverse))  # [t, 1, h, w]
    coarse_target = target
    for level, (colour, inverse, known, target) in reversed(list(enumerate(levels))):  # push: holes take the coarser level ...
        size = colour.shape[-2:]
        # ... from its cells that are not nearer than the holes around them (no foreground bleeding)
        around = -F.max_pool2d(-coarse_target, 3, 1, 1)  # [t, 1, h, w] farthest hole near each coarse cell
        background = (filled_q <= 2.0 * around).float()  # [t, 1, h, w]
        num = F.interpolate(filled * background, size=size, mode="bilinear", align_corners=False)
        den = F.interpolate(background, size=size, mode="bilinear", align_corners=False)
        plain = F.interpolate(filled, size=size, mode="bilinear", align_corners=False)
        up_q = F.interpolate(filled_q, size=size, mode="bilinear", align_corners=False)
        up = torch.where(den > 1e-6, num / den.clamp_min(1e-6), plain)  # [t, 3, H, W]
        if level == 0:  # the known pixels of the finest level are the input's
            return torch.where(valid, rgb, up)
        filled = torch.where(known, colour, up)
        filled_q = torch.where(known, inverse, up_q)
        coarse_target = target
    return torch.where(valid, rgb, filled)  # a 1-pixel-high or -wide image: no level


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """``[t, c, H, W]`` (even sizes) as 2x2 blocks ``[t, c, H/2, 2, W/2, 2]`` (a view)."""
    t, c, h, w = x.shape
    return x.view(t, c, h // 2, 2, w // 2, 2)


def _per_block(x: torch.Tensor) -> torch.Tensor:
    """``[t, c, h, w]`` broadcast over the 2x2 blocks of the finer level: ``[t, c, h, 1, w, 1]`` (a view)."""
    return x[:, :, :, None, :, None]


def _pull_background(colour: torch.Tensor, inverse: torch.Tensor, known: torch.Tensor, target: torch.Tensor,
                     rel_tol: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One 2x2 pull step: per block, the known samples near the block's farthest depth and not
    nearer than the block's holes (``target``: their smallest inverse depth, inf when none).
    ``colour`` [t, 3, H, W] is 0 where not ``known`` [t, 1, H, W]."""
    height, width = colour.shape[-2:]
    if height % 2 or width % 2:
        pad = (0, width % 2, 0, height % 2)
        colour, inverse, known = F.pad(colour, pad), F.pad(inverse, pad), F.pad(known, pad)
        target = F.pad(target, pad, value=float("inf"))
    shape = inverse.shape
    hole_q = -F.max_pool2d(-target, 2)  # [t, 1, h, w] the farthest hole of each block
    known = known & (_blocks(inverse) <= _per_block(hole_q * 1.5)).view(shape)  # [t, 1, H, W]
    farthest = -F.max_pool2d(torch.where(known, -inverse, torch.full_like(inverse, -float("inf"))), 2)  # [t, 1, h, w]
    keep = known & (_blocks(inverse) <= _per_block(farthest * (1 + rel_tol))).view(shape)  # [t, 1, H, W]
    w = keep.to(colour.dtype)  # [t, 1, H, W]
    sum_w = F.avg_pool2d(w, 2) * 4  # [t, 1, h, w]
    sum_c = F.avg_pool2d(colour * w, 2) * 4  # [t, 3, h, w]
    sum_q = F.avg_pool2d(inverse * w, 2) * 4  # [t, 1, h, w]
    has = sum_w > 0
    mean_q = torch.where(has, sum_q / sum_w.clamp_min(1e-12), torch.zeros_like(sum_q))
    return sum_c / sum_w.clamp_min(1e-12) * has, mean_q, has, hole_q


def _fill_recursive(depth: torch.Tensor, local_iters: int) -> torch.Tensor:
    """Zeros of ``depth`` [T, 1, H, W] filled by max of neighbours, coarse-to-fine for big holes."""
    for _ in range(local_iters):
        holes = depth <= 0  # [T, 1, H, W]
        if not bool(holes.any()):
            return depth
        grown = F.max_pool2d(depth, kernel_size=3, stride=1, padding=1)  # [T, 1, H, W]
        depth = torch.where(holes, grown, depth)
    holes = depth <= 0  # [T, 1, H, W]
    if not bool(holes.any()) or min(depth.shape[-2:]) <= 1:
        return depth
    coarse = F.max_pool2d(depth, kernel_size=2, stride=2, ceil_mode=True)  # [T, 1, H/2, W/2]
    coarse = _fill_recursive(coarse, local_iters)  # [T, 1, H/2, W/2]
    up = F.interpolate(coarse, scale_factor=2, mode="nearest")[..., : depth.shape[-2], : depth.shape[-1]]  # [T, 1, H, W]
    return torch.where(holes, up, depth)
