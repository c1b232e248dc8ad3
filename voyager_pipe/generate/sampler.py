"""Flow-matching sampling on diffusers' schedulers, from any starting noise level.

Convention: ``x_sigma = (1 - sigma) * x0 + sigma * noise``, velocity ``v = noise - x0``,
Euler step ``x_next = x + (sigma_next - sigma) * v``. The schedule is the time-shifted one of
HunyuanVideo / SD3: ``sigma = shift * s / (1 + (shift - 1) * s)`` for ``s`` spaced evenly.

Starting at an intermediate ``sigma_from`` runs the *tail* of that schedule: ``s`` is spaced
evenly between ``s(sigma_from)`` and ``s(sigma_to)`` (the inverse shift), so the steps have the
same shape as in a full run, just fewer of the high-noise ones.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def flow_sigmas(sigma_from: float, sigma_to: float, steps: int, shift: float) -> torch.Tensor:
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
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
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


SAMPLERS = ("euler", "heun", "unipc", "dpmpp")
"""Selectable ``generate.sampler`` values (all run by a diffusers scheduler object):

* ``euler``: ``FlowMatchEulerDiscreteScheduler`` (the reference sampler; one model call per step);
* ``heun``: ``FlowMatchHeunDiscreteScheduler`` (2nd order; two calls per step, one for a last step to 0);
* ``unipc``: ``UniPCMultistepScheduler`` in flow mode (multistep, one call per step: fewer steps);
* ``dpmpp``: ``DPMSolverMultistepScheduler`` (DPM-Solver++ 2M) in flow mode (likewise).
"""


@dataclass
class FlowSchedule:
    """A diffusers scheduler primed with our schedule, and where the model is evaluated.

    Attributes:
        scheduler: the scheduler (``set_begin_index(0)`` done; step it once per model call).
        timesteps: ``[calls]`` the timestep handed to ``scheduler.step`` for each call.
        model_sigmas: ``[calls]`` noise level of the sample at each call (the model gets ``1000 * sigma``).
        step_of_call: ``[calls]`` index of the schedule step each call belongs to (for callbacks).
    """

    scheduler: object
    timesteps: torch.Tensor
    model_sigmas: list[float]
    step_of_call: list[int]


def check_sampler(name: str) -> str:
    """``name`` if it is one of :data:`SAMPLERS`, else InputError naming ``generate.sampler``."""
    if name not in SAMPLERS:
        raise InputError(f"generate.sampler: {name!r} is not one of {list(SAMPLERS)}")
    return name


def flow_schedule(sigmas: torch.Tensor, sampler: str = "euler") -> FlowSchedule:
    """Install the decreasing noise levels ``sigmas [steps + 1]`` (:func:`flow_sigmas`) in a scheduler.

    diffusers builds these schedulers from a step count starting at sigma 1; we overwrite their
    ``sigmas`` / ``timesteps`` with ours, so every sampler can start at an intermediate level
    (overlap initialisation, refinement) and stop above 0.
    """
    import diffusers

    check_sampler(sampler)
    sigmas = sigmas.to(torch.float32).cpu()  # [steps + 1]
    steps = sigmas.numel() - 1
    if sampler == "euler":
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
        scheduler.set_timesteps(steps)
        scheduler.sigmas = sigmas.clone()
        model_sigmas = sigmas[:-1]  # [steps]
        step_of_call = list(range(steps))
    elif sampler == "heun":
        # the last interval is an Euler step when it ends at 0 (Heun's corrector would divide by sigma = 0)
        scheduler = diffusers.FlowMatchHeunDiscreteScheduler()
        scheduler.set_timesteps(steps)
        scheduler.sigmas = torch.cat([sigmas[:1], sigmas[1:-1].repeat_interleave(2), sigmas[-1:]])  # [2 steps]
        # one call at s_0, two at each inner level; the corrector call at the last level only when it is > 0
        model_sigmas = scheduler.sigmas if float(sigmas[-1]) > 0 else scheduler.sigmas[:-1]
        step_of_call = [k // 2 for k in range(model_sigmas.numel())]
    else:
        cls = diffusers.UniPCMultistepScheduler if sampler == "unipc" else diffusers.DPMSolverMultistepScheduler
        extra = {"algorithm_type": "dpmsolver++"} if sampler == "dpmpp" else {}
        scheduler = cls(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=1.0,
                        final_sigmas_type="zero", **extra)
        scheduler.set_timesteps(steps)
        own = sigmas.clone()
        own[0] = min(float(own[0]), 1.0 - 1e-6)  # alpha = 1 - sigma must stay > 0 (log-SNR of the solver)
        scheduler.sigmas = own
        model_sigmas = own[:-1]
        step_of_call = list(range(steps))
    timesteps = (model_sigmas * 1000.0).to(torch.float32)  # [calls]
    scheduler.timesteps = timesteps.clone()
    scheduler.set_begin_index(0)
    return FlowSchedule(scheduler=scheduler, timesteps=timesteps, model_sigmas=model_sigmas.tolist(),
                        step_of_call=step_of_call)


def sample_flow(
    x: torch.Tensor,
    velocity: Callable[[torch.Tensor, float], torch.Tensor],
    sigmas: torch.Tensor,
    sampler: str = "euler",
    generator: Optional[torch.Generator] = None,
    callback: Optional[Callable[[int, int], None]] = None,
) -> torch.Tensor:
    """Integrate the flow along ``sigmas`` (``[steps + 1]``, decreasing) with the chosen sampler.

    Args:
        x: latents (any shape) at ``sigmas[0]``.
        velocity: ``velocity(x, sigma) -> v`` (same shape), the network or an oracle.
        sigmas: the schedule, e.g. :func:`flow_sigmas`.
        sampler: one of :data:`SAMPLERS`.
        generator: handed to ``scheduler.step`` (the deterministic samplers ignore it).
        callback: ``callback(i, steps)`` after each finished schedule step.

    Returns:
        latents at ``sigmas[-1]`` (float32).
    """
    import inspect

    plan = flow_schedule(sigmas, sampler)
    steps = sigmas.numel() - 1
    calls = len(plan.model_sigmas)
    takes_generator = "generator" in inspect.signature(plan.scheduler.step).parameters
    extra = {"generator": generator} if takes_generator else {}
    for k in range(calls):
        v = velocity(x, plan.model_sigmas[k])
        x = plan.scheduler.step(v, plan.timesteps[k], x, return_dict=False, **extra)[0]
        step_done = k + 1 == calls or plan.step_of_call[k + 1] != plan.step_of_call[k]
        if callback is not None and step_done:
            callback(plan.step_of_call[k], steps)
    return x


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """``(1 - sigma) * x0 + sigma * noise`` (``sigma`` scalar or ``[T_lat]`` per frame)."""
    if isinstance(sigma, torch.Tensor) and sigma.ndim == 1:
        sigma = sigma.to(x0).view((-1,) + (1,) * (x0.ndim - 1))  # [T_lat, 1, ...]
    return (1 - sigma) * x0 + sigma * noise
