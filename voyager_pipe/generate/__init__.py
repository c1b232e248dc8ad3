"""Clip generation: the ClipGenerator protocol, the ClipScheduler, flow-matching sampling, backends."""

from voyager_pipe.generate.base import (  # noqa: F401
    GENERATORS,
    ClipCondition,
    ClipGenerator,
    get_generator,
    num_frames_of_latents,
    num_latent_frames,
    resolve_backend_name,
)
from voyager_pipe.generate.config import GenerateConfig  # noqa: F401
