"""Evaluate a ``gen`` output folder against a ground-truth folder, and write the reports.

Both folders use the frame-folder layout (:mod:`voyager_pipe.io.frames`): ``frames/``,
optional ``depth/``, ``mask/``, ``cameras.json``. Frames are matched by index; counts and
sizes must agree.

Masks: ``GT/mask/`` (pixels valid in the ground truth; synthetic scenes mark the pixels that
hit geometry) gives the ``*_gt_mask`` variants, ``PRED/mask/`` (pixels the world cache
covered, written by ``gen``) the ``*_cache_mask`` variants.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import torch

from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.metrics.config import EvalConfig

METRIC_GROUPS = ("psnr", "ssim", "lpips", "depth", "consistency")


def parse_metrics(text: str | list[str] | None) -> list[str]:
    """``"psnr,ssim"`` -> ``["psnr", "ssim"]`` (checked against :data:`METRIC_GROUPS`)."""
    if text is None:
        return list(METRIC_GROUPS)
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in METRIC_GROUPS]
    if unknown or not names:
        raise InputError(f"eval.metrics {text!r}: unknown metric(s) {unknown}; choose from {','.join(METRIC_GROUPS)}")
    return names


def _to_list(values: torch.Tensor) -> list[float | None]:
    """NaN (undefined) -> None; +inf (PSNR of identical images) is kept (JSON ``Infinity``)."""
    return [None if math.isnan(v) else float(v) for v in values.double().tolist()]


def _mean(values: torch.Tensor) -> float | None:
    """Mean over the finite entries; None when there are none.

    Infinite values only come from PSNR of frames identical to the reference (8-bit equal):
    they are counted separately (``info["identical_frames"]``) rather than making the mean infinite;
    when every frame is identical the mean is ``inf``.
    """
    finite = values[torch.isfinite(values)]
    if len(finite):
        return float(finite.double().mean())
    return float("inf") if bool(torch.isinf(values).any()) else None


def evaluate_frames(pred_rgb: torch.Tensor, gt_rgb: torch.Tensor, metrics: list[str], cfg: EvalConfig | None = None, *,
                    pred_depth: torch.Tensor | None = None, gt_depth: torch.Tensor | None = None,
                    gt_mask: torch.Tensor | None = None, cache_mask: torch.Tensor | None = None,
                    cameras=None, device: str | torch.device = "cpu", lpips_batch: int = 8) -> dict:
    """Metrics of tensors (``[T, 3, H, W]`` etc.); see :func:`evaluate_folders` for the result layout."""
    from voyager_pipe.metrics.image import psnr, ssim

    cfg = cfg or EvalConfig()
    T = pred_rgb.shape[0]
    per_frame: dict[str, torch.Tensor] = {}
    scalars: dict[str, float | None] = {}
    unavailable: dict[str, str] = {}
    info: dict = {}
    masks = {"": None, "_gt_mask": gt_mask, "_cache_mask": cache_mask}
    masks = {k: v for k, v in masks.items() if k == "" or v is not None}

    if "psnr" in metrics:
        for suffix, m in masks.items():
            per_frame[f"psnr{suffix}"] = psnr(pred_rgb, gt_rgb, m)
    if "ssim" in metrics:
        for suffix, m in masks.items():
            per_frame[f"ssim{suffix}"] = ssim(pred_rgb, gt_rgb, m)
    if "lpips" in metrics:
        from voyager_pipe.metrics.lpips import LPIPS, load_lpips

        try:
            net = load_lpips(cfg.lpips_weights, device=device)
        except MissingDependencyError as exc:  # absent weights: reported in "unavailable", other metrics still run
            unavailable["lpips"] = str(exc)
        else:
            spatial = isinstance(net, LPIPS)
            values = {suffix: [] for suffix in masks}
            for start in range(0, T, lpips_batch):  # batches of frames
                p = pred_rgb[start: start + lpips_batch].to(device).float()  # [B, 3, H, W]
                g = gt_rgb[start: start + lpips_batch].to(device).float()
                values[""].append(net(p, g).cpu())
                if spatial and len(masks) > 1:
                    lmap = net(p, g, spatial=True).cpu()  # [B, 1, H, W]
                    for suffix, m in masks.items():
                        if suffix:
                            w = m[start: start + lpips_batch].float()  # [B, 1, H, W]
                            cnt = w.sum(dim=(1, 2, 3))
                            v = (lmap * w).sum(dim=(1, 2, 3)) / cnt.clamp(min=1)
                            values[suffix].append(torch.where(cnt > 0, v, float("nan")))
            for suffix, chunks in values.items():
                if chunks:
                    per_frame[f"lpips{suffix}"] = torch.cat(chunks)
            if not spatial and len(masks) > 1:
                unavailable["lpips_masked"] = "masked LPIPS needs voyager_pipe's LPIPS (torchmetrics' has no spatial map)"
    if "depth" in metrics:
        from voyager_pipe.metrics.depth import depth_metrics

        if pred_depth is None or gt_depth is None:
            unavailable["depth"] = f"no depth/ folder in {'the prediction' if pred_depth is None else 'the ground truth'}"
        else:
            for suffix, m in masks.items():
                if suffix == "_gt_mask":
                    continue  # GT validity is already part of the depth metrics (gt > 0)
                d = depth_metrics(pred_depth, gt_depth, m, align=cfg.depth_align, scope=cfg.depth_align_scope)
                for key in ("abs_rel", "rmse", "delta1"):
                    per_frame[f"depth_{key}{suffix}"] = d[key]
                if suffix == "":
                    per_frame["depth_scale"] = d["scale"]
    if "consistency" in metrics:
        from voyager_pipe.metrics.consistency import reprojection_consistency, return_to_start_psnr

        if cameras is None:
            unavailable["consistency"] = "no cameras.json in the prediction or the ground truth"
        else:
            value, index = return_to_start_psnr(pred_rgb, cameras, cfg.revisit_translation, cfg.revisit_rotation_deg)
            scalars["return_to_start_psnr"] = None if math.isnan(value) else value
            info["revisit_frame"] = index
            if index is None:
                unavailable["return_to_start_psnr"] = "the trajectory does not come back to its first pose"
            if pred_depth is None:
                unavailable["reprojection"] = "no depth/ folder in the prediction"
            else:
                r = reprojection_consistency(pred_rgb, pred_depth, cameras, cfg.occlusion_tolerance)
                per_frame["reproj_l1"], per_frame["reproj_psnr"], per_frame["reproj_covisible"] = r["l1"], r["psnr"], r["covisible"]

    first = 1 if cfg.skip_first_frame and T > 1 else 0
    info["mean_over_frames"] = [first, T - 1]
    means = {name: _mean(v[first:]) for name, v in per_frame.items()}
    identical = {name: int(torch.isinf(v[first:]).sum()) for name, v in per_frame.items() if torch.isinf(v[first:]).any()}
    if identical:
        info["identical_frames"] = identical  # frames with infinite PSNR, left out of the means
    means.update(scalars)
    return {"frames": T, "size": [int(pred_rgb.shape[-1]), int(pred_rgb.shape[-2])], "means": means,
            "per_frame": {name: _to_list(v) for name, v in per_frame.items()}, "unavailable": unavailable, "info": info}


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, metrics: list[str] | str | None = None,
                     cfg: EvalConfig | None = None, device: str | torch.device = "cpu") -> dict:
    """Evaluate ``pred_dir`` (a ``gen`` output) against ``gt_dir`` (ground-truth frames of the same cameras).

    Means leave frame 0 out (``cfg.skip_first_frame``, default True: ``gen`` reproduces its input
    image there); ``per_frame`` lists every frame.

    Returns ``{"pred", "gt", "frames", "size": [W, H], "metrics": [...], "means": {name: value},
    "per_frame": {name: [T values, None = undefined]}, "unavailable": {name: reason}, "info": {...}}``.
    Metric names: ``psnr``, ``ssim``, ``lpips`` (+ ``_gt_mask`` / ``_cache_mask`` variants when the
    masks exist), ``depth_abs_rel``, ``depth_rmse``, ``depth_delta1`` (+ ``_cache_mask``),
    ``depth_scale``, ``return_to_start_psnr`` (a single value), ``reproj_l1``, ``reproj_psnr``,
    ``reproj_covisible`` (entry t is the pair t-1 -> t).
    """
    from voyager_pipe.camera.trajectory_io import read_folder_cameras
    from voyager_pipe.io.frames import read_frame_folder

    cfg = cfg or EvalConfig()
    names = parse_metrics(metrics if metrics is not None else cfg.metrics)
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for label, folder in (("--pred", pred_dir), ("--gt", gt_dir)):
        if not folder.is_dir():
            raise InputError(f"{label} {folder}: not a folder")
    pred = read_frame_folder(pred_dir)
    gt = read_frame_folder(gt_dir)
    if len(pred) != len(gt):
        raise InputError(f"{pred_dir}: {len(pred)} frames, but the ground truth {gt_dir} has {len(gt)} (frames are matched by index)")
    if pred.rgb.shape[-2:] != gt.rgb.shape[-2:]:
        ph, pw = pred.rgb.shape[-2:]
        gh, gw = gt.rgb.shape[-2:]
        raise InputError(f"{pred_dir}: frames are {pw}x{ph}, but the ground truth {gt_dir} is {gw}x{gh}")
    cameras = read_folder_cameras(pred_dir, len(pred))
    cameras = cameras if cameras is not None else read_folder_cameras(gt_dir, len(gt))
    result = evaluate_frames(pred.rgb, gt.rgb, names, cfg, pred_depth=pred.depth, gt_depth=gt.depth,
                             gt_mask=gt.mask, cache_mask=pred.mask, cameras=cameras, device=device)
    return {"pred": str(pred_dir), "gt": str(gt_dir), "metrics": names, **result}


# ----------------------------------------------------------------------------- reports
def write_reports(result: dict, json_path: str | Path, plots: bool = True) -> list[Path]:
    """Write ``metrics.json``, ``metrics.csv`` (one row per frame + a ``mean`` row) and one PNG
    plot per per-frame metric (``<stem>_plots/<name>.png``) next to ``json_path``. Returns the paths."""
    from voyager_pipe.io.atomic import atomic_write_bytes, atomic_write_text

    json_path = Path(json_path)
    written = [json_path, json_path.with_suffix(".csv")]
    atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    names = list(result["per_frame"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["frame", *names])
    for t in range(result["frames"]):
        writer.writerow([t, *("" if result["per_frame"][n][t] is None else f"{result['per_frame'][n][t]:.6g}" for n in names)])
    writer.writerow(["mean", *("" if result["means"].get(n) is None else f"{result['means'][n]:.6g}" for n in names)])
    atomic_write_text(written[1], buffer.getvalue())
    if plots and names:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plot_dir = json_path.parent / f"{json_path.stem}_plots"
        for name in names:  # one small figure per metric
            values = [math.nan if v is None else v for v in result["per_frame"][name]]
            fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
            ax.plot(range(len(values)), values, marker="." if len(values) < 60 else None)
            mean = result["means"].get(name)
            if mean is not None:
                ax.axhline(mean, color="gray", linestyle="--", linewidth=1, label=f"mean {mean:.4g}")
                ax.legend(loc="best", fontsize=8)
            ax.set_xlabel("frame")
            ax.set_ylabel(name)
            ax.set_title(name)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            plt.close(fig)
            path = plot_dir / f"{name}.png"
            atomic_write_bytes(path, buf.getvalue())
            written.append(path)
    return written


def format_table(result: dict) -> str:
    """A short text table of the means (and what was unavailable)."""
    rows = [(name, "n/a" if v is None else f"{v:.4f}") for name, v in result["means"].items()]
    width = max([len(n) for n, _ in rows] + [6])
    lines = [f"{'metric':<{width}}  mean", f"{'-' * width}  {'-' * 10}"]
    lines += [f"{n:<{width}}  {v}" for n, v in rows]
    for name, reason in result.get("unavailable", {}).items():
        lines.append(f"{name:<{width}}  unavailable: {reason}")
    return "\n".join(lines)
