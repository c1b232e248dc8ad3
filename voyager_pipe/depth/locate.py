"""Where learned depth weights are looked for. Nothing here touches the network.

Order: ``cfg.model`` (a local folder/file, or a Hugging Face name already in the local cache),
then the environment variable :data:`MODEL_ENV`, then (``auto`` only) the well-known names
of :data:`DEFAULT_MOGE_MODELS` (when ``moge`` imports) and :data:`DEFAULT_TRANSFORMERS_MODELS`
in the local Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

MODEL_ENV = "VOYAGER_PIPE_DEPTH_MODEL"

DEFAULT_MOGE_MODELS = ("Ruicheng/moge-2-vitl-normal", "Ruicheng/moge-2-vitl", "Ruicheng/moge-vitl")
DEFAULT_TRANSFORMERS_MODELS = (
    "depth-anything/Depth-Anything-V2-Large-hf",
    "depth-anything/Depth-Anything-V2-Base-hf",
    "depth-anything/Depth-Anything-V2-Small-hf",
    "apple/DepthPro-hf",
    "Intel/dpt-large",
)
_MOGE_WEIGHT_NAMES = ("model.pt", "model.pth", "model.safetensors")


@dataclass(frozen=True)
class LocatedModel:
    backend: str  # "transformers" or "moge"
    path: Path  # transformers: folder with config.json; moge: the checkpoint file
    name: str  # what the user wrote (path or cached name)


def hf_cache_dir() -> Path:
    """The local Hugging Face hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def cached_snapshot(repo_id: str, filename: str) -> Path | None:
    """Folder of the cached snapshot of ``repo_id`` holding ``filename`` (``refs/main`` first), or None."""
    if repo_id.count("/") != 1:
        return None
    repo_dir = hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo_dir / "refs" / "main"
    candidates = [snapshots / ref.read_text().strip()] if ref.is_file() else []
    candidates += sorted(p for p in snapshots.iterdir() if p.is_dir())
    for folder in candidates:
        if (folder / filename).is_file():
            return folder
    return None


def moge_available() -> bool:
    return importlib.util.find_spec("moge") is not None


def _classify_local(path: Path, name: str) -> LocatedModel | None:
    if path.is_dir():
        if (path / "config.json").is_file():
            return LocatedModel("transformers", path, name)
        for weight in _MOGE_WEIGHT_NAMES:
            if (path / weight).is_file():
                return LocatedModel("moge", path / weight, name)
        return None
    if path.is_file() and path.suffix in (".pt", ".pth", ".safetensors", ".ckpt"):
        return LocatedModel("moge", path, name)
    return None


def locate_model(spec: str, backend: str | None = None) -> LocatedModel | None:
    """Resolve a local path or a cached Hugging Face name; ``backend`` restricts the kind. None if absent."""
    path = Path(spec).expanduser()
    found = _classify_local(path, spec) if path.exists() else None
    if found is None and not path.exists():
        folder = cached_snapshot(spec, "config.json")
        if folder is not None:
            found = LocatedModel("transformers", folder, spec)
        else:
            for weight in _MOGE_WEIGHT_NAMES:
                folder = cached_snapshot(spec, weight)
                if folder is not None:
                    found = LocatedModel("moge", folder / weight, spec)
                    break
    if found is not None and backend is not None and found.backend != backend:
        return None
    return found


def requested_model(model: str | None) -> str | None:
    """``cfg.model``, else the environment variable :data:`MODEL_ENV`, else None."""
    return model or os.environ.get(MODEL_ENV) or None


def find_default_model(backend: str | None = None) -> LocatedModel | None:
    """First well-known model present in the local cache (MoGe only when ``moge`` imports)."""
    names: list[str] = []
    if backend in (None, "moge") and moge_available():
        names += DEFAULT_MOGE_MODELS
    if backend in (None, "transformers"):
        names += DEFAULT_TRANSFORMERS_MODELS
    for name in names:
        found = locate_model(name, backend)
        if found is not None:
            return found
    return None


def where_looked(backend: str | None = None) -> str:
    """One line saying where weights were looked for (for error messages)."""
    names = []
    if backend in (None, "moge"):
        names += DEFAULT_MOGE_MODELS
    if backend in (None, "transformers"):
        names += DEFAULT_TRANSFORMERS_MODELS
    return (f"depth.model / --depth-model (local folder or cached Hugging Face name), ${MODEL_ENV}, "
            f"and the Hugging Face cache {hf_cache_dir()} for {', '.join(names)}")
