"""Every preset does what its name says; keyframe interpolation is smooth and passes through the keys."""

from __future__ import annotations

import math

import pytest
import torch

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.camera.interpolate import interpolate_cameras
from voyager_pipe.camera.presets import PRESETS, make_preset
from voyager_pipe.camera.rotations import axis_angle_matrix, rotation_angle_deg
from voyager_pipe.errors import InputError

D = torch.float64
W, H = 64, 48
CENTER = torch.tensor([W / 2, H / 2], dtype=D)


def project(cameras: Cameras, points: torch.Tensor) -> torch.Tensor:
    homo = torch.cat([points, torch.ones(points.shape[0], 1, dtype=D)], dim=1)  # [P, 4]
    pix = cameras.K @ (cameras.w2c @ homo.T)[:, :3]  # [N, 3, P]
    return (pix[:, :2] / pix[:, 2:]).transpose(1, 2)  # [N, P, 2]


AHEAD = torch.tensor([[0.0, 0.0, 5.0]], dtype=D)  # a point straight in front of the first camera


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_starts_at_identity_with_valid_rotations(name):
    cams = make_preset(name, 9, W, H)
    assert len(cams) == 9 and (cams.width, cams.height) == (W, H)
    assert torch.equal(cams.w2c[0], torch.eye(4, dtype=D))
    assert torch.allclose(cams.K[0], intrinsics_from_fov(60.0, W, H))
    R = cams.w2c[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=D).expand(9, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(9, dtype=D))


@pytest.mark.parametrize("name, axis", [("forward", (0, 0, 1)), ("backward", (0, 0, -1)), ("left", (-1, 0, 0)),
                                        ("right", (1, 0, 0)), ("up", (0, -1, 0)), ("down", (0, 1, 0))])
def test_translations_move_along_the_first_camera_axes(name, axis):
    cams = make_preset(name, 5, W, H, distance=2.0)
    expected = torch.linspace(0, 2.0, 5, dtype=D)[:, None] * torch.tensor(axis, dtype=D)
    assert torch.allclose(cams.centers, expected, atol=1e-12)
    assert torch.allclose(cams.w2c[:, :3, :3], torch.eye(3, dtype=D).expand(5, 3, 3))


def test_translations_shift_the_image_the_expected_way():
    uv_left = project(make_preset("left", 3, W, H, distance=1.0), AHEAD)[:, 0]
    assert uv_left[-1, 0] > uv_left[0, 0]  # camera moves left: scene slides right
    uv_up = project(make_preset("up", 3, W, H, distance=1.0), AHEAD)[:, 0]
    assert uv_up[-1, 1] > uv_up[0, 1]  # camera moves up: scene slides down
    # forward by 1 towards a point at depth 5 laterally offset by 1: u = cx + f * 1 / 4
    cams = make_preset("forward", 2, W, H, distance=1.0)
    f = cams.K[0, 0, 0]
    uv = project(cams, torch.tensor([[1.0, 0.0, 5.0]], dtype=D))[:, 0]
    assert uv[1, 0].item() == pytest.approx(W / 2 + f.item() / 4)


def test_speed_sets_the_distance_per_frame():
    cams = make_preset("forward", 11, W, H, speed=0.1)
    assert cams.centers[-1, 2].item() == pytest.approx(1.0)


@pytest.mark.parametrize("name, sign", [("turn_left", -1), ("turn_right", 1)])
def test_turns_yaw_in_place(name, sign):
    cams = make_preset(name, 7, W, H, angle=40.0)
    assert torch.allclose(cams.centers, torch.zeros(7, 3, dtype=D), atol=1e-12)
    forward = cams.c2w[:, :3, 2]  # world viewing direction
    assert forward[-1, 0].item() == pytest.approx(sign * math.sin(math.radians(40)))
    assert forward[-1, 1].item() == pytest.approx(0.0, abs=1e-12)  # yaw: no pitch
    assert rotation_angle_deg(cams.w2c[-1, :3, :3]).item() == pytest.approx(40.0)
    uv = project(cams, AHEAD)[:, 0]
    assert -sign * (uv[-1, 0] - W / 2) > 0  # turning left moves what was ahead to the right


def test_pan_up_tilts_the_view_up():
    cams = make_preset("pan", 5, W, H, angle=20.0, direction="up")
    assert cams.c2w[-1, 1, 2].item() == pytest.approx(-math.sin(math.radians(20)))  # forward gains -y (up)
    assert project(cams, AHEAD)[-1, 0, 1] > H / 2  # what was ahead is now lower in the image
    left = make_preset("pan", 5, W, H, angle=20.0, direction="left")
    assert torch.allclose(left.w2c, make_preset("turn_left", 5, W, H, angle=20.0).w2c)


def test_orbit_keeps_the_look_at_point_at_the_image_centre():
    depth = 3.0
    cams = make_preset("orbit", 13, W, H, depth=depth, angle=90.0)
    target = torch.tensor([[0.0, 0.0, depth]], dtype=D)
    uv = project(cams, target)[:, 0]
    assert torch.allclose(uv, CENTER.expand(13, 2), atol=1e-9)
    dist = (cams.centers - target).norm(dim=-1)
    assert torch.allclose(dist, torch.full((13,), depth, dtype=D))
    assert cams.centers[-1].tolist() == pytest.approx([depth, 0.0, depth])  # quarter circle, to the right
    assert torch.allclose(cams.centers[:, 1], torch.zeros(13, dtype=D), atol=1e-12)  # stays level
    assert rotation_angle_deg(cams.w2c[-1, :3, :3]).item() == pytest.approx(90.0)


def test_spiral_circles_forward_while_looking_at_the_target():
    cams = make_preset("spiral", 17, W, H, depth=4.0, distance=1.0, radius=0.5, turns=1.0)
    uv = project(cams, torch.tensor([[0.0, 0.0, 4.0]], dtype=D))[:, 0]
    assert torch.allclose(uv, CENTER.expand(17, 2), atol=1e-9)
    z = cams.centers[:, 2]
    assert bool((z[1:] > z[:-1]).all()) and z[-1].item() == pytest.approx(1.0)
    lateral = cams.centers[:, :2]
    assert lateral[8].norm().item() == pytest.approx(0.25)  # radius grows linearly: half way = 0.25
    assert lateral[4, 1].abs().item() == pytest.approx(0.125)  # quarter turn: on the y axis
    with pytest.raises(InputError, match="distance"):
        make_preset("spiral", 5, W, H, depth=1.0, distance=2.0)


def test_zoom_changes_only_the_focal_length():
    f0 = intrinsics_from_fov(60.0, W, H)[0, 0].item()
    zin = make_preset("zoom_in", 5, W, H, zoom=2.0)
    zout = make_preset("zoom_out", 5, W, H, zoom=2.0)
    assert torch.equal(zin.w2c, torch.eye(4, dtype=D).expand(5, 4, 4))
    assert zin.K[-1, 0, 0].item() == pytest.approx(2 * f0) and zout.K[-1, 1, 1].item() == pytest.approx(f0 / 2)
    assert bool((zin.K[1:, 0, 0] > zin.K[:-1, 0, 0]).all())
    assert torch.equal(zin.K[:, :2, 2], CENTER.expand(5, 2))


def test_dolly_zoom_keeps_the_subject_plane_fixed():
    depth = 4.0
    cams = make_preset("dolly_zoom", 6, W, H, depth=depth, distance=2.0)
    subject = torch.tensor([[1.0, -0.5, depth]], dtype=D)
    uv = project(cams, subject)[:, 0]
    assert torch.allclose(uv, uv[:1].expand(6, 2), atol=1e-9)
    background = project(cams, torch.tensor([[1.0, -0.5, 3 * depth]], dtype=D))[:, 0]
    assert (background[-1] - background[0]).norm() > 1.0  # other depths move: the vertigo effect
    assert cams.centers[-1, 2].item() == pytest.approx(2.0)


def test_ease_slows_the_ends():
    cams = make_preset("forward", 21, W, H, distance=1.0, ease=True)
    steps = cams.centers[1:, 2] - cams.centers[:-1, 2]
    assert steps[10] > 3 * steps[0] and cams.centers[-1, 2].item() == pytest.approx(1.0)


def test_preset_errors():
    with pytest.raises(InputError, match="unknown"):
        make_preset("barrel_roll", 5, W, H)
    with pytest.raises(InputError, match="frames"):
        make_preset("forward", 0, W, H)
    with pytest.raises(InputError, match="wobble"):
        make_preset("forward", 5, W, H, wobble=1)
    with pytest.raises(InputError, match="direction"):
        make_preset("pan", 5, W, H, direction="sideways")


def test_keyframes_pass_through_keys_slerp_and_smooth_centres():
    R = axis_angle_matrix("y", torch.tensor([0.0, math.pi / 2, math.pi / 2], dtype=D))
    c2w = torch.eye(4, dtype=D).repeat(3, 1, 1)
    c2w[:, :3, :3] = R
    c2w[:, :3, 3] = torch.tensor([[0.0, 0, 0], [1.0, 0, 1.0], [2.0, 0, 0]], dtype=D)
    keys = Cameras.from_c2w(c2w, intrinsics_from_fov(60.0, W, H), W, H)
    cams = interpolate_cameras(keys, 9)  # keys land on frames 0, 4, 8
    assert torch.allclose(cams.w2c[[0, 4, 8]], keys.w2c, atol=1e-12)
    # Half way between the first two keys: rotation 45 deg about y (slerp).
    assert rotation_angle_deg(cams.c2w[2, :3, :3]).item() == pytest.approx(45.0)
    # C1 centres: the step before and after the middle key are equal (symmetric tangent there).
    steps = cams.centers[1:] - cams.centers[:-1]
    assert torch.allclose(steps[3], steps[4] * torch.tensor([1.0, 1.0, -1.0], dtype=D), atol=1e-12)
    # The tangent at the middle key is (2 - 0) / (1 - 0) along x, zero along z (Catmull-Rom).
    assert (cams.centers[5, 2] - cams.centers[3, 2]).abs().item() < 1e-12
