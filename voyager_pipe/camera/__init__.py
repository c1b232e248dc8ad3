"""Cameras (one convention inside), trajectory files and camera-path presets."""

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov, pixel_centers, rigid_inverse
from voyager_pipe.camera.interpolate import interpolate_cameras, interpolate_poses
from voyager_pipe.camera.presets import PRESETS, make_preset
from voyager_pipe.camera.trajectory_io import FORMATS, detect_format, read_trajectory, write_trajectory

__all__ = ["Cameras", "intrinsics_from_fov", "pixel_centers", "rigid_inverse", "interpolate_cameras",
           "interpolate_poses", "PRESETS", "make_preset", "FORMATS", "detect_format", "read_trajectory",
           "write_trajectory"]
