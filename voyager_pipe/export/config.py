"""Options of the exports (``voyager-pipe export`` flags; ``gen --export`` uses the defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from voyager_pipe.options import option


@dataclass
class MeshExportConfig:
    """TSDF fusion of the run's RGB-D frames (Open3D VoxelBlockGrid), marching cubes."""

    voxel_size: float = option(0.0, "TSDF voxel edge in scene units; 0 = auto: max(2 * median depth / focal, "
                                    "99th-percentile depth / 512)")
    trunc_voxels: float = option(4.0, "TSDF truncation distance in voxels")
    max_depth: float = option(0.0, "ignore depth beyond this (scene units); 0 = all valid depth")
    min_views: int = option(1, "keep surface voxels seen by at least this many frames")
    min_component: int = option(0, "remove connected pieces with fewer triangles than this; 0 = keep all")
    block_resolution: int = option(16, "voxels per block edge of the VoxelBlockGrid")


@dataclass
class GaussiansExportConfig:
    """One 3D Gaussian per world-cache point (original 3DGS .ply layout)."""

    opacity: float = option(0.9, "opacity after the sigmoid, in (0, 1)")
    thin_ratio: float = option(0.1, "scale along the normal relative to the in-plane scale")
    scale_multiplier: float = option(1.0, "multiplies the in-plane scale (depth / focal of the point's source frame)")


@dataclass
class ExportConfig:
    mesh: MeshExportConfig = field(default_factory=MeshExportConfig)
    gaussians: GaussiansExportConfig = field(default_factory=GaussiansExportConfig)
    max_points: int = option(200_000, "points written to COLMAP points3D.txt / the nerfstudio point cloud "
                                      "(uniform subsample of world.ply); 0 = all")
    seed: int = option(0, "seed of the point subsampling")
    progress: bool = option(True, "show progress bars")
