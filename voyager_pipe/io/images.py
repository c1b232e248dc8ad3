"""Reading and writing 8-bit RGB images as float tensors in [0, 1]."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import atomic_write_bytes


def read_image(path: str | Path) -> torch.Tensor:
    """Read an 8-bit RGB image as ``[3, H, W]`` float32 in [0, 1].

    Grayscale, RGBA (any alpha) and 16-bit images are refused with an InputError that says
    how to convert them: silently dropping alpha or bits would change what the user meant.
    """
    import cv2  # keeps bit depth and channel count as stored (imageio/PIL may quietly reduce 16-bit RGB)

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image not found")
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise InputError(f"{path}: cannot decode image (not an image file, or a format OpenCV does not read)")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 1):
        raise InputError(f"{path}: grayscale image; an 8-bit RGB image is required (convert it to RGB first)")
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise InputError(f"{path}: unsupported image shape {array.shape}; an 8-bit RGB image is required")
    if array.shape[-1] == 4:
        raise InputError(f"{path}: RGBA image; an 8-bit RGB image is required (flatten the alpha channel first)")
    if array.dtype != np.uint8:
        raise InputError(f"{path}: {array.dtype} image; an 8-bit RGB image is required (convert it to 8 bits first)")
    rgb = np.ascontiguousarray(array[..., ::-1])  # OpenCV stores BGR
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0  # [3, H, W]


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float in [0, 1] -> ``[H, W, 3]`` uint8 (rounded, clipped)."""
    return (rgb.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def encode_png(array: np.ndarray) -> bytes:
    import imageio.v3 as iio

    buffer = io.BytesIO()
    iio.imwrite(buffer, array, extension=".png")
    return buffer.getvalue()


def write_image(path: str | Path, rgb: torch.Tensor) -> None:
    """Write ``[3, H, W]`` float in [0, 1] as an 8-bit RGB PNG (atomically)."""
    atomic_write_bytes(path, encode_png(to_uint8(rgb)))
