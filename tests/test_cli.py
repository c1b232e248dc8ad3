"""The CLI contract: subcommands listed, --help everywhere, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from voyager_pipe.cli import COMMANDS, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", COMMANDS)
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: voyager-pipe " + name in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    proc = subprocess.run([sys.executable, "-m", "voyager_pipe", "traj", "show", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.json" in lines[0] and "Traceback" not in proc.stderr


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert "COMMAND" in captured.err and captured.out == ""  # issue 14: help goes to stderr with the error
    assert captured.err.rstrip().splitlines()[-1].startswith("voyager-pipe: error: no command")


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gen", "--image"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--image" in err[0] and "usage" not in err[0]


def test_environment_errors_are_one_line_naming_the_path(capsys, monkeypatch):
    import errno

    import voyager_pipe.commands.traj as traj

    def disk_full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/frames/00003.png")

    monkeypatch.setattr(traj, "run_show", disk_full)
    assert main(["traj", "show", "x.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/data/out/frames/00003.png" in err[0] and "No space left" in err[0]
