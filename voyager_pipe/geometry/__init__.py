"""Geometry core: projection, unprojection, point-map normals, depth alignment.

All functions use the project's camera convention (OpenCV axes, ``w2c`` 4x4, ``K`` in pixels,
pixel centres at integer + 0.5), are batched over cameras and run on CPU or CUDA.
"""

from voyager_pipe.geometry.align import align_depth
from voyager_pipe.geometry.normals import point_map_normals
from voyager_pipe.geometry.projection import pixel_rays, project, unproject, world_to_camera

__all__ = ["align_depth", "pixel_rays", "point_map_normals", "project", "unproject", "world_to_camera"]
