"""The benchmark suite's plumbing with an oracle `gen` that returns the ground truth."""

from __future__ import annotations

import json
import math
import shutil

import pytest

pytest.importorskip("open3d")

from voyager_pipe.commands.bench_suite import BenchCase, format_bench_table, run_suite  # noqa: E402


def _oracle_gen(scene_dir, out_dir):
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for sub in ("frames", "depth"):
        shutil.copytree(scene_dir / sub, out_dir / sub)
    shutil.copy(scene_dir / "cameras.json", out_dir / "cameras.json")
    (out_dir / "run.json").write_text(json.dumps({"cache_points": 123, "timings_s": {"total": 2.5}}))


def test_suite_with_an_oracle_generator(tmp_path):
    import io

    case = BenchCase("room", 0, "loop", 5)
    stream = io.StringIO()
    rows = run_suite([case], tmp_path, _oracle_gen, width=48, height=36, metrics=["psnr", "ssim", "depth", "consistency"],
                     stream=stream)
    (row,) = rows
    assert math.isinf(row["psnr"]) and row["ssim"] == pytest.approx(1.0)
    assert row["depth_abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert math.isinf(row["return_to_start_psnr"])  # the loop's last pose is the first: identical ray-cast frames
    assert row["seconds_per_frame"] == pytest.approx(2.5 / 5) and row["cache_points"] == 123
    table = stream.getvalue()
    assert "room0-loop-5" in table and "inf" in table
    assert json.loads((tmp_path / "bench.json").read_text())[0]["case"] == "room0-loop-5"
    # the scene folder is reused on a second run (same settings)
    stamp = (tmp_path / "scenes" / case.name / "scene.json").stat().st_mtime_ns
    run_suite([case], tmp_path, _oracle_gen, width=48, height=36, metrics=["psnr"], stream=io.StringIO())
    assert (tmp_path / "scenes" / case.name / "scene.json").stat().st_mtime_ns == stamp


def test_failed_gen_is_reported_in_the_table(tmp_path):
    import io

    def broken(scene_dir, out_dir):
        raise RuntimeError("gen failed (exit 1): boom")

    rows = run_suite([BenchCase("room", 0, "orbit", 3)], tmp_path, broken, width=32, height=24, stream=io.StringIO())
    assert "boom" in rows[0]["error"]
    assert "room0-orbit-3" in format_bench_table(rows)
