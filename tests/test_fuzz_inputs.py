"""Issue 14: generated malformed and hostile inputs over every command, run in-process.

Each case builds one bad input in its own folder and runs ``voyager-pipe`` on it. The contract:
exit code 2, exactly one stderr line naming the file or field, no traceback, nothing left behind
(no ``<out>``, ``<out>.partial`` or ``<out>.lock``), and no payload executed (pickles in .npy/.npz,
YAML python tags and torch.save'd objects would create a marker file: it must not exist).
The valid-but-unusual inputs at the end must keep working.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fuzz_support import FAST_GEN, assert_one_line_error, make_inputs, run_cli

W, H = 32, 24
MARKER_NAME = "PAYLOAD_RAN"


class Payload:
    """Unpickling this creates the marker file (what an attacker's file would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Path]:
    return make_inputs(tmp_path_factory.mktemp("valid"), W, H, frames=3)


# ------------------------------------------------------------------------------------------ builders
def _png(path: Path, array: np.ndarray) -> Path:
    import cv2

    assert cv2.imwrite(str(path), array)
    return path


def _rgb(h=H, w=W) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)


def _jpeg_bytes(h=H, w=W) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", _rgb(h, w))
    return data.tobytes()


def _png_bytes(array) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", array)
    return data.tobytes()


def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _big_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (tiny file: the data is a few bytes)."""
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _own_traj(frames, **top) -> dict:
    data = {"format": "voyager_pipe.trajectory", "version": 1, "convention": "opencv", "matrix": "w2c",
            "width": W, "height": H, "fov_x_deg": 60.0, "frames": frames}
    data.update(top)
    return data


EYE = np.eye(4).tolist()


def _deep(n: int) -> str:
    return "[" * n + "]" * n


# Each family: name -> function(tmp: Path, base: dict) -> (argv, names-to-look-for, [paths that must not exist])
# `out` is always tmp/"out" so "nothing left behind" is checked for every case.

def gen_with(base, tmp, image=None, depth=None, traj=None, extra=()):
    out = tmp / "out"
    argv = ["gen", "--image", image or base["image"], "--traj", traj or base["traj"], "--out", out, *FAST_GEN,
            *extra]
    if depth is not False:
        argv += ["--depth", depth or base["depth"]]
    return argv, out


IMAGE_CASES = {
    "missing": lambda t: t / "nope.png",
    "empty": lambda t: _write(t / "e.png", b""),
    "folder": lambda t: _mkdir(t / "dir.png"),
    "text": lambda t: _write(t / "t.png", b"hello, not an image\n"),
    "random_bytes": lambda t: _write(t / "r.png", np.random.default_rng(1).bytes(500)),
    "png_magic_only": lambda t: _write(t / "m.png", b"\x89PNG\r\n\x1a\n"),
    "png_truncated_half": lambda t: _write(t / "h.png", _png_bytes(_rgb())[: len(_png_bytes(_rgb())) // 2]),
    "png_truncated_header": lambda t: _write(t / "h2.png", _png_bytes(_rgb())[:40]),
    "jpeg_truncated_half": lambda t: _write(t / "j.jpg", _jpeg_bytes(96, 128)[: len(_jpeg_bytes(96, 128)) // 2]),
    "jpeg_truncated_end": lambda t: _write(t / "j2.jpg", _jpeg_bytes(96, 128)[:-40]),
    "jpeg_magic_only": lambda t: _write(t / "j3.jpg", b"\xff\xd8\xff"),
    "jpeg_corrupt_middle": lambda t: _write(t / "j4.jpg", _corrupt_middle(_jpeg_bytes(96, 128))),
    "grayscale": lambda t: _png(t / "g.png", _rgb()[..., 0]),
    "rgba": lambda t: _png(t / "a.png", np.dstack([_rgb(), np.full((H, W), 255, np.uint8)])),
    "rgb16": lambda t: _png(t / "s.png", _rgb().astype(np.uint16) * 257),
    "huge_header_20000": lambda t: _write(t / "big.png", _big_png_header(20000, 20000)),
    "huge_header_wide": lambda t: _write(t / "wide.png", _big_png_header(100000, 8)),
    "zero_width_header": lambda t: _write(t / "zw.png", _big_png_header(0, 10)),
    "gif_text_renamed": lambda t: _write(t / "x.gif", b"GIF89a" + b"\x00" * 10),
    "npy_as_image": lambda t: _write(t / "i.npy", _npy_bytes(np.zeros((H, W, 3), np.float32))),
    "bmp_truncated": lambda t: _write(t / "b.bmp", b"BM" + b"\x00" * 20),
    "tiff_truncated": lambda t: _write(t / "b.tif", b"II*\x00" + b"\x00" * 12),
    "webp_truncated": lambda t: _write(t / "w.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8),
    "size_mismatch_depth": lambda t: _png(t / "big.png", _rgb(H * 2, W * 2)),
    "fifo": lambda t: _fifo(t / "f.png"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _corrupt_middle(data: bytes) -> bytes:
    data = bytearray(data)
    mid = len(data) // 2
    data[mid: mid + 200] = b"\xff" * 200
    return bytes(data)


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _pfm(header: bytes, payload: bytes = b"") -> bytes:
    return header + payload


DEPTH_CASES = {
    "missing": lambda t: t / "nope.npy",
    "empty_npy": lambda t: _write(t / "e.npy", b""),
    "folder": lambda t: _mkdir(t / "d.npy"),
    "npy_magic_only": lambda t: _write(t / "m.npy", b"\x93NUMPY"),
    "npy_truncated": lambda t: _write(t / "tr.npy", _npy_bytes(np.ones((H, W), np.float32))[:-100]),
    "npy_bad_header": lambda t: _write(t / "bh.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'}  \n" + b"\x00" * 64),
    "npy_huge_shape": lambda t: _write(t / "hs.npy", b"\x93NUMPY\x01\x00\x46\x00" + b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }".ljust(69) + b"\n"),
    "npy_object_pickle": lambda t: _write(t / "o.npy", _npy_bytes(np.array([Payload(t / MARKER_NAME)], dtype=object))),
    "npy_structured": lambda t: _write(t / "s.npy", _npy_bytes(np.zeros((H, W), dtype=[("a", "f4"), ("b", "f4")]))),
    "npy_strings": lambda t: _write(t / "str.npy", _npy_bytes(np.full((H, W), "x"))),
    "npy_bool": lambda t: _write(t / "bool.npy", _npy_bytes(np.ones((H, W), bool))),
    "npy_complex": lambda t: _write(t / "c.npy", _npy_bytes(np.ones((H, W), np.complex64))),
    "npy_3_channels": lambda t: _write(t / "3c.npy", _npy_bytes(np.ones((H, W, 3), np.float32))),
    "npy_1d": lambda t: _write(t / "1d.npy", _npy_bytes(np.ones(H * W, np.float32))),
    "npy_scalar": lambda t: _write(t / "0d.npy", _npy_bytes(np.float32(2.0))),
    "npy_wrong_size": lambda t: _write(t / "ws.npy", _npy_bytes(np.ones((H + 1, W), np.float32))),
    "npy_all_nan": lambda t: _write(t / "nan.npy", _npy_bytes(np.full((H, W), np.nan, np.float32))),
    "npy_all_zero": lambda t: _write(t / "z.npy", _npy_bytes(np.zeros((H, W), np.float32))),
    "npy_all_negative": lambda t: _write(t / "neg.npy", _npy_bytes(-np.ones((H, W), np.float32))),
    "npy_all_inf": lambda t: _write(t / "inf.npy", _npy_bytes(np.full((H, W), np.inf, np.float32))),
    "npy_pickle_protocol": lambda t: _write(t / "p.npy", pickle.dumps(Payload(t / MARKER_NAME))),
    "npz_not_zip": lambda t: _write(t / "nz.npz", b"PK\x03\x04garbage"),
    "npz_empty": lambda t: _write(t / "ez.npz", _npz_bytes()),
    "npz_many_keys": lambda t: _write(t / "mk.npz", _npz_bytes(a=np.ones((H, W)), b=np.ones((H, W)))),
    "npz_object_pickle": lambda t: _write(t / "op.npz", _npz_object(t)),
    "npz_truncated": lambda t: _write(t / "tz.npz", _npz_bytes(depth=np.ones((H, W), np.float32))[:-60]),
    "npz_member_corrupt": lambda t: _write(t / "mc.npz", _npz_corrupt_member()),
    "pfm_bad_magic": lambda t: _write(t / "b.pfm", b"P6\n32 24\n-1.0\n" + b"\x00" * (4 * W * H)),
    "pfm_nan_scale": lambda t: _write(t / "ns.pfm", b"Pf\n32 24\nnan\n" + b"\x00" * (4 * W * H)),
    "pfm_zero_scale": lambda t: _write(t / "zs.pfm", b"Pf\n32 24\n0\n" + b"\x00" * (4 * W * H)),
    "pfm_negative_dim": lambda t: _write(t / "nd.pfm", b"Pf\n-32 24\n-1.0\n" + b"\x00" * (4 * W * H)),
    "pfm_huge_dim": lambda t: _write(t / "hd.pfm", b"Pf\n200000 200000\n-1.0\n" + b"\x00" * 64),
    "pfm_truncated": lambda t: _write(t / "tp.pfm", b"Pf\n32 24\n-1.0\n" + b"\x00" * 100),
    "pfm_text_dims": lambda t: _write(t / "td.pfm", b"Pf\nab cd\n-1.0\n" + b"\x00" * 100),
    "png_8bit": lambda t: _png(t / "d8.png", np.full((H, W), 100, np.uint8)),
    "png_rgb16": lambda t: _png(t / "d3.png", np.full((H, W, 3), 1000, np.uint16)),
    "png_garbage": lambda t: _write(t / "g.png", b"\x89PNG\r\n\x1a\n" + b"\x01" * 50),
    "png_huge_header": lambda t: _write(t / "hh.png", _big_png_header(20000, 20000)),
    "tiff_garbage": lambda t: _write(t / "g.tif", b"II*\x00" + b"\x07" * 40),
    "exr_garbage": lambda t: _write(t / "g.exr", b"v/1\x01" + b"\x00" * 40),
    "exr_text": lambda t: _write(t / "t.exr", b"not an exr at all"),
    "unknown_suffix": lambda t: _write(t / "d.txt", b"1 2 3"),
    "png_all_zero": lambda t: _png(t / "z16.png", np.zeros((H, W), np.uint16)),
    "fifo": lambda t: _fifo(t / "f.npy"),
}


def _npz_object(t: Path) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, depth=np.array([Payload(t / MARKER_NAME)], dtype=object))
    return buffer.getvalue()


def _npz_corrupt_member() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("depth.npy", b"\x93NUMPY\x01\x00garbage")
    return buffer.getvalue()


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _ns(frames=None, **top) -> dict:
    frame = {"transform_matrix": EYE, "file_path": "a.png"}
    data = {"camera_model": "OPENCV", "w": W, "h": H, "fl_x": 30.0, "fl_y": 30.0, "cx": 16.0, "cy": 12.0,
            "frames": frames if frames is not None else [frame, frame]}
    data.update(top)
    return data


def _colmap(t: Path, cameras: str, images: str) -> Path:
    folder = t / "model"
    folder.mkdir()
    (folder / "cameras.txt").write_text(cameras)
    (folder / "images.txt").write_text(images)
    return folder


CAM_OK = "1 PINHOLE 32 24 30 30 16 12\n"
IMG = "{i} 1 0 0 0 0 0 {z} 1 im{i:02d}.png\n"


def _colmap_images(n, points_lines=True):
    return "".join(IMG.format(i=i + 1, z=0.1 * i) + ("\n" if points_lines else "") for i in range(n))


RE10K_LINE = "0 0.9 1.2 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"

TRAJ_CASES = {
    "missing": lambda t: t / "nope.json",
    "empty_file": lambda t: _text(t / "e.json", ""),
    "not_utf8": lambda t: _write(t / "u.json", b'{"format": "\xff\xfe"}'),
    "binary_garbage": lambda t: _write(t / "g.json", np.random.default_rng(3).bytes(300)),
    "json_truncated": lambda t: _text(t / "tr.json", json.dumps(_own_traj([{"w2c": EYE}]))[:-20]),
    "json_deep_nesting": lambda t: _text(t / "deep.json", '{"format": ' + _deep(100_000) + "}"),
    "json_deep_frames": lambda t: _text(t / "deep2.json", json.dumps(_own_traj([]))[:-2] + _deep(5000) + "]}"),
    "json_array_top": lambda t: _text(t / "arr.json", "[1, 2, 3]"),
    "json_wrong_format": lambda t: _json(t / "wf.json", {"format": "other"}),
    "own_version_2": lambda t: _json(t / "v2.json", _own_traj([{"w2c": EYE}], version=2)),
    "own_no_frames": lambda t: _json(t / "nf.json", _own_traj([])),
    "own_frames_not_list": lambda t: _json(t / "fl.json", _own_traj({"a": 1})),
    "own_width_true": lambda t: _json(t / "wt.json", _own_traj([{"w2c": EYE}], width=True)),
    "own_width_float": lambda t: _json(t / "wfl.json", _own_traj([{"w2c": EYE}], width=32.5)),
    "own_width_infinity": lambda t: _text(t / "winf.json", json.dumps(_own_traj([{"w2c": EYE}])).replace('"width": 32', '"width": Infinity')),
    "own_width_huge": lambda t: _json(t / "wh.json", _own_traj([{"w2c": EYE}], width=10**30)),
    "own_width_negative": lambda t: _json(t / "wn.json", _own_traj([{"w2c": EYE}], width=-32)),
    "own_width_string": lambda t: _json(t / "ws.json", _own_traj([{"w2c": EYE}], width="32")),
    "own_size_100000": lambda t: _json(t / "s1e5.json", _own_traj([{"w2c": EYE}], width=100000, height=100000)),
    "own_nan_pose": lambda t: _text(t / "nan.json", json.dumps(_own_traj([{"w2c": EYE}])).replace("1.0, 0.0, 0.0, 0.0]", "NaN, 0.0, 0.0, 0.0]", 1)),
    "own_infinity_pose": lambda t: _text(t / "inf.json", json.dumps(_own_traj([{"w2c": EYE}])).replace("1.0, 0.0, 0.0, 0.0]", "Infinity, 0.0, 0.0, 0.0]", 1)),
    "own_3x3_pose": lambda t: _json(t / "33.json", _own_traj([{"w2c": np.eye(3).tolist()}])),
    "own_string_pose": lambda t: _json(t / "sp.json", _own_traj([{"w2c": "identity"}])),
    "own_ragged_pose": lambda t: _json(t / "rp.json", _own_traj([{"w2c": [[1, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}])),
    "own_reflection": lambda t: _json(t / "refl.json", _own_traj([{"w2c": np.diag([-1.0, 1, 1, 1]).tolist()}])),
    "own_scaled_rotation": lambda t: _json(t / "sc.json", _own_traj([{"w2c": np.diag([2.0, 2, 2, 1]).tolist()}])),
    "own_bad_bottom_row": lambda t: _json(t / "bb.json", _own_traj([{"w2c": EYE[:3] + [[0, 0, 1, 1]]}])),
    "own_fov_zero": lambda t: _json(t / "f0.json", _own_traj([{"w2c": EYE}], fov_x_deg=0)),
    "own_fov_180": lambda t: _json(t / "f180.json", _own_traj([{"w2c": EYE}], fov_x_deg=180)),
    "own_fov_nan": lambda t: _text(t / "fnan.json", json.dumps(_own_traj([{"w2c": EYE}])).replace('"fov_x_deg": 60.0', '"fov_x_deg": NaN')),
    "own_fov_true": lambda t: _json(t / "ftrue.json", _own_traj([{"w2c": EYE}], fov_x_deg=True)),
    "own_no_intrinsics": lambda t: _json(t / "ni.json", {k: v for k, v in _own_traj([{"w2c": EYE}]).items() if k != "fov_x_deg"}),
    "own_K_negative_focal": lambda t: _json(t / "kn.json", {**{k: v for k, v in _own_traj([{"w2c": EYE}]).items() if k != "fov_x_deg"}, "K": [[-30, 0, 16], [0, 30, 12], [0, 0, 1]]}),
    "own_K_zero": lambda t: _json(t / "kz.json", {**{k: v for k, v in _own_traj([{"w2c": EYE}]).items() if k != "fov_x_deg"}, "K": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}),
    "own_convention_bad": lambda t: _json(t / "cb.json", _own_traj([{"w2c": EYE}], convention="blender")),
    "own_matrix_missing": lambda t: _json(t / "mm.json", _own_traj([{"c2w": EYE}])),
    "own_big_int_in_matrix": lambda t: _text(t / "bi.json", json.dumps(_own_traj([{"w2c": EYE}])).replace("1.0, 0.0, 0.0, 0.0]", "1" + "0" * 400 + ", 0.0, 0.0, 0.0]", 1)),
    "own_too_many_frames": lambda t: _json(t / "many.json", _own_traj([{"w2c": EYE}] * 10_001)),
    "ns_camera_angle_pi": lambda t: _json(t / "transforms.json", _ns_angle(np.pi)),
    "ns_camera_angle_zero": lambda t: _json(t / "transforms.json", _ns_angle(0.0)),
    "ns_camera_angle_negative": lambda t: _json(t / "transforms.json", _ns_angle(-1.0)),
    "ns_camera_angle_string": lambda t: _json(t / "transforms.json", _ns_angle("wide")),
    "ns_w_true": lambda t: _json(t / "transforms.json", _ns(w=True)),
    "ns_w_zero": lambda t: _json(t / "transforms.json", _ns(w=0)),
    "ns_frames_missing": lambda t: _json(t / "transforms.json", {"fl_x": 1}),
    "ns_fisheye": lambda t: _json(t / "transforms.json", _ns(camera_model="OPENCV_FISHEYE")),
    "ns_matrix_nan": lambda t: _text(t / "transforms.json", json.dumps(_ns()).replace("[1.0, 0.0, 0.0, 0.0]", "[NaN, 0.0, 0.0, 0.0]", 1)),
    "ns_deep": lambda t: _text(t / "transforms.json", '{"frames": [{"transform_matrix": ' + _deep(3000) + "}]}"),
    "colmap_no_points_lines": lambda t: _colmap(t, CAM_OK, _colmap_images(9, points_lines=False)),
    "colmap_unknown_camera": lambda t: _colmap(t, CAM_OK, "1 1 0 0 0 0 0 0 7 a.png\n\n"),
    "colmap_bad_model": lambda t: _colmap(t, "1 WEIRD 32 24 1 2 3\n", "1 1 0 0 0 0 0 0 1 a.png\n\n"),
    "colmap_param_count": lambda t: _colmap(t, "1 PINHOLE 32 24 30\n", "1 1 0 0 0 0 0 0 1 a.png\n\n"),
    "colmap_zero_quaternion": lambda t: _colmap(t, CAM_OK, "1 0 0 0 0 0 0 0 1 a.png\n\n"),
    "colmap_nan_quaternion": lambda t: _colmap(t, CAM_OK, "1 nan 0 0 0 0 0 0 1 a.png\n\n"),
    "colmap_text_number": lambda t: _colmap(t, CAM_OK, "1 one 0 0 0 0 0 0 1 a.png\n\n"),
    "colmap_empty_images": lambda t: _colmap(t, CAM_OK, "# nothing\n"),
    "colmap_huge_size": lambda t: _colmap(t, "1 PINHOLE 100000 100000 30 30 16 12\n", "1 1 0 0 0 0 0 0 1 a.png\n\n"),
    "colmap_missing_cameras": lambda t: _colmap_missing(t),
    "colmap_not_utf8": lambda t: _colmap_bytes(t),
    "re10k_short_line": lambda t: _text(t / "r.txt", "https://x\n" + "0 1 2 3\n" * 2),
    "re10k_text_value": lambda t: _text(t / "r.txt", "https://x\n" + RE10K_LINE.replace("0.9", "abc") * 2),
    "re10k_nan": lambda t: _text(t / "r.txt", "https://x\n" + RE10K_LINE.replace("0.9", "nan") * 2),
    "re10k_zero_focal": lambda t: _text(t / "r.txt", "https://x\n" + RE10K_LINE.replace("0.9 1.2", "0 0") * 2),
    "re10k_only_url": lambda t: _text(t / "r.txt", "https://x\n"),
    "unknown_text": lambda t: _text(t / "r.txt", "hello\nworld\n"),
    "yaml_file": lambda t: _text(t / "t.yaml", "frames: []\n"),
    "fifo": lambda t: _fifo(t / "f.json"),
}


def _ns_angle(angle):
    data = _ns()
    del data["fl_x"], data["fl_y"]
    data["camera_angle_x"] = angle
    return data


def _colmap_missing(t: Path) -> Path:
    folder = t / "model"
    folder.mkdir()
    (folder / "images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n")
    return folder


def _colmap_bytes(t: Path) -> Path:
    folder = t / "model"
    folder.mkdir()
    (folder / "cameras.txt").write_text(CAM_OK)
    (folder / "images.txt").write_bytes(b"1 1 0 0 0 0 0 0 1 \xff\xfe.png\n\n")
    return folder


def _ply(t: Path, header: str, body: bytes = b"") -> Path:
    path = t / "cloud.ply"
    path.write_bytes(header.encode() + body)
    return path


PLY_HEAD = "ply\nformat {fmt} 1.0\nelement vertex {n}\nproperty float x\nproperty float y\nproperty float z\nend_header\n"


def _ply_binary(n_header, points, fmt="binary_little_endian"):
    return PLY_HEAD.format(fmt=fmt, n=n_header), np.asarray(points, "<f4").tobytes()


PLY_CASES = {
    "missing": lambda t: t / "nope.ply",
    "empty": lambda t: _ply(t, ""),
    "not_ply": lambda t: _ply(t, "hello\n"),
    "no_end_header": lambda t: _ply(t, "ply\nformat ascii 1.0\nelement vertex 1\n"),
    "endless_header": lambda t: _ply(t, "ply\nformat ascii 1.0\n" + "comment x\n" * 5000),
    "no_format": lambda t: _ply(t, "ply\nelement vertex 1\nproperty float x\nend_header\n", b"1\n"),
    "bad_format": lambda t: _ply(t, "ply\nformat binary_middle_endian 1.0\nelement vertex 1\nend_header\n"),
    "negative_count": lambda t: _ply(t, *_ply_binary(-5, [[0, 0, 1]])),
    "absurd_count": lambda t: _ply(t, *_ply_binary(10**15, [[0, 0, 1]])),
    "text_count": lambda t: _ply(t, *_ply_binary("many", [[0, 0, 1]])),
    "count_missing": lambda t: _ply(t, "ply\nformat ascii 1.0\nelement vertex\nproperty float x\nend_header\n"),
    "property_before_element": lambda t: _ply(t, "ply\nformat ascii 1.0\nproperty float x\nend_header\n"),
    "unknown_type": lambda t: _ply(t, "ply\nformat ascii 1.0\nelement vertex 1\nproperty quad x\nend_header\n1\n"),
    "property_line_short": lambda t: _ply(t, "ply\nformat ascii 1.0\nelement vertex 1\nproperty float\nend_header\n1\n"),
    "no_vertex_element": lambda t: _ply(t, "ply\nformat ascii 1.0\nelement face 0\nend_header\n"),
    "no_z_property": lambda t: _ply(t, "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n1 2\n"),
    "binary_truncated": lambda t: _ply(t, *_ply_binary(10, [[0, 0, 1]] * 3)),
    "binary_header_ascii_body": lambda t: _ply(t, PLY_HEAD.format(fmt="binary_little_endian", n=2), b"0 0 1\n0.5 0.25 2\n1 1 1\n" * 3),
    "ascii_fewer_rows": lambda t: _ply(t, PLY_HEAD.format(fmt="ascii", n=5), b"0 0 1\n0 0 2\n"),
    "ascii_text_values": lambda t: _ply(t, PLY_HEAD.format(fmt="ascii", n=2), b"a b c\nd e f\n"),
    "ascii_ragged": lambda t: _ply(t, PLY_HEAD.format(fmt="ascii", n=2), b"0 0 1\n0 0\n"),
    "ascii_extra_columns": lambda t: _ply(t, PLY_HEAD.format(fmt="ascii", n=2), b"0 0 1 5 6\n0 0 2 5 6\n"),
    "all_nan": lambda t: _ply(t, *_ply_binary(3, [[np.nan, np.nan, np.nan]] * 3)),
    "all_inf": lambda t: _ply(t, *_ply_binary(2, [[np.inf, 0, 1], [0, -np.inf, 1]])),
    "empty_cloud": lambda t: _ply(t, *_ply_binary(0, np.zeros((0, 3)))),
    "list_in_vertex": lambda t: _ply(t, "ply\nformat ascii 1.0\nelement vertex 1\nproperty list uchar int idx\nend_header\n1 1\n"),
    "non_ascii_header": lambda t: _ply(t, "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\xe9\nend_header\n"),
    "folder": lambda t: _mkdir(t / "dir.ply"),
    "fifo": lambda t: _fifo(t / "f.ply"),
}


def _yaml(t: Path, text: str) -> Path:
    return _text(t / "c.yaml", text)


CONFIG_FILE_CASES = {
    "missing": lambda t: t / "nope.yaml",
    "folder": lambda t: _mkdir(t / "cfg.yaml"),
    "invalid_yaml": lambda t: _yaml(t, "render: [\n"),
    "tabs": lambda t: _yaml(t, "render:\n\tsplat_radius: 1\n"),
    "not_utf8": lambda t: _write(t / "c.yaml", b"seed: \xff\xfe\n"),
    "top_level_list": lambda t: _yaml(t, "- 1\n- 2\n"),
    "top_level_string": lambda t: _yaml(t, "hello\n"),
    "unknown_key": lambda t: _yaml(t, "rendr:\n  splat_radius: 1\n"),
    "unknown_nested_key": lambda t: _yaml(t, "render:\n  radius: 1\n"),
    "wrong_type": lambda t: _yaml(t, "render:\n  splat_radius: big\n"),
    "section_not_mapping": lambda t: _yaml(t, "render: 3\n"),
    "python_tag": lambda t: _yaml(t, f"seed: !!python/object/apply:pathlib.Path.touch ['{t / MARKER_NAME}']\n"),
    "python_name_tag": lambda t: _yaml(t, "seed: !!python/name:os.system\n"),
    "deep_nesting": lambda t: _yaml(t, "render: " + _deep(100_000) + "\n"),
    "deep_mapping": lambda t: _yaml(t, "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 300))),
    "billion_laughs": lambda t: _yaml(t, _laughs()),
    "huge_int_seed": lambda t: _yaml(t, "seed: " + "9" * 5000 + "\n"),
    "seed_65_bits": lambda t: _yaml(t, "seed: 36893488147419103232\n"),
    "nan_value": lambda t: _yaml(t, "render:\n  near: .nan\n"),
    "inf_value": lambda t: _yaml(t, "generate:\n  shift: .inf\n"),
    "fps_zero": lambda t: _yaml(t, "output:\n  fps: 0\n"),
    "device_meta": lambda t: _yaml(t, "device: meta\n"),
    "device_bogus": lambda t: _yaml(t, "device: tpu9\n"),
    "duplicate_anchor_merge": lambda t: _yaml(t, "render: &a\n  splat_radius: 1\ngenerate: *a\n"),
    "fifo_not_regular": lambda t: _fifo(t / "c.yaml"),
    "too_large": lambda t: _write(t / "c.yaml", b"# " + b"x" * (65 << 20)),
}


def _fifo(path: Path) -> Path:
    import os

    os.mkfifo(path)  # reading it would block forever: a reader must refuse non-regular files
    return path


def _laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


SET_CASES = {
    "no_equals": "render.splat_radius",
    "empty_key": "=3",
    "empty_part": "render..splat_radius=1",
    "unknown_section": "nope.x=1",
    "unknown_field": "render.nope=1",
    "bad_literal": "render.backend=opengl",
    "bool_as_int": "render.splat_radius=true",
    "float_as_int": "render.splat_radius=1.5",
    "string_as_float": "render.near=close",
    "splat_radius_huge": "render.splat_radius=100000",
    "render_scale_zero": "render.render_scale=0",
    "near_negative": "render.near=-1",
    "steps_huge": "generate.steps=1000000000000",
    "steps_zero": "generate.steps=0",
    "clip_len_huge": "generate.clip_len=100000",
    "shift_negative": "generate.shift=-2",
    "sigma_init_zero": "generate.sigma_init=0",
    "sigma_refine_above_one": "generate.sigma_refine=1.5",
    "inpaint_radius_negative": "warp.inpaint_radius=-3",
    "fps_zero": "output.fps=0",
    "fps_negative": "output.fps=-12",
    "seed_negative": "seed=-1",
    "seed_65_bits": "seed=36893488147419103232",
    "seed_string": "seed=abc",
    "device_meta": "device=meta",
    "device_cuda_index_bogus": "device=cuda:x",
    "normal_angle_nan": "cache.normal_angle_deg=.nan",
    "normal_angle_inf": "cache.normal_angle_deg=.inf",
    "normal_angle_over": "cache.normal_angle_deg=720",
    "max_points_negative": "cache.max_points=-1",
    "file_scale_zero": "depth.file_scale=0",
    "png_scale_negative": "depth.png_scale=-0.001",
    "max_depth_zero": "depth.max_depth=0",
    "python_tag": "seed=!!python/object/apply:pathlib.Path.touch ['{marker}']",
    "yaml_invalid": "render=[",
    "deep_value": "render.splat_radius=" + _deep(50_000),
    "section_as_scalar": "render=3",
    "list_for_int": "render.splat_radius=[1, 2]",
    "float_overflow": "generate.sigma_init=1e400",
    "voyager_dtype": "voyager.dtype=int8",
    "voyager_height_small": "voyager.height=8",
    "eval_metric_unknown_checked": "eval.depth_align=cubic",
}


def _frame_folder(t: Path, name: str, n=3, size=(H, W), depth=True) -> Path:
    from voyager_pipe.io.frames import write_frames

    import torch

    folder = t / name
    rgb = torch.rand(n, 3, *size)
    d = torch.full((n, 1, *size), 2.0) if depth else None
    write_frames(folder, rgb, d)
    return folder


def _eval_case(kind):
    def build(t: Path):
        pred = _frame_folder(t, "pred")
        gt = _frame_folder(t, "gt")
        target = pred
        if kind == "corrupt_frame":
            (pred / "frames" / "00001.png").write_bytes(b"garbage")
            names = ["00001.png"]
        elif kind == "truncated_frame":
            data = (pred / "frames" / "00002.png").read_bytes()
            (pred / "frames" / "00002.png").write_bytes(data[: len(data) // 2])
            names = ["00002.png"]
        elif kind == "mixed_sizes":
            import cv2

            cv2.imwrite(str(pred / "frames" / "00001.png"), _rgb(H + 2, W))
            names = ["00001.png"]
        elif kind == "gt_other_size":
            gt = _frame_folder(t, "gt2", size=(H + 4, W))
            names = [str(gt), str(pred)]
        elif kind == "gt_other_count":
            gt = _frame_folder(t, "gt3", n=2)
            names = [str(gt), str(pred)]
        elif kind == "gap":
            (pred / "frames" / "00001.png").unlink()
            names = ["frames", "missing"]
        elif kind == "no_frames":
            pred = t / "emptyfolder"
            pred.mkdir()
            names = [str(pred)]
        elif kind == "pred_missing":
            pred = t / "nothere"
            names = [str(pred)]
        elif kind == "pred_is_file":
            pred = _write(t / "file", b"x")
            names = [str(pred)]
        elif kind == "depth_corrupt":
            (pred / "depth" / "00001.npy").write_bytes(b"\x93NUMPY garbage")
            names = ["00001.npy"]
        elif kind == "depth_pickle":
            (pred / "depth" / "00001.npy").write_bytes(_npy_bytes(np.array([Payload(t / MARKER_NAME)], dtype=object)))
            names = ["00001.npy"]
        elif kind == "depth_wrong_shape":
            np.save(pred / "depth" / "00001.npy", np.ones((H, W + 1), np.float32))
            names = ["00001.npy"]
        elif kind == "depth_count":
            (pred / "depth" / "00002.npy").unlink()
            names = ["depth"]
        elif kind == "mask_corrupt":
            (pred / "mask").mkdir()
            for i in range(3):
                _png(pred / "mask" / f"{i:05d}.png", np.zeros((H, W), np.uint8))
            (pred / "mask" / "00001.png").write_bytes(b"nope")
            names = ["00001.png"]
        elif kind == "cameras_corrupt":
            (pred / "cameras.json").write_text("{ not json")
            names = ["cameras.json"]
        elif kind == "cameras_count":
            from voyager_pipe.camera.presets import make_preset
            from voyager_pipe.camera.trajectory_io import write_trajectory

            write_trajectory(pred / "cameras.json", make_preset("forward", 5, W, H))
            names = ["cameras.json"]
        elif kind == "rgba_frame":
            _png(pred / "frames" / "00000.png", np.dstack([_rgb(), np.full((H, W), 255, np.uint8)]))
            names = ["00000.png"]
        elif kind == "report_into_gt":
            return (["eval", "--pred", pred, "--gt", gt, "--metrics", "psnr", "--out", gt / "frames" / "00000.png"],
                    ["--out"], [])
        elif kind == "report_over_pred_frame":
            return (["eval", "--pred", pred, "--gt", gt, "--metrics", "psnr", "--out", pred / "frames" / "00001.png"],
                    ["--out"], [])
        elif kind == "metric_unknown":
            return ["eval", "--pred", pred, "--gt", gt, "--metrics", "psnr,fid", "--out", t / "m.json"], ["eval.metrics", "fid"], [t / "m.json"]
        else:
            raise AssertionError(kind)
        del target
        return ["eval", "--pred", pred, "--gt", gt, "--metrics", "psnr,depth", "--out", t / "m.json", "--no-plots"], names, [t / "m.json"]

    return build


EVAL_CASES = {k: _eval_case(k) for k in (
    "corrupt_frame", "truncated_frame", "mixed_sizes", "gt_other_size", "gt_other_count", "gap", "no_frames",
    "pred_missing", "pred_is_file", "depth_corrupt", "depth_pickle", "depth_wrong_shape", "depth_count",
    "mask_corrupt", "cameras_corrupt", "cameras_count", "rgba_frame", "metric_unknown", "report_into_gt",
    "report_over_pred_frame")}


def _torch_save(path: Path, obj) -> Path:
    import torch

    torch.save(obj, path)
    return path


LPIPS_CASES = {
    "random_bytes": lambda t: _write(t / "w.pth", np.random.default_rng(5).bytes(2000)),
    "empty": lambda t: _write(t / "w.pth", b""),
    "zip_garbage": lambda t: _write(t / "w.pth", b"PK\x03\x04" + b"\x00" * 100),
    "pickle_payload": lambda t: _write(t / "w.pth", pickle.dumps({"features.0.weight": Payload(t / MARKER_NAME)})),
    "torch_save_payload": lambda t: _torch_save(t / "w.pth", {"features.0.weight": Payload(t / MARKER_NAME)}),
    "torch_save_list": lambda t: _torch_save(t / "w.pth", [1, 2, 3]),
    "no_features": lambda t: _torch_save(t / "w.pth", {"classifier.0.weight": __import__("torch").zeros(2)}),
    "wrong_shapes": lambda t: _torch_save(t / "w.pth", {"features.0.weight": __import__("torch").zeros(2, 2)}),
    "truncated": lambda t: _write(t / "w.pth", _torch_bytes()[:-100]),
    "folder": lambda t: _mkdir(t / "w.pth"),
}


def _torch_bytes() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, buffer)
    return buffer.getvalue()


def _args_case(kind):
    def build(t: Path, base):
        out = t / "out"
        if kind == "no_image_flag":
            return ["gen", "--traj", base["traj"], "--out", out], ["--image"]
        if kind == "unknown_flag":
            return ["gen", "--image", base["image"], "--traj", base["traj"], "--bogus", "1"], ["--bogus"]
        if kind == "unknown_command":
            return ["bogus"], ["bogus"]
        if kind == "seed_text":
            return ["gen", "--image", base["image"], "--traj", base["traj"], "--seed", "abc"], ["--seed"]
        if kind == "backend_bad":
            return ["gen", "--image", base["image"], "--traj", base["traj"], "--backend", "magic"], ["--backend"]
        if kind == "render_size_huge":
            return ["render", "--points", t / "x.ply", "--traj", base["traj"], "--out", out, "--size", "100000x100000"], ["--size"]
        if kind == "render_size_bad":
            return ["render", "--points", t / "x.ply", "--traj", base["traj"], "--out", out, "--size", "big"], ["--size"]
        if kind == "render_batch_zero":
            return ["render", "--points", t / "x.ply", "--traj", base["traj"], "--out", out, "--batch", "0"], ["--batch"]
        if kind == "traj_frames_huge":
            return ["traj", "make", "forward", "--frames", "100000000", "--out", t / "t.json"], ["--frames"]
        if kind == "traj_frames_float":
            return ["traj", "make", "forward", "--frames", "1e8", "--out", t / "t.json"], ["--frames"]
        if kind == "traj_frames_zero":
            return ["traj", "make", "forward", "--frames", "0", "--out", t / "t.json"], ["--frames"]
        if kind == "traj_nan_distance":
            return ["traj", "make", "forward", "--frames", "3", "--distance", "nan", "--out", t / "t.json"], ["--distance"]
        if kind == "traj_inf_angle":
            return ["traj", "make", "orbit", "--frames", "3", "--angle", "inf", "--out", t / "t.json"], ["--angle"]
        if kind == "traj_fov_zero":
            return ["traj", "make", "forward", "--frames", "3", "--fov", "0", "--out", t / "t.json"], ["--fov"]
        if kind == "traj_huge_distance":
            return ["traj", "make", "forward", "--frames", "3", "--distance", "1e308", "--speed", "1e308", "--out", t / "t.json"], ["preset", "t.json"]
        if kind == "traj_size_huge":
            return ["traj", "make", "forward", "--frames", "3", "--size", "99999x99999", "--out", t / "t.json"], ["--size"]
        if kind == "out_empty":
            return [*gen_with(base, t)[0][:5], "--out", "", *FAST_GEN, "--depth", base["depth"]], ["--out"]
        if kind == "out_parent_is_file":
            f = _write(t / "file", b"x")
            return [*gen_with(base, t)[0][:5], "--out", f / "sub", *FAST_GEN, "--depth", base["depth"]], [str(f)]
        if kind == "out_name_too_long":
            return [*gen_with(base, t)[0][:5], "--out", t / ("x" * 300), *FAST_GEN, "--depth", base["depth"]], ["--out"]
        if kind == "out_is_input_folder":
            folder = t / "in"
            folder.mkdir()
            for k, v in base.items():
                (folder / v.name).write_bytes(v.read_bytes())
            return ["gen", "--image", folder / "image.png", "--traj", folder / "traj.json", "--depth", folder / "depth.npy",
                    "--out", folder, "--overwrite", *FAST_GEN], [str(folder)]
        if kind == "bench_bad_set":
            return ["bench", "--quick", "--work", out, "--set", "render.splat_radius=100000"], ["render.splat_radius"]
        if kind == "bench_unknown_set":
            return ["bench", "--quick", "--work", out, "--set", "nope=1"], ["nope"]
        if kind == "resume_nothing":
            return [*gen_with(base, t)[0], "--resume"], ["resume", str(out)]
        if kind == "depth_model_missing_beats_sidecar":
            folder = t / "side"
            folder.mkdir()
            (folder / "image.png").write_bytes(base["image"].read_bytes())
            (folder / "image_depth.npy").write_bytes(base["depth"].read_bytes())
            return ["gen", "--image", folder / "image.png", "--traj", base["traj"], "--out", out, *FAST_GEN,
                    "--depth-model", t / "no_such_model"], ["no_such_model"]
        raise AssertionError(kind)

    return build


ARG_CASES = {k: _args_case(k) for k in (
    "no_image_flag", "unknown_flag", "unknown_command", "seed_text", "backend_bad", "render_size_huge",
    "render_size_bad", "render_batch_zero", "traj_frames_huge", "traj_frames_float", "traj_frames_zero",
    "traj_nan_distance", "traj_inf_angle", "traj_fov_zero", "traj_huge_distance", "traj_size_huge", "out_empty",
    "out_parent_is_file", "out_name_too_long", "out_is_input_folder", "bench_bad_set", "bench_unknown_set",
    "resume_nothing", "depth_model_missing_beats_sidecar")}


# ------------------------------------------------------------------------------------------ the tests
def _check(tmp_path, argv, names, left_behind=()):
    out = tmp_path / "out"
    assert_one_line_error(argv, names, left_behind=[out, *left_behind])
    assert not list(tmp_path.rglob(MARKER_NAME)), "a payload in the input ran"


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_fuzz_image(case, base, tmp_path):
    bad = IMAGE_CASES[case](tmp_path)
    argv, _ = gen_with(base, tmp_path, image=bad)
    _check(tmp_path, argv, [bad.name, str(bad)] + (["depth"] if case == "size_mismatch_depth" else []))


@pytest.mark.parametrize("case", sorted(DEPTH_CASES))
def test_fuzz_depth(case, base, tmp_path):
    bad = DEPTH_CASES[case](tmp_path)
    argv, _ = gen_with(base, tmp_path, depth=bad)
    _check(tmp_path, argv, [bad.name])


@pytest.mark.parametrize("case", sorted(TRAJ_CASES))
def test_fuzz_trajectory_gen(case, base, tmp_path):
    bad = TRAJ_CASES[case](tmp_path)
    argv, _ = gen_with(base, tmp_path, traj=bad)
    _check(tmp_path, argv, [bad.name, str(bad)])


@pytest.mark.parametrize("case", sorted(TRAJ_CASES))
def test_fuzz_trajectory_show(case, tmp_path):
    bad = TRAJ_CASES[case](tmp_path)
    argv = ["traj", "show", bad] + (["--size", "32x24"] if bad.suffix == ".txt" else [])
    _check(tmp_path, argv, [bad.name, str(bad)])


@pytest.mark.parametrize("case", sorted(PLY_CASES))
def test_fuzz_ply(case, base, tmp_path):
    bad = PLY_CASES[case](tmp_path)
    _check(tmp_path, ["render", "--points", bad, "--traj", base["traj"], "--out", tmp_path / "out"], [bad.name])


@pytest.mark.parametrize("case", sorted(CONFIG_FILE_CASES))
def test_fuzz_config_file(case, base, tmp_path):
    bad = CONFIG_FILE_CASES[case](tmp_path)
    argv, _ = gen_with(base, tmp_path, extra=["--config", bad])
    _check(tmp_path, argv, [bad.name, "device"])


@pytest.mark.parametrize("case", sorted(SET_CASES))
def test_fuzz_set_override(case, base, tmp_path):
    text = SET_CASES[case].replace("{marker}", str(tmp_path / MARKER_NAME))
    key = text.split("=", 1)[0].strip()
    argv, _ = gen_with(base, tmp_path, extra=["--set", text])
    _check(tmp_path, argv, [key or "--set", key.split(".")[0] or "--set", "--set"])


@pytest.mark.parametrize("case", sorted(EVAL_CASES))
def test_fuzz_eval_folder(case, tmp_path):
    argv, names, left = EVAL_CASES[case](tmp_path)
    _check(tmp_path, argv, names, left)


@pytest.mark.parametrize("case", sorted(LPIPS_CASES))
def test_fuzz_lpips_weights(case, tmp_path):
    bad = LPIPS_CASES[case](tmp_path)
    pred, gt = _frame_folder(tmp_path, "pred"), _frame_folder(tmp_path, "gt")
    argv = ["eval", "--pred", pred, "--gt", gt, "--metrics", "lpips", "--lpips-weights", bad, "--out", tmp_path / "m.json"]
    _check(tmp_path, argv, [bad.name], [tmp_path / "m.json"])


@pytest.mark.parametrize("case", sorted(ARG_CASES))
def test_fuzz_arguments_and_outputs(case, base, tmp_path):
    argv, names = ARG_CASES[case](tmp_path, base)
    _check(tmp_path, argv, names)


# ------------------------------------------------------------------------------- valid but unusual inputs
def _gen_ok(argv):
    rc, out, err = run_cli(argv)
    assert rc == 0, err
    return out


def _palette_png(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path)
    return path


def _webp(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(_rgb()).save(path, lossless=True)
    return path


def _jpeg(path: Path) -> Path:
    path.write_bytes(_jpeg_bytes())
    return path


@pytest.mark.parametrize("kind", ["palette_png", "webp", "jpeg", "unicode_path"])
def test_unusual_images_still_work(kind, base, tmp_path):
    folder = tmp_path / ("ünïcødé 画像" if kind == "unicode_path" else "in")
    folder.mkdir()
    image = {"palette_png": lambda: _palette_png(folder / "p.png"), "webp": lambda: _webp(folder / "w.webp"),
             "jpeg": lambda: _jpeg(folder / "j.jpg"), "unicode_path": lambda: _png(folder / "bild ü.png", _rgb())}[kind]()
    argv, out = gen_with(base, tmp_path, image=image)
    _gen_ok(argv)
    assert (out / "run.json").is_file() and len(list((out / "frames").glob("*.png"))) == 3


@pytest.mark.parametrize("kind", ["big_endian_npy", "fortran_npy", "float64_npy", "npz_depth_key", "png16",
                                  "pfm_big_endian", "int_npy_times_png_scale"])
def test_unusual_depth_files_read_the_same_values(kind, tmp_path):
    from voyager_pipe.io.depth_files import read_depth_values, write_pfm

    depth = (1.0 + np.arange(H * W, dtype=np.float32).reshape(H, W) / 100)  # [H, W]
    path = {
        "big_endian_npy": lambda: (np.save(tmp_path / "d.npy", depth.astype(">f4")), tmp_path / "d.npy")[1],
        "fortran_npy": lambda: (np.save(tmp_path / "d.npy", np.asfortranarray(depth)), tmp_path / "d.npy")[1],
        "float64_npy": lambda: (np.save(tmp_path / "d.npy", depth.astype(np.float64)), tmp_path / "d.npy")[1],
        "npz_depth_key": lambda: (np.savez(tmp_path / "d.npz", other=np.zeros(3), depth=depth), tmp_path / "d.npz")[1],
        "png16": lambda: _png(tmp_path / "d.png", np.round(depth * 1000).astype(np.uint16)),
        "pfm_big_endian": lambda: _write(tmp_path / "d.pfm", f"Pf\n{W} {H}\n1.0\n".encode() + np.ascontiguousarray(depth[::-1]).astype(">f4").tobytes()),
        "int_npy_times_png_scale": lambda: (np.save(tmp_path / "d.npy", np.round(depth * 1000).astype(">u2")), tmp_path / "d.npy")[1],
    }[kind]()
    del write_pfm
    values = read_depth_values(path)
    assert values.dtype == np.float32 and values.shape == (H, W)
    np.testing.assert_allclose(values, depth, rtol=1e-6, atol=1e-3 if kind in ("png16", "int_npy_times_png_scale") else 0)


def test_one_frame_trajectory_and_eval_section_in_the_gen_config(tmp_path):
    inputs = make_inputs(tmp_path / "in", W, H, frames=1)
    config = _text(tmp_path / "c.yaml", "eval:\n  depth_align: lstsq\nseed: 3\n")
    out = tmp_path / "out"
    _gen_ok(["gen", "--image", inputs["image"], "--depth", inputs["depth"], "--traj", inputs["traj"], "--out", out,
             "--config", config, *FAST_GEN])
    assert len(list((out / "frames").glob("*.png"))) == 1


@pytest.mark.parametrize("kind", ["colmap_empty_points", "colmap_with_points", "transforms_angle", "re10k",
                                  "own_opengl_c2w"])
def test_unusual_trajectories_still_read(kind, tmp_path):
    from voyager_pipe.camera.trajectory_io import read_trajectory

    n = 3
    if kind == "colmap_empty_points":
        path, fmt, size = _colmap(tmp_path, CAM_OK, _colmap_images(n)), None, None
    elif kind == "colmap_with_points":
        images = "".join(IMG.format(i=i + 1, z=0.1 * i) + "1.5 2.5 -1 3.5 4.5 7\n" for i in range(n))
        path, fmt, size = _colmap(tmp_path, CAM_OK, images), None, None
    elif kind == "transforms_angle":
        data = _ns_angle(1.2)
        data["frames"] = data["frames"] + [data["frames"][0]]
        path, fmt, size = _json(tmp_path / "transforms.json", data), None, None
    elif kind == "re10k":
        path, fmt, size = _text(tmp_path / "r.txt", "https://x\n" + RE10K_LINE * n), None, (W, H)
    else:
        data = _own_traj([{"c2w": EYE}] * n, convention="opengl", matrix="c2w")
        path, fmt, size = _json(tmp_path / "t.json", data), None, None
    cameras = read_trajectory(path, fmt=fmt, size=size)
    assert len(cameras) == n and (cameras.width, cameras.height) == (W, H)
    rc, out, err = run_cli(["traj", "show", path] + (["--size", f"{W}x{H}"] if size else []))
    assert rc == 0 and err == ""


@pytest.mark.parametrize("fmt", ["ascii", "binary_big_endian"])
def test_unusual_ply_still_renders(fmt, base, tmp_path):
    points = np.array([[0, 0, 2], [0.1, 0.1, 3], [np.nan, 0, 1]], np.float32)  # one NaN vertex among finite ones
    if fmt == "ascii":
        body = "".join(" ".join(repr(float(v)) for v in p) + "\n" for p in points).encode()
    else:
        body = points.astype(">f4").tobytes()
    path = _ply(tmp_path, PLY_HEAD.format(fmt=fmt, n=len(points)), body)
    rc, out, err = run_cli(["render", "--points", path, "--traj", base["traj"], "--out", tmp_path / "out"])
    assert rc == 0, err
    assert (tmp_path / "out" / "frames" / "00000.png").is_file()


def test_missing_lpips_weights_are_reported_as_unavailable_not_an_error(tmp_path):
    pred, gt = _frame_folder(tmp_path, "pred"), _frame_folder(tmp_path, "gt")
    rc, out, err = run_cli(["eval", "--pred", pred, "--gt", gt, "--metrics", "psnr,lpips", "--lpips-weights",
                            tmp_path / "none.pth", "--out", tmp_path / "m.json", "--no-plots"])
    assert rc == 0, err
    result = json.loads((tmp_path / "m.json").read_text())
    assert "none.pth" in result["unavailable"]["lpips"] and "psnr" in result["means"]


def test_the_fuzz_set_is_large_enough():
    families = {"image": IMAGE_CASES, "depth": DEPTH_CASES, "trajectory (gen and traj show)": TRAJ_CASES,
                "ply": PLY_CASES, "config file": CONFIG_FILE_CASES, "--set": SET_CASES, "eval folder": EVAL_CASES,
                "lpips weights": LPIPS_CASES, "arguments and outputs": ARG_CASES}
    total = sum(len(cases) for cases in families.values()) + len(TRAJ_CASES)  # trajectories run twice
    assert total >= 200, total
