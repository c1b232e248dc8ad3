"""explore: the action API's pose arithmetic, sessions through the ClipScheduler, resume, undo, out-and-back,
and the viewer controls (server side)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from voyager_pipe.camera.cameras import rigid_inverse
from voyager_pipe.config import load_config
from voyager_pipe.errors import InputError
from voyager_pipe.explore.actions import ACTIONS, parse_actions, segment_poses
from voyager_pipe.explore.session import ExploreSession, ExploreSettings

W, H = 64, 48


@pytest.fixture(scope="module")
def scene_image(tmp_path_factory):
    from voyager_pipe.io.images import write_image
    from voyager_pipe.scenes import make_scene, render_ground_truth, scene_trajectory

    root = tmp_path_factory.mktemp("explore_scene")
    scene = make_scene("room", seed=0, texture_size=32)
    cams = scene_trajectory(scene, "forward", frames=2, width=W, height=H)
    rgb, depth = render_ground_truth(scene, cams[:1])  # [1, 3, H, W], [1, 1, H, W]
    write_image(root / "image.png", rgb[0])
    np.save(root / "depth.npy", depth[0, 0].numpy().astype(np.float32))
    return root


def _config():
    return load_config(None, ["device=cpu", "generate.backend=warp", "generate.clip_len=5", "generate.steps=2",
                              "generate.refine_steps=1", "generate.progress=false", "output.write_video=false"])


def _session(root, **settings):
    return ExploreSession.start(_config(), root / "image.png", root / "depth.npy", settings=ExploreSettings(**settings))


# ---------------------------------------------------------------------- pose arithmetic (hand-derived)
def _centre_and_axes(w2c):
    c2w = rigid_inverse(w2c.to(torch.float64))
    return c2w[..., :3, 3], c2w[..., :3, :3]


def test_parse_actions():
    assert parse_actions("forward:3,turn_left:2,forward") == ["forward"] * 3 + ["turn_left"] * 2 + ["forward"]
    assert parse_actions(" look-up , down:2 ") == ["look_up", "down", "down"]
    for bad in ("jump", "forward:0", "forward:x", "", "forward:1000"):
        with pytest.raises(InputError, match="--actions"):
            parse_actions(bad)


def test_translations_move_along_the_cameras_own_axes():
    eye = torch.eye(4, dtype=torch.float64)
    expected = {"forward": (0, 0, 1), "backward": (0, 0, -1), "right": (1, 0, 0), "left": (-1, 0, 0),
                "up": (0, -1, 0), "down": (0, 1, 0)}
    for action, direction in expected.items():
        poses = segment_poses(eye, action, frames=4, step=0.4)  # [4, 4, 4]
        centres, rotations = _centre_and_axes(poses)
        for k in range(4):  # camera k+1 has done (k+1)/4 of the step, orientation kept
            np.testing.assert_allclose(centres[k].numpy(), 0.4 * (k + 1) / 4 * np.array(direction), atol=1e-12)
            np.testing.assert_allclose(rotations[k].numpy(), np.eye(3), atol=1e-12)


def test_turns_and_looks_rotate_in_place_about_the_cameras_axes():
    eye = torch.eye(4, dtype=torch.float64)
    # turn_left by 90 degrees: the view direction (+z) becomes -x, the right axis becomes +z, y stays
    _, R = _centre_and_axes(segment_poses(eye, "turn_left", frames=3, turn_deg=90)[-1])
    np.testing.assert_allclose(R.numpy(), [[0, 0, -1], [0, 1, 0], [1, 0, 0]], atol=1e-12)
    _, R = _centre_and_axes(segment_poses(eye, "turn_right", frames=3, turn_deg=90)[-1])
    np.testing.assert_allclose(R[:, 2].numpy(), [1, 0, 0], atol=1e-12)
    # look_up by 90 degrees: the view direction becomes up (-y), the down axis (+y) becomes forward (+z)
    _, R = _centre_and_axes(segment_poses(eye, "look_up", frames=3, turn_deg=90)[-1])
    np.testing.assert_allclose(R.numpy(), [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    _, R = _centre_and_axes(segment_poses(eye, "look_down", frames=3, turn_deg=90)[-1])
    np.testing.assert_allclose(R[:, 2].numpy(), [0, 1, 0], atol=1e-12)
    # in place, evenly spread: 30 degrees per camera
    centres, R = _centre_and_axes(segment_poses(eye, "turn_left", frames=3, turn_deg=90))
    np.testing.assert_allclose(centres.numpy(), 0, atol=1e-12)
    np.testing.assert_allclose(R[0, :, 2].numpy(), [-math.sin(math.pi / 6), 0, math.cos(math.pi / 6)], atol=1e-12)


def test_moves_compose_in_the_current_cameras_frame():
    # turn_left 90, then forward 1: the centre goes to world -x; then up 1: world -y; then right 1: world +z
    pose = segment_poses(torch.eye(4, dtype=torch.float64), "turn_left", 2, turn_deg=90)[-1]
    pose = segment_poses(pose, "forward", 2, step=1.0)[-1]
    np.testing.assert_allclose(_centre_and_axes(pose)[0].numpy(), [-1, 0, 0], atol=1e-12)
    pose = segment_poses(pose, "up", 2, step=1.0)[-1]
    np.testing.assert_allclose(_centre_and_axes(pose)[0].numpy(), [-1, -1, 0], atol=1e-12)
    pose = segment_poses(pose, "right", 2, step=1.0)[-1]
    np.testing.assert_allclose(_centre_and_axes(pose)[0].numpy(), [-1, -1, 1], atol=1e-12)


# ---------------------------------------------------------------------- sessions
def test_scripted_actions_give_the_expected_poses_and_a_frame_per_camera(scene_image, tmp_path):
    from voyager_pipe.camera.trajectory_io import read_trajectory
    from voyager_pipe.io.frames import read_frame_folder

    session = _session(scene_image, step=0.3, turn_deg=20)
    actions = parse_actions("forward:2,turn_left,forward")
    results = session.run(actions)
    _, _, stride = session.clip_layout()
    assert session.num_frames == 1 + stride * len(actions)
    assert [r.stop - r.new_from for r in results] == [stride] * len(actions)  # every segment the same length
    expected = torch.eye(4, dtype=torch.float64)[None]
    for action in actions:  # the same pose arithmetic, chained by hand
        expected = torch.cat([expected, segment_poses(expected[-1], action, stride, 0.3, 20)])
    torch.testing.assert_close(session.w2c, expected, atol=0, rtol=0)
    centres, _ = _centre_and_axes(session.w2c)
    np.testing.assert_allclose(centres[2 * stride].numpy(), [0, 0, 0.6], atol=1e-12)  # two steps forward
    session.save(tmp_path / "run")
    folder = read_frame_folder(tmp_path / "run")
    assert len(folder) == session.num_frames and folder.depth is not None and folder.mask is not None
    torch.testing.assert_close(read_trajectory(tmp_path / "run" / "cameras.json").w2c, expected, atol=1e-12, rtol=0)
    assert (tmp_path / "run" / "world.ply").is_file() and (tmp_path / "run" / "config.yaml").is_file()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_sessions_with_resume_equal_one_session(scene_image, tmp_path):
    first = _session(scene_image)
    first.run(["forward", "turn_right"])
    first.save(tmp_path / "a")
    resumed = ExploreSession.resume(tmp_path / "a")
    resumed.run(["forward", "look_down"])
    resumed.save(tmp_path / "ab")
    whole = _session(scene_image)
    whole.run(["forward", "turn_right", "forward", "look_down"])
    whole.save(tmp_path / "one")
    one, two = _files(tmp_path / "one"), _files(tmp_path / "ab")
    assert sorted(one) == sorted(two)
    assert [name for name in one if one[name] != two[name]] == []


def _state(session):
    cache = session.cache
    return {"cache": {f"{name}.{k}": v.clone() for name, store in (("geometry", cache.geometry), ("background", cache.background))
                      for k, v in store.rows().items()},
            "history": cache.meta(), "w2c": session.w2c.clone(),
            "rgb": [t.clone() for t in session.rgb], "depth": [t.clone() for t in session.depth],
            "rng": session.rng.get_state().clone(), "actions": list(session.actions),
            "carry": None if session.carry_rgb is None else session.carry_rgb.clone()}


def _assert_same(a, b):
    for key, value in a["cache"].items():
        other = b["cache"][key]
        assert torch.equal(value, other), key
    assert a["history"] == b["history"] and a["actions"] == b["actions"]
    assert torch.equal(a["w2c"], b["w2c"]) and torch.equal(a["rng"], b["rng"])
    assert all(torch.equal(x, y) for x, y in zip(a["rgb"], b["rgb"])) and len(a["rgb"]) == len(b["rgb"])
    assert all(torch.equal(x, y) for x, y in zip(a["depth"], b["depth"]))
    assert (a["carry"] is None) == (b["carry"] is None) and (a["carry"] is None or torch.equal(a["carry"], b["carry"]))


def test_undo_restores_cache_and_trajectory_exactly(scene_image):
    session = _session(scene_image)
    session.run(["forward", "turn_left"])
    before = _state(session)
    session.step("right")
    assert session.num_frames > before["w2c"].shape[0] and len(session.cache) > before["cache"]["geometry.xyz"].shape[0]
    assert session.undo()
    _assert_same(before, _state(session))
    # and the world continues as if the undone action never happened
    session.step("forward")
    other = _session(scene_image)
    other.run(["forward", "turn_left", "forward"])
    _assert_same(_state(other), _state(session))
    assert session.undo() and session.undo() and session.undo() and not session.undo()
    assert session.num_frames == 1


def test_out_and_back_adds_few_points_on_the_way_back(scene_image):
    # the warp preview commits every pixel here (as a generator whose frames are all trusted does):
    # otherwise the way back commits guesses the way out left out (warp.commit_radius)
    config = _config()
    config.warp.commit_radius = -1
    session = ExploreSession.start(config, scene_image / "image.png", scene_image / "depth.npy",
                                   settings=ExploreSettings(step=0.3))
    out = session.run(["turn_left", "forward", "turn_left"])  # turning reveals new content
    back = session.run(["turn_right", "backward", "turn_right"])
    added_out, added_back = sum(r.added_points for r in out), sum(r.added_points for r in back)
    print(f"out-and-back: {added_out} points added going out, {added_back} coming back")
    assert added_out > 0 and added_back < 0.2 * added_out


def test_explore_needs_an_overlap(scene_image):
    config = _config()
    config.generate.overlap = 0
    with pytest.raises(InputError, match="generate.overlap"):
        ExploreSession.start(config, scene_image / "image.png", scene_image / "depth.npy")


def test_cli_headless_actions_and_resume(scene_image, tmp_path, capsys):
    from voyager_pipe.cli import main

    base = ["--set", "generate.clip_len=5", "--set", "generate.steps=2", "--set", "generate.refine_steps=1",
            "--set", "output.write_video=false", "--set", "device=cpu", "--no-progress"]
    assert main(["explore", "--image", str(scene_image / "image.png"), "--depth", str(scene_image / "depth.npy"),
                 "--backend", "warp", "--out", str(tmp_path / "run"), "--actions", "forward,turn_left", *base]) == 0
    assert main(["explore", "--resume", str(tmp_path / "run"), "--actions", "forward"]) == 0
    assert "3 segments" in capsys.readouterr().out
    assert main(["explore", "--resume", str(tmp_path / "run"), "--actions", "fly"]) == 2
    assert main(["explore", "--resume", str(tmp_path / "nothing"), "--actions", "forward"]) == 2
    assert "not a saved explore session" in capsys.readouterr().err


# ---------------------------------------------------------------------- viewer controls (server side)
def test_viewer_controls_call_the_action_api(scene_image, tmp_path):
    pytest.importorskip("viser")
    from voyager_pipe.explore.controls import KEYS, ExploreControls
    from voyager_pipe.view.viewer import POINTS, WorldViewer, frustum_name

    assert set(KEYS) == set(ACTIONS)
    viewer = WorldViewer(port=0)
    try:
        session = _session(scene_image)
        controls = ExploreControls(viewer, session, tmp_path / "saved", play_delay=0)
        for action in ("forward", "turn_left"):
            controls.buttons[action].value = True  # what a click (or its key) does
            controls.wait_idle()
        assert controls.last_error is None and session.actions == ["forward", "turn_left"]
        reference = _session(scene_image)
        reference.run(["forward", "turn_left"])
        assert torch.equal(session.w2c, reference.w2c) and len(session.cache) == len(reference.cache)
        assert viewer.num_frames == session.num_frames
        assert viewer.server.scene.get_handle_by_name(frustum_name(session.num_frames - 1)) is not None
        assert viewer.server.scene.get_handle_by_name(POINTS).points.shape[0] == len(session.cache)
        assert viewer.frame_index == session.num_frames - 1  # the view followed the new frames
        controls.gui_undo.value = True
        controls.wait_idle()
        assert session.actions == ["forward"] and viewer.num_frames == session.num_frames
        assert viewer.server.scene.get_handle_by_name(frustum_name(session.num_frames)) is None
        controls.gui_save.value = True
        controls.wait_idle()
        assert (tmp_path / "saved" / "cameras.json").is_file() and controls.log == ["forward", "turn_left", "undo", "save"]
    finally:
        viewer.close()
