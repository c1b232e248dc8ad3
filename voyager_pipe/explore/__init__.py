"""Interactive exploration: step the camera with actions, each step generating one segment of frames
through the same ClipScheduler and world cache as ``gen`` (``voyager-pipe explore``)."""

from voyager_pipe.explore.actions import ACTIONS, parse_actions, segment_poses

__all__ = ["ACTIONS", "parse_actions", "segment_poses"]
