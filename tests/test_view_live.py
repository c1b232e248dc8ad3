"""`gen --view`: the viewer fed clip by clip through the pipeline's on_clip hook."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("viser")

from voyager_pipe.config import load_config  # noqa: E402
from voyager_pipe.pipeline import WorldPipeline  # noqa: E402
from voyager_pipe.view.live import LiveView  # noqa: E402
from voyager_pipe.view.viewer import POINTS, WorldViewer, frustum_name  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_world_grows_and_frusta_appear_clip_by_clip(tmp_path):
    from voyager_pipe.camera.trajectory_io import read_trajectory

    config = load_config(None, ["generate.backend=warp", "generate.clip_len=5", "generate.steps=2", "generate.refine_steps=1",
                                "generate.progress=false", "output.write_video=false"])
    out = tmp_path / "run"
    viewer = WorldViewer(port=0)
    live = LiveView(viewer, out)
    seen = []  # (frames shown, points shown) after each clip

    def on_clip(result, cache, cameras, folder):
        live(result, cache, cameras, folder)
        assert viewer.num_frames == result.plan.out_stop  # this clip's frames are in
        assert viewer.frames.panel(result.plan.out_stop - 1) is not None  # read from the .partial folder
        seen.append((viewer.num_frames, viewer.server.scene.get_handle_by_name(POINTS).points.shape[0], len(cache)))

    try:
        output = WorldPipeline(config)(EXAMPLES / "image.png", EXAMPLES / "traj_short.json", out,
                                       depth=EXAMPLES / "depth.npy", on_clip=on_clip)
        live.finished(output.summary())
        frames = len(read_trajectory(EXAMPLES / "traj_short.json"))
        assert len(seen) == output.num_clips >= 2
        assert [s[0] for s in seen] == sorted(s[0] for s in seen) and seen[-1][0] == frames
        assert all(shown == cached for _, shown, cached in seen)  # every cache point (under the budget)
        assert seen[-1][2] > seen[0][2]  # the world grew
        assert viewer.server.scene.get_handle_by_name(frustum_name(frames - 1)) is not None
        assert viewer.frames.panel(0) is not None  # after the rename: the final folder
    finally:
        viewer.close()
