"""`voyager-pipe export`: mesh, 3D Gaussians, COLMAP and nerfstudio exports of a run folder.

The run folder is written directly from a synthetic scene (exact ray-cast RGB-D frames, the world
cache built from them, ``cameras.json``), in the layout ``gen`` writes. Every export is read back by
an independent reader (Open3D, plyfile, pycolmap, trimesh) and by the project's own readers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from voyager_pipe.cli import main
from voyager_pipe.errors import InputError
from voyager_pipe.export import ExportConfig, export_run
from voyager_pipe.export.run import load_run

o3d = pytest.importorskip("open3d")

W, H, N = 80, 60, 8
QUIET = ExportConfig(progress=False)


def write_run(root: Path, rgb, depth, cameras, cache=None) -> Path:
    """A run folder in the layout of `gen`: frames/, depth/, mask/, cameras.json, world.ply."""
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.io.frames import write_frames
    from voyager_pipe.world import WorldCache

    write_frames(root, rgb, depth, mask=depth > 0)
    write_trajectory(root / "cameras.json", cameras)
    if cache is None:
        cache = WorldCache()
        cache.update(rgb, depth, cameras.to(dtype=torch.float32))
    cache.save(root / "world.ply")
    return root


@pytest.fixture(scope="module")
def scene_run(tmp_path_factory):
    from voyager_pipe.scenes import make_scene, render_ground_truth, scene_trajectory

    scene = make_scene("room", seed=0, texture_size=32)
    cams = scene_trajectory(scene, "orbit", frames=N, width=W, height=H)
    rgb, depth = render_ground_truth(scene, cams)  # [N, 3, H, W], [N, 1, H, W]
    rgb = (rgb * 255).round() / 255  # 8-bit frames: exactly representable
    root = write_run(tmp_path_factory.mktemp("export") / "run", rgb, depth, cams)
    return {"root": root, "scene": scene, "cams": cams, "rgb": rgb, "depth": depth}


def _scene_distance(scene, points: np.ndarray) -> np.ndarray:
    """Distance of ``points`` [P, 3] to the scene's true surfaces (Open3D)."""
    raycasting = o3d.t.geometry.RaycastingScene()
    for mesh in scene.meshes:
        raycasting.add_triangles(o3d.core.Tensor(mesh.vertices.astype(np.float32)),
                                 o3d.core.Tensor(mesh.triangles.astype(np.uint32)))
    return raycasting.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()


def _seen_surface_points(case) -> np.ndarray:
    """Points on the true surfaces that the frames saw: every valid ground-truth pixel unprojected."""
    from voyager_pipe.geometry import unproject

    cams, depth = case["cams"], case["depth"]
    points = unproject(depth.double(), cams.K, cams.w2c)  # [N, H, W, 3]
    return points[depth[:, 0] > 0].numpy()  # [S, 3]


# ------------------------------------------------------------------ mesh
@pytest.mark.parametrize("voxel_size", [0.0, 0.05])
def test_mesh_lies_on_and_covers_the_seen_surfaces(scene_run, tmp_path, voxel_size):
    from voyager_pipe.export.mesh import default_voxel_size

    cfg = ExportConfig(progress=False)
    cfg.mesh.voxel_size = voxel_size
    out = tmp_path / "mesh.ply"
    summary = export_run(scene_run["root"], "mesh", out, cfg)
    voxel = voxel_size or default_voxel_size(load_run(scene_run["root"], points=False))
    mesh = o3d.io.read_triangle_mesh(str(out))
    vertices = np.asarray(mesh.vertices)  # [V, 3]
    assert len(mesh.triangles) > 100 and mesh.has_vertex_colors(), summary

    # accuracy: mesh vertices lie on the true surfaces
    to_truth = _scene_distance(scene_run["scene"], vertices)  # [V]
    near_truth = float(np.mean(to_truth <= 1.5 * voxel))
    # completeness: seen true-surface points lie on the mesh
    raycasting = o3d.t.geometry.RaycastingScene()
    raycasting.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    seen = _seen_surface_points(scene_run)
    near_mesh = float(np.mean(raycasting.compute_distance(o3d.core.Tensor(seen.astype(np.float32))).numpy()
                              <= 1.5 * voxel))
    print(f"\nmesh voxel {voxel:.4f}: {len(vertices)} vertices, {near_truth:.2%} within 1.5 voxels of the true "
          f"surfaces (median {np.median(to_truth):.4f}), {near_mesh:.2%} of {len(seen)} seen surface points within "
          "1.5 voxels of the mesh")
    assert near_truth >= 0.95 and near_mesh >= 0.95
    # Open3D reads pixel (floor(v), floor(u)) as we do: K shifted by half a pixel gives a median of ~0.03 here
    assert float(np.median(to_truth)) <= 0.25 * voxel

    # vertex colours are the frames' colours (the scene's textures are mid-range, not black)
    colors = np.asarray(mesh.vertex_colors)  # [V, 3]
    assert 0.05 < float(colors.mean()) < 0.95


def test_mesh_default_voxel_size_follows_the_depth_range(scene_run):
    from voyager_pipe.export.mesh import default_voxel_size

    run = load_run(scene_run["root"], points=False)
    depth = scene_run["depth"][:, :, ::2, ::2]
    valid = depth[depth > 0].numpy()
    f = float(scene_run["cams"].K[0, 0, 0])
    expected = max(2 * np.median(valid) / f, np.percentile(valid, 99) / 512)
    assert default_voxel_size(run) == pytest.approx(expected, rel=1e-6)


def test_mesh_never_integrates_pixels_without_depth(tmp_path):
    """Half the frame has no depth (0, NaN, inf): the mesh covers only the half with depth."""
    from voyager_pipe.camera.cameras import Cameras

    K = torch.tensor([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]], dtype=torch.float64)
    cams = Cameras(K=K[None], w2c=torch.eye(4, dtype=torch.float64)[None], width=W, height=H)
    depth = torch.full((1, 1, H, W), 2.0)
    depth[..., W // 2:] = 0
    depth[..., :4, W // 2:] = float("nan")
    depth[..., 4:8, W // 2:] = float("inf")
    rgb = torch.full((1, 3, H, W), 0.5)
    root = write_run(tmp_path / "run", rgb, torch.nan_to_num(depth, nan=0, posinf=0), cams)
    for t in range(1):  # write the NaN/inf into the file itself: the export must not trust it
        np.save(root / "depth" / f"{t:05d}.npy", depth[t, 0].numpy())
    cfg = ExportConfig(progress=False)
    cfg.mesh.voxel_size = 0.02
    export_run(root, "mesh", tmp_path / "half.ply", cfg)
    vertices = np.asarray(o3d.io.read_triangle_mesh(str(tmp_path / "half.ply")).vertices)  # [V, 3]
    x_edge = 2.0 * (W / 2 - W / 2) / 50.0  # the image column W/2 at depth 2 sits at x = 0
    assert len(vertices) > 0 and float(vertices[:, 0].max()) <= x_edge + 2 * 0.02
    np.testing.assert_allclose(np.median(vertices[:, 2]), 2.0, atol=0.02)


def test_mesh_formats_by_extension_and_small_pieces_removed(scene_run, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    cfg = ExportConfig(progress=False)
    export_run(scene_run["root"], "mesh", tmp_path / "m.ply", cfg)
    reference = o3d.io.read_triangle_mesh(str(tmp_path / "m.ply"))
    for name in ("m.obj", "m.glb"):
        export_run(scene_run["root"], "mesh", tmp_path / name, cfg)
        loaded = trimesh.load(tmp_path / name, force="mesh", process=False)
        assert len(loaded.faces) == len(reference.triangles), name
        assert loaded.visual.kind == "vertex" and loaded.visual.vertex_colors.shape[0] == len(loaded.vertices), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.glb", "m.obj", "m.ply"]  # no temporary files left

    _, sizes, _ = reference.cluster_connected_triangles()
    sizes = np.asarray(sizes)
    threshold = int(sizes.max())  # removes every piece but the largest
    cfg.mesh.min_component = threshold
    export_run(scene_run["root"], "mesh", tmp_path / "big.ply", cfg)
    big = o3d.io.read_triangle_mesh(str(tmp_path / "big.ply"))
    assert len(big.triangles) == int(sizes[sizes >= threshold].sum())
    with pytest.raises(InputError, match="mesh"):
        export_run(scene_run["root"], "mesh", tmp_path / "m.stl", cfg)


# ------------------------------------------------------------------ gaussians
def _read_gaussians(path):
    plyfile = pytest.importorskip("plyfile")
    vertex = plyfile.PlyData.read(str(path))["vertex"]
    return vertex, {name: np.asarray(vertex[name], dtype=np.float64) for name in vertex.data.dtype.names}


def test_gaussians_read_back_with_plyfile_and_open3d(scene_run, tmp_path):
    from voyager_pipe.export.gaussians import SH_C0, property_names
    from voyager_pipe.world.ply import read_ply

    out = tmp_path / "splats.ply"
    export_run(scene_run["root"], "gaussians", out, QUIET)
    vertex, g = _read_gaussians(out)
    expected = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(45)]
                + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert list(vertex.data.dtype.names) == expected == property_names()
    assert all(vertex.data.dtype[name] == np.float32 for name in expected)

    cache = read_ply(scene_run["root"] / "world.ply")
    xyz = np.stack([g["x"], g["y"], g["z"]], axis=1)
    np.testing.assert_array_equal(xyz, cache["xyz"].astype(np.float64))  # centres are the cache points
    opacity = 1 / (1 + np.exp(-g["opacity"]))
    assert ((opacity > 0) & (opacity < 1)).all() and (opacity >= 0.75).all()
    assert all((np.exp(g[f"scale_{k}"]) > 0).all() and np.isfinite(g[f"scale_{k}"]).all() for k in range(3))
    quaternion = np.stack([g[f"rot_{k}"] for k in range(4)], axis=1)
    np.testing.assert_allclose(np.linalg.norm(quaternion, axis=1), 1.0, atol=1e-6)
    rgb = np.stack([g[f"f_dc_{k}"] for k in range(3)], axis=1) * SH_C0 + 0.5
    np.testing.assert_allclose(rgb, cache["rgb"] / 255.0, atol=1e-6)
    assert all((g[f"f_rest_{i}"] == 0).all() for i in range(45))

    # Open3D reads the file as a point cloud (positions) and as 3D Gaussians (tensor reader)
    cloud = o3d.io.read_point_cloud(str(out))
    np.testing.assert_array_equal(np.asarray(cloud.points), xyz)
    splats = o3d.t.io.read_point_cloud(str(out))
    assert all(name in splats.point for name in ("f_dc", "f_rest", "opacity", "scale", "rot"))
    assert tuple(splats.point.f_rest.shape) == (len(xyz), 15, 3)
    np.testing.assert_allclose(splats.point.rot.numpy(), quaternion, atol=1e-6)


def test_gaussians_on_fronto_parallel_planes_are_thin_along_the_normal(tmp_path):
    """Plane z = 2 seen by camera 0 at the origin (depth 2) and camera 1 one unit behind (depth 3)."""
    from scipy.spatial.transform import Rotation

    from voyager_pipe.camera.cameras import Cameras
    from voyager_pipe.export.config import GaussiansExportConfig
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.io.frames import write_frames
    from voyager_pipe.world.ply import write_ply

    f = 100.0
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], dtype=torch.float64)
    w2c = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    w2c[1, 2, 3] = 1.0  # camera 1 at world z = -1
    cams = Cameras(K=K[None].repeat(2, 1, 1), w2c=w2c, width=W, height=H)
    write_frames(tmp_path / "run", torch.full((2, 3, H, W), 0.25), torch.full((2, 1, H, W), 2.0))
    write_trajectory(tmp_path / "run" / "cameras.json", cams)
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 5), np.linspace(-0.4, 0.4, 4)), -1).reshape(-1, 2)  # [20, 2]
    xyz = np.column_stack([grid, np.full(len(grid), 2.0)]).astype(np.float32)  # [20, 3] on z = 2
    frame_ids = np.arange(len(xyz)) % 2
    normals = np.tile(np.array([0.0, 0.0, -1.0], np.float32), (len(xyz), 1))  # facing the cameras
    write_ply(tmp_path / "run" / "world.ply", xyz, np.full((len(xyz), 3), 0.25), normals,
              extra={"frame_id": frame_ids.astype(np.int32)})

    cfg = ExportConfig(progress=False, gaussians=GaussiansExportConfig(thin_ratio=0.1))
    export_run(tmp_path / "run", "gaussians", tmp_path / "plane.ply", cfg)
    _, g = _read_gaussians(tmp_path / "plane.ply")
    depth = np.where(frame_ids == 0, 2.0, 3.0)
    np.testing.assert_allclose(np.exp(g["scale_0"]), depth / f, rtol=1e-6)  # in-plane scale = z / f
    np.testing.assert_allclose(np.exp(g["scale_1"]), depth / f, rtol=1e-6)
    np.testing.assert_allclose(np.exp(g["scale_2"]), 0.1 * depth / f, rtol=1e-6)
    wxyz = np.stack([g[f"rot_{k}"] for k in range(4)], axis=1)
    R = Rotation.from_quat(wxyz[:, [1, 2, 3, 0]]).as_matrix()  # scipy is scalar-last
    thin_axis = R[:, :, 2]  # the local axis of scale_2 in world coordinates
    np.testing.assert_allclose(np.abs(thin_axis @ np.array([0.0, 0.0, 1.0])), 1.0, atol=1e-6)


def test_gaussian_rotation_takes_the_thin_axis_to_any_normal():
    from scipy.spatial.transform import Rotation

    from voyager_pipe.export.gaussians import z_to_normal_quaternion

    normals = np.random.default_rng(0).normal(size=(500, 3))
    normals = np.concatenate([normals, [[0, 0, 1], [0, 0, -1], [1, 0, 0], [0, 0, -1 + 1e-9]]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    q = z_to_normal_quaternion(normals)
    R = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()
    np.testing.assert_allclose(R[:, :, 2], normals, atol=1e-6)


# ------------------------------------------------------------------ colmap
def test_colmap_reads_back_with_pycolmap_and_our_reader(scene_run, tmp_path):
    pycolmap = pytest.importorskip("pycolmap")
    from voyager_pipe.camera import colmap
    from voyager_pipe.world.ply import read_ply

    cams = scene_run["cams"]
    cache = read_ply(scene_run["root"] / "world.ply")
    max_points = len(cache["xyz"]) // 3
    cfg = ExportConfig(progress=False, max_points=max_points)
    out = tmp_path / "colmap"
    export_run(scene_run["root"], "colmap", out, cfg)

    sparse = out / "sparse" / "0"
    assert sorted(p.name for p in sparse.iterdir()) == ["cameras.bin", "cameras.txt", "images.bin", "images.txt",
                                                        "points3D.bin", "points3D.txt"]
    for kind in ("text", "binary"):  # the text model and the binary model are the same reconstruction
        reconstruction = pycolmap.Reconstruction()
        getattr(reconstruction, f"read_{kind}")(str(sparse))
        assert reconstruction.num_images() == N and reconstruction.num_points3D() == max_points, kind
        for image in reconstruction.images.values():
            i = int(Path(image.name).stem)
            camera = reconstruction.cameras[image.camera_id]
            assert camera.model.name == "PINHOLE" and (camera.width, camera.height) == (W, H)
            np.testing.assert_allclose(camera.calibration_matrix(), cams.K[i].numpy(), atol=1e-6)
            cam_from_world = image.cam_from_world() if callable(image.cam_from_world) else image.cam_from_world
            np.testing.assert_allclose(cam_from_world.matrix(), cams.w2c[i, :3].numpy(), atol=1e-6)
            assert (out / "images" / image.name).read_bytes() == (scene_run["root"] / "frames" / image.name).read_bytes()
        # the points are cache points with their colours
        lookup = {tuple(p): c for p, c in zip(cache["xyz"].tolist(), cache["rgb"].tolist())}
        for point in reconstruction.points3D.values():
            assert lookup[tuple(point.xyz.astype(np.float32).tolist())] == point.color.tolist(), kind

    ours = colmap.read(out)
    np.testing.assert_allclose(ours.K.numpy(), cams.K.numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.w2c.numpy(), cams.w2c.numpy(), atol=1e-6)


# ------------------------------------------------------------------ nerfstudio
def test_nerfstudio_cameras_and_depth_read_back(scene_run, tmp_path):
    import imageio.v3 as iio

    from voyager_pipe.camera import nerfstudio

    cams, depth = scene_run["cams"], scene_run["depth"]
    out = tmp_path / "ns"
    export_run(scene_run["root"], "nerfstudio", out, QUIET)
    ours = nerfstudio.read(out / "transforms.json")
    np.testing.assert_allclose(ours.K.numpy(), cams.K.numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.w2c.numpy(), cams.w2c.numpy(), atol=1e-6)
    assert (ours.width, ours.height) == (W, H)

    data = json.loads((out / "transforms.json").read_text())
    assert (out / data["ply_file_path"]).is_file()
    cloud = o3d.io.read_point_cloud(str(out / data["ply_file_path"]))
    assert len(cloud.points) > 0 and cloud.has_colors()
    for t, frame in enumerate(data["frames"]):
        assert {"fl_x", "fl_y", "cx", "cy", "w", "h", "file_path", "depth_file_path"} <= set(frame)
        assert (out / frame["file_path"]).is_file()
        png = iio.imread(out / frame["depth_file_path"])
        assert png.dtype == np.uint16 and png.shape == (H, W)
        truth = depth[t, 0].numpy()
        np.testing.assert_array_equal(png == 0, truth == 0)
        assert float(np.abs(png / 1000.0 - truth).max()) <= 1e-3  # within 1 mm


def test_depth_png_marks_unstorable_depth_as_missing():
    from voyager_pipe.export.nerfstudio import depth_to_png16

    png, far = depth_to_png16(np.array([[0.0, 1.2344, 65.535, 70.0]], np.float32))
    assert png.tolist() == [[0, 1234, 65535, 0]] and far == 1


# ------------------------------------------------------------------ refusals, atomicity, CLI
def test_refuses_incomplete_and_inconsistent_runs(scene_run, tmp_path, capsys):
    partial = tmp_path / "run.partial"
    shutil.copytree(scene_run["root"], partial)
    with pytest.raises(InputError, match="incomplete"):
        export_run(partial, "gaussians", tmp_path / "g.ply", QUIET)
    with pytest.raises(InputError, match="incomplete"):
        export_run(tmp_path / "run", "gaussians", tmp_path / "g.ply", QUIET)

    broken = tmp_path / "broken"
    shutil.copytree(scene_run["root"], broken)
    (broken / "frames" / f"{N - 1:05d}.png").unlink()
    with pytest.raises(InputError, match="frames"):
        export_run(broken, "colmap", tmp_path / "c", QUIET)
    shutil.copytree(scene_run["root"], broken, dirs_exist_ok=True)
    (broken / "depth" / "00003.npy").unlink()
    with pytest.raises(InputError, match="depth"):
        export_run(broken, "mesh", tmp_path / "m.ply", QUIET)

    from voyager_pipe.world.ply import read_ply, write_ply

    other = tmp_path / "other"
    shutil.copytree(scene_run["root"], other)
    cache = read_ply(other / "world.ply")
    write_ply(other / "world.ply", cache["xyz"], cache["rgb"], cache["normals"],
              extra={"frame_id": np.full(len(cache["xyz"]), N + 5, np.int32)})
    with pytest.raises(InputError, match="frame_id"):
        export_run(other, "gaussians", tmp_path / "g.ply", QUIET)
    with pytest.raises(InputError, match="contains the input"):
        export_run(scene_run["root"], "colmap", scene_run["root"], QUIET, overwrite=True)
    with pytest.raises(InputError, match="run folder"):
        export_run(scene_run["root"], "mesh", scene_run["root"], QUIET, overwrite=True)

    # the CLI: one line, exit code 2, nothing written
    assert main(["export", str(partial), "--format", "nerfstudio", "--out", str(tmp_path / "ns"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "incomplete" in err[0]
    assert not (tmp_path / "ns").exists() and not (tmp_path / "ns.partial").exists()


def test_failed_export_leaves_nothing(scene_run, tmp_path, monkeypatch):
    from voyager_pipe.camera import colmap

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(colmap, "write", fail)
    with pytest.raises(RuntimeError):
        export_run(scene_run["root"], "colmap", tmp_path / "c", QUIET)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_each_format_and_refuses_an_existing_out(scene_run, tmp_path, capsys):
    run = str(scene_run["root"])
    for fmt, name in (("gaussians", "g.ply"), ("colmap", "c"), ("nerfstudio", "n")):
        assert main(["export", run, "--format", fmt, "--out", str(tmp_path / name), "--no-progress",
                     "--max-points", "500"]) == 0
        assert f"{fmt}:" in capsys.readouterr().out
    assert main(["export", run, "--format", "gaussians", "--out", str(tmp_path / "g.ply")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["export", run, "--format", "colmap", "--out", str(tmp_path / "c")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["export", run, "--format", "colmap", "--out", str(tmp_path / "c"), "--overwrite", "--no-progress"]) == 0
    (tmp_path / "mine").mkdir()  # a folder the tool did not write is never replaced
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["export", run, "--format", "nerfstudio", "--out", str(tmp_path / "mine"), "--overwrite"]) == 2
    assert "not written by voyager-pipe" in capsys.readouterr().err and (tmp_path / "mine" / "notes.txt").is_file()
    assert main(["export", run, "--format", "gaussians", "--out", str(tmp_path / "g.ply"), "--overwrite",
                 "--opacity", "1.5"]) == 2
    assert "opacity" in capsys.readouterr().err


def test_gen_export_writes_the_formats_into_the_run(tmp_path, capsys):
    from voyager_pipe.scenes import make_scene, scene_trajectory, write_scene_folder

    scene = make_scene("room", seed=1, texture_size=16)
    inputs = write_scene_folder(tmp_path / "scene", scene, scene_trajectory(scene, "forward", frames=5, width=48, height=32))
    out = tmp_path / "run"
    assert main(["gen", "--export", "mesh,cubes", "--image", str(inputs / "image.png"), "--traj",
                 str(inputs / "cameras.json"), "--out", str(out)]) == 2
    assert "--export" in capsys.readouterr().err and not out.exists()  # refused before the run
    code = main(["gen", "--image", str(inputs / "image.png"), "--traj", str(inputs / "cameras.json"), "--depth",
                 str(inputs / "depth.npy"), "--out", str(out), "--backend", "warp", "--no-progress",
                 "--set", "generate.clip_len=5", "--set", "generate.steps=2", "--export", "mesh,gaussians"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mesh:" in printed and "gaussians:" in printed
    assert len(o3d.io.read_triangle_mesh(str(out / "export" / "mesh.ply")).triangles) > 0
    _, g = _read_gaussians(out / "export" / "gaussians.ply")
    assert len(g["x"]) == len(o3d.io.read_point_cloud(str(out / "world.ply")).points)


def test_gaussians_of_a_cached_fronto_parallel_frame(tmp_path):
    """The same through the world cache: one frame of a wall at depth 2, normals estimated by the cache."""
    from scipy.spatial.transform import Rotation

    from voyager_pipe.camera.cameras import Cameras

    f = 100.0
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], dtype=torch.float64)
    cams = Cameras(K=K[None], w2c=torch.eye(4, dtype=torch.float64)[None], width=W, height=H)
    root = write_run(tmp_path / "run", torch.full((1, 3, H, W), 0.6), torch.full((1, 1, H, W), 2.0), cams)
    export_run(root, "gaussians", tmp_path / "wall.ply", QUIET)
    _, g = _read_gaussians(tmp_path / "wall.ply")
    assert len(g["x"]) == W * H
    np.testing.assert_allclose(g["z"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(np.exp(g["scale_0"]), 2.0 / f, rtol=1e-5)
    np.testing.assert_allclose(np.exp(g["scale_2"]), 0.1 * 2.0 / f, rtol=1e-5)
    R = Rotation.from_quat(np.stack([g["rot_1"], g["rot_2"], g["rot_3"], g["rot_0"]], axis=1)).as_matrix()
    np.testing.assert_allclose(np.abs(R[:, 2, 2]), 1.0, atol=1e-5)  # thin axis = the wall's normal (z)
