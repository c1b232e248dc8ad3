"""Time of one explore segment (target: < 10 s at 512x384 with the weight-free warp backend on CPU).

    python tools/bench_explore.py [--config configs/cpu-preview.yaml] [--size 512x384] [--segments 3]

Makes a 512x384 input from the bundled example (image and depth resized), starts a session and
runs ``--segments`` forward segments, printing the time of each (the first includes one-off
set-up work; the figure to compare with the target is the median of the others) and the points
added. Then walks back the same way and prints the out-and-back ratio (points added coming back /
going out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "cpu-preview.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--size", default="512x384")
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--step", type=float, default=0.25)
    args = parser.parse_args()

    import cv2
    import torch

    from voyager_pipe.config import load_config
    from voyager_pipe.explore.session import ExploreSession, ExploreSettings

    torch.set_num_threads(max(1, torch.get_num_threads()))
    width, height = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench_explore_"))
    image = cv2.imread(str(ROOT / "examples" / "image.png"))
    cv2.imwrite(str(work / "image.png"), cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC))
    depth = np.load(ROOT / "examples" / "depth.npy")
    np.save(work / "depth.npy", cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST))

    config = load_config(args.config, ["device=cpu", "generate.backend=warp", "generate.progress=false", *args.overrides])
    session = ExploreSession.start(config, work / "image.png", work / "depth.npy", settings=ExploreSettings(step=args.step))
    clip_len, overlap, stride = session.clip_layout()
    print(f"{width}x{height}, backend warp on CPU ({torch.get_num_threads()} threads), clip_len {clip_len}, overlap {overlap}: "
          f"a segment is {stride} new frames (clips of {clip_len} frames, steps {config.generate.steps} + "
          f"refine {config.generate.refine_steps})")
    cpu_seconds: list[float] = []

    def step(action: str):
        cpu = time.process_time()
        result = session.step(action)
        cpu_seconds.append(time.process_time() - cpu)
        print(f"  {action}: {result.seconds:.2f} s wall, {cpu_seconds[-1]:.2f} s CPU (all threads), "
              f"+{result.added_points} points; stages: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()), flush=True)
        return result

    out = [step("forward") for _ in range(args.segments)]
    back = [step("backward") for _ in range(args.segments)]
    times = [r.seconds for r in out + back][1:]
    median = statistics.median(times)
    load = os.getloadavg()[0]
    print(f"segment time: median {median:.2f} s wall, max {max(times):.2f} s (first, with set-up: {out[0].seconds:.2f} s); "
          f"median CPU {statistics.median(cpu_seconds[1:]):.2f} s; load average {load:.1f} on {os.cpu_count()} CPUs; "
          f"target < 10 s: {'met' if median < 10 else 'NOT met'}")
    going, coming = sum(r.added_points for r in out), sum(r.added_points for r in back)
    print(f"out-and-back: {going} points added going out, {coming} coming back: ratio {coming / max(going, 1):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
