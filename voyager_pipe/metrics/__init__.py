"""Evaluation: PSNR / SSIM / LPIPS, depth and consistency metrics, folder evaluation and reports."""

from voyager_pipe.metrics.config import EvalConfig
from voyager_pipe.metrics.consistency import find_revisit, reprojection_consistency, return_to_start_psnr
from voyager_pipe.metrics.depth import depth_metrics
from voyager_pipe.metrics.evaluate import (METRIC_GROUPS, evaluate_folders, evaluate_frames, format_table,
                                           parse_metrics, write_reports)
from voyager_pipe.metrics.image import psnr, ssim, ssim_map
from voyager_pipe.metrics.lpips import LPIPS, AlexNetFeatures, default_alexnet_path, load_lpips

__all__ = [
    "LPIPS", "METRIC_GROUPS", "AlexNetFeatures", "EvalConfig", "default_alexnet_path", "depth_metrics", "evaluate_folders",
    "evaluate_frames", "find_revisit", "format_table", "load_lpips", "parse_metrics", "psnr", "reprojection_consistency",
    "return_to_start_psnr", "ssim", "ssim_map", "write_reports",
]
