"""Clip-generator backends by name (``generate.backend``).

Nothing in :mod:`voyager_pipe.generate` imports this module back: backends are imported
lazily by their factory, so the registry is the one place that knows them all. Each factory
hands a backend ONLY its own config section(s).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.generate.base import ClipGenerator

PipelineSections = Any
"""A :class:`voyager_pipe.config.PipelineConfig` (not imported here: the config imports this package's sections).
A factory reads only its backend's sections of it (``warp``; ``voyager``, ``generate`` and ``parallel``)."""

GeneratorFactory = Callable[[PipelineSections, torch.device], ClipGenerator]


def _make_warp(config: PipelineSections, device: torch.device) -> ClipGenerator:
    from voyager_pipe.generate.warp import WarpGenerator

    return WarpGenerator.from_config(config.warp, device=device)


def _make_voyager(config: PipelineSections, device: torch.device) -> ClipGenerator:
    try:
        from voyager_pipe.generate.voyager import VoyagerGenerator
    except ImportError as exc:
        raise MissingDependencyError(f"generate.backend=voyager: the Voyager backend cannot be imported ({exc})") from None
    generator = VoyagerGenerator.from_config(config.voyager, config.generate, device=device)
    from voyager_pipe.models.parallel import parallelize_transformer

    parallelize_transformer(generator.transformer, config.parallel)  # torchrun only (section parallel); no-op otherwise
    return generator


GENERATORS: dict[str, GeneratorFactory] = {"warp": _make_warp, "voyager": _make_voyager}
"""name -> ``factory(config: PipelineConfig, device) -> ClipGenerator``.

A factory passes its backend only its own section(s) (``warp``; ``voyager`` + ``generate``);
it must not download anything.
"""


def resolve_backend_name(config: PipelineSections) -> str:
    """``generate.backend`` with ``auto`` resolved: voyager when ``voyager.model_dir`` is set, else warp."""
    name = config.generate.backend
    if name == "auto":
        return "voyager" if getattr(config.voyager, "model_dir", None) else "warp"
    return name


def get_generator(config: PipelineSections, device: torch.device | str | None = None) -> ClipGenerator:
    """Build the configured clip generator (``config.generate.backend``, ``auto`` resolved)."""
    name = resolve_backend_name(config)
    if name not in GENERATORS:
        raise InputError(f"generate.backend: unknown backend {name!r}; known: {sorted(GENERATORS)}")
    return GENERATORS[name](config, torch.device(device) if device is not None else torch.device("cpu"))
