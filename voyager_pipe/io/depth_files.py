"""Depth files: read z-depth maps from npy/npz, 16-bit PNG/TIFF, EXR and PFM (the one depth-file reader).

All readers return a float32 ``[H, W]`` array of z-depth in scene units. Values that are
not finite or not positive are kept as they are (the caller turns them into "no value").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.io.reading import (MAX_IMAGE_PIXELS, check_file, check_image_size, quiet_native_stderr,
                                     reading)

#: Largest depth file read (bytes); the pixel limits of voyager_pipe.io.reading apply too.
MAX_DEPTH_FILE_BYTES = 1 << 30

#: File suffixes read as depth, in the order sidecars are looked for.
DEPTH_SUFFIXES = (".npy", ".npz", ".exr", ".pfm", ".tif", ".tiff", ".png")

#: Default scene units per integer step of 16-bit PNG/TIFF depth (millimetres -> metres).
DEFAULT_PNG_SCALE = 0.001

def _cv2():
    """OpenCV with OpenEXR reading enabled (the variable must be set before the first EXR read)."""
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    try:
        import cv2
    except ImportError:  # pragma: no cover - cv2 is a core dependency
        raise MissingDependencyError("opencv-python-headless is needed to read PNG/TIFF/EXR depth: "
                                     "pip install opencv-python-headless") from None
    return cv2


def read_pfm(path: str | Path) -> np.ndarray:
    """Read a PFM file (``Pf`` grey or ``PF`` colour, first channel) -> ``[H, W]`` float32, top row first."""
    path = check_file(path, "PFM depth", MAX_DEPTH_FILE_BYTES)
    data = path.read_bytes()
    lines = data.split(b"\n", 3)  # header, "W H", scale, payload
    if len(lines) < 4 or lines[0].strip() not in (b"Pf", b"PF"):
        raise InputError(f"{path}: not a PFM file (header must be 'Pf' or 'PF')")
    channels = 1 if lines[0].strip() == b"Pf" else 3
    try:
        width, height = (int(v) for v in lines[1].split())
        scale = float(lines[2].strip())
    except ValueError:
        raise InputError(f"{path}: malformed PFM header (expected 'W H' then the scale)") from None
    if not np.isfinite(scale) or scale == 0:
        raise InputError(f"{path}: PFM scale must be a finite non-zero number, got {scale}")
    check_image_size(width, height, f"{path}: PFM")
    dtype = "<f4" if scale < 0 else ">f4"
    count = width * height * channels
    payload = lines[3]
    if len(payload) < 4 * count:
        raise InputError(f"{path}: PFM data is truncated ({len(payload)} of {4 * count} bytes)")
    values = np.frombuffer(payload, dtype=dtype, count=count).reshape(height, width, channels)  # [H, W, C]
    return np.ascontiguousarray(values[::-1, :, 0], dtype=np.float32)  # [H, W] PFM stores bottom row first


def write_pfm(path: str | Path, depth: np.ndarray) -> None:
    """Write a ``[H, W]`` float map as little-endian grey PFM (bottom row first, as the format says)."""
    depth = np.asarray(depth, dtype="<f4")  # [H, W]
    height, width = depth.shape
    header = f"Pf\n{width} {height}\n-1.0\n".encode()
    Path(path).write_bytes(header + np.ascontiguousarray(depth[::-1]).tobytes())


def _squeeze_to_2d(array: np.ndarray, path: Path) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
        array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
    if array.ndim != 2:
        raise InputError(f"{path}: depth must be one channel [H, W] (or [1, H, W] / [H, W, 1]), got shape "
                         f"{tuple(array.shape)}")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InputError(f"{path}: depth must be numeric, got dtype {array.dtype}")
    check_image_size(array.shape[1], array.shape[0], f"{path}: depth")
    return array


def _checked_array_header(shape: tuple, dtype: np.dtype, path: Path, name: str = "") -> None:
    """Refuse object / structured / absurdly large arrays from their header, before loading the data."""
    where = f"{path}{f' [{name}]' if name else ''}"
    if dtype.hasobject or dtype.fields is not None:
        raise InputError(f"{where}: depth array of dtype {dtype} (objects or records) is not read; save plain numbers")
    if int(np.prod(shape, dtype=np.float64)) > 4 * MAX_IMAGE_PIXELS:
        raise InputError(f"{where}: depth array of shape {tuple(shape)} is over the size limit")


def _npy_header(handle, path: Path) -> tuple[tuple, np.dtype]:
    """``(shape, dtype)`` of an ``.npy`` stream from its header (the data is not read)."""
    version = np.lib.format.read_magic(handle)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise InputError(f"{path}: npy format version {version} is not read (save with numpy.save)")
    shape, _, dtype = readers[version](handle, max_header_size=10_000)
    return shape, dtype


def _read_npy(path: Path) -> np.ndarray:
    """``.npy`` without pickles: the header is checked first, then the data is read (big-endian kept exact)."""
    with open(path, "rb") as handle:
        shape, dtype = _npy_header(handle, path)
        _checked_array_header(shape, dtype, path)
    array = np.load(path, allow_pickle=False)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _read_npz(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        key = next((k for k in ("depth", "z", "arr_0") if k in keys), keys[0] if len(keys) == 1 else None)
        if key is None:
            raise InputError(f"{path}: npz holds {keys[:10]}; name the depth array 'depth'")
        info = archive.zip.getinfo(f"{key}.npy")
        if info.file_size > 16 * MAX_IMAGE_PIXELS:
            raise InputError(f"{path} [{key}]: depth array of {info.file_size} bytes is over the size limit")
        with archive.zip.open(info) as member:
            shape, dtype = _npy_header(member, path)
        _checked_array_header(shape, dtype, path, key)
        array = archive[key]
    return array.astype(array.dtype.newbyteorder("="), copy=False)


_EXR_DEPTH_CHANNELS = ("Z", "depth", "Y", "R", "Z.Z", "depth.Z")


def _read_exr_openexr(path: Path) -> np.ndarray:
    """EXR through the ``OpenEXR`` package (used when OpenCV was built without OpenEXR)."""
    try:
        import OpenEXR
    except ImportError:
        raise MissingDependencyError(f"{path}: this OpenCV build cannot read EXR; pip install OpenEXR "
                                     "(or save depth as npy / pfm / 16-bit png)") from None
    try:
        with quiet_native_stderr():
            exr = OpenEXR.File(str(path))  # (a `with` block would empty the channels when it closes)
            header = exr.header()
            box = header.get("dataWindow")
            if box is not None:
                (x0, y0), (x1, y1) = (tuple(int(v) for v in corner) for corner in box)
                check_image_size(x1 - x0 + 1, y1 - y0 + 1, f"{path}: EXR")
            channels = {name: np.asarray(ch.pixels, dtype=np.float32) for name, ch in exr.channels().items()}
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any OpenEXR failure is a bad file
        raise InputError(f"{path}: cannot read EXR ({exc.__class__.__name__})") from None
    for name in _EXR_DEPTH_CHANNELS:
        if name in channels:
            return channels[name]
    if len(channels) == 1:
        return next(iter(channels.values()))
    if "RGB" in channels or "RGBA" in channels:
        return channels.get("RGB", channels.get("RGBA"))[..., 0]
    raise InputError(f"{path}: EXR has channels {sorted(channels)}; expected one named Z, depth, Y or R")


def _read_image_depth(path: Path) -> np.ndarray:
    cv2 = _cv2()
    if path.suffix.lower() != ".exr":
        from voyager_pipe.io.images import image_size

        size = image_size(path)
        if size is not None:
            check_image_size(size[0], size[1], f"{path}: depth")
    try:
        with quiet_native_stderr():
            array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        array = None
    if array is None and path.suffix.lower() == ".exr":
        return _read_exr_openexr(path)
    if array is None:
        raise InputError(f"{path}: cannot read as a depth image")
    if array.ndim == 3:
        if path.suffix.lower() != ".exr":
            raise InputError(f"{path}: depth image has {array.shape[-1]} channels; expected one channel "
                             "(a 16-bit grey PNG/TIFF)")
        array = array[..., 2] if array.shape[-1] >= 3 else array[..., 0]  # [H, W] (OpenCV gives BGR: R/Z first)
    if array.dtype == np.uint8:
        raise InputError(f"{path}: 8-bit image cannot hold depth (256 levels); use 16-bit PNG, npy, exr or pfm")
    return array


def read_stored_depth(path: str | Path) -> np.ndarray:
    """The depth map ``[H, W]`` as stored (integer or float dtype, unscaled, native byte order).

    Every failure of a reader library on a bad file is an InputError naming the file; nothing
    from the file is unpickled (``allow_pickle=False``, object arrays refused from their header).
    """
    path = check_file(path, "depth file", MAX_DEPTH_FILE_BYTES)
    suffix = path.suffix.lower()
    with reading(path, "depth file"):
        if suffix == ".npy":
            array = _read_npy(path)
        elif suffix == ".npz":
            array = _read_npz(path)
        elif suffix == ".pfm":
            array = read_pfm(path)
        elif suffix in (".png", ".tif", ".tiff", ".exr"):
            array = _read_image_depth(path)
        else:
            raise InputError(f"{path}: unknown depth format {suffix!r}; use one of {', '.join(DEPTH_SUFFIXES)}")
        return _squeeze_to_2d(array, path)


def read_depth_values(path: str | Path, int_scale: float = DEFAULT_PNG_SCALE, float_scale: float = 1.0) -> np.ndarray:
    """``[H, W]`` float32: integer maps (16-bit PNG/TIFF, int npy) times ``int_scale``, float maps times ``float_scale``."""
    array = read_stored_depth(path)
    factor = int_scale if np.issubdtype(array.dtype, np.integer) else float_scale
    return array.astype(np.float32) * np.float32(factor)


def read_depth_file(path: str | Path, scale: float | None = None) -> np.ndarray:
    """Read a z-depth map -> ``[H, W]`` float32.

    ``scale`` multiplies the stored values. Default: :data:`DEFAULT_PNG_SCALE` (0.001,
    millimetres -> metres) for integer maps (16-bit PNG/TIFF, integer npy), 1.0 for float maps
    (npy/npz, EXR, PFM, float TIFF). Invalid values (0, negative, NaN, inf) are returned as stored.
    """
    if scale is None:
        return read_depth_values(path)
    return read_depth_values(path, scale, scale)
