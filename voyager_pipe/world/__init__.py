"""The world cache: incremental point cloud with visibility / normal pruning, and PLY files."""

from voyager_pipe.world.cache import FrameStats, UpdateStats, WorldCache
from voyager_pipe.world.config import CacheConfig
from voyager_pipe.world.ply import read_ply, write_ply

__all__ = ["CacheConfig", "FrameStats", "UpdateStats", "WorldCache", "read_ply", "write_ply"]
