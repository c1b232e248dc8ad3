"""Depth files next to an input image (sidecars); the readers live in :mod:`voyager_pipe.io.depth_files`."""

from __future__ import annotations

from pathlib import Path

from voyager_pipe.io.depth_files import DEPTH_SUFFIXES

#: Sidecar name patterns next to an image ``<folder>/<stem>.<ext>``, tried in order; each is
#: combined with every suffix of :data:`DEPTH_SUFFIXES`.
SIDECAR_PATTERNS = (
    "{stem}_depth",        # photo_depth.npy
    "{stem}.depth",        # photo.depth.npy
    "{stem}-depth",        # photo-depth.npy
    "depth/{stem}",        # depth/photo.npy
    "depth",               # depth.npy (one depth for the folder's image)
)


def sidecar_candidates(image_path: str | Path) -> list[Path]:
    """Every path looked at for a depth file next to ``image_path``, in order of preference."""
    image_path = Path(image_path)
    folder, stem = image_path.parent, image_path.stem
    out = []
    for pattern in SIDECAR_PATTERNS:
        base = folder / pattern.format(stem=stem)
        out.extend(base.with_name(base.name + suffix) for suffix in DEPTH_SUFFIXES)
    return [p for p in out if p != image_path]


def find_sidecar(image_path: str | Path) -> Path | None:
    """The first existing sidecar depth file of ``image_path`` (see :data:`SIDECAR_PATTERNS`), or None."""
    for candidate in sidecar_candidates(image_path):
        if candidate.is_file():
            return candidate
    return None
