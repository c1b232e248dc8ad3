"""Benchmark of the point renderer and the geometry core (prints figures; not a test).

    python3 tools/bench_render.py [--points 1000000] [--size 512] [--cameras 4] [--threads 2] [--repeat 7]

Renders ``--points`` random coloured points into ``--size``x``--size`` images:
* one camera, splat radius 0 and 1, torch backend (CPU);
* a batch of ``--cameras`` cameras (median per frame);
* the same single-camera frame with a plain NumPy z-buffer (sort by depth, keep the first hit
  per pixel: what the reference system does), and the ratio;
* normals and unproject of a ``--size``x``--size`` depth map;
* on CUDA (when available): points/s of the torch backend and of PyTorch3D (when it imports).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.geometry import point_map_normals, unproject
from voyager_pipe.render import RenderConfig, get_renderer, pytorch3d_available


def median_ms(fn, repeat: int, sync=lambda: None) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def numpy_zbuffer(points: np.ndarray, colors: np.ndarray, K: np.ndarray, w2c: np.ndarray, H: int, W: int):
    """Reference z-buffer: project, sort by depth, keep the first (nearest) hit per pixel."""
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]  # [P, 3]
    z = cam[:, 2]
    pix = cam @ K.T  # [P, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.floor(pix[:, 0] / z)
        row = np.floor(pix[:, 1] / z)
    keep = (z > 1e-3) & (col >= 0) & (col < W) & (row >= 0) & (row < H)
    flat = (row[keep] * W + col[keep]).astype(np.int64)
    order = np.argsort(z[keep], kind="stable")
    flat, ids = flat[order], np.nonzero(keep)[0][order]
    first_pixels, first = np.unique(flat, return_index=True)
    rgb = np.zeros((H * W, 3), np.float32)
    depth = np.zeros(H * W, np.float32)
    rgb[first_pixels] = colors[ids[first]]
    depth[first_pixels] = z[ids[first]]
    return rgb.reshape(H, W, 3), depth.reshape(H, W)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    S, P = args.size, args.points
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(P, 3, generator=gen) * torch.tensor([4.0, 4.0, 3.0]) + torch.tensor([-2.0, -2.0, 2.0])  # [P, 3]
    colors = torch.rand(P, 3, generator=gen)  # [P, 3]
    w2c = torch.eye(4, dtype=torch.float64).repeat(args.cameras, 1, 1)  # [N, 4, 4]
    w2c[:, 0, 3] = torch.linspace(-0.2, 0.2, args.cameras, dtype=torch.float64)
    cams = Cameras(K=intrinsics_from_fov(60.0, S, S), w2c=w2c, width=S, height=S)
    print(f"torch {torch.__version__}, {args.threads} threads, {P} points, {S}x{S}, median of {args.repeat}")

    one = cams[0]
    for radius in (0, 1):
        renderer = get_renderer(RenderConfig(backend="torch", splat_radius=radius), "cpu")
        ms = median_ms(lambda: renderer.render(points, colors, one), args.repeat)
        print(f"torch cpu   radius {radius}: {ms:8.1f} ms / frame")
        if radius == 0:
            torch_ms = ms
    renderer = get_renderer(RenderConfig(backend="torch"), "cpu")
    ms = median_ms(lambda: renderer.render(points, colors, cams), args.repeat)
    print(f"torch cpu   batch of {args.cameras}: {ms / args.cameras:8.1f} ms / frame")

    pts_np, col_np = points.numpy().astype(np.float64), colors.numpy()
    K_np, w2c_np = one.K[0].numpy(), one.w2c[0].numpy()
    numpy_ms = median_ms(lambda: numpy_zbuffer(pts_np, col_np, K_np, w2c_np, S, S), max(3, args.repeat // 2))
    print(f"numpy z-buffer (sort):  {numpy_ms:8.1f} ms / frame   -> torch is {numpy_ms / torch_ms:.1f}x faster")
    ref_rgb, ref_depth = numpy_zbuffer(pts_np, col_np, K_np, w2c_np, S, S)
    ours = renderer.render(points, colors, one)
    same = np.isclose(ours.depth[0, 0].numpy(), ref_depth, rtol=1e-5).mean()
    print(f"  depth agreement with the numpy reference: {same:.4%} of pixels")

    depth = torch.rand(1, 1, S, S, generator=gen) + 1.0  # [1, 1, S, S]
    pmap = unproject(depth, one.K.float(), one.w2c.float())  # [1, S, S, 3]
    valid = torch.ones(1, S, S, dtype=torch.bool)
    ms = median_ms(lambda: unproject(depth, one.K.float(), one.w2c.float()), args.repeat)
    print(f"unproject {S}x{S}:       {ms:8.1f} ms")
    ms = median_ms(lambda: point_map_normals(pmap, valid, one.centers.float()), args.repeat)
    print(f"point_map_normals {S}x{S}: {ms:6.1f} ms")

    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        backends = ["torch"] + (["pytorch3d"] if pytorch3d_available() else [])
        gpu_points, gpu_colors = points.cuda(), colors.cuda()
        for name in backends:
            for radius in (0, 1):
                r = get_renderer(RenderConfig(backend=name, splat_radius=radius), "cuda")
                ms = median_ms(lambda: r.render(gpu_points, gpu_colors, cams), args.repeat, sync)
                print(f"{name:9s} cuda radius {radius}, batch {args.cameras}: {ms:7.2f} ms "
                      f"({P * args.cameras / ms * 1e3:.2e} points/s)")
        if "pytorch3d" not in backends:
            print("pytorch3d: not installed, skipped")
    else:
        print("cuda: not available, GPU figures skipped")


if __name__ == "__main__":
    main()
