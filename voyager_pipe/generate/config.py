"""Settings of clip generation (owned by voyager_pipe.generate).

Noise-level defaults (the paper gives none; see docs/generation.md for the full rationale):

* ``sigma_init = 0.8``: the overlap of clip k+1 starts as clip k's result re-noised to 0.8,
  i.e. 20 % signal. With the time shift of 7 the shifted schedule spends ~64 % of its steps
  below 0.8, so the new clip keeps the overlap's layout and colours (decided at high noise)
  yet has most of the schedule left to make it agree with its own cameras and new frames.
* ``sigma_refine = 0.3`` with ``refine_steps = 5``: after averaging the overlap, 0.3 lies in
  the last ~6 % of the shifted schedule (fine detail only): enough to remove the seam and
  blur of the average without changing content the cache already holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from voyager_pipe.options import option


@dataclass
class GenerateConfig:
    backend: Literal["auto", "warp", "voyager"] = option(
        "auto", "clip generator: auto (voyager when voyager.model_dir is set, else warp), warp (weight-free preview), voyager (diffusion model)")
    clip_len: int = option(49, "frames per clip (1 + 4k for the voyager backend)", min=1, max=1025)
    overlap: Optional[int] = option(None, "frames shared by consecutive clips (null = half a clip; rounded up to 1 + 4k for voyager)", min=0, max=1024)
    steps: int = option(50, "denoising steps of a clip", min=1, max=1000)
    shift: float = option(7.0, "flow-matching time shift: sigma = shift*s / (1 + (shift-1)*s)", above=0, max=1000)
    sampler: Literal["euler", "heun", "unipc", "dpmpp"] = option(
        "euler", "diffusers scheduler that takes the steps: euler (reference), heun (2nd order, 2 calls/step), unipc / dpmpp (multistep flow solvers: fewer steps)")
    sigma_init: float = option(0.8, "noise level the overlap of the next clip is re-noised to (0 < x <= 1)", above=0, max=1)
    sigma_refine: float = option(0.3, "noise injected before the refinement pass over a fused clip (0 = no refinement)", min=0, max=1)
    refine_steps: int = option(5, "steps of the refinement pass", min=0, max=1000)
    diffusion_forcing: bool = option(False, "denoise overlap frames from sigma_init while new frames start at 1 (backends with per-frame sigma only)")
    progress: bool = option(True, "show progress bars (per clip and per denoising step)")


@dataclass
class WarpConfig:
    """Settings of the weight-free ``warp`` backend (read only by :mod:`voyager_pipe.generate.warp`)."""

    inpaint_method: Literal["background", "telea", "ns"] = option(
        "background", "colour fill of holes: background (streak-free push-pull from the background side), telea / ns (OpenCV inpainting)")
    inpaint_radius: int = option(3, "OpenCV inpainting radius in pixels (telea / ns)", min=0, max=64)
    commit_radius: int = option(
        5, "filled pixels enter the world cache only within this many pixels of a rendered pixel and next to one "
        "surface; farther guesses stay in the video and the next clip guesses again (-1 = every pixel)", min=-1, max=100000)
