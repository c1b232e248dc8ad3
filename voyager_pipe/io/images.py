"""Reading and writing 8-bit RGB images as float tensors in [0, 1]."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import atomic_write_bytes
from voyager_pipe.io.reading import MAX_IMAGE_SIDE, check_file, check_image_size, quiet_native_stderr, reading


MAX_IMAGE_FILE_BYTES = 1 << 30


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the file header without decoding the pixels (None when PIL cannot tell)."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's DecompressionBombWarning: our own limit is checked by the caller
        try:
            with Image.open(path) as image:
                return image.size
        except Image.DecompressionBombError:
            return (MAX_IMAGE_SIDE + 1, MAX_IMAGE_SIDE + 1)
        except Exception:  # noqa: BLE001 - PIL does not know every format OpenCV reads: decoding decides then
            return None


def _truncated_jpeg(data: bytes, decoder_said: str) -> bool:
    """Some libjpeg builds decode a cut JPEG with grey fill and only warn: refuse it instead.
    (Data after the end marker, e.g. a motion photo's video, is fine: only the decoder's word counts.)"""
    if not data.startswith(b"\xff\xd8"):
        return False
    return "Premature end of JPEG" in decoder_said or "Corrupt JPEG" in decoder_said


def decode_image(path: str | Path, what: str = "image", flags: int | None = None) -> np.ndarray:
    """Read and decode an image file with OpenCV, checked: existing readable file, size within
    :data:`~voyager_pipe.io.reading.MAX_IMAGE_SIDE`, complete data (no truncated JPEG), no decoder
    noise on stderr. Returns the array as stored (``IMREAD_UNCHANGED`` unless ``flags``; BGR order)."""
    import cv2

    path = check_file(path, what, MAX_IMAGE_FILE_BYTES)
    size = image_size(path)
    if size is not None:
        check_image_size(size[0], size[1], str(path))
    with reading(path, what, also=(cv2.error,)):
        data = path.read_bytes()
        with quiet_native_stderr() as said:
            array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED if flags is None else flags)
    if array is None:
        raise InputError(f"{path}: cannot decode {what} (not an image file, a truncated one, or a format OpenCV does not read)")
    if _truncated_jpeg(data, "".join(said)):
        raise InputError(f"{path}: {what} is a truncated or corrupt JPEG")
    check_image_size(array.shape[1], array.shape[0], str(path))
    return array


def read_image(path: str | Path, what: str = "image") -> torch.Tensor:
    """Read an 8-bit RGB image as ``[3, H, W]`` float32 in [0, 1].

    Grayscale, RGBA (any alpha) and 16-bit images are refused with an InputError that says
    how to convert them: silently dropping alpha or bits would change what the user meant.
    Palette PNGs without transparency decode to RGB and are accepted.
    """
    path = Path(path)
    array = decode_image(path, what)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 1):
        raise InputError(f"{path}: grayscale {what}; an 8-bit RGB image is required (convert it to RGB first)")
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise InputError(f"{path}: unsupported {what} shape {array.shape}; an 8-bit RGB image is required")
    if array.shape[-1] == 4:
        raise InputError(f"{path}: RGBA {what}; an 8-bit RGB image is required (flatten the alpha channel first)")
    if array.dtype != np.uint8:
        raise InputError(f"{path}: {array.dtype} {what}; an 8-bit RGB image is required (convert it to 8 bits first)")
    rgb = np.ascontiguousarray(array[..., ::-1])  # OpenCV stores BGR
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0  # [3, H, W]


def read_mask(path: str | Path, what: str = "mask") -> np.ndarray:
    """Read an 8-bit single-channel mask PNG -> ``[H, W]`` bool (> 127 = set)."""
    import cv2

    array = decode_image(path, what, cv2.IMREAD_GRAYSCALE)
    return array > 127


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float in [0, 1] -> ``[H, W, 3]`` uint8 (rounded, clipped)."""
    return (rgb.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _png_params() -> list[int]:
    """OpenCV PNG options: zlib level 1 with run-length matching and the Paeth filter. Lossless like
    every PNG; ~6x faster to write than zlib's default level 6 for ~5% larger rendered frames."""
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.11
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH]
    return params


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an ``[H, W, 3]`` RGB or ``[H, W]`` grey uint8 array (other arrays: through imageio).
    OpenCV releases the GIL while encoding, so frames can be encoded by several threads."""
    if array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        import cv2

        bgr = np.ascontiguousarray(array[..., ::-1] if array.ndim == 3 else array)  # OpenCV takes BGR
        ok, data = cv2.imencode(".png", bgr, _png_params())
        if not ok:  # pragma: no cover - OpenCV reports no reason
            raise RuntimeError("OpenCV could not encode a PNG")
        return data.tobytes()
    import imageio.v3 as iio

    buffer = io.BytesIO()
    iio.imwrite(buffer, array, extension=".png")
    return buffer.getvalue()


def write_image(path: str | Path, rgb: torch.Tensor) -> None:
    """Write ``[3, H, W]`` float in [0, 1] as an 8-bit RGB PNG (atomically)."""
    atomic_write_bytes(path, encode_png(to_uint8(rgb)))
