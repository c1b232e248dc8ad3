"""Depth-tested bilinear splatting: sub-pixel resampling of a point cloud for previews.

A nearest-pixel z-buffer gives every pixel the colour of whichever point fell into it, up to
half a pixel away from the pixel centre. Here each point instead spreads its colour and depth
over the four pixel centres around its projection with bilinear weights, and a pixel
averages only the points of its own visible surface: those whose depth agrees within
``rel_tol`` with the pixel's front depth from a z-buffer (``front``). On a regularly sampled
surface this is linear interpolation between the samples (the normalised tent weights), and
samples of a surface behind never leak in, so depth edges stay sharp. Pixels that no agreeing
point reaches keep the front render's values.

Cost: one projection and ``bincount`` scatter-adds over ``4 P`` taps per camera (cameras are
processed one at a time to bound memory).
"""

from __future__ import annotations

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.render.base import RenderOutput


def splat_resample(points: torch.Tensor, colors: torch.Tensor, cameras: Cameras, front: RenderOutput,
                   rel_tol: float = 0.03) -> RenderOutput:
    """Bilinear, depth-tested splatting of ``points`` into ``cameras`` on top of the z-buffer ``front``.

    Args:
        points: ``[P, 3]`` world; colors: ``[P, 3]``.
        cameras: ``N`` cameras (``front`` is their render at the same size).
        front: the z-buffer render of the same points (its ``depth``/``mask`` decide which surface
            each pixel shows).
        rel_tol: a tap is accepted when ``|z - front_depth| <= rel_tol * front_depth``.

    Returns:
        a :class:`RenderOutput` with resampled ``rgb`` and ``depth`` where some agreeing point
        reached a pixel; ``mask``, ``index`` and ``normals`` are ``front``'s.
    """
    N, H, W = len(cameras), cameras.height, cameras.width
    rgb_out, depth_out = front.rgb.clone(), front.depth.clone()  # [N, 3, H, W], [N, 1, H, W]
    if points.shape[0] == 0:
        return front
    device = points.device
    for n in range(N):  # one camera at a time: 4 P taps each
        K = cameras.K[n].to(device, points.dtype)  # [3, 3]
        w2c = cameras.w2c[n].to(device, points.dtype)  # [4, 4]
        M = K @ w2c[:3]  # [3, 4]
        pix = points @ M[:, :3].T + M[:, 3]  # [P, 3]
        z = pix[:, 2]  # [P]
        ahead = z > 1e-6  # [P]
        pix, z, col = pix[ahead], z[ahead], colors[ahead]  # [Q, 3], [Q], [Q, 3]
        x = pix[:, 0] / z - 0.5  # [Q] continuous column of pixel centres (centre j at x = j)
        y = pix[:, 1] / z - 0.5  # [Q]
        x0, y0 = x.floor(), y.floor()  # [Q]
        fx, fy = x - x0, y - y0  # [Q]
        front_depth = front.depth[n, 0].reshape(-1)  # [H*W]
        front_mask = front.mask[n, 0].reshape(-1)  # [H*W]
        acc = torch.zeros(5, H * W, device=device, dtype=torch.float64)  # [5, H*W]: w*rgb, w*z, w
        values = torch.cat([col, z[:, None], torch.ones_like(z[:, None])], dim=1).T.double()  # [5, Q]
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):  # the four neighbouring centres
            cx, cy = x0 + dx, y0 + dy  # [Q]
            weight = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)  # [Q]
            inside = (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)  # [Q]
            pixel = (cy.clamp(0, H - 1) * W + cx.clamp(0, W - 1)).long()  # [Q]
            ref = front_depth[pixel]  # [Q]
            ok = inside & front_mask[pixel] & ((z - ref).abs() <= rel_tol * ref)  # [Q]
            tap = torch.where(ok, weight, torch.zeros_like(weight)).double()  # [Q] (0 = rejected)
            for c in range(5):  # bincount: a fast 1-D scatter-add (index_add_ on rows is slow on CPU)
                acc[c] += torch.bincount(pixel, weights=values[c] * tap, minlength=H * W)
        total = acc[4]  # [H*W]
        reached = total > 1e-6  # [H*W]
        mean = (acc[:4] / total.clamp_min(1e-6)).to(points.dtype).reshape(4, H, W)  # [4, H, W]
        reached = reached.reshape(1, H, W)  # [1, H, W]
        rgb_out[n] = torch.where(reached, mean[:3], rgb_out[n])
        depth_out[n] = torch.where(reached, mean[3:], depth_out[n])
    return RenderOutput(rgb=rgb_out, depth=depth_out, mask=front.mask, index=front.index, normals=front.normals)
