"""The clip-generator protocol shared by every generation backend, and its registry.

A *clip* is a run of ``T`` consecutive trajectory frames generated together. The
:class:`~voyager_pipe.generate.scheduler.ClipScheduler` is written once against
:class:`ClipGenerator` and drives any backend: the weight-free pixel-space ``warp`` backend
(:mod:`voyager_pipe.generate.warp`) and the Voyager latent video diffusion model
(:mod:`voyager_pipe.generate.voyager`). The registry of backends by name is
:mod:`voyager_pipe.generate.registry` (nothing here imports a backend).

Per clip the scheduler calls ``prepare(condition)`` once and hands the returned
:class:`PreparedClip` to ``encode``, ``denoise`` and ``decode``.

Latent layout (fixed for all backends)
--------------------------------------
Latents are one tensor ``[T_lat, C, h, w]`` with the **latent time axis first**, like the
frames ``[T, 3, H, W]``, so the scheduler can slice, average and re-noise latent frames
without knowing the backend. A backend whose network wants ``[B, C, T_lat, h, w]`` permutes
inside ``denoise``. Latents are in the backend's ``dtype`` on its ``device``.

Temporal compression
--------------------
``temporal_compression = c`` says how many frames a latent frame holds. It is 1 for
pixel-space backends. For a *causal* video VAE (Voyager / HunyuanVideo, ``c = 4``), a clip of
``T`` frames has ``T_lat = 1 + (T - 1) / c`` latent frames: latent frame 0 encodes frame 0
alone and latent frame ``j >= 1`` encodes frames ``c*(j-1)+1 .. c*j``. Hence:

* a clip length ``T`` is *valid* when ``(T - 1) % c == 0``;
* because the VAE is causal, the latents of the first ``O`` frames of a clip (``O`` valid)
  are exactly ``encode`` of those ``O`` frames alone: ``1 + (O - 1) / c`` latent frames.

The scheduler relies on the second point: it initialises and fuses the overlap of clip
``k+1`` with ``encode(<clip k's decoded overlap frames>)``, which is in clip ``k+1``'s own
latent layout (clip ``k``'s overlap latents are not, since its latent groups are offset).
It chooses overlaps ``O`` with ``O == 0`` or ``(O - 1) % c == 0`` and pads the last clip to
a valid length by repeating the last camera (padded frames are generated and dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, runtime_checkable

import torch

from voyager_pipe.camera.cameras import Cameras

StepCallback = Callable[[int, int], None]
"""``callback(step_index, num_steps)`` called by ``denoise`` after each finished step."""


@dataclass
class ClipCondition:
    """What a generator knows about one clip of ``T`` frames at ``H x W``.

    Attributes:
        rgb: ``[T, 3, H, W]`` float in [0, 1]: the world cache rendered along the clip's cameras
            (0 where ``mask`` is False).
        depth: ``[T, 1, H, W]`` float32 z-depth of that render, 0 = empty.
        mask: ``[T, 1, H, W]`` bool, True where the render has a point.
        cameras: the clip's ``T`` cameras (``Cameras``, OpenCV, K in pixels at ``W x H``).
        reference_rgb: ``[3, H, W]`` the input image of the run (frame 0 of the trajectory).
        reference_depth: ``[1, H, W]`` its depth (0 = none).
        frame_indices: ``[T]`` int64 trajectory index of each frame (padded frames repeat the
            last index).
    """

    rgb: torch.Tensor  # [T, 3, H, W]
    depth: torch.Tensor  # [T, 1, H, W]
    mask: torch.Tensor  # [T, 1, H, W] bool
    cameras: Cameras
    reference_rgb: torch.Tensor  # [3, H, W]
    reference_depth: torch.Tensor  # [1, H, W]
    frame_indices: Optional[torch.Tensor] = None  # [T] int64

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[-2])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[-1])


@dataclass
class PreparedClip:
    """A backend's handle on one clip, returned by :meth:`ClipGenerator.prepare`.

    Backends subclass it to keep what they derive from the condition once per clip (the warp
    backend's filled estimate, Voyager's condition latents and depth ranges); ``encode``,
    ``denoise`` and ``decode`` of that clip take the handle, so nothing is cached by tensor
    identity. A handle belongs to the generator that made it.
    """

    condition: ClipCondition
    # [T, 1, H, W] bool: the pixels of the decoded clip the world cache may take (None = all). A
    # backend that can only guess some pixels (the warp preview far from anything rendered) says so.
    cache_mask: Optional[torch.Tensor] = field(default=None, kw_only=True)


@runtime_checkable
class ClipGenerator(Protocol):
    """A clip generator in the shape of a latent flow-matching video diffusion model.

    Flow-matching convention (all backends): a latent at noise level ``sigma`` in [0, 1] is
    ``x_sigma = (1 - sigma) * x0 + sigma * noise`` with ``noise ~ N(0, I)``; ``sigma = 1`` is
    pure noise, ``sigma = 0`` the clean latent. The velocity is ``v = noise - x0`` so an Euler
    step is ``x_next = x + (sigma_next - sigma) * v`` (diffusers' FlowMatchEulerDiscreteScheduler).

    Attributes:
        name: registry name ("warp", "voyager").
        temporal_compression: frames per latent frame ``c`` (see the module docstring): 1 for
            pixel-space backends, 4 for the Voyager causal VAE.
        supports_per_frame_sigma: True when ``denoise`` accepts ``per_frame_sigma`` (the
            network takes one timestep per latent frame, Diffusion-Forcing style).
        device, dtype: where and in which precision latents live.
    """

    name: str
    temporal_compression: int
    supports_per_frame_sigma: bool
    device: torch.device
    dtype: torch.dtype

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(T_lat, C, h, w)`` of the latents of a clip of ``num_frames`` (valid) frames."""
        ...

    def prepare(self, condition: ClipCondition) -> PreparedClip:
        """Everything the backend derives from one clip's condition, computed once per clip."""
        ...

    def encode(self, rgb: torch.Tensor, depth: torch.Tensor, prepared: PreparedClip) -> torch.Tensor:
        """Clean latents ``[T_lat, C, h, w]`` of RGB-D frames.

        Args:
            rgb: ``[T, 3, H, W]`` float in [0, 1] (``T`` valid for ``temporal_compression``).
            depth: ``[T, 1, H, W]`` z-depth, 0 = none.
            prepared: the handle of the clip whose FIRST ``T`` frames these are (e.g. for depth
                normalisation with those frames' ranges).
        """
        ...

    def decode(self, latents: torch.Tensor, prepared: PreparedClip) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames of clean latents ``[T_lat, C, h, w]`` of the clip of ``prepared``.

        Returns:
            ``(rgb [T, 3, H, W] float in [0, 1], depth [T, 1, H, W] float32 z-depth > 0)`` with
            ``T = 1 + (T_lat - 1) * temporal_compression``, in the units of ``condition.depth``.
        """
        ...

    def noise_like(self, latents: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        """Standard normal noise of the shape/device/dtype of ``latents`` drawn from ``generator``."""
        ...

    def denoise(
        self,
        latents: torch.Tensor,
        prepared: PreparedClip,
        sigma_from: float,
        sigma_to: float,
        steps: int,
        generator: Optional[torch.Generator] = None,
        per_frame_sigma: Optional[torch.Tensor] = None,
        callback: Optional[StepCallback] = None,
    ) -> torch.Tensor:
        """Integrate the flow from ``sigma_from`` down to ``sigma_to`` in ``steps`` Euler steps.

        Args:
            latents: ``[T_lat, C, h, w]`` at noise level ``sigma_from`` (``sigma_from = 1``: noise).
            prepared: the clip's handle (``prepared.condition.num_frames`` matches the latents).
            sigma_from, sigma_to: ``1 >= sigma_from > sigma_to >= 0``.
            steps: number of steps actually run, on the shifted schedule of
                :func:`voyager_pipe.generate.sampler.flow_sigmas` (the tail of the full schedule
                when ``sigma_from < 1``).
            generator: RNG for stochastic samplers (deterministic backends ignore it).
            per_frame_sigma: ``[T_lat]`` noise level at which each latent frame currently is
                (``<= sigma_from``), only when ``supports_per_frame_sigma``. On a step from ``s``
                to ``s_next`` frame ``j`` goes from ``min(s, c_j)`` to ``min(s_next, c_j)`` and
                is shown to the network at level ``min(s, c_j)``: less noisy frames wait until
                the global schedule reaches them.
            callback: ``callback(i, steps)`` after each step (progress bars).

        Returns:
            latents ``[T_lat, C, h, w]`` at ``sigma_to``.
        """
        ...


# --------------------------------------------------------------------------- time axis
def num_latent_frames(num_frames: int, temporal_compression: int) -> int:
    """``1 + (T - 1) / c`` latent frames of ``T`` frames (``T`` must be valid, see module doc)."""
    if num_frames < 1 or (num_frames - 1) % temporal_compression:
        raise ValueError(f"{num_frames} frames is not a valid clip length for temporal compression "
                         f"{temporal_compression} (need 1 + {temporal_compression}k)")
    return 1 + (num_frames - 1) // temporal_compression


def num_frames_of_latents(num_latents: int, temporal_compression: int) -> int:
    """Frames decoded from ``num_latents`` latent frames: ``1 + (T_lat - 1) * c``."""
    return 1 + (num_latents - 1) * temporal_compression


def valid_length_at_least(num_frames: int, temporal_compression: int) -> int:
    """Smallest valid clip length ``>= num_frames`` (``1 + c*k``)."""
    c = temporal_compression
    return 1 + c * -(-(max(num_frames, 1) - 1) // c)
