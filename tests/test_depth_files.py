"""Depth files: every format round trip, scales, sidecars, size checks, invalid values."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
import cv2  # noqa: E402

from voyager_pipe.depth import DepthConfig, estimate_depth, find_sidecar, read_depth_file  # noqa: E402
from voyager_pipe.io.depth_files import read_pfm  # noqa: E402
from voyager_pipe.errors import InputError  # noqa: E402


@pytest.fixture
def depth_map() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((6, 7)) * 5 + 0.5).astype(np.float32)  # [H, W]


def test_npy_and_npz_round_trip(tmp_path, depth_map):
    np.save(tmp_path / "d.npy", depth_map[None])  # [1, H, W] is accepted too
    np.savez(tmp_path / "d.npz", depth=depth_map)
    np.testing.assert_array_equal(read_depth_file(tmp_path / "d.npy"), depth_map)
    np.testing.assert_array_equal(read_depth_file(tmp_path / "d.npz"), depth_map)
    np.testing.assert_allclose(read_depth_file(tmp_path / "d.npy", scale=2.0), depth_map * 2)


def test_png16_default_millimetres_and_custom_scale(tmp_path):
    mm = np.array([[0, 1000, 65535], [250, 2500, 1]], dtype=np.uint16)  # [2, 3]
    assert cv2.imwrite(str(tmp_path / "d.png"), mm)
    np.testing.assert_allclose(read_depth_file(tmp_path / "d.png"), [[0, 1.0, 65.535], [0.25, 2.5, 0.001]], rtol=1e-6)
    np.testing.assert_allclose(read_depth_file(tmp_path / "d.png", scale=0.01), [[0, 10, 655.35], [2.5, 25, 0.01]],
                               rtol=1e-6)


def test_png8_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "d.png"), np.full((4, 4), 7, np.uint8))
    with pytest.raises(InputError, match="8-bit"):
        read_depth_file(tmp_path / "d.png")


def test_exr_round_trip(tmp_path, depth_map):
    path = str(tmp_path / "d.exr")
    try:
        written = cv2.imwrite(path, depth_map)
    except cv2.error:
        written = False
    if not written:
        openexr = pytest.importorskip("OpenEXR", reason="neither OpenCV nor OpenEXR can write EXR here")
        with openexr.File({"compression": openexr.ZIP_COMPRESSION, "type": openexr.scanlineimage},
                          {"Z": depth_map}) as exr:
            exr.write(path)
    np.testing.assert_array_equal(read_depth_file(path), depth_map)


def test_float_tiff_uses_file_scale_and_uint16_tiff_png_scale(tmp_path, depth_map):
    assert cv2.imwrite(str(tmp_path / "f.tif"), depth_map)
    assert cv2.imwrite(str(tmp_path / "i.tif"), np.full((2, 2), 1500, np.uint16))
    np.testing.assert_array_equal(read_depth_file(tmp_path / "f.tif"), depth_map)
    np.testing.assert_allclose(read_depth_file(tmp_path / "i.tif"), np.full((2, 2), 1.5), rtol=1e-6)


def test_pfm_reads_bottom_row_first(tmp_path):
    # written by hand: little-endian (negative scale), rows stored bottom to top
    top, bottom = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
    payload = np.array(bottom + top, dtype="<f4").tobytes()
    (tmp_path / "d.pfm").write_bytes(b"Pf\n3 2\n-1.0\n" + payload)
    np.testing.assert_array_equal(read_pfm(tmp_path / "d.pfm"), [top, bottom])
    big = np.array(bottom + top, dtype=">f4").tobytes()
    (tmp_path / "b.pfm").write_bytes(b"Pf\n3 2\n1.0\n" + big)
    np.testing.assert_array_equal(read_depth_file(tmp_path / "b.pfm"), [top, bottom])


def test_bad_files_are_input_errors(tmp_path):
    (tmp_path / "d.pfm").write_bytes(b"P6\n1 1\n255\n\0\0\0")
    np.save(tmp_path / "rgb.npy", np.zeros((4, 4, 3), np.float32))
    for name, match in [("d.pfm", "PFM"), ("rgb.npy", "one channel"), ("missing.npy", "not found"), ("d.txt", "not found")]:
        with pytest.raises(InputError, match=match):
            read_depth_file(tmp_path / name)
    (tmp_path / "d.txt").write_text("1")
    with pytest.raises(InputError, match="unknown depth format"):
        read_depth_file(tmp_path / "d.txt")


def test_sidecar_order(tmp_path, depth_map):
    image = tmp_path / "photo.jpg"
    assert find_sidecar(image) is None
    np.save(tmp_path / "depth.npy", depth_map)
    assert find_sidecar(image) == tmp_path / "depth.npy"
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "photo.npy", depth_map)
    assert find_sidecar(image) == tmp_path / "depth" / "photo.npy"
    np.save(tmp_path / "photo.depth.npy", depth_map)
    assert find_sidecar(image) == tmp_path / "photo.depth.npy"
    np.save(tmp_path / "photo_depth.npy", depth_map)
    assert find_sidecar(image) == tmp_path / "photo_depth.npy"


def test_file_backend_masks_invalid_and_keeps_values(tmp_path, depth_map):
    depth_map[0, 0], depth_map[1, 1], depth_map[2, 2], depth_map[3, 3] = np.inf, np.nan, 0.0, -1.0
    np.save(tmp_path / "photo_depth.npy", depth_map)
    est = estimate_depth(torch.rand(3, 6, 7), DepthConfig(), image_path=tmp_path / "photo.png")
    assert est.depth.shape == (1, 6, 7) and est.depth.dtype == torch.float32 and est.valid.dtype == torch.bool
    bad = np.zeros((6, 7), bool)
    bad[[0, 1, 2, 3], [0, 1, 2, 3]] = True
    np.testing.assert_array_equal(est.valid[0].numpy(), ~bad)
    np.testing.assert_array_equal(est.depth[0].numpy()[bad], 0.0)
    np.testing.assert_array_equal(est.depth[0].numpy()[~bad], depth_map[~bad])  # file depth is never filtered
    assert est.source.startswith("file:") and est.is_metric


def test_file_backend_max_depth_and_explicit_path_wins(tmp_path):
    np.save(tmp_path / "photo_depth.npy", np.full((4, 5), 3.0, np.float32))
    explicit = np.full((4, 5), 1.0, np.float32)
    explicit[0] = 200.0  # far plane / sky
    np.save(tmp_path / "mine.npy", explicit)
    est = estimate_depth(torch.rand(3, 4, 5), DepthConfig(max_depth=100.0), image_path=tmp_path / "photo.png",
                         depth_path=tmp_path / "mine.npy")
    assert est.source == f"file:{tmp_path / 'mine.npy'}"
    assert not est.valid[0, 0].any() and est.valid[0, 1:].all()
    assert torch.all(est.depth[0, 1:] == 1.0) and torch.all(est.depth[0, 0] == 0.0)


def test_depth_of_another_size_is_an_error(tmp_path):
    np.save(tmp_path / "photo_depth.npy", np.ones((4, 5), np.float32))
    with pytest.raises(InputError, match="must match the image size"):
        estimate_depth(torch.rand(3, 8, 10), DepthConfig(), image_path=tmp_path / "photo.png")


def test_file_backend_without_any_file_says_where_it_looked(tmp_path):
    with pytest.raises(InputError, match="_depth"):
        estimate_depth(torch.rand(3, 4, 5), DepthConfig(backend="file"), image_path=tmp_path / "photo.png")
