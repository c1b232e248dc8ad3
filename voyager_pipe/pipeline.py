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

import io
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
from voyager_pipe.distributed import rank_output_dir
from voyager_pipe.errors import InputError

STATE_DIR = "state"


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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"device: {name!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None


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
        on_clip_done: Optional[Callable[[int], None]] = None,
    ) -> WorldPipelineOutput:
        """Run ``gen``. ``on_clip_done(clip_index)`` is called after each clip's state is saved."""
        from voyager_pipe.depth import estimate_depth
        from voyager_pipe.generate.registry import get_generator, resolve_backend_name
        from voyager_pipe.generate.scheduler import ClipScheduler
        from voyager_pipe.io.atomic import output_dir
        from voyager_pipe.io.images import read_image
        from voyager_pipe.render import get_renderer
        from voyager_pipe.world import WorldCache

        cfg = self.config
        timings: dict[str, float] = {}
        t_start = time.perf_counter()

        # 1. check inputs (nothing is written before they all pass)
        out_dir = rank_output_dir(out_dir, resume)  # torchrun: ranks > 0 write to a scratch folder (voyager_pipe.distributed)
        partial = out_dir.with_name(out_dir.name + ".partial")
        rgb0 = read_image(image)  # [3, H, W]
        height, width = rgb0.shape[-2:]
        cameras = self._read_cameras(trajectory, width, height)
        if out_dir.exists() and not overwrite and not resume:
            raise InputError(f"{out_dir}: output folder exists; pass --overwrite or choose another --out")
        if resume and not (partial / STATE_DIR / "state.pt").is_file():
            raise InputError(f"{partial}: nothing to resume (no interrupted run of this output folder)")
        generator = self._generator if self._generator is not None else get_generator(cfg, self.device)
        backend = getattr(generator, "name", resolve_backend_name(cfg))
        scheduler = ClipScheduler(generator, cfg.generate)
        plans = scheduler.plan(len(cameras))

        # 2. depth of the input image
        t = time.perf_counter()
        estimate = estimate_depth(rgb0, cfg.depth, image_path=image, depth_path=depth, device=self.device)
        depth0 = torch.where(estimate.valid, estimate.depth, torch.zeros_like(estimate.depth)).float()  # [1, H, W]
        if not bool(estimate.valid.any()):
            raise InputError(f"{depth or image}: depth has no valid pixel (all NaN, inf, zero or negative)")
        timings["depth"] = time.perf_counter() - t

        # 3. world cache from the image, taken by trajectory camera 0
        state = None
        cache = WorldCache(cfg.cache, renderer=get_renderer(cfg.render, device=self.device), device=self.device)
        if resume:
            state, cache_state = self._load_state(partial, len(cameras))
            cache.load_state_dict(cache_state)
        else:
            if partial.exists():
                shutil.rmtree(partial)
            cache.update(rgb0[None], depth0[None], cameras[0], valid_mask=estimate.valid[None], frame_ids=[0])

        # 4. clips
        rng = torch.Generator(device=generator.device).manual_seed(cfg.seed)
        with output_dir(out_dir, keep_partial=True) as folder:
            from voyager_pipe.io.frames import write_frames

            io_seconds = state.timings.get("io", 0.0) if state else 0.0
            for result in scheduler.run(cameras, cache, rgb0, depth0, rng, state=state):
                t = time.perf_counter()
                write_frames(folder, result.rgb, result.depth, mask=result.mask, start=result.plan.out_start)
                io_seconds += time.perf_counter() - t
                result.state.timings["io"] = io_seconds
                self._save_state(folder, result.state, cache, len(cameras))
                if on_clip_done is not None:
                    on_clip_done(result.plan.index)
            timings.update({k: v for k, v in scheduler.timings.items()})

            # 5. outputs
            t = time.perf_counter()
            self._write_outputs(folder, cameras, cache)
            timings["io"] = io_seconds + time.perf_counter() - t
            timings["total"] = time.perf_counter() - t_start  # this process (a resumed run counts its part only)
            output = WorldPipelineOutput(out_dir=out_dir, num_frames=len(cameras), num_clips=len(plans),
                                         num_points=len(cache), backend=backend, timings=timings)
            self._write_run_json(folder, output, estimate.source, width, height)
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
        return cameras.to(dtype=torch.float32)

    # ------------------------------------------------------------------ state
    def _save_state(self, folder: Path, state, cache, num_frames: int) -> None:
        from voyager_pipe.io.atomic import atomic_write_bytes

        payload = {"scheduler": state, "cache": cache.state_dict(), "config": config_to_dict(self.config),
                   "num_frames": num_frames}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write_bytes(folder / STATE_DIR / "state.pt", buffer.getvalue())

    def _load_state(self, partial: Path, num_frames: int):
        payload = torch.load(partial / STATE_DIR / "state.pt", weights_only=False)
        if payload["config"] != config_to_dict(self.config) or payload["num_frames"] != num_frames:
            raise InputError(f"{partial}: cannot resume: the config or the trajectory differ from the interrupted run")
        return payload["scheduler"], payload["cache"]

    # ------------------------------------------------------------------ outputs
    def _write_outputs(self, folder: Path, cameras: Cameras, cache) -> None:
        from voyager_pipe.camera.trajectory_io import write_trajectory
        from voyager_pipe.generate.outputs import write_videos

        out = self.config.output
        write_trajectory(folder / "cameras.json", cameras.to(dtype=torch.float64))
        if out.write_ply:
            cache.save(folder / "world.ply")
        dump_config(self.config, folder / "config.yaml")
        if out.write_video:
            write_videos(folder, len(cameras), out.fps)

    def _write_run_json(self, folder: Path, output: WorldPipelineOutput, depth_source: str, width: int, height: int) -> None:
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
        atomic_write_text(folder / "run.json", json.dumps(info, indent=2) + "\n")
