"""Settings of the Voyager diffusion backend (owned by voyager_pipe.models)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from voyager_pipe.options import option


@dataclass
class VoyagerConfig:
    model_dir: Optional[str] = option(None, "converted diffusers folder of the Voyager model (see `voyager-pipe convert`)")
    guidance_scale: float = option(6.0, "classifier-free guidance scale")
    prompt: str = option("", "text prompt")
