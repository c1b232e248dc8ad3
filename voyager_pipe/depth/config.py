"""Settings of depth estimation (owned by voyager_pipe.depth). See docs/depth.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from voyager_pipe.options import option


@dataclass
class DepthConfig:
    backend: Literal["auto", "file", "transformers", "moge"] = option(
        "auto", "depth source: auto (file, sidecar, then a local learned model), file, transformers, moge")
    model: Optional[str] = option(
        None, "local path or cached Hugging Face name of a depth model (env VOYAGER_PIPE_DEPTH_MODEL when unset)")
    file: Optional[str] = option(
        None, "depth file for the input image (npy/npz, 16-bit png/tif, exr, pfm); a depth_path argument wins")
    sidecar: bool = option(True, "look for a depth file next to the image (<stem>_depth.npy, ...; see docs/depth.md)")
    png_scale: float = option(0.001, "scene units per step of a 16-bit PNG/TIFF depth (0.001: millimetres -> metres)", above=0, max=1e6)
    file_scale: float = option(1.0, "factor applied to float depth files (npy, exr, pfm, float tif)", above=0, max=1e6)
    max_depth: Optional[float] = option(None, "depth above this (scene units) counts as sky/infinite: invalid (null = no limit)", above=0)
    far_ratio: float = option(
        50.0, "learned depth farther than far_ratio x its median counts as sky: invalid (0 disables)", min=0)
    relative_scale: float = option(1.0, "median depth (scene units) given to relative, non-metric estimates", above=0, max=1e6)
    disparity_shift: float = option(
        0.0, "shift added to median-normalised disparity before inverting it (relative models only)", min=0, max=1e3)
    disparity_eps: float = option(
        0.01, "relative disparity <= disparity_eps x its 99th percentile counts as sky: invalid", min=0, max=1)
    model_output: Literal["auto", "metric_depth", "relative_depth", "relative_disparity"] = option(
        "auto", "what the learned model predicts; auto reads the model config (docs/depth.md)")
    edge_filter: Literal["learned", "all", "none"] = option(
        "learned", "drop pixels on depth discontinuities (flying pixels): for learned depth, all sources, or none")
    edge_rtol: float = option(
        0.04, "a pixel is on a depth edge when (max - min) of its 3x3 neighbourhood exceeds edge_rtol x its depth", min=0)
    resize_rtol: float = option(
        0.05, "resizing interpolates bilinearly only where the 2x2 source depths differ by less than this ratio", min=0)
