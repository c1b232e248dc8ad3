"""PLY files of the world cache: exact round trip, read back by Open3D and trimesh, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.world.ply import read_ply, write_ply


def _cloud(count: int = 500, seed: int = 0):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(count, 3)).astype(np.float32) * 10  # [P, 3]
    rgb = rng.integers(0, 256, size=(count, 3)).astype(np.uint8)  # [P, 3]
    normals = rng.normal(size=(count, 3)).astype(np.float32)  # [P, 3]
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return xyz, rgb, normals


def test_round_trip_is_exact(tmp_path):
    xyz, rgb, normals = _cloud()
    frame_id = np.arange(len(xyz)) % 7
    write_ply(tmp_path / "a.ply", xyz, rgb, normals, extra={"frame_id": frame_id})
    data = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(data["xyz"], xyz)
    np.testing.assert_array_equal(data["rgb"], rgb)
    np.testing.assert_array_equal(data["normals"], normals)
    np.testing.assert_array_equal(data["extra"]["frame_id"], frame_id)


def test_header_and_size_are_the_documented_layout(tmp_path):
    xyz, rgb, normals = _cloud(10)
    path = write_ply(tmp_path / "a.ply", torch.from_numpy(xyz), torch.from_numpy(rgb), torch.from_numpy(normals))
    raw = path.read_bytes()
    header, body = raw.split(b"end_header\n", 1)
    assert b"format binary_little_endian 1.0" in header
    for line in (b"property float x", b"property float nx", b"property uchar red"):
        assert line in header
    assert len(body) == 10 * (6 * 4 + 3)  # 6 float32 + 3 uchar per point
    # First point's x, read by hand from the little-endian body.
    assert np.frombuffer(body[:4], "<f4")[0] == xyz[0, 0]


def test_float_colours_are_rounded_to_uchar(tmp_path):
    xyz = np.zeros((3, 3), np.float32)
    rgb = np.array([[0.0, 0.5, 1.0], [1.2, -0.1, 0.2], [0.999, 0.001, 0.502]], np.float32)
    write_ply(tmp_path / "c.ply", xyz, rgb)
    data = read_ply(tmp_path / "c.ply")
    np.testing.assert_array_equal(data["rgb"], [[0, 128, 255], [255, 0, 51], [255, 0, 128]])
    assert data["normals"] is None


def test_open3d_reads_the_same_points(tmp_path):
    o3d = pytest.importorskip("open3d")
    xyz, rgb, normals = _cloud()
    write_ply(tmp_path / "a.ply", xyz, rgb, normals, extra={"frame_id": np.arange(len(xyz))})
    cloud = o3d.io.read_point_cloud(str(tmp_path / "a.ply"))
    assert len(cloud.points) == len(xyz)
    np.testing.assert_array_equal(np.asarray(cloud.points).astype(np.float32), xyz)
    np.testing.assert_allclose(np.asarray(cloud.colors), rgb / 255.0, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(cloud.normals).astype(np.float32), normals)


def test_trimesh_reads_the_same_points(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    xyz, rgb, normals = _cloud()
    write_ply(tmp_path / "a.ply", xyz, rgb, normals)
    cloud = trimesh.load(str(tmp_path / "a.ply"))
    assert len(cloud.vertices) == len(xyz)
    np.testing.assert_array_equal(np.asarray(cloud.vertices).astype(np.float32), xyz)
    np.testing.assert_array_equal(np.asarray(cloud.colors)[:, :3], rgb)


def test_reads_a_ply_written_by_open3d(tmp_path):
    o3d = pytest.importorskip("open3d")
    xyz, rgb, normals = _cloud(50)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(rgb / 255.0)
    cloud.normals = o3d.utility.Vector3dVector(normals.astype(np.float64))
    assert o3d.io.write_point_cloud(str(tmp_path / "o.ply"), cloud, write_ascii=False)
    data = read_ply(tmp_path / "o.ply")
    np.testing.assert_array_equal(data["xyz"], xyz)
    np.testing.assert_array_equal(data["rgb"], rgb)
    np.testing.assert_allclose(data["normals"], normals, atol=1e-7)


def test_reads_ascii_ply_with_faces_after_vertices(tmp_path):
    path = tmp_path / "a.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                    "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
                    "element face 0\nproperty list uchar int vertex_indices\nend_header\n"
                    "1 2 3 4 5 6\n7 8 9 10 11 12\n")
    data = read_ply(path)
    np.testing.assert_array_equal(data["xyz"], [[1, 2, 3], [7, 8, 9]])
    np.testing.assert_array_equal(data["rgb"], [[4, 5, 6], [10, 11, 12]])


def test_bad_inputs_raise_clear_errors(tmp_path):
    xyz, rgb, _ = _cloud(5)
    # the writer's arguments come from the program, not the user: ValueError, never InputError (issue 11 item 7)
    for args, field in (((xyz, rgb[:4]), "rgb"), ((xyz[:, :2], rgb), "xyz"), ((xyz, rgb.astype(np.int16)), "rgb")):
        with pytest.raises(ValueError, match=field) as info:
            write_ply(tmp_path / "x.ply", *args)
        assert not isinstance(info.value, InputError)
    assert not (tmp_path / "x.ply").exists()
    (tmp_path / "not.ply").write_bytes(b"hello")
    with pytest.raises(InputError, match="not a PLY"):
        read_ply(tmp_path / "not.ply")
    with pytest.raises(InputError, match="not found"):
        read_ply(tmp_path / "missing.ply")
    path = write_ply(tmp_path / "t.ply", xyz, rgb)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(InputError, match="truncated"):
        read_ply(path)
