"""End to end `gen` with an oracle generator on a synthetic scene, --resume, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from voyager_pipe.config import load_config
from voyager_pipe.errors import InputError
from voyager_pipe.generate.warp import WarpGenerator
from voyager_pipe.pipeline import WorldPipeline

W, H, N = 64, 48, 11


@pytest.fixture(scope="module")
def scene_case(tmp_path_factory):
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.io.images import write_image
    from voyager_pipe.scenes import make_scene, render_ground_truth, scene_trajectory

    root = tmp_path_factory.mktemp("scene")
    scene = make_scene("room", seed=0, texture_size=32)
    cams = scene_trajectory(scene, "forward", frames=N, width=W, height=H)
    rgb, depth = render_ground_truth(scene, cams)  # [N, 3, H, W], [N, 1, H, W]
    rgb = (rgb * 255).round() / 255  # the image is stored in 8 bits: make GT exactly representable
    write_image(root / "image.png", rgb[0])
    np.save(root / "depth.npy", depth[0, 0].numpy().astype(np.float32))
    write_trajectory(root / "traj.json", cams)
    return {"root": root, "scene": scene, "cams": cams, "rgb": rgb, "depth": depth}


class OracleGenerator(WarpGenerator):
    """Pixel-space generator whose clean estimate is the ground truth of the clip's frames."""

    def __init__(self, rgb, depth):
        super().__init__()
        self.gt = torch.cat([rgb, depth], dim=1).float()  # [N, 4, H, W]

    def clean_estimate(self, condition):
        return self.gt[condition.frame_indices]  # [T, 4, H, W]


def _config(**generate):
    sets = ["generate.clip_len=5", "generate.steps=3", "generate.refine_steps=2", "generate.progress=false",
            "output.fps=4"] + [f"generate.{k}={v}" for k, v in generate.items()]
    return load_config(None, sets)


def _psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def test_oracle_end_to_end_matches_ground_truth_and_surfaces(scene_case, tmp_path):
    from voyager_pipe.camera.trajectory_io import read_trajectory
    from voyager_pipe.io.frames import read_frame_folder
    from voyager_pipe.world.ply import read_ply

    root = scene_case["root"]
    out = tmp_path / "run"
    gen = OracleGenerator(scene_case["rgb"], scene_case["depth"])
    result = WorldPipeline(_config(), generator=gen)(root / "image.png", root / "traj.json", out, depth=root / "depth.npy")
    assert result.num_frames == N and result.num_clips > 2
    for name in ("video.mp4", "video_rgbd.mp4", "cameras.json", "world.ply", "config.yaml", "run.json"):
        assert (out / name).is_file(), name
    assert not (out / "state").exists() and not Path(str(out) + ".partial").exists()
    folder = read_frame_folder(out)
    assert folder.rgb.shape == (N, 3, H, W) and folder.depth.shape == (N, 1, H, W)
    for t in range(N):
        assert _psnr(folder.rgb[t], scene_case["rgb"][t]) >= 40.0, t
    torch.testing.assert_close(folder.depth, scene_case["depth"], atol=1e-4, rtol=1e-4)
    # mask/: what the cache covered; for frame 0 exactly the pixels with ground-truth depth
    assert folder.mask.shape == (N, 1, H, W)
    assert torch.equal(folder.mask[0], scene_case["depth"][0] > 0)
    torch.testing.assert_close(read_trajectory(out / "cameras.json").w2c, scene_case["cams"].w2c, atol=1e-6, rtol=0)
    run = json.loads((out / "run.json").read_text())
    assert run["frames"] == N and run["cache_points"] > 0 and "generator" in run["timings_s"]

    # world.ply points lie on the true surfaces (Open3D distance to the scene's meshes)
    import open3d as o3d

    ply = read_ply(out / "world.ply")
    scene = o3d.t.geometry.RaycastingScene()
    for mesh in scene_case["scene"].meshes:
        scene.add_triangles(o3d.core.Tensor(mesh.vertices.astype(np.float32)),
                            o3d.core.Tensor(mesh.triangles.astype(np.uint32)))
    dist = scene.compute_distance(o3d.core.Tensor(ply["xyz"].astype(np.float32))).numpy()
    assert ply["xyz"].shape[0] == run["cache_points"]
    assert float(np.quantile(dist, 0.99)) < 1e-3 and float(dist.max()) < 1e-2


def test_resume_after_interruption_gives_identical_outputs(scene_case, tmp_path):
    root = scene_case["root"]
    args = (root / "image.png", root / "traj.json")
    cfg = _config()
    WorldPipeline(cfg)(*args, tmp_path / "full", depth=root / "depth.npy")

    class Stop(Exception):
        pass

    def interrupt(clip):
        if clip == 1:
            raise Stop

    with pytest.raises(Stop):
        WorldPipeline(cfg)(*args, tmp_path / "cut", depth=root / "depth.npy", on_clip=lambda result, *_: interrupt(result.plan.index))
    assert (tmp_path / "cut.partial" / "state" / "state.json").is_file() and not (tmp_path / "cut").exists()
    WorldPipeline(cfg)(*args, tmp_path / "cut", depth=root / "depth.npy", resume=True)
    full, cut = tmp_path / "full", tmp_path / "cut"
    names = sorted(p.relative_to(full).as_posix() for p in full.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(cut).as_posix() for p in cut.rglob("*") if p.is_file())
    for name in names:
        if name.startswith(("frames/", "depth/")) or name in ("world.ply", "cameras.json", "video.mp4"):
            assert (full / name).read_bytes() == (cut / name).read_bytes(), name


def test_warp_backend_runs_through_the_cli(scene_case, tmp_path):
    from voyager_pipe.cli import main

    root = scene_case["root"]
    out = tmp_path / "cli"
    code = main(["gen", "--image", str(root / "image.png"), "--traj", str(root / "traj.json"), "--depth",
                 str(root / "depth.npy"), "--out", str(out), "--backend", "warp", "--no-progress",
                 "--set", "generate.clip_len=5", "--set", "generate.steps=2"])
    assert code == 0 and len(list((out / "frames").glob("*.png"))) == N
    # frame 0 is the input image (the cache renders it completely)
    from voyager_pipe.io.images import read_image

    assert _psnr(read_image(out / "frames" / "00000.png"), scene_case["rgb"][0]) > 40
    # every frame: RGB, z-depth and cache mask; the frames follow the true scene (a forward walk in a room:
    # the preview renders what the input saw and fills the rest from the background side)
    import cv2

    from voyager_pipe.camera.trajectory_io import read_trajectory
    from voyager_pipe.world.ply import read_ply

    gt_rgb, gt_depth = scene_case["rgb"], scene_case["depth"]
    for k in range(N):
        rgb = read_image(out / "frames" / f"{k:05d}.png")
        depth = torch.from_numpy(np.load(out / "depth" / f"{k:05d}.npy"))  # [H, W]
        mask = torch.from_numpy(cv2.imread(str(out / "mask" / f"{k:05d}.png"), cv2.IMREAD_UNCHANGED) > 127)  # [H, W]
        assert rgb.shape == (3, H, W) and depth.shape == (H, W) and bool((depth > 0).all())
        known = mask & (gt_depth[k, 0] > 0)
        assert float(known.float().mean()) > 0.5  # the cache covers most of a forward walk's frames
        assert _psnr(rgb[:, known], gt_rgb[k][:, known]) > 20, k
        rel = ((depth - gt_depth[k, 0]).abs() / gt_depth[k, 0])[known]
        assert float(rel.median()) < 0.02, k
    # the trajectory is written as read (float64, not rounded), the PLY holds geometry only
    cams_in, cams_out = read_trajectory(root / "traj.json"), read_trajectory(out / "cameras.json")
    assert torch.equal(cams_in.w2c, cams_out.w2c) and torch.equal(cams_in.K, cams_out.K)
    ply = read_ply(out / "world.ply")
    run = json.loads((out / "run.json").read_text())
    assert ply["xyz"].shape[0] == run["cache_points"] and float(np.abs(ply["xyz"]).max()) < 100
    assert run["backend"] == "warp" and run["frames"] == N
    assert (out / "video.mp4").stat().st_size > 0


def _bad_case(tmp_path, scene_case, kind):
    import cv2

    root = scene_case["root"]
    image, traj, depth = root / "image.png", root / "traj.json", root / "depth.npy"
    rgb8 = cv2.imread(str(image))
    if kind == "unreadable":
        image = tmp_path / "bad.png"
        image.write_bytes(b"not an image")
    elif kind == "rgba":
        image = tmp_path / "rgba.png"
        cv2.imwrite(str(image), cv2.cvtColor(rgb8, cv2.COLOR_BGR2BGRA))
    elif kind == "gray":
        image = tmp_path / "gray.png"
        cv2.imwrite(str(image), cv2.cvtColor(rgb8, cv2.COLOR_BGR2GRAY))
    elif kind == "16bit":
        image = tmp_path / "deep.png"
        cv2.imwrite(str(image), rgb8.astype(np.uint16) * 257)
    elif kind == "depth_size":
        depth = tmp_path / "small.npy"
        np.save(depth, np.ones((H // 2, W // 2), np.float32))
    elif kind == "nan_depth":
        depth = tmp_path / "nan.npy"
        np.save(depth, np.full((H, W), np.nan, np.float32))
    elif kind == "empty_traj":
        data = json.loads(traj.read_text())
        data["frames"] = []
        traj = tmp_path / "empty.json"
        traj.write_text(json.dumps(data))
    return image, traj, depth


@pytest.mark.parametrize("kind", ["unreadable", "rgba", "gray", "16bit", "depth_size", "nan_depth", "empty_traj"])
def test_bad_inputs_give_clear_errors_and_no_output(scene_case, tmp_path, kind):
    image, traj, depth = _bad_case(tmp_path, scene_case, kind)
    out = tmp_path / "out"
    with pytest.raises(InputError) as info:
        WorldPipeline(_config())(image, traj, out, depth=depth)
    message = str(info.value)
    assert any(str(p) in message or Path(p).name in message for p in (image, traj, depth)), message
    assert not out.exists() and not Path(str(out) + ".partial").exists()
