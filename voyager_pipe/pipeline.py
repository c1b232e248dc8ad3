"""WorldPipeline: one image + a camera trajectory -> world-consistent RGB-D video + point cloud.

Read top to bottom (the numbered steps of ``voyager-pipe gen``):

1. check inputs: 8-bit RGB image, trajectory (>= 1 frame; its intrinsics rescaled to the image
   size), output folder; nothing is written before all inputs passed;
2. depth of the image (:func:`voyager_pipe.depth.estimate_depth`: file, sidecar, learned model);
3. world cache from the image: the image is taken by trajectory camera 0 (whatever its pose:
   a trajectory that does not start at the identity places the world in its own frame);
4. clips (:class:`~voyager_pipe.generate.scheduler.ClipScheduler`), frames written as each
   clip finishes, with the state needed for ``--resume`` saved after each clip;
5. outputs: video.mp4, video_rgbd.mp4, cameras.json, world.ply, config.yaml, run.json.

The folder is built as ``<out>.partial`` and renamed to ``<out>`` at the end. An interrupted run
keeps ``<out>.partial``; ``resume=True`` continues after its last finished clip and gives the
same files as an uninterrupted run (same config and inputs required).
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.config import PipelineConfig, config_to_dict, dump_config
from voyager_pipe.device import resolve_device
from voyager_pipe.distributed import rank_output_dir
from voyager_pipe.errors import InputError
from voyager_pipe.world.state import StateWriter, has_state, load_state

STATE_DIR = "state"


def can_resume(out_dir: str | Path) -> bool:
    """True when ``out_dir`` has an interrupted run (``<out>.partial`` with saved state) to resume."""
    from voyager_pipe.io.atomic import partial_path

    return has_state(partial_path(out_dir) / STATE_DIR)


@dataclass
class WorldPipelineOutput:
    """Result of a run: where it went and what it cost."""

    out_dir: Path
    num_frames: int
    num_clips: int
    num_points: int
    backend: str
    timings: dict = field(default_factory=dict)  # seconds per stage

    def summary(self) -> str:
        total = self.timings.get("total", 0.0)
        return (f"{self.num_frames} frames in {self.num_clips} clip(s) with '{self.backend}' -> {self.out_dir} "
                f"in {total:.1f} s ({total / max(self.num_frames, 1):.2f} s/frame), {self.num_points} points in world.ply")


class WorldPipeline:
    """The ``gen`` pipeline.

    Args:
        config: the resolved :class:`PipelineConfig`.
        generator: a ClipGenerator to use instead of the configured backend (tests, oracles).
        device: overrides ``config.device``.
    """

    def __init__(self, config: PipelineConfig | None = None, generator=None, device=None):
        self.config = config or PipelineConfig()
        self.device = torch.device(device) if device is not None else resolve_device(self.config.device)
        self._generator = generator

    def __call__(
        self,
        image: str | Path,
        trajectory: str | Path | Cameras,
        out_dir: str | Path,
        depth: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        on_clip: Optional[Callable] = None,
    ) -> WorldPipelineOutput:
        """Run ``gen``. ``on_clip(result, cache, cameras, folder)`` is called after each clip's frames and state
        are saved (``result.plan.index`` is the clip's index; live viewers, interruption tests, benchmarks)."""
        from voyager_pipe.depth import estimate_depth
        from voyager_pipe.generate.registry import get_generator
        from voyager_pipe.generate.scheduler import ClipScheduler
        from voyager_pipe.io.atomic import check_output_dir, output_dir, partial_path
        from voyager_pipe.io.images import read_image
        from voyager_pipe.render import get_renderer
        from voyager_pipe.world import WorldCache

        cfg = self.config
        timings: dict[str, float] = {}
        t_start = time.perf_counter()

        # 1. check inputs (nothing is written before they all pass)
        out_dir = rank_output_dir(out_dir, resume, STATE_DIR)  # torchrun: ranks > 0 write to a scratch folder (voyager_pipe.distributed)
        rgb0 = read_image(image)  # [3, H, W]
        height, width = rgb0.shape[-2:]
        cameras = self._read_cameras(trajectory, width, height)
        inputs = [image, depth, cfg.depth.file, cfg.depth.model,
                  None if isinstance(trajectory, Cameras) else trajectory]
        check_output_dir(out_dir, inputs, overwrite=overwrite, resume=resume)
        partial = partial_path(out_dir)
        if resume and not has_state(partial / STATE_DIR):
            raise InputError(f"{partial}: nothing to resume (no interrupted run of this output folder)")
        generator = self._generator if self._generator is not None else get_generator(cfg, self.device)
        scheduler = ClipScheduler(generator, cfg.generate)
        plans = scheduler.plan(len(cameras))

        # 2. depth of the input image
        t = time.perf_counter()
        estimate = estimate_depth(rgb0, cfg.depth, image_path=image, depth_path=depth, device=self.device)
        depth0 = torch.where(estimate.valid, estimate.depth, torch.zeros_like(estimate.depth)).float()  # [1, H, W]
        if not bool(estimate.valid.any()):
            raise InputError(f"{estimate.source.partition(':')[2] or image}: depth has no valid pixel (all NaN, inf, zero or negative)")
        timings["depth"] = time.perf_counter() - t

        # 3. world cache from the image, taken by trajectory camera 0 (depthless pixels: far layer)
        state = None
        cache = WorldCache(cfg.cache, renderer=get_renderer(cfg.render, device=self.device), device=self.device,
                           seed=cfg.seed)
        loaded = None
        if resume:
            state, loaded = self._load_state(partial / STATE_DIR, cache, len(cameras))
        else:
            cache.update(rgb0[None], depth0[None], cameras[0], frame_ids=[0])

        # 4. clips
        rng = torch.Generator(device=generator.device).manual_seed(cfg.seed)
        with output_dir(out_dir, keep_partial=True, inputs=inputs, overwrite=overwrite, resume=resume) as folder:
            from voyager_pipe.io.frames import write_frames

            stores = {"geometry": cache.geometry, "background": cache.background}
            writer = StateWriter(folder / STATE_DIR) if loaded is None else StateWriter.resuming(folder / STATE_DIR, loaded, stores)

            io_seconds = state.timings.get("io", 0.0) if state else 0.0
            for result in scheduler.run(cameras, cache, rgb0, depth0, rng, state=state, plans=plans):
                t = time.perf_counter()
                write_frames(folder, result.rgb, result.depth, mask=result.mask, start=result.plan.out_start)
                result.state.timings["io"] = io_seconds + time.perf_counter() - t
                self._save_state(writer, result.state, cache, len(cameras))
                io_seconds += time.perf_counter() - t
                if on_clip is not None:
                    on_clip(result, cache, cameras, folder)
            timings.update({k: v for k, v in scheduler.timings.items()})

            # 5. outputs
            t = time.perf_counter()
            self._write_outputs(folder, cameras, cache)
            timings["io"] = io_seconds + time.perf_counter() - t
            timings["total"] = time.perf_counter() - t_start  # this process (a resumed run counts its part only)
            output = WorldPipelineOutput(out_dir=out_dir, num_frames=len(cameras), num_clips=len(plans),
                                         num_points=len(cache), backend=generator.name, timings=timings)
            memory_report = getattr(generator, "memory_report", None)  # backends that report memory (voyager)
            self._write_run_json(folder, output, estimate.source, width, height, memory_report() if memory_report else None)
            shutil.rmtree(folder / STATE_DIR, ignore_errors=True)
        return output

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _read_cameras(trajectory, width: int, height: int) -> Cameras:
        from voyager_pipe.camera.trajectory_io import read_trajectory

        if isinstance(trajectory, Cameras):
            cameras = trajectory
            if (cameras.width, cameras.height) != (width, height):
                cameras = cameras.resize(width, height)
        else:
            cameras = read_trajectory(trajectory, size=(width, height))
        if len(cameras) == 0:
            raise InputError(f"{trajectory if not isinstance(trajectory, Cameras) else 'trajectory'}: has no frames")
        if not (torch.isfinite(cameras.K).all() and torch.isfinite(cameras.w2c).all()):
            raise InputError(f"{trajectory}: cameras contain NaN or inf")
        return cameras  # as read (float64 from files): cameras.json is written from these, consumers cast

    # ------------------------------------------------------------------ state
    def _state_header(self, num_frames: int) -> dict:
        """What must be equal for a resume: the config and the trajectory length (JSON-normalised)."""
        return json.loads(json.dumps({"config": config_to_dict(self.config), "num_frames": num_frames}))

    def _save_state(self, writer, state, cache, num_frames: int) -> None:
        """Incremental, data-only state after a clip (:mod:`voyager_pipe.world.state`)."""
        writer.save(header=self._state_header(num_frames),
                    scheduler={"next_clip": state.next_clip, "cached_upto": state.cached_upto,
                               "timings": {k: float(v) for k, v in state.timings.items()}},
                    scheduler_tensors={"carry_rgb": state.carry_rgb, "carry_depth": state.carry_depth,
                                       "rng_state": state.rng_state},
                    cache_meta=cache.meta(), stores={"geometry": cache.geometry, "background": cache.background})

    def _load_state(self, state_dir: Path, cache, num_frames: int):
        """Validated state of an interrupted run -> (SchedulerState, LoadedState); fills ``cache``."""
        from voyager_pipe.generate.scheduler import SchedulerState

        loaded = load_state(state_dir)
        if loaded.header != self._state_header(num_frames):
            raise InputError(f"{state_dir.parent}: cannot resume: the config or the trajectory differ from the interrupted run")
        cache.load_meta(loaded.cache_meta)
        for name, store in (("geometry", cache.geometry), ("background", cache.background)):
            store.replace(**{k: v.to(cache.device) for k, v in loaded.stores[name].items()})
        tensors = loaded.scheduler_tensors
        state = SchedulerState(next_clip=loaded.scheduler["next_clip"], cached_upto=loaded.scheduler["cached_upto"],
                               carry_rgb=tensors.get("carry_rgb"), carry_depth=tensors.get("carry_depth"),
                               rng_state=tensors["rng_state"], timings=dict(loaded.scheduler["timings"]))
        return state, loaded

    # ------------------------------------------------------------------ outputs
    def _write_outputs(self, folder: Path, cameras: Cameras, cache) -> None:
        from voyager_pipe.camera.trajectory_io import write_trajectory
        from voyager_pipe.io.video import write_videos

        out = self.config.output
        write_trajectory(folder / "cameras.json", cameras)
        if out.write_ply:
            cache.save(folder / "world.ply")
        dump_config(self.config, folder / "config.yaml")
        if out.write_video:
            write_videos(folder, len(cameras), out.fps)

    def _write_run_json(self, folder: Path, output: WorldPipelineOutput, depth_source: str, width: int, height: int,
                        memory: Optional[dict] = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        import numpy

        from voyager_pipe import __version__

        try:
            diffusers_version = version("diffusers")
        except PackageNotFoundError:
            diffusers_version = None
        from voyager_pipe.io.atomic import atomic_write_text

        info = {
            "versions": {"voyager_pipe": __version__, "python": platform.python_version(), "torch": torch.__version__,
                         "diffusers": diffusers_version, "numpy": numpy.__version__},
            "command": sys.argv,
            "seed": self.config.seed,
            "device": str(self.device),
            "backend": output.backend,
            "depth_source": depth_source,
            "width": width, "height": height,
            "frames": output.num_frames,
            "clips": output.num_clips,
            "cache_points": output.num_points,
            "timings_s": {k: round(v, 4) for k, v in output.timings.items()},
        }
        if memory is not None:
            info["memory"] = memory
        atomic_write_text(folder / "run.json", json.dumps(info, indent=2) + "\n")
