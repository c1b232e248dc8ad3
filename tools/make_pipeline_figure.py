"""Draw docs/pipeline.png, the README's picture of the pipeline, from a real `gen` run.

    voyager-pipe gen --image examples/image.png --traj examples/traj_orbit.json --out runs/room \
        --config configs/cpu-preview.yaml
    python tools/make_pipeline_figure.py runs/room --out docs/pipeline.png

Panels: input image -> its depth -> the world cache rendered for a later camera (the
guidance: holes are what the generator must fill) -> the generated frame -> the final
world.ply seen from above with the camera path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from voyager_pipe.camera.trajectory_io import read_trajectory  # noqa: E402
from voyager_pipe.io.frames import read_frame_folder  # noqa: E402
from voyager_pipe.io.video import colorize_depth  # noqa: E402
from voyager_pipe.render import get_renderer  # noqa: E402
from voyager_pipe.world.ply import read_ply  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="output folder of voyager-pipe gen")
    parser.add_argument("--frame", type=int, default=-1, help="frame shown as guidance / generated (default: last)")
    parser.add_argument("--out", type=Path, default=Path("docs/pipeline.png"))
    args = parser.parse_args()

    run = read_frame_folder(args.run)
    cameras = read_trajectory(args.run / "cameras.json")
    frame = args.frame % len(run)
    ply = read_ply(args.run / "world.ply")
    xyz = torch.from_numpy(ply["xyz"])  # [P, 3]
    rgb = torch.from_numpy(ply["rgb"]).float() / 255  # [P, 3]
    # Guidance of `frame` as the first image alone would give it (the cache before any clip).
    first = ply["extra"].get("frame_id")
    keep = torch.from_numpy(first == 0) if first is not None else torch.ones(len(xyz), dtype=torch.bool)
    guidance = get_renderer().render(xyz[keep], rgb[keep], cameras[frame].to(dtype=torch.float32))

    panels = [
        ("1. input image", run.rgb[0]),
        ("2. depth", colorize_depth(run.depth[:1])[0]),
        (f"3. guidance, frame {frame}", guidance.rgb[0] * guidance.mask[0]),
        (f"4. generated, frame {frame}", run.rgb[frame]),
    ]
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.2), gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.9]})
    for ax, (title, image) in zip(axes, panels):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    ax = axes[-1]
    sample = np.random.default_rng(0).choice(len(xyz), size=min(len(xyz), 40000), replace=False)
    ax.scatter(ply["xyz"][sample, 0], ply["xyz"][sample, 2], c=ply["rgb"][sample] / 255, s=0.3, linewidths=0)
    centers = cameras.centers.numpy()  # [N, 3]
    ax.plot(centers[:, 0], centers[:, 2], "r-", lw=1.5)
    ax.set_title(f"5. world.ply from above ({len(xyz):,} points)", fontsize=10)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
