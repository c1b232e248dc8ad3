"""The benchmark suite: ``gen`` + ``eval`` over fixed synthetic scenes x trajectories, one table.

Each case makes (or reuses) a synthetic scene folder with exact ground truth
(:mod:`voyager_pipe.scenes`), runs the ``gen`` pipeline on it in this process
(:class:`~voyager_pipe.pipeline.WorldPipeline` with the one resolved config of the ``bench``
command, so any backend / ``--set`` can be compared), evaluates the output against the ground
truth (:func:`evaluate_folders`) and reads ``run.json`` for timing and the world-cache size. Results: a printed table, ``bench.json`` and ``bench.csv`` in the work folder.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from voyager_pipe.errors import InputError


@dataclass(frozen=True)
class BenchCase:
    kind: str  # scene kind
    seed: int
    trajectory: str
    frames: int

    @property
    def name(self) -> str:
        return f"{self.kind}{self.seed}-{self.trajectory}-{self.frames}"


# The fixed suite: orbit, forward, loop back to start and a long (200+ frames) tour, in a room and outdoors.
SUITE = (
    BenchCase("room", 0, "orbit", 25),
    BenchCase("room", 0, "forward", 25),
    BenchCase("room", 0, "loop", 33),
    BenchCase("outdoor", 1, "orbit", 25),
    BenchCase("outdoor", 1, "loop", 33),
    BenchCase("room", 2, "long", 241),
)
QUICK_SUITE = (BenchCase("room", 0, "orbit", 9), BenchCase("room", 0, "loop", 13), BenchCase("outdoor", 1, "forward", 9))

COLUMNS = (  # (header, result key, format)
    ("PSNR", "psnr", "{:.2f}"), ("PSNR-m", "psnr_masked", "{:.2f}"),
    ("SSIM", "ssim", "{:.4f}"), ("SSIM-m", "ssim_masked", "{:.4f}"),
    ("LPIPS", "lpips", "{:.4f}"), ("LPIPS-m", "lpips_masked", "{:.4f}"),
    ("AbsRel", "depth_abs_rel", "{:.4f}"), ("RtS-PSNR", "return_to_start_psnr", "{:.2f}"),
    ("s/frame", "seconds_per_frame", "{:.3f}"), ("cache pts", "cache_points", "{:d}"),
)

GenRunner = Callable[[Path, Path], None]  # (scene folder, output folder) -> runs gen


def ensure_scene(case: BenchCase, folder: Path, width: int, height: int, supersample: int = 2) -> Path:
    """Scene folder of ``case`` (re-used when ``scene.json`` says it was made with the same settings)."""
    from voyager_pipe.scenes import make_scene, scene_trajectory, write_scene_folder

    want = {"kind": case.kind, "seed": case.seed, "frames": case.frames, "width": width, "height": height,
            "supersample": supersample, "trajectory": case.trajectory}
    info_path = folder / "scene.json"
    if info_path.is_file():
        try:
            have = json.loads(info_path.read_text())
        except json.JSONDecodeError:
            have = {}
        if all(have.get(k) == v for k, v in want.items()):
            return folder
    scene = make_scene(case.kind, case.seed)
    cams = scene_trajectory(scene, case.trajectory, case.frames, width, height)
    return write_scene_folder(folder, scene, cams, supersample=supersample, extra={"trajectory": case.trajectory})


def pipeline_gen_runner(config) -> GenRunner:
    """Run the ``gen`` pipeline with ``config`` (a resolved PipelineConfig) on a scene folder."""
    from voyager_pipe.pipeline import WorldPipeline

    pipeline = WorldPipeline(config)

    def run(scene_dir: Path, out_dir: Path) -> None:
        pipeline(scene_dir / "image.png", scene_dir / "cameras.json", out_dir, depth=scene_dir / "depth.npy",
                 overwrite=True)

    return run


def run_case(case: BenchCase, work_dir: Path, runner: GenRunner, width: int, height: int, cfg=None,
             metrics: list[str] | None = None) -> dict:
    """Scene -> gen -> eval for one case; returns one row of results."""
    from voyager_pipe.metrics.evaluate import evaluate_folders

    scene_dir = ensure_scene(case, work_dir / "scenes" / case.name, width, height)
    out_dir = work_dir / "runs" / case.name
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    runner(scene_dir, out_dir)
    wall = time.perf_counter() - t
    result = evaluate_folders(out_dir, scene_dir, metrics, cfg)
    means = result["means"]
    run_info = {}
    if (out_dir / "run.json").is_file():
        run_info = json.loads((out_dir / "run.json").read_text())
    total = (run_info.get("timings_s") or {}).get("total", wall)
    row = {"case": case.name, **asdict(case), "width": width, "height": height}
    masked = "cache_mask" if "psnr_cache_mask" in means else "gt_mask"
    row["mask"] = masked
    for key in ("psnr", "ssim", "lpips"):
        row[key] = means.get(key)
        row[f"{key}_masked"] = means.get(f"{key}_{masked}")
    row["depth_abs_rel"] = means.get("depth_abs_rel")
    row["return_to_start_psnr"] = means.get("return_to_start_psnr")
    row["seconds_per_frame"] = total / max(case.frames, 1)
    row["cache_points"] = run_info.get("cache_points")
    row["unavailable"] = result["unavailable"]
    json_path = out_dir.parent / f"{case.name}.metrics.json"
    from voyager_pipe.metrics.evaluate import write_reports

    write_reports(result, json_path, plots=False)
    return row


def format_bench_table(rows: list[dict]) -> str:
    def cell(row, key, fmt):
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, float) and math.isinf(value):
            return "inf"
        return fmt.format(value)

    headers = ["case"] + [h for h, _, _ in COLUMNS]
    table = [[r["case"]] + [cell(r, k, f) for _, k, f in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(t, widths))) for t in table]
    return "\n".join(lines)


def run_suite(cases: tuple[BenchCase, ...] | list[BenchCase], work_dir: str | Path, runner: GenRunner | None = None,
              width: int = 256, height: int = 192, cfg=None, metrics: list[str] | None = None,
              stream=None) -> list[dict]:
    """Run every case; print the table to ``stream`` (stdout) and write ``bench.json`` / ``bench.csv``."""
    from tqdm import tqdm

    from voyager_pipe.io.atomic import atomic_write_text

    stream = stream or sys.stdout
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if runner is None:
        from voyager_pipe.config import load_config

        runner = pipeline_gen_runner(load_config(values={"generate.progress": False}))
    rows = []
    for case in tqdm(list(cases), desc="benchmark", unit="case"):  # a handful of cases
        try:
            rows.append(run_case(case, work_dir, runner, width, height, cfg, metrics))
        except (RuntimeError, InputError) as exc:
            rows.append({"case": case.name, **asdict(case), "error": str(exc)})
            print(f"{case.name}: {exc}", file=sys.stderr)
    atomic_write_text(work_dir / "bench.json", json.dumps(rows, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["case"] + [k for _, k, _ in COLUMNS])
    for r in rows:
        writer.writerow([r["case"]] + ["" if r.get(k) is None else r.get(k) for _, k, _ in COLUMNS])
    atomic_write_text(work_dir / "bench.csv", buffer.getvalue())
    print(format_bench_table(rows), file=stream)
    masks = sorted({r.get("mask") for r in rows if r.get("mask")})
    print(f"-m columns: masked by {', '.join(masks) or '-'} (cache_mask = pixels the world cache covered, "
          f"gt_mask = pixels that hit geometry); results in {work_dir}/bench.json", file=stream)
    reasons = {}
    for r in rows:
        for name, reason in (r.get("unavailable") or {}).items():
            if name in ("lpips", "depth"):
                reasons.setdefault((name, reason), []).append(r["case"])
    for (name, reason), names in reasons.items():
        print(f"{name} unavailable ({len(names)} case(s)): {reason}", file=stream)
    return rows
