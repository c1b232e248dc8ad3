"""Settings of the world cache (owned by voyager_pipe.world)."""

from __future__ import annotations

from dataclasses import dataclass

from voyager_pipe.options import option


@dataclass
class CacheConfig:
    max_depth: float = option(0.0, "depth beyond this never enters the cache (0 = no limit)", min=0)
    normal_angle_deg: float = option(90.0, "a cached point faces away when the angle between its normal and the direction to the camera exceeds this", min=0, max=180)
    fill_holes: int = option(0, "close pinholes up to this radius (pixels) in the rendered visibility mask before the visibility test (0 = off: the paper's rule; 1-2 add fewer points on revisits, but those pinholes stay empty in renders)", min=0, max=32)
    voxel_size: float = option(0.0, "merge points closer than this: a new point whose voxel already holds a point is dropped (0 = off)", min=0)
    max_points: int = option(0, "upper bound on cached points (0 = unlimited); over it the cache is thinned uniformly at random, first-frame points kept", min=0, max=10**10)
    seed: int = option(0, "seed of the random thinning used by max_points", min=0, max=2**64 - 1)
