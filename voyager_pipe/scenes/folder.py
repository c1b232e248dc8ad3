"""Write a synthetic scene as an input + ground-truth folder::

    image.png          first frame (8-bit RGB): `gen --image`
    depth.npy          its z-depth, float32 [H, W], 0 = sky: `gen --depth`
    cameras.json       the trajectory, own JSON (first pose = identity): `gen --traj`
    frames/00000.png   ground-truth frame of every camera   }
    depth/00000.npy    ground-truth z-depth of every camera } the layout `eval --gt` reads
    mask/00000.png     255 where the ray hit geometry (not sky) }
    scene.json         what was generated (kind, seed, trajectory, size, supersample)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.scenes.layouts import Scene
from voyager_pipe.scenes.raycast import render_ground_truth


def write_scene_folder(out_dir: str | Path, scene: Scene, cameras: Cameras, supersample: int = 1,
                       progress: bool = False, extra: dict | None = None) -> Path:
    """Ray-cast ``scene`` along ``cameras`` and write the folder (built atomically). Returns its path."""
    from voyager_pipe.io.atomic import atomic_write_bytes, atomic_write_text, output_dir
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.io.frames import CAMERAS_FILE, _npy_bytes, write_frames
    from voyager_pipe.io.images import write_image

    rgb, depth = render_ground_truth(scene, cameras, supersample=supersample, progress=progress)  # [T,3,H,W], [T,1,H,W]
    out_dir = Path(out_dir)
    with output_dir(out_dir) as tmp:
        write_frames(tmp, rgb, depth, mask=depth > 0)
        write_trajectory(tmp / CAMERAS_FILE, cameras)
        write_image(tmp / "image.png", rgb[0])
        atomic_write_bytes(tmp / "depth.npy", _npy_bytes(depth[0, 0].numpy().astype(np.float32)))
        info = {"kind": scene.kind, "seed": scene.seed, "frames": len(cameras), "width": cameras.width,
                "height": cameras.height, "supersample": supersample, **(extra or {})}
        atomic_write_text(tmp / "scene.json", json.dumps(info, indent=2) + "\n")
    return out_dir
