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
"""

from __future__ import annotations

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
    inverse = torch.where(valid, 1.0 / depth.clamp_min(1e-12), torch.zeros_like(depth))  # [T, 1, H, W]
    row_q, row_b = _extrapolate_lines(inverse, valid, dim=3)  # [T, 1, H, W] x2 (boundary inverse depth, 0 = none)
    col_q, col_b = _extrapolate_lines(inverse, valid, dim=2)
    use_col = (col_b > 0) & ((row_b <= 0) | (col_b < row_b))  # the farther boundary (smaller inverse depth) wins
    planar_q = torch.where(use_col, col_q, row_q)  # [T, 1, H, W]
    filled = torch.where(valid, depth, torch.zeros_like(depth))  # [T, 1, H, W]
    filled = torch.where(~valid & (planar_q > 0), 1.0 / planar_q.clamp_min(1e-12), filled)
    filled = _fill_recursive(filled, local_iters)  # [T, 1, H, W] what no line reached
    if fallback is None:
        good = depth[valid]  # [M]
        fallback = float(good.median()) if good.numel() else 1.0
    return torch.where(filled > 0, filled, torch.full_like(filled, fallback))


def _plane_gradient(inverse: torch.Tensor, valid: torch.Tensor, dim: int, reach: int = 4,
                    plane_tol: float = 0.01, surface_tol: float = 0.05) -> torch.Tensor:
    """Smoothed slope ``d(inverse depth) / d(index)`` along axis ``dim`` of the known surfaces ``[T, 1, H, W]``.

    Central differences where three consecutive known samples lie on one plane (second
    difference below ``plane_tol`` times the value: creases and depth edges are left out),
    averaged across the line over ``2 reach + 1`` neighbours of the same surface (inverse depth
    within ``surface_tol``); 0 where there is no such sample.
    """
    across = 2 if dim == 3 else 3

    def shifted(x: torch.Tensor, k: int, axis: int) -> torch.Tensor:
        return torch.roll(x, shifts=-k, dims=axis)

    prev_q, next_q = shifted(inverse, -1, dim), shifted(inverse, 1, dim)
    ok = valid & shifted(valid, -1, dim) & shifted(valid, 1, dim)  # [T, 1, H, W]
    edge = torch.zeros_like(ok)
    edge.index_fill_(dim, torch.tensor([0, inverse.shape[dim] - 1], device=inverse.device), True)  # no wrap-around
    ok &= ~edge & ((next_q - 2 * inverse + prev_q).abs() <= plane_tol * inverse)
    gradient = torch.where(ok, (next_q - prev_q) / 2, torch.zeros_like(inverse))  # [T, 1, H, W]
    # separable averaging over the same surface: 2 samples each way along the line (so that a
    # boundary pixel, whose own difference is undefined, gets the slope behind it), then across
    gradient, ok = _same_surface_mean(gradient, ok, inverse, dim, 2, surface_tol)
    gradient, ok = _same_surface_mean(gradient, ok, inverse, across, reach, surface_tol)
    return gradient


def _same_surface_mean(values: torch.Tensor, ok: torch.Tensor, inverse: torch.Tensor, axis: int, reach: int,
                       surface_tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``values`` over ``ok`` neighbours within ``reach`` along ``axis`` whose inverse depth is within ``surface_tol``."""
    total, count = torch.zeros_like(values), torch.zeros_like(values)
    n = inverse.shape[axis]
    index = torch.arange(n, device=inverse.device).view([n if a == axis else 1 for a in range(4)])
    for k in range(-reach, reach + 1):  # a loop over the few offsets, not over pixels
        v, o, q = (torch.roll(x, shifts=-k, dims=axis) for x in (values, ok, inverse))
        same = o & ((q - inverse).abs() <= surface_tol * inverse) & (index + k >= 0) & (index + k < n)
        total += torch.where(same, v, torch.zeros_like(v))
        count += same.float()
    has = count > 0
    return torch.where(has, total / count.clamp_min(1.0), torch.zeros_like(total)), has


def _extrapolate_lines(inverse: torch.Tensor, valid: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Planar continuation of the background along the lines of axis ``dim`` (3: rows, 2: columns).

    Args:
        inverse: ``[T, 1, H, W]`` inverse depth (0 where not valid); valid: ``[T, 1, H, W]``.
    Returns:
        ``(q, boundary)``: the extrapolated inverse depth of every hole pixel and the inverse
        depth of the boundary it came from (both 0 where the line holds no known pixel).
    """
    n = inverse.shape[dim]
    shape = [1, 1, 1, 1]
    shape[dim] = n
    pos = torch.arange(n, device=inverse.device).view(shape).expand_as(inverse)  # [T, 1, H, W]
    before = torch.where(valid, pos, torch.full_like(pos, -1)).cummax(dim).values  # [T, 1, H, W] last known <= x
    after = torch.where(valid, pos, torch.full_like(pos, n)).flip(dim).cummin(dim).values.flip(dim)  # first known >= x
    slope = _plane_gradient(inverse, valid, dim)  # [T, 1, H, W]

    def side(boundary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        exists = (boundary >= 0) & (boundary < n)
        b = boundary.clamp(0, n - 1)
        q0, g = inverse.gather(dim, b), slope.gather(dim, b)
        q = (q0 + g * (pos - boundary).to(inverse.dtype)).clamp(min=0.5 * q0, max=2.0 * q0)
        return torch.where(exists, q, torch.zeros_like(q)), torch.where(exists, q0, torch.zeros_like(q0))

    q_before, b_before = side(before)
    q_after, b_after = side(after)
    use_after = (b_after > 0) & ((b_before <= 0) | (b_after < b_before))  # the farther side
    return torch.where(use_after, q_after, q_before), torch.where(use_after, b_after, b_before)


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
    levels = []
    inverse = torch.where(valid, 1.0 / depth.clamp_min(1e-12), torch.zeros_like(depth))  # [T, 1, H, W]
    target = torch.where(valid, torch.full_like(depth, float("inf")), 1.0 / filled_depth.clamp_min(1e-12))  # holes' inverse depth
    colour, weight = rgb * valid, valid.float()
    while min(colour.shape[-2:]) > 1:
        levels.append((colour, inverse, weight, target))
        colour, inverse, weight, target = _pull_background(colour, inverse, weight, target, rel_tol)
    has = weight > 0
    filled = torch.where(has, colour / weight.clamp_min(1e-12), torch.full_like(colour, 0.5))  # [T, 3, h, w] coarsest
    filled_q = torch.where(has, inverse, torch.zeros_like(inverse))  # [T, 1, h, w]
    coarse_target = target
    for colour, inverse, weight, target in reversed(levels):  # push: holes take the coarser level ...
        size = colour.shape[-2:]
        # ... from its cells that are not nearer than the holes around them (no foreground bleeding)
        around = -F.max_pool2d(-coarse_target, 3, 1, 1)  # [T, 1, h, w] farthest hole near each coarse cell
        background = (filled_q <= 2.0 * around).float()  # [T, 1, h, w]
        num = F.interpolate(filled * background, size=size, mode="bilinear", align_corners=False)
        den = F.interpolate(background, size=size, mode="bilinear", align_corners=False)
        plain = F.interpolate(filled, size=size, mode="bilinear", align_corners=False)
        up = torch.where(den > 1e-6, num / den.clamp_min(1e-6), plain)  # [T, 3, H, W]
        up_q = F.interpolate(filled_q, size=size, mode="bilinear", align_corners=False)
        has = weight > 0
        filled = torch.where(has, colour / weight.clamp_min(1e-12), up)
        filled_q = torch.where(has, inverse, up_q)
        coarse_target = target
    return torch.where(valid, rgb, filled)


def _pull_background(colour: torch.Tensor, inverse: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                     rel_tol: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One 2x2 pull step: per block, the known samples near the block's farthest depth and not
    nearer than the block's holes (``target``: their smallest inverse depth, inf when none)."""
    pad = (0, colour.shape[-1] % 2, 0, colour.shape[-2] % 2)
    colour, inverse, weight = F.pad(colour, pad), F.pad(inverse, pad), F.pad(weight, pad)
    target = F.pad(target, pad, value=float("inf"))
    hole_q = -F.max_pool2d(-target, 2)  # [T, 1, h, w] the farthest hole of each block
    known = (weight > 0) & (inverse <= F.interpolate(hole_q, scale_factor=2, mode="nearest") * 1.5)  # [T, 1, H, W]
    farthest = -F.max_pool2d(torch.where(known, -inverse, torch.full_like(inverse, -float("inf"))), 2)  # [T, 1, h, w]
    keep = known & (inverse <= F.interpolate(farthest, scale_factor=2, mode="nearest") * (1 + rel_tol))  # [T, 1, H, W]
    w = weight * keep  # [T, 1, H, W]
    sum_w = F.avg_pool2d(w, 2) * 4  # [T, 1, h, w]
    sum_c = F.avg_pool2d(colour / weight.clamp_min(1e-12) * w, 2) * 4  # [T, 3, h, w]
    sum_q = F.avg_pool2d(inverse * w, 2) * 4  # [T, 1, h, w]
    has = sum_w > 0
    mean_q = torch.where(has, sum_q / sum_w.clamp_min(1e-12), torch.zeros_like(sum_q))
    return sum_c / sum_w.clamp_min(1e-12) * has, mean_q, has.float(), hole_q


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
