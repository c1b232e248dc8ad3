"""`voyager-pipe batch` on a local Ray (2 CPUs, warp backend, the bundled example at 64x48).

One Ray instance for the module (``ray.init`` costs seconds); the kill test runs the batch in a
subprocess with its own Ray so that it can be killed as a whole (its process group).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from voyager_pipe.batch import read_manifest
from voyager_pipe.cli import main
from voyager_pipe.errors import InputError
from voyager_pipe.pipeline import can_resume

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FAST = {"generate.backend": "warp", "generate.steps": 2, "generate.clip_len": 5, "generate.progress": False,
        "output.fps": 4}


def _fast_sets() -> list[str]:
    return [f"--set={k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in FAST.items()]


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def inputs(tmp_path):
    """The bundled example at 64x48 (the trajectories' intrinsics are rescaled to the image by gen)."""
    import cv2
    import numpy as np

    from voyager_pipe.io.images import read_image, write_image

    root = tmp_path / "in"
    root.mkdir()
    rgb = torch.nn.functional.interpolate(read_image(EXAMPLES / "image.png")[None], size=(48, 64), mode="area")[0]
    write_image(root / "image.png", rgb)  # [3, 48, 64]
    depth = np.load(EXAMPLES / "depth.npy").astype(np.float32)  # [144, 192]
    np.save(root / "depth.npy", cv2.resize(depth, (64, 48), interpolation=cv2.INTER_NEAREST))
    for name in ("traj_short.json", "traj_forward.json"):
        shutil.copy(EXAMPLES / name, root / name)
    (root / "broken.png").write_bytes(b"this is not a PNG")
    return root


def _job(name, seed, traj="traj_short.json", image="image.png"):
    return {"name": name, "image": image, "trajectory": traj, "depth": "depth.npy", "seed": seed, "overrides": FAST}


def _write_manifest(path: Path, jobs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


def _gen(inputs: Path, out: Path, seed: int, traj="traj_short.json") -> Path:
    """The reference: a single `gen` run of the same job."""
    rc = main(["gen", "--image", str(inputs / "image.png"), "--traj", str(inputs / traj), "--depth", str(inputs / "depth.npy"),
               "--out", str(out), "--seed", str(seed), *_fast_sets()])
    assert rc == 0
    return out


def _assert_same_outputs(expected: Path, actual: Path) -> None:
    """Every file byte-identical, except run.json (timings and command line)."""
    names = sorted(p.relative_to(expected).as_posix() for p in expected.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(actual).as_posix() for p in actual.rglob("*") if p.is_file())
    assert "world.ply" in names and "video.mp4" in names and "frames/00008.png" in names
    for name in names:
        if name != "run.json":
            assert (expected / name).read_bytes() == (actual / name).read_bytes(), name


# --------------------------------------------------------------------------- manifest
@pytest.mark.parametrize("line, message", [
    ("{not json", "m.jsonl:2: not valid JSON"),
    ('["a"]', "m.jsonl:2: expected a JSON object"),
    ('{"name": "x", "image": "i.png"}', "m.jsonl:2: trajectory: missing"),
    ('{"name": "x", "image": "i.png", "trajectory": "t.json", "colour": 1}', "m.jsonl:2: colour: unknown field"),
    ('{"name": "../x", "image": "i.png", "trajectory": "t.json"}', "m.jsonl:2: name:"),
    ('{"name": "x", "image": "i.png", "trajectory": "t.json", "seed": "7"}', "m.jsonl:2: seed: expected an integer"),
    ('{"name": "x", "image": "i.png", "trajectory": "t.json", "overrides": {"generate.stepz": 3}}',
     "m.jsonl:2: overrides: generate.stepz: unknown config key"),
    ('{"name": "x", "image": "i.png", "trajectory": "t.json", "overrides": {"generate.steps": "many"}}',
     "m.jsonl:2: overrides: generate.steps: expected an integer"),
    ('{"name": "a", "image": "i.png", "trajectory": "t.json"}', "m.jsonl:2: name: 'a' already used on line 1"),
])
def test_manifest_errors_name_line_and_field(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text('{"name": "a", "image": "i.png", "trajectory": "t.json"}\n' + line + "\n")
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_manifest_resolves_paths_and_config(tmp_path):
    (tmp_path / "cfg.yaml").write_text("generate:\n  steps: 7\n")
    path = _write_manifest(tmp_path / "m.jsonl", [{"name": "a", "image": "i.png", "trajectory": "t.json", "prompt": "a room",
                                                   "seed": 5, "config": "cfg.yaml", "overrides": {"generate.clip_len": 9}}])
    (job,) = read_manifest(path)
    assert job.image == str(tmp_path / "i.png") and job.depth is None and job.line == 1
    assert (job.config.seed, job.config.generate.steps, job.config.generate.clip_len) == (5, 7, 9)
    assert job.config.voyager.prompt == "a room"


# --------------------------------------------------------------------------- batch on Ray
def test_batch_isolates_a_bad_job_matches_gen_and_skips_finished(ray_local, inputs, tmp_path, capsys):
    manifest = _write_manifest(inputs / "m.jsonl", [_job("one", 1), _job("bad", 2, image="broken.png"), _job("two", 3)])
    out = tmp_path / "batch"
    assert main(["batch", str(manifest), "--out", str(out), "--no-progress"]) == 1
    table = capsys.readouterr().out
    assert "broken.png: cannot decode image" in table
    report = json.loads((out / "batch.json").read_text())
    status = {row["name"]: row for row in report["jobs"]}
    assert [status[n]["status"] for n in ("one", "bad", "two")] == ["ok", "failed", "ok"]
    assert "broken.png: cannot decode image" in status["bad"]["error"]
    assert report["counts"] == {"ok": 2, "failed": 1, "skipped": 0, "pending": 0}
    assert not (out / "bad").exists() and not (out / "bad.partial").exists()
    _assert_same_outputs(_gen(inputs, tmp_path / "ref_one", 1), out / "one")
    _assert_same_outputs(_gen(inputs, tmp_path / "ref_two", 3), out / "two")

    # a second run skips the finished jobs (their files are not touched) and retries the failed one
    stamp = (out / "one" / "world.ply").stat().st_mtime_ns
    assert main(["batch", str(manifest), "--out", str(out), "--no-progress"]) == 1
    status = {row["name"]: row["status"] for row in json.loads((out / "batch.json").read_text())["jobs"]}
    assert status == {"one": "skipped", "bad": "failed", "two": "skipped"}
    assert (out / "one" / "world.ply").stat().st_mtime_ns == stamp


def _wait_until_gone(lock: Path, seconds: float = 60) -> None:
    """Wait until the process named in an output lock file has exited (or the lock is gone)."""
    deadline = time.monotonic() + seconds
    while lock.is_file() and time.monotonic() < deadline:
        try:
            os.kill(int(lock.read_text().split()[0]), 0)
        except (ProcessLookupError, ValueError, IndexError, FileNotFoundError):
            return
        time.sleep(0.05)


def test_killed_batch_resumes_to_identical_outputs(ray_local, inputs, tmp_path):
    manifest = _write_manifest(inputs / "m.jsonl", [_job("long", 4, traj="traj_forward.json"), _job("short", 5)])
    out = tmp_path / "batch"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    # one worker: "long" runs first; kill the whole process group (driver, its Ray, the worker) after its first clip
    proc = subprocess.Popen([sys.executable, "-m", "voyager_pipe", "batch", str(manifest), "--out", str(out), "--workers", "1",
                             "--no-progress"], env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not can_resume(out / "long") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # the Ray worker writing "long" (the pid in its output lock) is not always in the driver's process group:
    # kill it first, then the driver and its Ray, as a crash of the machine would
    with contextlib.suppress(ProcessLookupError, ValueError, IndexError, FileNotFoundError):
        os.kill(int((out / "long.lock").read_text().split()[0]), signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_until_gone(out / "long.lock")
    assert can_resume(out / "long") and not (out / "long").exists(), "the batch was not killed mid-way"

    assert main(["batch", str(manifest), "--out", str(out), "--no-progress"]) == 0
    report = {row["name"]: row for row in json.loads((out / "batch.json").read_text())["jobs"]}
    assert report["long"]["status"] == "ok" and report["long"]["resumed"] is True
    _assert_same_outputs(_gen(inputs, tmp_path / "ref_long", 4, traj="traj_forward.json"), out / "long")
    _assert_same_outputs(_gen(inputs, tmp_path / "ref_short", 5), out / "short")
