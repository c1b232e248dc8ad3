"""Settings of depth estimation (owned by voyager_pipe.depth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from voyager_pipe.options import option


@dataclass
class DepthConfig:
    backend: Literal["auto", "file", "transformers", "moge"] = option("auto", "depth source: auto, file, transformers, moge")
    model: Optional[str] = option(None, "local path or cached Hugging Face name of a depth model")
