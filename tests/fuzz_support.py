"""Helpers of the test_fuzz_*.py modules: run the CLI in-process and check the one-line contract."""

from __future__ import annotations

import io
import json
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

from voyager_pipe.cli import main


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``voyager-pipe argv`` in this process -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # anything escaping main is a failure of the contract
            rc = -1
            traceback.print_exc(file=err)
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(argv: list[str], names: list[str] | str, code: int = 2,
                          left_behind: list[Path] = ()) -> str:
    """Exit ``code``, exactly one stderr line that names one of ``names``, no traceback,
    none of ``left_behind`` exists (the output folder, its .partial, its .lock)."""
    rc, _, err = run_cli(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == code, f"exit {rc} (want {code}) for {argv}: {err}"
    assert len(lines) == 1, f"want one stderr line for {argv}, got: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    names = [names] if isinstance(names, str) else names
    assert any(str(n) in lines[0] for n in names), f"{lines[0]!r} names none of {names}"
    for path in left_behind:
        path = Path(path)
        for p in (path, path.with_name(path.name + ".partial"), path.with_name(path.name + ".lock")):
            assert not p.exists(), f"{p} left behind by {argv}"
    return lines[0]


def make_inputs(folder: Path, width: int = 32, height: int = 24, frames: int = 3) -> dict[str, Path]:
    """A tiny valid gen input set: image.png, depth.npy, traj.json (forward preset)."""
    import cv2

    from voyager_pipe.camera.presets import make_preset
    from voyager_pipe.camera.trajectory_io import write_trajectory

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1),
                      (xx + yy) % 256], axis=-1).astype(np.uint8)  # [H, W, 3]
    cv2.imwrite(str(folder / "image.png"), image[..., ::-1])
    np.save(folder / "depth.npy", (2.0 + 0.01 * xx).astype(np.float32))
    write_trajectory(folder / "traj.json", make_preset("forward", frames, width, height, fov=60.0, distance=0.2))
    return {"image": folder / "image.png", "depth": folder / "depth.npy", "traj": folder / "traj.json"}


FAST_GEN = ["--set", "generate.clip_len=3", "--set", "generate.steps=1", "--set", "generate.refine_steps=0",
            "--set", "output.write_video=false", "--no-progress", "--backend", "warp"]


def gen_argv(inputs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["gen", "--image", inputs["image"], "--depth", inputs["depth"], "--traj", inputs["traj"],
            "--out", out, *FAST_GEN, *extra]


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path
