"""`voyager-pipe eval`: metrics of a generated folder against ground truth.

    voyager-pipe eval --pred OUTDIR --gt GTDIR [--metrics psnr,ssim,lpips,depth,consistency] [--out FILE]

Writes FILE (default OUTDIR/metrics.json), FILE with .csv, and FILE_STEM_plots/<metric>.png;
prints a short table. Layouts: docs/evaluation.md.
"""

from __future__ import annotations

from pathlib import Path

from voyager_pipe.commands._common import add_config_args


def _check_report_path(out: Path, pred: Path, gt: Path) -> None:
    """The reports never overwrite an input: not inside --gt, not inside the prediction's frame files."""
    from voyager_pipe.errors import InputError

    target = out.resolve()
    inputs = [gt.resolve()] + [pred.resolve() / sub for sub in ("frames", "depth", "mask", "cameras.json")]
    for folder in inputs:
        if target == folder or target.is_relative_to(folder):
            raise InputError(f"--out {out}: would overwrite the input {folder}; choose another file")
    if target.exists() and not target.is_file():
        raise InputError(f"--out {out}: exists and is not a file")


def _comma_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


# command-line flag (args attribute) -> the config key it sets
EVAL_FLAGS = {"metrics": "eval.metrics", "lpips_weights": "eval.lpips_weights", "depth_align": "eval.depth_align"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="compare a gen output folder with ground-truth frames (PSNR/SSIM/LPIPS, depth, consistency)",
        description="Compare a gen output folder with ground-truth frames of the same cameras (matched by index).")
    parser.add_argument("--pred", required=True, metavar="OUTDIR", help="gen output folder (frames/, depth/, mask/, cameras.json)")
    parser.add_argument("--gt", required=True, metavar="GTDIR", help="ground-truth folder (frames/, optional depth/ and mask/)")
    parser.add_argument("--metrics", default=None, metavar="LIST", type=_comma_list,
                        help="comma-separated from psnr,ssim,lpips,depth,consistency (default: eval.metrics = all)")
    parser.add_argument("--out", default=None, metavar="FILE", help="metrics JSON to write (default: OUTDIR/metrics.json)")
    parser.add_argument("--lpips-weights", default=None, metavar="PTH",
                        help="ImageNet AlexNet weights (torchvision layout); default: torch hub cache checkpoints/alexnet-owt-7be5be79.pth")
    parser.add_argument("--depth-align", choices=("median", "lstsq", "none"), default=None, help="depth scale alignment (default: eval.depth_align)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_config_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from voyager_pipe.commands._common import config_from_args
    from voyager_pipe.device import resolve_device
    from voyager_pipe.metrics.evaluate import evaluate_folders, format_table, parse_metrics, write_reports

    config = config_from_args(args, EVAL_FLAGS, whole_file=True)
    cfg = config.eval
    device = resolve_device(config.device)
    metrics = parse_metrics(cfg.metrics)
    result = evaluate_folders(args.pred, args.gt, metrics, cfg, device=device)
    out = Path(args.out) if args.out else Path(args.pred) / "metrics.json"
    _check_report_path(out, Path(args.pred), Path(args.gt))
    written = write_reports(result, out, plots=not args.no_plots)
    print(format_table(result))
    print(f"wrote {written[0]} and {written[1]}" + (f" (+ {len(written) - 2} plots in {written[2].parent})" if len(written) > 2 else ""))
    return 0
