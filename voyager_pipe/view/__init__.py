"""Browser viewer of a run (``voyager-pipe view``, ``gen --view``, ``explore``) built on viser.

viser is an optional dependency (``pip install 'voyager_pipe[view]'``), imported only when a
viewer is started.
"""

from voyager_pipe.view.poses import viser_poses, vertical_fov
from voyager_pipe.view.run_folder import RunFolder, read_run_folder

__all__ = ["RunFolder", "read_run_folder", "vertical_fov", "viser_poses"]
