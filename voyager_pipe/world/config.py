"""Settings of the world cache (owned by voyager_pipe.world)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from voyager_pipe.options import option


@dataclass
class CacheConfig:
    max_depth: Optional[float] = option(None, "depth beyond this never enters the geometry (null = no limit); with background on it joins the far layer", above=0)
    normal_angle_deg: float = option(110.0, "a cached point faces away when the angle between its normal and the direction to the camera exceeds this (the paper: 90; 110 keeps normals that only graze away, edge-on or estimated across a silhouette, from re-adding their surface on every visit)", min=0, max=180)
    gap_tolerance: float = option(0.03, "one- and two-pixel gaps between rendered points whose depths agree within this relative tolerance count as covered (in the visibility test only where the new pixel's depth agrees too) and are filled in renders; so does one pixel beyond the frontier of what the cache knows (0 = off: the paper's exact rule)", min=0, max=1)
    background: bool = option(True, "depthless pixels (sky: zero, inf or NaN depth) enter a far background layer at the largest finite depth + far_margin, rendered behind everything and never written to world.ply")
    far_margin: float = option(1e4, "distance of the far background layer beyond the first frame's largest finite depth (the released data engine uses 1e4)", above=0)
    voxel_size: float = option(0.0, "merge points closer than this: a new point whose voxel already holds a point is dropped (0 = off)", min=0)
    max_points: int = option(0, "upper bound on cached points (0 = unlimited); over it the cache is thinned uniformly at random, first-frame points kept", min=0, max=10**10)
