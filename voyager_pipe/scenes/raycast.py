"""Exact ground-truth RGB-D of a synthetic scene by Open3D ray casting.

Independent of the project's point renderer: one ray per pixel centre (or ``supersample**2``
sub-pixel rays for the colour), Open3D's ``RaycastingScene`` returns the hit triangle and its
barycentric coordinates, the texture coordinate is interpolated from the triangle corners and
looked up (bilinear, wrapping) in the mesh's texture. Shading is Lambertian with fixed lights,
so it does not depend on the viewpoint.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.scenes.layouts import Scene


class SceneRaycaster:
    """Holds the Open3D ray-casting structure and the flattened texture tables of one scene."""

    def __init__(self, scene: Scene) -> None:
        try:
            import open3d as o3d
        except ImportError as exc:  # pragma: no cover - open3d is a project dependency
            from voyager_pipe.errors import MissingDependencyError

            raise MissingDependencyError("synthetic scenes need open3d (pip install open3d)") from exc
        self.scene = scene
        self._o3d = o3d
        self.raycasting = o3d.t.geometry.RaycastingScene()
        sizes = {m.texture.shape for m in scene.meshes}
        if len(sizes) != 1:
            raise ValueError(f"all textures of a scene must have the same size, got {sorted(sizes)}")
        for mesh in scene.meshes:  # one geometry id per mesh, in order
            self.raycasting.add_triangles(o3d.core.Tensor(mesh.vertices.astype(np.float32)),
                                          o3d.core.Tensor(mesh.triangles.astype(np.uint32)))
        counts = np.array([len(m.triangles) for m in scene.meshes])
        self.triangle_offset = np.concatenate([[0], np.cumsum(counts)[:-1]])  # [M] first global triangle of each mesh
        self.triangle_uvs = np.concatenate([m.triangle_uvs for m in scene.meshes])  # [F, 3, 2]
        self.textures = np.stack([m.texture for m in scene.meshes])  # [M, S, S, 3]

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> dict[str, np.ndarray]:
        """Cast rays ``origins`` / ``directions`` [R, 3] (world); returns the raw Open3D answer as numpy."""
        rays = np.concatenate([origins, directions], axis=-1).astype(np.float32)  # [R, 6]
        ans = self.raycasting.cast_rays(self._o3d.core.Tensor(rays))
        return {k: v.numpy() for k, v in ans.items()}

    def shade(self, hits: dict[str, np.ndarray], directions: np.ndarray,
              filter: Literal["bilinear", "nearest"] = "bilinear", lighting: bool = True) -> np.ndarray:  # noqa: A002
        """Colour ``[R, 3]`` of the rays whose hits are ``hits`` (sky colour where they miss)."""
        scene = self.scene
        hit = np.isfinite(hits["t_hit"])  # [R]
        gid = np.where(hit, hits["geometry_ids"], 0).astype(np.int64)  # [R]
        tri = self.triangle_offset[gid] + np.where(hit, hits["primitive_ids"], 0).astype(np.int64)  # [R] global triangle
        a, b = hits["primitive_uvs"][:, 0], hits["primitive_uvs"][:, 1]  # [R] barycentric: p = (1-a-b) v0 + a v1 + b v2
        corner_uv = self.triangle_uvs[tri]  # [R, 3, 2]
        uv = ((1 - a - b)[:, None] * corner_uv[:, 0] + a[:, None] * corner_uv[:, 1]
              + b[:, None] * corner_uv[:, 2])  # [R, 2] in texture repeats
        colour = texture_lookup(self.textures, gid, uv, filter)  # [R, 3]
        if lighting:
            normal = hits["primitive_normals"].astype(np.float64)  # [R, 3]
            facing = -np.sign(np.sum(normal * directions, -1, keepdims=True))  # [R, 1] turn towards the viewer
            normal = normal * np.where(facing == 0, 1, facing)
            diffuse = np.clip(normal @ scene.light_dirs.T, 0, None) @ np.asarray(scene.light_weights)  # [R]
            colour = colour * (scene.ambient + diffuse)[:, None]
        unit = directions / np.linalg.norm(directions, axis=-1, keepdims=True)  # [R, 3]
        elevation = np.clip(-unit[:, 1], 0, 1)[:, None]  # [R, 1] (y points down)
        sky = (1 - elevation) * np.asarray(scene.sky_horizon) + elevation * np.asarray(scene.sky_zenith)  # [R, 3]
        return np.clip(np.where(hit[:, None], colour, sky), 0, 1)


def texture_lookup(textures: np.ndarray, mesh_ids: np.ndarray, uv: np.ndarray,
                   filter: Literal["bilinear", "nearest"] = "bilinear") -> np.ndarray:  # noqa: A002
    """Sample wrapping textures ``[M, S, S, 3]`` at ``uv`` [R, 2] (texture repeats) of meshes ``mesh_ids`` [R].

    Texel ``(row, col)`` covers ``u in [col, col + 1) / S``, ``v in [row, row + 1) / S`` (its centre
    at +0.5, like pixels); ``nearest`` returns that texel, ``bilinear`` blends the four nearest
    texel centres, wrapping around the borders.
    """
    S = textures.shape[1]
    x = uv[:, 0] * S  # [R] continuous column
    y = uv[:, 1] * S  # [R] continuous row
    if filter == "nearest":
        col = np.floor(x).astype(np.int64) % S
        row = np.floor(y).astype(np.int64) % S
        return textures[mesh_ids, row, col].astype(np.float64)  # [R, 3]
    x, y = x - 0.5, y - 0.5  # texel centres at integer coordinates
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]  # [R, 1]
    c0, r0 = x0.astype(np.int64) % S, y0.astype(np.int64) % S  # [R]
    c1, r1 = (c0 + 1) % S, (r0 + 1) % S
    t = textures
    top = t[mesh_ids, r0, c0] * (1 - fx) + t[mesh_ids, r0, c1] * fx  # [R, 3]
    bottom = t[mesh_ids, r1, c0] * (1 - fx) + t[mesh_ids, r1, c1] * fx  # [R, 3]
    return (top * (1 - fy) + bottom * fy).astype(np.float64)


def camera_rays(cameras: Cameras, index: int, offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World rays through the pixel centres of camera ``index``.

    Args:
        offsets: optional ``[k, 2]`` sub-pixel offsets added to every pixel centre (supersampling).

    Returns:
        origins ``[R, 3]``, unit directions ``[R, 3]`` and ``cos_z`` ``[R]`` (the z component of the
        unit direction in camera coordinates: z-depth = ray length * cos_z). ``R = k * H * W`` with
        the offsets as the leading axis.
    """
    from voyager_pipe.geometry import pixel_rays

    K = cameras.K[index].double()  # [3, 3]
    w2c = cameras.w2c[index].double()  # [4, 4]
    offsets_t = None if offsets is None else torch.as_tensor(np.asarray(offsets, dtype=np.float64))  # [k, 2]
    origin, directions = pixel_rays(K, w2c, cameras.height, cameras.width, offsets_t)  # [1, 3], [1, (k,) H, W, 3]
    directions = directions.reshape(-1, 3).numpy()  # [R, 3], z_cam = 1
    length = np.linalg.norm(directions, axis=-1, keepdims=True)  # [R, 1]
    origins = np.broadcast_to(origin[0].numpy(), directions.shape)  # [R, 3]
    return origins, directions / length, 1.0 / length[:, 0]


def render_ground_truth(scene: Scene, cameras: Cameras, supersample: int = 1,
                        filter: Literal["bilinear", "nearest"] = "bilinear", lighting: bool = True,  # noqa: A002
                        progress: bool = False, raycaster: SceneRaycaster | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth RGB-D of ``scene`` seen by ``cameras``.

    Args:
        supersample: colour is averaged over ``supersample**2`` sub-pixel rays per pixel (1 = the
            pixel centre only). Depth always comes from the pixel-centre ray.
        filter: texture filtering, ``"bilinear"`` or ``"nearest"``.
        lighting: apply the scene's Lambertian shading (False: raw texture colour).

    Returns:
        rgb ``[T, 3, H, W]`` float32 in [0, 1]; depth ``[T, 1, H, W]`` float32 z-depth, 0 where the
        ray hits nothing (sky).
    """
    raycaster = raycaster or SceneRaycaster(scene)
    H, W = cameras.height, cameras.width
    T = len(cameras)
    rgb = np.zeros((T, 3, H, W), dtype=np.float32)  # [T, 3, H, W]
    depth = np.zeros((T, 1, H, W), dtype=np.float32)  # [T, 1, H, W]
    n = max(int(supersample), 1)
    sub = (np.arange(n) + 0.5) / n - 0.5  # [n] offsets around the centre
    offsets = np.stack(np.meshgrid(sub, sub, indexing="xy"), -1).reshape(-1, 2)  # [n*n, 2] (du, dv)
    frames = range(T)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="ray casting ground truth", unit="frame")
    for t in frames:  # one batched cast per frame
        origins, directions, cos_z = camera_rays(cameras, t)
        hits = raycaster.cast(origins, directions)
        z = np.where(np.isfinite(hits["t_hit"]), hits["t_hit"] * cos_z, 0.0)  # [HW] ray length -> z-depth
        depth[t, 0] = z.reshape(H, W)
        if n == 1:
            colour = raycaster.shade(hits, directions, filter, lighting)  # [HW, 3]
        else:
            o_s, d_s, _ = camera_rays(cameras, t, offsets)
            colour = raycaster.shade(raycaster.cast(o_s, d_s), d_s, filter, lighting)  # [n*n*HW, 3]
            colour = colour.reshape(n * n, H * W, 3).mean(0)  # [HW, 3]
        rgb[t] = colour.reshape(H, W, 3).transpose(2, 0, 1)
    return torch.from_numpy(rgb), torch.from_numpy(depth)
