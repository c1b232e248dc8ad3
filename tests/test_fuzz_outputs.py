"""Issue 14, explicit cases: no command deletes what it did not create; concurrent runs; resume leftovers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fuzz_support import assert_one_line_error, gen_argv, make_inputs, run_cli
from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import MARKER, check_output_dir, lock_owner, output_dir, output_lock


@pytest.fixture
def inputs(tmp_path):
    return make_inputs(tmp_path / "in")


def _snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_out_is_the_folder_holding_the_inputs_is_refused_and_inputs_survive(inputs):
    folder = inputs["image"].parent
    before = _snapshot(folder)
    assert_one_line_error(gen_argv(inputs, folder, "--overwrite"), [str(folder), "input"])
    assert _snapshot(folder) == before
    assert all(p.is_file() for p in inputs.values())


def test_out_dotdot_and_dot_and_empty_are_refused(inputs, tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (tmp_path / "a" / "keep.txt").write_text("precious")
    monkeypatch.chdir(work)
    for out in ("..", ".", "", "../..", str(tmp_path / "a")):
        assert_one_line_error(gen_argv(inputs, out, "--overwrite"), ["--out"])
    assert (tmp_path / "a" / "keep.txt").read_text() == "precious"
    assert work.is_dir()


def test_foreign_folder_is_never_deleted_even_with_overwrite(inputs, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"not ours")
    assert_one_line_error(gen_argv(inputs, out, "--overwrite"), [str(out)])
    assert (out / "holiday.jpg").read_bytes() == b"not ours"
    assert not (tmp_path / "photos.partial").exists()


def test_foreign_partial_folder_is_never_deleted(inputs, tmp_path):
    out = tmp_path / "run"
    (tmp_path / "run.partial").mkdir()
    (tmp_path / "run.partial" / "notes.txt").write_text("mine")
    assert_one_line_error(gen_argv(inputs, out), [str(out)])
    assert (tmp_path / "run.partial" / "notes.txt").read_text() == "mine"


def test_own_output_is_replaced_with_overwrite_and_kept_without(inputs, tmp_path):
    out = tmp_path / "run"
    assert run_cli(gen_argv(inputs, out))[0] == 0
    assert (out / MARKER).is_file() and (out / "run.json").is_file()
    assert_one_line_error(gen_argv(inputs, out), [str(out)])  # exists, no --overwrite
    (out / "extra.txt").write_text("x")
    assert run_cli(gen_argv(inputs, out, "--overwrite"))[0] == 0
    assert not (out / "extra.txt").exists() and (out / "run.json").is_file()
    assert not (tmp_path / "run.partial").exists() and not (tmp_path / "run.lock").exists()


def test_render_refuses_an_output_holding_its_inputs(tmp_path):
    from voyager_pipe.world.ply import write_ply
    import numpy as np

    folder = tmp_path / "data"
    folder.mkdir()
    write_ply(folder / "cloud.ply", np.zeros((4, 3), np.float32) + [0, 0, 2], np.zeros((4, 3), np.uint8))
    inputs = make_inputs(folder)
    assert_one_line_error(["render", "--points", folder / "cloud.ply", "--traj", inputs["traj"], "--out", folder],
                          [str(folder)])
    assert (folder / "cloud.ply").is_file()


def test_second_concurrent_run_is_refused_and_first_runs_files_untouched(inputs, tmp_path):
    out = tmp_path / "run"
    with output_dir(out, keep_partial=True) as partial:
        (partial / "frames").mkdir()
        (partial / "frames" / "00000.png").write_bytes(b"first run")
        assert lock_owner(out) == os.getpid()
        line = assert_one_line_error(gen_argv(inputs, out, "--overwrite"), [str(out)])
        assert "pid" in line
        assert_one_line_error(gen_argv(inputs, out, "--resume"), [str(out)])
        assert (partial / "frames" / "00000.png").read_bytes() == b"first run"
    assert (out / "frames" / "00000.png").read_bytes() == b"first run"
    assert not (tmp_path / "run.lock").exists()


def test_lock_held_by_another_process_is_refused(tmp_path):
    out = tmp_path / "run"
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from voyager_pipe.io.atomic import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(out), os.getcwd()], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        assert lock_owner(out) == child.pid
        with pytest.raises(InputError, match=f"pid {child.pid}"):
            with output_lock(out):
                pass
    finally:
        child.kill()
        child.wait()
    # killed: the lock is stale (the kernel released it, the pid is gone) and is taken over
    assert lock_owner(out) is None
    with output_lock(out):
        assert lock_owner(out) == os.getpid()


def test_stale_lock_file_with_a_dead_pid_is_taken_over(inputs, tmp_path):
    out = tmp_path / "run"
    (tmp_path / "run.lock").write_text("999999999 somehost\n")
    assert run_cli(gen_argv(inputs, out))[0] == 0
    assert (out / "run.json").is_file() and not (tmp_path / "run.lock").exists()


def test_output_path_errors_name_the_path(inputs, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_one_line_error(gen_argv(inputs, afile / "out"), [str(afile)])
    assert_one_line_error(gen_argv(inputs, afile, "--overwrite"), [str(afile)])
    assert afile.read_text() == "x"
    long_name = tmp_path / ("n" * 300)
    assert_one_line_error(gen_argv(inputs, long_name), ["--out"])


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_parent_is_one_line_naming_the_path(inputs, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = assert_one_line_error(gen_argv(inputs, ro / "out"), [str(ro)])
        assert "ermission" in line or "read-only" in line
    finally:
        ro.chmod(0o755)


def test_check_output_dir_refuses_inputs_inside_the_partial_folder(tmp_path):
    (tmp_path / "o.partial").mkdir()
    (tmp_path / "o.partial" / MARKER).write_text("")
    with pytest.raises(InputError, match="contains the input"):
        check_output_dir(tmp_path / "o", [tmp_path / "o.partial" / "image.png"])


def test_resume_removes_stale_temporary_files(inputs, tmp_path):
    out = tmp_path / "run"
    stop = RuntimeError("killed")

    def interrupt(clip):
        raise stop

    from voyager_pipe.commands._common import config_from_args
    from voyager_pipe.commands.gen import GEN_FLAGS
    from voyager_pipe.cli import build_parser
    from voyager_pipe.pipeline import WorldPipeline

    args = build_parser().parse_args([str(a) for a in gen_argv(inputs, out)])
    pipeline = WorldPipeline(config_from_args(args, GEN_FLAGS))
    with pytest.raises(RuntimeError):
        pipeline(inputs["image"], inputs["traj"], out, depth=inputs["depth"], on_clip=lambda result, *_: interrupt(result.plan.index))
    partial = tmp_path / "run.partial"
    stale = partial / "depth" / ".00001.npy.abc123.tmp"
    stale.write_bytes(b"half")
    assert run_cli(gen_argv(inputs, out, "--resume"))[0] == 0
    assert not (out / "depth" / stale.name).exists()
    assert not list(out.rglob("*.tmp*"))
