"""Textured triangle meshes of the synthetic scenes: quads, boxes, spheres, cylinders (numpy).

Texture coordinates are in *texture repeats*: ``(u, v) = (1.3, 0.2)`` is 30 % into the second
repeat along u. Primitives set them from world-space lengths divided by ``tile`` (metres per
repeat), so texel density is about the same on every surface. ``u`` runs along texture
columns, ``v`` along texture rows (row 0 is the texture's first row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TexturedMesh:
    """One triangle mesh with one tileable texture.

    Attributes:
        name: what it is ("floor", "box3", ...).
        vertices: ``[V, 3]`` float64 world coordinates.
        triangles: ``[F, 3]`` int32 vertex indices.
        triangle_uvs: ``[F, 3, 2]`` float32 texture coordinates of each triangle corner
            (Open3D's ``triangle_uvs`` layout), in texture repeats.
        texture: ``[S, S, 3]`` float32 in [0, 1], wraps around.
    """

    name: str
    vertices: np.ndarray  # [V, 3]
    triangles: np.ndarray  # [F, 3]
    triangle_uvs: np.ndarray  # [F, 3, 2]
    texture: np.ndarray  # [S, S, 3]

    def to_open3d(self):
        """Legacy ``open3d.geometry.TriangleMesh`` with ``triangle_uvs`` and the texture attached
        (UVs wrapped into [0, 1) and v flipped to Open3D's bottom-up image convention)."""
        import open3d as o3d

        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(self.vertices),
                                         o3d.utility.Vector3iVector(self.triangles.astype(np.int32)))
        uv = self.triangle_uvs.reshape(-1, 2) % 1.0  # [3F, 2]
        uv[:, 1] = 1.0 - uv[:, 1]
        mesh.triangle_uvs = o3d.utility.Vector2dVector(uv.astype(np.float64))
        mesh.triangle_material_ids = o3d.utility.IntVector(np.zeros(len(self.triangles), dtype=np.int32))
        mesh.textures = [o3d.geometry.Image((self.texture * 255 + 0.5).astype(np.uint8))]
        mesh.compute_vertex_normals()
        return mesh


def quad(name: str, corner, edge_u, edge_v, texture: np.ndarray, tile: float = 1.0) -> TexturedMesh:
    """Parallelogram ``corner + a * edge_u + b * edge_v`` (a, b in [0, 1]) as two triangles.

    Texture coordinates are ``(a * |edge_u|, b * |edge_v|) / tile``.
    """
    corner, edge_u, edge_v = (np.asarray(x, dtype=np.float64) for x in (corner, edge_u, edge_v))
    vertices = np.stack([corner, corner + edge_u, corner + edge_u + edge_v, corner + edge_v])  # [4, 3]
    lu, lv = np.linalg.norm(edge_u) / tile, np.linalg.norm(edge_v) / tile
    corner_uv = np.array([[0, 0], [lu, 0], [lu, lv], [0, lv]], dtype=np.float32)  # [4, 2]
    triangles = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)  # [2, 3]
    return TexturedMesh(name, vertices, triangles, corner_uv[triangles], texture)


def merge(name: str, parts: list[TexturedMesh], texture: np.ndarray) -> TexturedMesh:
    """Concatenate meshes into one that uses ``texture``."""
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    vertices = np.concatenate([p.vertices for p in parts])  # [V, 3]
    triangles = np.concatenate([p.triangles + o for p, o in zip(parts, offsets)]).astype(np.int32)  # [F, 3]
    uvs = np.concatenate([p.triangle_uvs for p in parts]).astype(np.float32)  # [F, 3, 2]
    return TexturedMesh(name, vertices, triangles, uvs, texture)


def box(name: str, center, size, texture: np.ndarray, tile: float = 1.0) -> TexturedMesh:
    """Axis-aligned box (6 quads) of ``size`` (sx, sy, sz) centred on ``center``."""
    c, s = np.asarray(center, dtype=np.float64), np.asarray(size, dtype=np.float64)
    lo = c - s / 2
    ex, ey, ez = np.diag(s)  # edge vectors along x, y, z
    faces = [
        quad("", lo, ex, ey, texture, tile), quad("", lo + ez, ex, ey, texture, tile),  # z- / z+
        quad("", lo, ez, ey, texture, tile), quad("", lo + ex, ez, ey, texture, tile),  # x- / x+
        quad("", lo, ex, ez, texture, tile), quad("", lo + ey, ex, ez, texture, tile),  # y- / y+
    ]
    return merge(name, faces, texture)


def _grid_mesh(points: np.ndarray, uvs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate an organised grid ``points`` [R, C, 3] with ``uvs`` [R, C, 2]."""
    R, C = points.shape[:2]
    idx = np.arange(R * C).reshape(R, C)  # [R, C]
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()  # [Q]
    c, d = idx[1:, 1:].ravel(), idx[1:, :-1].ravel()  # [Q]
    triangles = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int32)  # [2Q, 3]
    flat_uv = uvs.reshape(-1, 2)  # [R*C, 2]
    return points.reshape(-1, 3), triangles, flat_uv[triangles].astype(np.float32)


def sphere(name: str, center, radius: float, texture: np.ndarray, tile: float = 1.0, segments: int = 32) -> TexturedMesh:
    """UV sphere (latitude-longitude grid); u follows the equator, v the meridian, in world lengths / tile."""
    theta = np.linspace(0, np.pi, segments // 2 + 1)  # [R] polar angle from -y (top)
    phi = np.linspace(0, 2 * np.pi, segments + 1)  # [C]
    th, ph = np.meshgrid(theta, phi, indexing="ij")  # [R, C]
    dirs = np.stack([np.sin(th) * np.cos(ph), -np.cos(th), np.sin(th) * np.sin(ph)], -1)  # [R, C, 3]
    points = np.asarray(center, dtype=np.float64) + radius * dirs  # [R, C, 3]
    uvs = np.stack([ph * radius, th * radius], -1) / tile  # [R, C, 2]
    vertices, triangles, tri_uvs = _grid_mesh(points, uvs)
    return TexturedMesh(name, vertices, triangles, tri_uvs, texture)


def cylinder(name: str, base_center, radius: float, height: float, texture: np.ndarray, tile: float = 1.0,
             segments: int = 32) -> TexturedMesh:
    """Vertical cylinder standing on ``base_center`` (its bottom, larger y), extending to y - height, with caps."""
    bc = np.asarray(base_center, dtype=np.float64)
    phi = np.linspace(0, 2 * np.pi, segments + 1)  # [C]
    ys = np.array([0.0, -height])  # [2] bottom, top (y points down)
    P, Y = np.meshgrid(phi, ys, indexing="xy")  # [2, C]
    points = bc + np.stack([radius * np.cos(P), Y, radius * np.sin(P)], -1)  # [2, C, 3]
    uvs = np.stack([P * radius, -Y], -1) / tile  # [2, C, 2]
    side_v, side_t, side_uv = _grid_mesh(points, uvs)
    side = TexturedMesh("", side_v, side_t, side_uv, texture)
    caps = []
    for y in ys:  # two caps: fan around the centre
        ring = bc + np.stack([radius * np.cos(phi[:-1]), np.full(segments, y), radius * np.sin(phi[:-1])], -1)  # [C, 3]
        verts = np.concatenate([(bc + [0, y, 0])[None], ring])  # [C+1, 3]
        k = np.arange(segments)
        tris = np.stack([np.zeros(segments, int), 1 + k, 1 + (k + 1) % segments], 1).astype(np.int32)  # [C, 3]
        uv = (verts[:, [0, 2]] - bc[[0, 2]]) / tile  # [C+1, 2]
        caps.append(TexturedMesh("", verts, tris, uv[tris].astype(np.float32), texture))
    return merge(name, [side] + caps, texture)
