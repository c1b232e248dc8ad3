"""Flow-matching sampling on diffusers' schedulers, from any starting noise level.

Convention: ``x_sigma = (1 - sigma) * x0 + sigma * noise``, velocity ``v = noise - x0``,
Euler step ``x_next = x + (sigma_next - sigma) * v``. The schedule is the time-shifted one of
HunyuanVideo / SD3: ``sigma = shift * s / (1 + (shift - 1) * s)`` for ``s`` spaced evenly.

Starting at an intermediate ``sigma_from`` runs the *tail* of that schedule: ``s`` is spaced
evenly between ``s(sigma_from)`` and ``s(sigma_to)`` (the inverse shift), so the steps have the
same shape as in a full run, just fewer of the high-noise ones.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from voyager_pipe.errors import InputError

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``velocity(x [T_lat, ...], sigma [T_lat]) -> v [T_lat, ...]`` (sigma per latent frame)."""


def shift_sigma(s: torch.Tensor | float, shift: float):
    """Time shift ``shift * s / (1 + (shift - 1) * s)``."""
    return shift * s / (1 + (shift - 1) * s)


def unshift_sigma(sigma: torch.Tensor | float, shift: float):
    """Inverse of :func:`shift_sigma`: ``s = sigma / (shift - (shift - 1) * sigma)``."""
    return sigma / (shift - (shift - 1) * sigma)


def make_scheduler(name: str = "FlowMatchEulerDiscreteScheduler", shift: float = 1.0):
    """A diffusers flow-matching scheduler by class name (``shift`` set in its config)."""
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None or "FlowMatch" not in name:
        raise InputError(f"generate.sampler: {name!r} is not a diffusers flow-matching scheduler "
                         "(e.g. FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler)")
    return cls(shift=shift)


def flow_sigmas(sigma_from: float, sigma_to: float, steps: int, shift: float,
                scheduler_name: str = "FlowMatchEulerDiscreteScheduler") -> torch.Tensor:
    """``[steps + 1]`` float32 decreasing noise levels from ``sigma_from`` to ``sigma_to``.

    Built by the diffusers scheduler (``set_timesteps(sigmas=s)`` applies the shift), so the
    schedule is exactly the one diffusers would use; for ``sigma_from = 1, sigma_to = 0`` it is
    the schedule of diffusers' HunyuanVideoPipeline (``set_timesteps(sigmas=linspace(1, 0,
    steps + 1)[:-1])`` on a ``FlowMatchEulerDiscreteScheduler(shift=shift)``).
    """
    if not (1.0 >= sigma_from > sigma_to >= 0.0):
        raise ValueError(f"need 1 >= sigma_from > sigma_to >= 0, got {sigma_from}, {sigma_to}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    scheduler = make_scheduler(scheduler_name, shift)
    s = torch.linspace(float(unshift_sigma(sigma_from, shift)), float(unshift_sigma(sigma_to, shift)), steps + 1,
                       dtype=torch.float64)  # [steps + 1]
    scheduler.set_timesteps(sigmas=s[:-1].tolist())
    sigmas = scheduler.sigmas.to(torch.float32).clone()  # [steps + 1] (diffusers appends 0)
    sigmas[0] = sigma_from  # exact ends, free of float32 round trip through the shift
    sigmas[-1] = sigma_to
    return sigmas


def euler_sample(
    x: torch.Tensor,
    velocity: VelocityFn,
    sigmas: torch.Tensor,
    per_frame_sigma: Optional[torch.Tensor] = None,
    callback: Optional[Callable[[int, int], None]] = None,
) -> torch.Tensor:
    """Euler integration of the flow along ``sigmas`` (``[steps + 1]``, decreasing).

    Args:
        x: ``[T_lat, ...]`` latents at ``sigmas[0]``.
        velocity: the network (or an oracle), called with per-frame sigmas ``[T_lat]``.
        sigmas: the schedule (:func:`flow_sigmas`).
        per_frame_sigma: ``[T_lat]`` current level of each latent frame (``<= sigmas[0]``); frame
            ``j`` moves from ``min(s_i, c_j)`` to ``min(s_{i+1}, c_j)`` (Diffusion Forcing).
        callback: ``callback(i, steps)`` after each step.

    Returns:
        ``[T_lat, ...]`` latents at ``sigmas[-1]``.
    """
    num_frames = x.shape[0]
    caps = (torch.full((num_frames,), float(sigmas[0]), dtype=torch.float32, device=x.device)
            if per_frame_sigma is None else per_frame_sigma.to(device=x.device, dtype=torch.float32))  # [T_lat]
    view = (num_frames,) + (1,) * (x.ndim - 1)
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma_now = torch.clamp(caps, max=float(sigmas[i]))  # [T_lat]
        sigma_next = torch.clamp(caps, max=float(sigmas[i + 1]))  # [T_lat]
        moving = sigma_next < sigma_now  # [T_lat]
        if bool(moving.any()):
            v = velocity(x, sigma_now)  # [T_lat, ...]
            dt = (sigma_next - sigma_now).to(x.dtype).view(view)  # [T_lat, 1, ...]
            x = x + dt * v.to(x.dtype)
        if callback is not None:
            callback(i, steps)
    return x


def scheduler_sample(
    x: torch.Tensor,
    velocity: VelocityFn,
    sigma_from: float,
    sigma_to: float,
    steps: int,
    shift: float,
    scheduler_name: str = "FlowMatchEulerDiscreteScheduler",
    generator: Optional[torch.Generator] = None,
    callback: Optional[Callable[[int, int], None]] = None,
) -> torch.Tensor:
    """The same integration run by the diffusers scheduler's own ``step`` (any flow-matching class).

    Used for schedulers other than Euler (e.g. Heun) and to check :func:`euler_sample`.
    """
    scheduler = make_scheduler(scheduler_name, shift)
    sigmas = flow_sigmas(sigma_from, sigma_to, steps, shift, scheduler_name)  # [steps + 1]
    s = unshift_sigma(sigmas[:-1].double(), shift)  # [steps]
    scheduler.set_timesteps(sigmas=s.tolist())
    if sigma_to > 0:
        scheduler.sigmas[-1] = sigma_to
    timesteps = scheduler.timesteps
    for i, t in enumerate(timesteps):
        sigma = scheduler.sigmas[min(i, len(scheduler.sigmas) - 1)]
        sigma_vec = torch.full((x.shape[0],), float(sigma), device=x.device)  # [T_lat]
        v = velocity(x, sigma_vec)  # [T_lat, ...]
        x = scheduler.step(v, t, x, return_dict=False, generator=generator)[0]
        if callback is not None:
            callback(i, len(timesteps))
    return x


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """``(1 - sigma) * x0 + sigma * noise`` (``sigma`` scalar or ``[T_lat]`` per frame)."""
    if isinstance(sigma, torch.Tensor) and sigma.ndim == 1:
        sigma = sigma.to(x0).view((-1,) + (1,) * (x0.ndim - 1))  # [T_lat, 1, ...]
    return (1 - sigma) * x0 + sigma * noise
