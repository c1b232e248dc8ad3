"""The one owner of torch device and dtype names (the ``device`` setting and ``*dtype`` options)."""

from __future__ import annotations

import torch

from voyager_pipe.errors import InputError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_device(name: str | torch.device | None, field: str = "device") -> torch.device:
    """``"auto"`` (or None) -> cuda when available, else cpu; otherwise the named device, checked now.

    An explicit ``cuda`` without CUDA, ``meta``, or a name torch does not know is an
    :class:`InputError` naming ``field`` (so a run fails before any work, not after it).
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, str):
        raise InputError(f"{field}: {name!r} is not a device name (auto, cpu, cuda, cuda:1, ...)")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"{field}: {name!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{field}: {name!r} requested but CUDA is not available (use auto or cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"{field}: {name!r} but only {torch.cuda.device_count()} CUDA device(s) are visible")
        return device
    if device.type == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return device
    raise InputError(f"{field}: {name!r} cannot run this pipeline (use auto, cpu or cuda[:N])")


def resolve_dtype(name: str | torch.dtype, field: str = "dtype") -> torch.dtype:
    """``"bf16"`` / ``"fp16"`` / ``"fp32"`` (or a torch dtype among them) -> ``torch.dtype``."""
    if isinstance(name, torch.dtype):
        if name in DTYPES.values():
            return name
        raise InputError(f"{field}: {name} is not one of {sorted(DTYPES)}")
    if name not in DTYPES:
        raise InputError(f"{field}: {name!r} is not one of {sorted(DTYPES)}")
    return DTYPES[name]
