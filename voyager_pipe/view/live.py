"""``gen --view``: the viewer fed clip by clip while the pipeline runs.

:class:`LiveView` is the pipeline's ``on_clip(result, cache, cameras, folder)`` hook: after each clip
it sends the world cache's points again and adds the clip's final frames as frusta (their images
from the clip's tensors); the panel reads the frame files from the ``.partial`` folder while the
run goes and from the final folder after it.
"""

from __future__ import annotations

from pathlib import Path

from voyager_pipe.io.images import to_uint8
from voyager_pipe.view.run_folder import FrameFiles, thumbnail
from voyager_pipe.view.viewer import WorldViewer


class LiveView:
    """Feeds ``viewer`` from the pipeline (see the module docstring)."""

    def __init__(self, viewer: WorldViewer, out_dir: str | Path):
        self.viewer = viewer
        self.out_dir = Path(out_dir)

    def __call__(self, result, cache, cameras, folder) -> None:
        viewer = self.viewer
        first = viewer.frames is None
        if first:
            viewer.frames = FrameFiles(folder, self.out_dir)
            viewer.configure_scale(cache.points, cameras)
        start, stop = result.plan.out_start, result.plan.out_stop
        if start > viewer.num_frames:  # a resumed run: the frames made before come from the files
            done = range(viewer.num_frames, start)
            viewer.add_cameras(cameras[done.start: done.stop], done.start, [viewer.frames.thumbnail(i) for i in done])
        viewer.add_cameras(cameras[start:stop], start, [thumbnail(to_uint8(frame)) for frame in result.rgb])
        viewer.set_points(cache.points, cache.colors)
        if first:
            viewer.set_overview()
        viewer.set_frame(stop - 1, move_view=False)
        viewer.set_info(f"generating {self.out_dir}: {stop}/{len(cameras)} frames, {len(cache):,} points in the cache")

    def finished(self, summary: str) -> None:
        """After the run: point the panel at the final folder and say so."""
        self.viewer.frames = FrameFiles(self.out_dir)
        self.viewer.set_info(f"done: {summary}")


def start_live_view(out_dir: str | Path, host: str = "127.0.0.1", port: int = 8080, max_points: int = 1_000_000,
                    port_flag: str = "--view-port") -> LiveView:
    """Start the server (before generation, so a port in use fails early) and print how to reach it."""
    viewer = WorldViewer(host=host, port=port, max_points=max_points, title=f"voyager-pipe gen {out_dir}",
                         port_flag=port_flag)
    print(viewer.access_hint(), flush=True)
    return LiveView(viewer, out_dir)
