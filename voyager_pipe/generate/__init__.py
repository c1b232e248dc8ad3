"""Clip generation: the ClipGenerator protocol, the ClipScheduler, flow-matching sampling, backends."""

from voyager_pipe.generate.base import (  # noqa: F401
    ClipCondition,
    ClipGenerator,
    PreparedClip,
    num_frames_of_latents,
    num_latent_frames,
)
from voyager_pipe.generate.config import GenerateConfig, WarpConfig  # noqa: F401
from voyager_pipe.generate.registry import GENERATORS, get_generator, resolve_backend_name  # noqa: F401
