"""Frame folders, images and atomic output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import output_dir
from voyager_pipe.io.frames import read_frame_folder, write_frames
from voyager_pipe.io.images import read_image, write_image


def test_frame_folder_round_trip(tmp_path):
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (3, 3, 6, 8), generator=g).float() / 255  # [T, 3, H, W] exact in 8 bits
    depth = torch.rand(3, 1, 6, 8, generator=g) + 0.5  # [T, 1, H, W]
    depth[0, 0, 0, 0] = float("nan")
    mask = torch.rand(3, 1, 6, 8, generator=g) > 0.5  # [T, 1, H, W]
    write_frames(tmp_path, rgb, depth, mask)
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    folder = read_frame_folder(tmp_path)
    torch.testing.assert_close(folder.rgb, rgb, atol=0, rtol=0)
    expected = depth.clone()
    expected[0, 0, 0, 0] = 0  # NaN is written as "no value"
    torch.testing.assert_close(folder.depth, expected, atol=0, rtol=0)
    assert torch.equal(folder.mask, mask)
    assert np.load(tmp_path / "depth" / "00001.npy").dtype == np.float32


def test_frames_written_by_threads_are_the_same_files_lossless_rgb_pngs(tmp_path):
    """write_frames encodes in a thread pool: the files do not depend on the worker count, and the PNGs
    stay lossless 8-bit RGB (any PNG reader gives back the pixels; channel order is RGB, not OpenCV's BGR)."""
    from PIL import Image

    g = torch.Generator().manual_seed(1)
    rgb = torch.rand(4, 3, 10, 12, generator=g)  # [T, 3, H, W]
    depth = torch.rand(4, 1, 10, 12, generator=g)  # [T, 1, H, W]
    mask = torch.rand(4, 1, 10, 12, generator=g) > 0.5  # [T, 1, H, W]
    write_frames(tmp_path / "one", rgb, depth, mask, workers=1)
    write_frames(tmp_path / "many", rgb, depth, mask, workers=3)
    for sub in ("frames", "depth", "mask"):
        one = sorted((tmp_path / "one" / sub).iterdir())
        assert [p.name for p in one] == [p.name for p in sorted((tmp_path / "many" / sub).iterdir())] and len(one) == 4
        assert all(p.read_bytes() == (tmp_path / "many" / sub / p.name).read_bytes() for p in one)
    with Image.open(tmp_path / "many" / "frames" / "00002.png") as image:
        assert image.format == "PNG" and image.mode == "RGB"
        pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)  # [3, H, W] uint8
    assert torch.equal(pixels, (rgb[2].clamp(0, 1) * 255 + 0.5).to(torch.uint8))
    with Image.open(tmp_path / "many" / "mask" / "00003.png") as image:
        assert image.mode == "L" and torch.equal(torch.from_numpy(np.asarray(image) > 127), mask[3, 0])


def test_frame_folder_gaps_and_counts_are_errors(tmp_path):
    rgb = torch.zeros(3, 3, 4, 4)
    write_frames(tmp_path, rgb, depth=torch.ones(2, 1, 4, 4))
    with pytest.raises(InputError, match="2 depth files for 3 frames"):
        read_frame_folder(tmp_path)
    (tmp_path / "frames" / "00001.png").unlink()
    with pytest.raises(InputError, match=r"missing \[1\]"):
        read_frame_folder(tmp_path)
    with pytest.raises(InputError, match="no frames"):
        read_frame_folder(tmp_path / "empty")


def test_read_image_refuses_what_it_cannot_use_faithfully(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "gray.png"), np.zeros((4, 4), np.uint8))
    cv2.imwrite(str(tmp_path / "rgba.png"), np.zeros((4, 4, 4), np.uint8))
    cv2.imwrite(str(tmp_path / "deep.png"), np.zeros((4, 4, 3), np.uint16))
    (tmp_path / "junk.png").write_bytes(b"not an image")
    for name, message in [("gray", "grayscale"), ("rgba", "RGBA"), ("deep", "uint16"), ("junk", "cannot decode"),
                          ("missing", "not found")]:
        with pytest.raises(InputError, match=message):
            read_image(tmp_path / f"{name}.png")
    rgb = torch.rand(3, 5, 7)
    write_image(tmp_path / "ok.png", rgb)
    assert (read_image(tmp_path / "ok.png") - rgb).abs().max() <= 0.5 / 255 + 1e-6
    # channel order: a pure red pixel written by another library reads back as red
    import imageio.v3 as iio

    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    iio.imwrite(tmp_path / "red.png", red)
    assert read_image(tmp_path / "red.png")[:, 0, 0].tolist() == [1.0, 0.0, 0.0]


def test_output_dir_is_all_or_nothing(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with output_dir(target) as d:
            (d / "a.txt").write_text("x")
            raise RuntimeError("boom")
    assert not target.exists() and not (tmp_path / "run.partial").exists()
    with output_dir(target) as d:
        (d / "a.txt").write_text("y")
    assert (target / "a.txt").read_text() == "y" and not (tmp_path / "run.partial").exists()
