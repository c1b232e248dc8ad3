"""The result type and the protocol every depth backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch


@dataclass
class DepthEstimate:
    """Depth of one image, at the image's size.

    ``depth`` is z-depth along the camera's +z axis (not ray length), float32, 0 where
    ``valid`` is False (sky, infinite, unknown, or dropped on a depth edge). The image itself
    is never changed: invalid pixels keep their colour in the first frame but stay out of the
    world cache.
    """

    depth: torch.Tensor  # [1, H, W] float32
    valid: torch.Tensor  # [1, H, W] bool
    is_metric: bool
    source: str  # "file:<path>", "transformers:<path>", "moge:<path>"
    details: dict = field(default_factory=dict)  # backend facts: scale used, pixels dropped, ...


class DepthEstimator(Protocol):
    """A depth source; ``estimate`` returns depth at the image's own size."""

    name: str

    def estimate(self, image: torch.Tensor) -> DepthEstimate:  # image [3, H, W] float in [0, 1]
        ...
