"""Human-readable summary and top-down plot of a trajectory (``voyager-pipe traj show``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.camera.rotations import rotation_angle_deg


def relative_to_first(cameras: Cameras) -> torch.Tensor:
    """``[N, 4, 4]`` c2w expressed in the first camera's frame (first pose becomes the identity)."""
    w2c = cameras.w2c.to(torch.float64)  # [N, 4, 4]
    return w2c[0] @ cameras.to(dtype=torch.float64).c2w  # [N, 4, 4]


def summarize(cameras: Cameras) -> dict:
    """Key figures of a trajectory.

    Returns a dict with ``frames``, ``width``, ``height``, ``fx``/``fy``/``cx``/``cy`` as
    ``(min, max)`` over frames, ``fov_x_deg`` ``(min, max)``, ``path_length`` (sum of centre steps),
    ``max_step``, ``displacement`` (first to last centre, in the first camera's axes) and
    ``rotation_deg`` (largest rotation from the first camera) and ``step_rotation_deg`` (largest
    rotation between consecutive frames).
    """
    c2w = relative_to_first(cameras)  # [N, 4, 4]
    centers = c2w[:, :3, 3]  # [N, 3]
    steps = (centers[1:] - centers[:-1]).norm(dim=-1)  # [N-1]
    R = c2w[:, :3, :3]  # [N, 3, 3]
    step_rot = rotation_angle_deg(R[:-1].transpose(-1, -2) @ R[1:])  # [N-1]
    K = cameras.K.to(torch.float64)  # [N, 3, 3]
    fov_x = torch.rad2deg(2 * torch.atan(cameras.width / (2 * K[:, 0, 0])))  # [N]

    def span(x: torch.Tensor) -> tuple[float, float]:
        return float(x.min()), float(x.max())

    return {
        "frames": len(cameras), "width": cameras.width, "height": cameras.height,
        "fx": span(K[:, 0, 0]), "fy": span(K[:, 1, 1]), "cx": span(K[:, 0, 2]), "cy": span(K[:, 1, 2]),
        "fov_x_deg": span(fov_x),
        "path_length": float(steps.sum()) if len(steps) else 0.0,
        "max_step": float(steps.max()) if len(steps) else 0.0,
        "displacement": centers[-1].tolist(),
        "rotation_deg": float(rotation_angle_deg(R).max()),
        "step_rotation_deg": float(step_rot.max()) if len(step_rot) else 0.0,
    }


def format_summary(summary: dict, name: str = "") -> str:
    """Multi-line text for :func:`summarize` output."""
    def rng(key: str, digits: int = 3) -> str:
        lo, hi = summary[key]
        return f"{lo:.{digits}f}" if math.isclose(lo, hi, rel_tol=1e-9, abs_tol=1e-12) else f"{lo:.{digits}f} .. {hi:.{digits}f}"

    dx, dy, dz = summary["displacement"]
    lines = [
        f"trajectory   {name}".rstrip(),
        f"frames       {summary['frames']}",
        f"image size   {summary['width']}x{summary['height']}",
        f"fx, fy       {rng('fx')}, {rng('fy')} px",
        f"cx, cy       {rng('cx')}, {rng('cy')} px",
        f"fov x        {rng('fov_x_deg', 2)} deg",
        f"path length  {summary['path_length']:.4f} (largest step {summary['max_step']:.4f})",
        f"displacement x {dx:+.4f}  y {dy:+.4f}  z {dz:+.4f}  (first camera axes: x right, y down, z forward)",
        f"rotation     up to {summary['rotation_deg']:.2f} deg from the first camera "
        f"(largest step {summary['step_rotation_deg']:.2f} deg)",
    ]
    return "\n".join(lines)


def plot_top_down(cameras: Cameras, path: str | Path, max_frusta: int = 40) -> None:
    """Save a top-down (x-z plane of the first camera) PNG of the path with camera frusta."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c2w = relative_to_first(cameras)  # [N, 4, 4]
    centers = c2w[:, :3, 3]  # [N, 3]
    extent = float((centers.amax(0) - centers.amin(0)).norm())
    scale = 0.15 * extent if extent > 1e-9 else 0.5
    K = cameras.K.to(torch.float64)  # [N, 3, 3]
    # Rays through the left and right image edges on the centre row, in camera axes (z = 1).
    left = torch.stack([-K[:, 0, 2] / K[:, 0, 0], torch.zeros(len(cameras), dtype=K.dtype), torch.ones(len(cameras), dtype=K.dtype)], -1)  # [N, 3]
    right = torch.stack([(cameras.width - K[:, 0, 2]) / K[:, 0, 0], torch.zeros_like(left[:, 0]), torch.ones_like(left[:, 0])], -1)  # [N, 3]
    R = c2w[:, :3, :3]  # [N, 3, 3]
    left_w = centers + scale * (R @ left[..., None])[..., 0]  # [N, 3]
    right_w = centers + scale * (R @ right[..., None])[..., 0]  # [N, 3]

    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ax.plot(centers[:, 0], centers[:, 2], "-", color="0.3", lw=1.2, label="camera path")
    pick = torch.unique(torch.linspace(0, len(cameras) - 1, min(max_frusta, len(cameras))).round().long())
    colors = plt.cm.viridis(torch.linspace(0, 1, len(pick)).numpy())
    for color, i in zip(colors, pick.tolist()):  # one small polygon per drawn camera (at most max_frusta)
        xs = [centers[i, 0], left_w[i, 0], right_w[i, 0], centers[i, 0]]
        zs = [centers[i, 2], left_w[i, 2], right_w[i, 2], centers[i, 2]]
        ax.plot(xs, zs, "-", color=color, lw=0.8)
    ax.plot(centers[0, 0], centers[0, 2], "o", color="tab:green", label="first")
    ax.plot(centers[-1, 0], centers[-1, 2], "s", color="tab:red", label="last")
    ax.set_xlabel("x (right of the first camera)")
    ax.set_ylabel("z (forward of the first camera)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, lw=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{len(cameras)} frames, top-down view")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
