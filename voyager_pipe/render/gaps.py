"""Sampling-aware gap closing of a rendered z-buffer.

A surface seen slightly closer or more obliquely than when its points were made leaves empty
pixels *between* points of that surface: one- or two-pixel gaps, not real holes. A gap pixel
is recognised by a pair of covered pixels on opposite sides of it (left/right, up/down, the
two diagonals; and for two-pixel gaps the axis pairs at distances 1 and 2) whose depths agree
with each other within ``rel_tol``: both belong to the same surface, so the gap is that
surface too. The pixel gets the pair's linear interpolation (depth, colour, normal; the index
of the nearer sample). Pixels next to a depth edge (a foreground pixel on one side, background
on the other) are never closed, so silhouettes do not grow. Vectorised: a loop over the eight
pair directions, never over pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from voyager_pipe.render.base import RenderOutput

# (offset a (dy, dx), offset b (dy, dx), weight of a): the gap pixel lies between a and b.
_PAIRS = (
    ((0, -1), (0, 1), 0.5), ((-1, 0), (1, 0), 0.5), ((-1, -1), (1, 1), 0.5), ((-1, 1), (1, -1), 0.5),
    ((0, -1), (0, 2), 2 / 3), ((0, -2), (0, 1), 1 / 3), ((-1, 0), (2, 0), 2 / 3), ((-2, 0), (1, 0), 1 / 3),
)
_PAD = 2


def _shift(padded: torch.Tensor, offset: tuple[int, int], height: int, width: int) -> torch.Tensor:
    """``padded[..., y + dy, x + dx]`` for every pixel ``(y, x)`` of the unpadded ``[..., H, W]`` image."""
    dy, dx = offset
    return padded[..., _PAD + dy: _PAD + dy + height, _PAD + dx: _PAD + dx + width]


def close_gaps(out: RenderOutput, rel_tol: float = 0.03) -> tuple[RenderOutput, torch.Tensor]:
    """Close the one- and two-pixel gaps of a render (see the module docstring).

    Args:
        out: a render of ``N`` cameras.
        rel_tol: two samples agree when ``|d_a - d_b| <= rel_tol * min(d_a, d_b)``.

    Returns:
        ``(closed, filled)``: the render with the gaps filled (``mask`` True there) and
        ``filled [N, 1, H, W]`` bool, the pixels that were gaps.
    """
    N, _, H, W = out.depth.shape
    pad = (_PAD, _PAD, _PAD, _PAD)
    depth = F.pad(out.depth[:, 0], pad)  # [N, H+4, W+4]
    mask = F.pad(out.mask[:, 0].to(torch.uint8), pad).bool()  # [N, H+4, W+4] (False outside)
    empty = ~out.mask[:, 0]  # [N, H, W]
    best = torch.full((N, H, W), float("inf"), device=out.depth.device)  # [N, H, W] closed depth
    choice = torch.full((N, H, W), -1, dtype=torch.long, device=out.depth.device)  # [N, H, W] pair used
    for k, (a, b, weight) in enumerate(_PAIRS):
        da, db = _shift(depth, a, H, W), _shift(depth, b, H, W)  # [N, H, W] x2
        agree = _shift(mask, a, H, W) & _shift(mask, b, H, W) & ((da - db).abs() <= rel_tol * torch.minimum(da, db))
        closed = weight * da + (1 - weight) * db  # [N, H, W]
        take = empty & agree & (closed < best)  # the front-most agreeing pair wins
        best = torch.where(take, closed, best)
        choice = torch.where(take, k, choice)
    filled = choice >= 0  # [N, H, W]
    if not bool(filled.any()):
        return out, filled.unsqueeze(1)
    # Gather the pair of every gap pixel (only the G gap pixels, not whole images).
    n, y, x = filled.nonzero(as_tuple=True)  # [G] each
    k = choice[n, y, x]  # [G]
    table = torch.tensor([[*a, *b] for a, b, _ in _PAIRS], device=n.device)  # [8, 4] (ay, ax, by, bx)
    weights = torch.tensor([w for _, _, w in _PAIRS], device=n.device, dtype=out.rgb.dtype)[k]  # [G]
    ya, xa = y + table[k, 0], x + table[k, 1]  # [G] neighbour a (inside the image: it is covered)
    yb, xb = y + table[k, 2], x + table[k, 3]  # [G] neighbour b
    wa, wb = weights[:, None], (1 - weights)[:, None]  # [G, 1]
    rgb = out.rgb.clone()  # [N, 3, H, W]
    rgb[n, :, y, x] = wa * out.rgb[n, :, ya, xa] + wb * out.rgb[n, :, yb, xb]  # [G, 3]
    index = out.index.clone()  # [N, H, W]
    a_nearer = weights >= 0.5  # [G]
    index[n, y, x] = torch.where(a_nearer, out.index[n, ya, xa], out.index[n, yb, xb])
    normals = None
    if out.normals is not None:
        normals = out.normals.clone()  # [N, 3, H, W]
        blended = wa * out.normals[n, :, ya, xa] + wb * out.normals[n, :, yb, xb]  # [G, 3]
        normals[n, :, y, x] = blended * blended.square().sum(-1, keepdim=True).clamp_min(1e-12).rsqrt()
    depth_out = out.depth.clone()  # [N, 1, H, W]
    depth_out[n, 0, y, x] = best[n, y, x]
    closed = RenderOutput(rgb=rgb, depth=depth_out, mask=out.mask | filled.unsqueeze(1), index=index, normals=normals)
    return closed, filled.unsqueeze(1)


_NEIGHBOURS = ((0, -1), (0, 1), (-1, 0), (1, 0))


def extend_frontier(out: RenderOutput, prefer: torch.Tensor | None = None) -> tuple[RenderOutput, torch.Tensor]:
    """Give every empty pixel next to a rendered one (4-neighbours) that neighbour's sample.

    A point stands for the patch its source pixel saw, up to half a source pixel beyond its
    centre; at the frontier of what the cache knows (the edge of an earlier frame's view) that
    patch reaches into the next pixel of a nearby view, which no point centre lands in. Only
    EMPTY pixels are extended (never one that shows a surface behind), so silhouettes grow only
    into unknown space, by one pixel. Of several rendered neighbours the nearest (smallest
    depth) wins, as in the z-buffer; with ``prefer [N, 1, H, W]`` (a frame's own depth, for a
    visibility test) the neighbour whose depth is closest to it.

    Returns:
        ``(extended, added)``: the render with those pixels set (``mask`` True) and ``added
        [N, 1, H, W]`` bool.
    """
    N, _, H, W = out.depth.shape
    pad = (_PAD, _PAD, _PAD, _PAD)
    depth = F.pad(torch.where(out.mask[:, 0], out.depth[:, 0], torch.full_like(out.depth[:, 0], float("inf"))), pad,
                  value=float("inf"))  # [N, H+4, W+4] inf where nothing is rendered
    best = torch.full((N, H, W), float("inf"), device=out.depth.device)  # [N, H, W] the winner's key
    choice = torch.full((N, H, W), -1, dtype=torch.long, device=out.depth.device)  # [N, H, W]
    for k, offset in enumerate(_NEIGHBOURS):
        d = _shift(depth, offset, H, W)  # [N, H, W] inf where that neighbour is empty
        key = d if prefer is None else (d - prefer[:, 0]).abs()  # [N, H, W]
        take = key < best
        best = torch.where(take, key, best)
        choice = torch.where(take, k, choice)
    added = ~out.mask[:, 0] & best.isfinite()  # [N, H, W]
    if not bool(added.any()):
        return out, added.unsqueeze(1)
    n, y, x = added.nonzero(as_tuple=True)  # [G] each
    table = torch.tensor(_NEIGHBOURS, device=n.device)[choice[n, y, x]]  # [G, 2]
    ys, xs = y + table[:, 0], x + table[:, 1]  # [G] the neighbour (inside the image: it is rendered)
    rgb, depth_out, index = out.rgb.clone(), out.depth.clone(), out.index.clone()
    rgb[n, :, y, x] = out.rgb[n, :, ys, xs]  # [G, 3]
    depth_out[n, 0, y, x] = out.depth[n, 0, ys, xs]
    index[n, y, x] = out.index[n, ys, xs]
    normals = None
    if out.normals is not None:
        normals = out.normals.clone()  # [N, 3, H, W]
        normals[n, :, y, x] = out.normals[n, :, ys, xs]
    extended = RenderOutput(rgb=rgb, depth=depth_out, mask=out.mask | added.unsqueeze(1), index=index, normals=normals)
    return extended, added.unsqueeze(1)
