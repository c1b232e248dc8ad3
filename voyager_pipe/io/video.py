"""Video files through imageio-ffmpeg (H.264, yuv420p: plays everywhere)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from voyager_pipe.io.atomic import atomic_path


def colorize_depth(depth: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Depth ``[T, 1, H, W]`` -> RGB ``[T, 3, H, W]`` in [0, 1] (turbo colour map of inverse depth,
    one normalisation for the whole sequence so colours are comparable across frames; 0 = black)."""
    import matplotlib

    valid = (depth > 0) & torch.isfinite(depth) if valid is None else valid  # [T, 1, H, W]
    inv = torch.where(valid, 1.0 / depth.clamp_min(1e-8), torch.zeros_like(depth))  # [T, 1, H, W]
    if valid.any():
        lo, hi = torch.quantile(inv[valid].float()[:1_000_000], torch.tensor([0.02, 0.98])).tolist()
    else:
        lo, hi = 0.0, 1.0
    norm = ((inv - lo) / max(hi - lo, 1e-8)).clamp(0, 1)  # [T, 1, H, W]
    lut = torch.from_numpy(matplotlib.colormaps["turbo"](np.linspace(0, 1, 256))[:, :3]).float()  # [256, 3]
    rgb = lut[(norm[:, 0] * 255).round().long()].permute(0, 3, 1, 2)  # [T, 3, H, W]
    return rgb * valid


def write_video(path: str | Path, rgb: torch.Tensor, fps: int = 12) -> None:
    """Encode ``[T, 3, H, W]`` float frames in [0, 1] as H.264 MP4 (sizes padded to even)."""
    import imageio.v2 as imageio

    frames = (rgb.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # [T, H, W, 3]
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                                    macro_block_size=1, quality=8)
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
