"""Mesh export: TSDF fusion of a run's RGB-D frames, marching cubes, vertex colours.

Fusion is Open3D's tensor :class:`open3d.t.geometry.VoxelBlockGrid` with metric float depth
(``depth_scale=1``); the legacy ``ScalableTSDFVolume`` is not used (Open3D 0.20 rescales float depth
as if it were millimetres there and returns an empty mesh for metric depth). Open3D projects a voxel
to ``(u, v)`` and reads pixel ``(floor(v), floor(u))``, which is our pixel-centre convention, so the
run's ``K`` and ``w2c`` are passed unchanged. Pixels without depth (0, NaN, inf, beyond ``max_depth``)
are never integrated.

Defaults from the scene (``voxel_size=0``): the voxel edge is
``max(2 * median depth / mean focal, 99th-percentile depth / 512)`` (two pixel footprints at the
median depth, and at most ~512 voxels along the depth range); the truncation is ``trunc_voxels``
voxels (4). ``.ply`` and ``.obj`` are written by Open3D, ``.glb`` by trimesh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voyager_pipe.errors import InputError
from voyager_pipe.export.config import MeshExportConfig
from voyager_pipe.export.run import RunFolder

MESH_SUFFIXES = (".ply", ".obj", ".glb")


@dataclass
class MeshExport:
    path: Path
    vertices: int
    triangles: int
    voxel_size: float
    trunc: float
    removed_triangles: int

    def summary(self) -> str:
        return (f"mesh: {self.vertices} vertices, {self.triangles} triangles (voxel {self.voxel_size:.4g}, "
                f"truncation {self.trunc:.4g}, {self.removed_triangles} triangles in small pieces removed) -> {self.path}")


def default_voxel_size(run: RunFolder, max_depth: float = 0.0) -> float:
    """``max(2 * median depth / mean focal, 99th-percentile depth / 512)`` over the valid depth of all frames
    (every second pixel of every second row)."""
    samples = []
    for t in range(len(run)):  # one depth map at a time
        depth = run.depth(t)[::2, ::2]  # [H/2, W/2]
        samples.append(depth[(depth > 0) & ((depth <= max_depth) if max_depth > 0 else True)])
    valid = np.concatenate(samples)  # [V]
    if valid.size == 0:
        raise InputError(f"{run.path / 'depth'}: no frame has a valid depth value (nothing to fuse)")
    K = run.cameras.K.numpy()  # [T, 3, 3]
    focal = float(np.mean((K[:, 0, 0] + K[:, 1, 1]) / 2))
    median, p99 = np.percentile(valid, [50, 99])
    return float(max(2.0 * median / focal, p99 / 512.0))


def fuse_tsdf(run: RunFolder, cfg: MeshExportConfig, progress: bool = True):
    """Integrate every frame into a VoxelBlockGrid; returns ``(open3d.t TriangleMesh, voxel_size, trunc)``."""
    import open3d as o3d
    import open3d.core as o3c
    from tqdm import tqdm

    voxel_size = cfg.voxel_size if cfg.voxel_size > 0 else default_voxel_size(run, cfg.max_depth)
    depth_max = cfg.max_depth if cfg.max_depth > 0 else float(np.finfo(np.float32).max)
    grid = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"), attr_dtypes=(o3c.float32, o3c.float32, o3c.float32),
        attr_channels=((1), (1), (3)), voxel_size=voxel_size, block_resolution=cfg.block_resolution,
        block_count=256, device=o3c.Device("CPU:0"))  # an initial capacity: the CPU hash map grows as needed
    K = run.cameras.K.numpy()  # [T, 3, 3] float64
    w2c = run.cameras.w2c.numpy()  # [T, 4, 4] float64
    for t in tqdm(range(len(run)), desc="mesh: fuse frames", unit="frame", disable=None if progress else True):
        depth = run.depth(t)  # [H, W] float32, 0 = no value
        rgb = run.rgb(t).permute(1, 2, 0).contiguous().numpy()  # [H, W, 3] float32
        depth_image, color_image = o3d.t.geometry.Image(o3c.Tensor(depth)), o3d.t.geometry.Image(o3c.Tensor(rgb))
        intrinsic, extrinsic = o3c.Tensor(K[t]), o3c.Tensor(w2c[t])
        if not (depth > 0).any():
            continue
        blocks = grid.compute_unique_block_coordinates(depth_image, intrinsic, extrinsic, 1.0, depth_max,
                                                       cfg.trunc_voxels)
        grid.integrate(blocks, depth_image, color_image, intrinsic, intrinsic, extrinsic, 1.0, depth_max,
                       cfg.trunc_voxels)
    # weights count the frames that saw a voxel; Open3D keeps voxels whose weight exceeds the threshold
    mesh = grid.extract_triangle_mesh(weight_threshold=cfg.min_views - 0.5)
    return mesh, voxel_size, voxel_size * cfg.trunc_voxels


def remove_small_components(mesh, min_triangles: int) -> int:
    """Remove the connected pieces of a legacy Open3D mesh with fewer than ``min_triangles``; returns how many triangles went."""
    if min_triangles <= 0 or len(mesh.triangles) == 0:
        return 0
    cluster_ids, cluster_sizes, _ = mesh.cluster_connected_triangles()
    cluster_ids, cluster_sizes = np.asarray(cluster_ids), np.asarray(cluster_sizes)  # [F], [C]
    small = cluster_sizes[cluster_ids] < min_triangles  # [F]
    mesh.remove_triangles_by_mask(small)
    mesh.remove_unreferenced_vertices()
    return int(small.sum())


def write_mesh(mesh, path: Path) -> None:
    """Write a legacy Open3D mesh by the extension of ``path`` (atomically)."""
    import open3d as o3d

    from voyager_pipe.io.atomic import atomic_path, atomic_write_bytes

    suffix = path.suffix.lower()
    if suffix == ".glb":
        import trimesh

        colors = np.round(np.clip(np.asarray(mesh.vertex_colors), 0, 1) * 255).astype(np.uint8)  # [V, 3]
        tri = trimesh.Trimesh(vertices=np.asarray(mesh.vertices), faces=np.asarray(mesh.triangles),
                              vertex_normals=np.asarray(mesh.vertex_normals), vertex_colors=colors, process=False)
        atomic_write_bytes(path, tri.export(file_type="glb"))
        return
    if suffix == ".obj":
        mesh.triangle_normals = o3d.utility.Vector3dVector()  # OBJ stores vertex normals only
    with atomic_path(path) as tmp:
        if not o3d.io.write_triangle_mesh(str(tmp), mesh, write_ascii=False, write_vertex_normals=True,
                                          write_vertex_colors=True, write_triangle_uvs=False):
            raise OSError(f"{path}: Open3D could not write the mesh")


def export_mesh(run: RunFolder, out: Path, cfg: MeshExportConfig | None = None, progress: bool = True) -> MeshExport:
    """Fuse the run's RGB-D frames into a coloured triangle mesh at ``out`` (.ply, .obj or .glb)."""
    cfg = cfg or MeshExportConfig()
    out = Path(out)
    if out.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"--out {out}: a mesh is written as {', '.join(MESH_SUFFIXES)} (by the extension)")
    mesh_t, voxel_size, trunc = fuse_tsdf(run, cfg, progress)
    mesh = mesh_t.to_legacy()
    if len(mesh.triangles) == 0:
        raise InputError(f"{run.path}: TSDF fusion gave an empty mesh (no surface seen by >= {cfg.min_views} frame(s))")
    removed = remove_small_components(mesh, cfg.min_component)
    mesh.compute_vertex_normals()
    write_mesh(mesh, out)
    return MeshExport(path=out, vertices=len(mesh.vertices), triangles=len(mesh.triangles), voxel_size=voxel_size,
                      trunc=trunc, removed_triangles=removed)
