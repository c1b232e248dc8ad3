"""ClipScheduler: long trajectories as overlapping clips (the paper's Algorithm 2, "smooth sampling").

Written once against :class:`~voyager_pipe.generate.base.ClipGenerator`. For every clip:

1. render the world cache along the clip's cameras -> :class:`ClipCondition`;
2. latents from noise; for clip k+1 the first ``overlap`` frames (``n_ov`` latent frames) start
   as clip k's decoded result, encoded in clip k+1's latent layout and re-noised to
   ``sigma_init`` (``x = (1 - sigma_init) z_prev + sigma_init * noise``). Without per-frame
   sigmas the whole clip is then denoised from sigma 1 (the overlap content acts as a noise
   initialisation, as in the paper); with ``diffusion_forcing`` on a backend that supports it,
   the overlap frames are held at ``sigma_init`` until the schedule reaches it;
3. denoise the full schedule (``steps``);
4. AVERAGE the overlap latents with ``z_prev``; inject ``sigma_refine`` noise and run
   ``refine_steps`` over the whole fused clip (skipped for the first clip: nothing was fused);
5. decode; update the world cache with the frames it has not seen yet (only the pixels the
   backend's ``PreparedClip.cache_mask`` allows, when it sets one); clip k's frames that
   the next clip shares are final only after that clip (each output frame comes from the last
   clip that contains it, so every trajectory frame is output exactly once).

Clip planning (:func:`plan_clips`): clips of ``clip_len`` frames start every
``stride = clip_len - overlap`` frames. With temporal compression ``c`` (4 for the causal
VAE) ``clip_len`` must be ``1 + c*k`` and the overlap ``0`` or ``1 + c*j`` (rounded up), so the
overlap of clip k+1 is exactly its first ``1 + (overlap - 1)/c`` latent frames. The last clip
holds the remaining frames; when that count is not a valid length it is padded by repeating
the last camera and the padded frames are dropped. A trajectory shorter than a clip is one
(padded) clip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Optional

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.errors import InputError
from voyager_pipe.generate.base import ClipCondition, ClipGenerator, num_latent_frames, valid_length_at_least
from voyager_pipe.generate.config import GenerateConfig
from voyager_pipe.generate.sampler import add_noise

if TYPE_CHECKING:  # pragma: no cover
    from voyager_pipe.world.cache import WorldCache


# --------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class ClipPlan:
    """One clip: trajectory frames ``[start, stop)`` generated as ``length`` frames (padding at the end)."""

    index: int
    start: int
    stop: int
    length: int  # generated frames, >= stop - start (valid for the temporal compression)
    overlap: int  # frames shared with the previous clip (0 for the first)
    out_start: int  # this clip is the final source of frames [out_start, out_stop)
    out_stop: int

    @property
    def num_real(self) -> int:
        return self.stop - self.start

    @property
    def num_padded(self) -> int:
        return self.length - self.num_real


def default_overlap(clip_len: int, temporal_compression: int = 1) -> int:
    """Half a clip, rounded to the nearest valid overlap (``1 + c*j``; ties go up)."""
    if clip_len <= 1:
        return 0
    c = temporal_compression
    half = clip_len / 2
    j = int((half - 1) / c + 0.5)
    return min(1 + c * max(j, 0), clip_len - 1) if 1 + c * max(j, 0) < clip_len else 0


def resolve_overlap(clip_len: int, overlap: Optional[int], temporal_compression: int = 1) -> int:
    """Checked overlap for ``clip_len`` (``None`` = :func:`default_overlap`, else rounded up to valid)."""
    c = temporal_compression
    if clip_len < 1 or (clip_len - 1) % c:
        raise InputError(f"generate.clip_len: {clip_len} frames is not valid for this backend "
                         f"(temporal compression {c}: need 1 + {c}k, e.g. {valid_length_at_least(max(clip_len, 1), c)})")
    if overlap is None:
        return default_overlap(clip_len, c)
    if overlap < 0:
        raise InputError(f"generate.overlap: must be >= 0, got {overlap}")
    if overlap > 0 and (overlap - 1) % c:
        overlap = valid_length_at_least(overlap, c)
    if overlap >= clip_len:
        raise InputError(f"generate.overlap: {overlap} must be smaller than generate.clip_len={clip_len}")
    return overlap


def plan_clips(num_frames: int, clip_len: int, overlap: Optional[int] = None,
               temporal_compression: int = 1) -> list[ClipPlan]:
    """Split ``num_frames`` trajectory frames into overlapping clips (see the module docstring)."""
    if num_frames < 1:
        raise InputError("trajectory: has no frames")
    overlap = resolve_overlap(clip_len, overlap, temporal_compression)
    stride = clip_len - overlap
    starts = [0]
    while starts[-1] + clip_len < num_frames:
        starts.append(starts[-1] + stride)
    plans = []
    for k, start in enumerate(starts):
        stop = min(start + clip_len, num_frames)
        out_stop = starts[k + 1] if k + 1 < len(starts) else num_frames
        plans.append(ClipPlan(index=k, start=start, stop=stop,
                              length=valid_length_at_least(stop - start, temporal_compression),
                              overlap=0 if k == 0 else overlap, out_start=start, out_stop=out_stop))
    return plans


def fuse_overlap(latents: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Average the first ``len(previous)`` latent frames of ``latents`` with ``previous``.

    Args:
        latents: ``[T_lat, C, h, w]`` the new clip.
        previous: ``[n_ov, C, h, w]`` the previous clip's overlap, in the new clip's layout.
    Returns:
        ``[T_lat, C, h, w]`` (a new tensor).
    """
    n = previous.shape[0]
    fused = latents.clone()  # [T_lat, C, h, w]
    fused[:n] = 0.5 * (latents[:n] + previous.to(latents))
    return fused


# --------------------------------------------------------------------------- running
@dataclass
class SchedulerState:
    """What the next clip needs from the previous ones (persisted for ``--resume``)."""

    next_clip: int = 0
    cached_upto: int = 1  # trajectory frames [0, cached_upto) are already in the world cache
    carry_rgb: Optional[torch.Tensor] = None  # [overlap, 3, H, W] previous clip's frames shared with the next
    carry_depth: Optional[torch.Tensor] = None  # [overlap, 1, H, W]
    rng_state: Optional[torch.Tensor] = None
    timings: dict = field(default_factory=dict)


@dataclass
class ClipResult:
    """The frames clip ``plan`` makes final: trajectory frames ``[plan.out_start, plan.out_stop)``."""

    plan: ClipPlan
    rgb: torch.Tensor  # [n, 3, H, W]
    depth: torch.Tensor  # [n, 1, H, W]
    mask: torch.Tensor  # [n, 1, H, W] bool: pixels the world cache covered in the clip's condition
    state: SchedulerState  # state after this clip (resume from here)


@dataclass
class ScheduleInputs:
    """What every clip of one run reads (the arguments of :meth:`ClipScheduler.run`)."""

    cameras: Cameras  # the whole trajectory (N cameras at the output size)
    cache: "WorldCache"
    reference_rgb: torch.Tensor  # [3, H, W]
    reference_depth: torch.Tensor  # [1, H, W]
    rng: torch.Generator
    plans: list[ClipPlan]


class ClipScheduler:
    """Runs a :class:`ClipGenerator` clip by clip along a trajectory, with the world cache in the loop.

    The cache is rendered as each clip's condition with the generator's ``condition_render``
    recipe when it declares one (:mod:`voyager_pipe.render.condition`), else with the cache's
    default render.

    Args:
        generator: any ClipGenerator backend.
        cfg: :class:`GenerateConfig` (clip_len, overlap, steps, shift, sigma_init, sigma_refine,
            refine_steps, diffusion_forcing, progress).
    """

    def __init__(self, generator: ClipGenerator, cfg: GenerateConfig | None = None):
        self.generator = generator
        self.cfg = cfg or GenerateConfig()
        c = self.cfg
        if c.steps < 1 or c.refine_steps < 0:
            raise InputError("generate.steps must be >= 1 and generate.refine_steps >= 0")
        if not (0 < c.sigma_init <= 1):
            raise InputError(f"generate.sigma_init: must be in (0, 1], got {c.sigma_init}")
        if not (0 <= c.sigma_refine < 1):
            raise InputError(f"generate.sigma_refine: must be in [0, 1), got {c.sigma_refine}")
        self.timings: dict[str, float] = {}

    def plan(self, num_frames: int) -> list[ClipPlan]:
        return plan_clips(num_frames, self.cfg.clip_len, self.cfg.overlap, self.generator.temporal_compression)

    def _tick(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - start
        return now

    def run(self, cameras: Cameras, cache, reference_rgb: torch.Tensor, reference_depth: torch.Tensor,
            rng: torch.Generator, state: Optional[SchedulerState] = None,
            plans: Optional[list[ClipPlan]] = None) -> Iterator[ClipResult]:
        """Generate along ``cameras``, yielding one :class:`ClipResult` per clip.

        Args:
            cameras: the whole trajectory (``N`` cameras at the output size).
            cache: a ``WorldCache`` already holding the input frame (trajectory frame 0).
            reference_rgb: ``[3, H, W]``; reference_depth: ``[1, H, W]``.
            rng: the run's torch.Generator (its state is restored from ``state`` when resuming).
            state: resume after ``state.next_clip - 1`` (None: start at clip 0).
            plans: :meth:`plan` of ``len(cameras)`` when the caller already has it.
        """
        from tqdm.auto import tqdm

        state = state or SchedulerState()
        self.timings = dict(state.timings)
        if state.rng_state is not None:
            rng.set_state(state.rng_state)
        gen = self.generator
        inputs = ScheduleInputs(cameras=cameras, cache=cache, reference_rgb=reference_rgb.to(gen.device),
                                reference_depth=reference_depth.to(gen.device), rng=rng,
                                plans=plans if plans is not None else self.plan(len(cameras)))
        clips_bar = tqdm(total=len(inputs.plans), initial=state.next_clip, desc="clips", unit="clip",
                         disable=not self.cfg.progress)
        try:
            for plan in inputs.plans[state.next_clip:]:
                steps_total = self.cfg.steps + (self.cfg.refine_steps if plan.overlap and self.cfg.sigma_refine > 0 else 0)
                with tqdm(total=steps_total, desc=f"clip {plan.index}", unit="step", leave=False,
                          disable=not self.cfg.progress) as bar:
                    result = self._run_clip(plan, inputs, state, lambda i, n: bar.update(1))
                state = result.state
                clips_bar.update(1)
                yield result
        finally:
            clips_bar.close()

    # ------------------------------------------------------------------ one clip
    def _run_clip(self, plan: ClipPlan, inputs: ScheduleInputs, state: SchedulerState, step) -> ClipResult:
        cfg, gen, cache, rng = self.cfg, self.generator, inputs.cache, inputs.rng
        cameras = inputs.cameras
        t = time.perf_counter()
        # 1. condition: the cache rendered along the clip (padded by repeating the last camera)
        frame_ids = torch.arange(plan.start, plan.start + plan.length).clamp(max=plan.stop - 1)  # [T]
        clip_cams = Cameras(K=cameras.K[frame_ids], w2c=cameras.w2c[frame_ids], width=cameras.width, height=cameras.height)
        rendered = cache.render(clip_cams, getattr(gen, "condition_render", None))
        condition = ClipCondition(
            rgb=rendered.rgb.to(gen.device), depth=rendered.depth.to(gen.device), mask=rendered.mask.to(gen.device),
            cameras=clip_cams, reference_rgb=inputs.reference_rgb, reference_depth=inputs.reference_depth,
            frame_indices=frame_ids,
        )  # rgb [T, 3, H, W]
        t = self._tick("render", t)
        prepared = gen.prepare(condition)

        # 2. latents: noise, with the overlap initialised from the previous clip
        shape = gen.latent_shape(plan.length, cameras.height, cameras.width)
        noise = gen.noise_like(torch.empty(shape, device=gen.device, dtype=gen.dtype), rng)  # [T_lat, C, h, w]
        x = noise
        per_frame_sigma = None
        previous = None
        if plan.overlap > 0 and state.carry_rgb is not None:
            n_ov = num_latent_frames(plan.overlap, gen.temporal_compression)
            previous = gen.encode(state.carry_rgb.to(gen.device), state.carry_depth.to(gen.device),
                                  prepared)  # [n_ov, C, h, w]
            x = noise.clone()
            x[:n_ov] = add_noise(previous, noise[:n_ov], cfg.sigma_init)
            if cfg.diffusion_forcing and gen.supports_per_frame_sigma:
                per_frame_sigma = torch.ones(shape[0])  # [T_lat]
                per_frame_sigma[:n_ov] = cfg.sigma_init

        # 3. denoise the full schedule
        latents = gen.denoise(x, prepared, 1.0, 0.0, cfg.steps, rng, per_frame_sigma=per_frame_sigma, callback=step)

        # 4. average the overlap with the previous clip, then refine the fused clip
        if previous is not None:
            latents = fuse_overlap(latents, previous)  # [T_lat, C, h, w]
            if cfg.sigma_refine > 0 and cfg.refine_steps > 0:
                refine_noise = gen.noise_like(latents, rng)  # [T_lat, C, h, w]
                latents = gen.denoise(add_noise(latents, refine_noise, cfg.sigma_refine), prepared,
                                      cfg.sigma_refine, 0.0, cfg.refine_steps, rng, callback=step)

        # 5. decode (drop padded frames); frames stay on the generator's device until written
        rgb, depth = gen.decode(latents, prepared)  # [T, 3, H, W], [T, 1, H, W]
        rgb, depth = rgb[: plan.num_real].float(), depth[: plan.num_real].float()
        t = self._tick("generator", t)

        # 6. world cache: add the frames it has not seen yet (the cache decides which pixels are valid,
        #    within the pixels the backend vouches for)
        new_from = max(state.cached_upto, plan.start)
        if new_from < plan.stop:
            rel = slice(new_from - plan.start, plan.num_real)
            vouched = None if prepared.cache_mask is None else prepared.cache_mask[rel].to(rgb.device)  # [n, 1, H, W]
            cache.update(rgb[rel], depth[rel], cameras[new_from: plan.stop], valid_mask=vouched,
                         frame_ids=list(range(new_from, plan.stop)))
        t = self._tick("cache_update", t)

        # 7. carry the frames the next clip shares, return the final ones (far-layer depth written as 0 = none)
        nxt = inputs.plans[plan.index + 1] if plan.index + 1 < len(inputs.plans) else None
        carry = slice(nxt.start - plan.start, plan.num_real) if nxt is not None and nxt.overlap else None
        new_state = SchedulerState(
            next_clip=plan.index + 1,
            cached_upto=max(state.cached_upto, plan.stop),
            carry_rgb=rgb[carry].clone() if carry else None,
            carry_depth=depth[carry].clone() if carry else None,
            rng_state=rng.get_state(),
            timings=dict(self.timings),
        )
        out = slice(plan.out_start - plan.start, plan.out_stop - plan.start)
        out_depth = depth[out]  # [n, 1, H, W]
        out_depth = torch.where(out_depth < cache.far_threshold, out_depth, torch.zeros_like(out_depth))
        return ClipResult(plan=plan, rgb=rgb[out].cpu(), depth=out_depth.cpu(), mask=rendered.mask[out].cpu(),
                          state=new_state)
