"""`voyager-pipe eval` on folder pairs with known differences."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from voyager_pipe.cli import main
from voyager_pipe.io.frames import write_frames


def _folders(tmp_path, T=3, H=24, W=32, offset=0.1, depth_scale=2.0, size=None, count=None):
    g = torch.Generator().manual_seed(0)
    gt_rgb = 0.1 + 0.7 * torch.rand(T, 3, H, W, generator=g)  # room for +offset without clipping
    gt_depth = 1 + torch.rand(T, 1, H, W, generator=g)
    write_frames(tmp_path / "gt", gt_rgb, gt_depth)
    pred_rgb = gt_rgb + offset
    if size is not None:
        pred_rgb = torch.nn.functional.interpolate(pred_rgb, size=size)
    pred_rgb = pred_rgb[:count] if count else pred_rgb
    pred_depth = (gt_depth * depth_scale)[: len(pred_rgb)]
    write_frames(tmp_path / "pred", pred_rgb, None if size else pred_depth)
    return tmp_path / "pred", tmp_path / "gt"


def test_eval_known_shift(tmp_path, capsys):
    pred, gt = _folders(tmp_path)
    rc = main(["eval", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr,ssim,depth,lpips",
               "--lpips-weights", str(tmp_path / "missing.pth"), "--no-plots"])
    assert rc == 0
    result = json.loads((pred / "metrics.json").read_text())
    # offset 0.1 everywhere: PSNR 20 dB; 8-bit PNG rounding moves it by < 0.05 dB
    assert result["means"]["psnr"] == pytest.approx(20.0, abs=0.05)
    assert all(v == pytest.approx(20.0, abs=0.05) for v in result["per_frame"]["psnr"])
    assert result["means"]["depth_abs_rel"] == pytest.approx(0.0, abs=1e-5)  # scale 2 removed by alignment
    assert result["means"]["depth_scale"] == pytest.approx(0.5, rel=1e-5)
    assert "missing.pth" in result["unavailable"]["lpips"]
    rows = list(csv.reader((pred / "metrics.csv").open()))
    assert rows[0][:2] == ["frame", "psnr"] and len(rows) == 3 + 2 and rows[-1][0] == "mean"
    out = capsys.readouterr().out
    assert "psnr" in out and "unavailable" in out


def test_eval_writes_plots_and_custom_out(tmp_path):
    pred, gt = _folders(tmp_path, offset=0.0)
    out = tmp_path / "report" / "m.json"
    assert main(["eval", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr", "--out", str(out)]) == 0
    assert (tmp_path / "report" / "m.csv").is_file()
    assert (tmp_path / "report" / "m_plots" / "psnr.png").stat().st_size > 1000
    result = json.loads(out.read_text())
    assert math.isinf(result["means"]["psnr"])  # identical frames (after 8-bit rounding of both)


@pytest.mark.parametrize("kind", ["count", "size"])
def test_eval_mismatch_is_a_clear_input_error(tmp_path, capsys, kind):
    pred, gt = _folders(tmp_path, count=2) if kind == "count" else _folders(tmp_path, size=(12, 16))
    rc = main(["eval", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("2 frames" in err and "has 3" in err) if kind == "count" else ("16x12" in err and "32x24" in err)


def test_eval_unknown_metric(tmp_path, capsys):
    pred, gt = _folders(tmp_path)
    assert main(["eval", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr,fid"]) == 2
    assert "fid" in capsys.readouterr().err


def test_identical_frames_are_counted_not_averaged(tmp_path):
    from voyager_pipe.metrics import EvalConfig, evaluate_frames

    gt = 0.1 + 0.7 * torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    pred = gt + 0.1
    pred[2] = gt[2]  # one perfect frame
    result = evaluate_frames(pred, gt, ["psnr"], EvalConfig())
    assert math.isinf(result["per_frame"]["psnr"][2])
    assert result["means"]["psnr"] == pytest.approx(20.0, abs=1e-3)  # frames 1 and 3 (frame 0 skipped)
    assert result["info"]["identical_frames"] == {"psnr": 1}
    assert evaluate_frames(pred, gt, ["psnr"], EvalConfig(skip_first_frame=False))["info"]["mean_over_frames"] == [0, 3]
