"""Seeded procedural layouts: a furnished room and an outdoor-like square.

World coordinates are the OpenCV frame of the first camera: the camera starts at the origin
looking along +z, with +y pointing DOWN (the floor / ground is at positive y). The region in
``Scene.free_min .. free_max`` is kept clear of objects so trajectories can move there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from voyager_pipe.scenes.meshes import TexturedMesh, box, cylinder, quad, sphere
from voyager_pipe.scenes.textures import make_texture

SCENE_KINDS = ("room", "outdoor")
_FACADES = ([0.7, 0.35, 0.25], [0.8, 0.75, 0.6], [0.55, 0.55, 0.6], [0.85, 0.6, 0.4], [0.6, 0.45, 0.35])


@dataclass
class Scene:
    """A synthetic scene with exact geometry and appearance.

    Attributes:
        kind: "room" or "outdoor".
        seed: the seed it was built from (same kind + seed -> same scene).
        meshes: textured triangle meshes (:class:`TexturedMesh`; ``.to_open3d()`` for Open3D).
        free_min, free_max: ``[3]`` corners of the box cameras may move in (no geometry inside).
        sky_horizon, sky_zenith: RGB of rays that hit nothing (outdoor), blended by elevation.
        light_dirs: ``[L, 3]`` unit directions towards the lights, ``light_weights`` their strengths;
            shading is Lambertian, view-independent (the same surface point has the same colour
            in every view).
    """

    kind: str
    seed: int
    meshes: list[TexturedMesh]
    free_min: np.ndarray  # [3]
    free_max: np.ndarray  # [3]
    sky_horizon: tuple[float, float, float] = (0.0, 0.0, 0.0)
    sky_zenith: tuple[float, float, float] = (0.0, 0.0, 0.0)
    light_dirs: np.ndarray = field(default_factory=lambda: np.array([[0.3, -0.8, -0.5], [-0.5, -0.3, 0.8]]))  # [L, 3]
    light_weights: tuple[float, ...] = (0.45, 0.2)
    ambient: float = 0.45

    def __post_init__(self) -> None:
        self.light_dirs = self.light_dirs / np.linalg.norm(self.light_dirs, axis=-1, keepdims=True)

    def to_open3d(self) -> list:
        """The meshes as legacy Open3D ``TriangleMesh`` objects with their textures attached."""
        return [m.to_open3d() for m in self.meshes]

    @property
    def num_triangles(self) -> int:
        return int(sum(len(m.triangles) for m in self.meshes))


def make_scene(kind: str = "room", seed: int = 0, texture_size: int = 128) -> Scene:
    """Build a procedural scene.

    Args:
        kind: ``"room"`` (closed, furnished) or ``"outdoor"`` (ground, buildings, trees, rocks, sky).
        seed: layout, sizes, colours and textures all follow from it.
        texture_size: side of every texture in texels (one repeat).
    """
    # two streams: the layout does not change with texture_size
    layout_rng, texture_rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    if kind == "room":
        return _room(layout_rng, texture_rng, seed, texture_size)
    if kind == "outdoor":
        return _outdoor(layout_rng, texture_rng, seed, texture_size)
    raise ValueError(f"scene kind {kind!r}: expected one of {SCENE_KINDS}")


def _room(rng: np.random.Generator, texture_rng: np.random.Generator, seed: int, S: int) -> Scene:
    half_w = rng.uniform(3.0, 4.0)  # x extent: [-half_w, half_w]
    z_back, z_front = -rng.uniform(2.5, 3.5), rng.uniform(6.5, 8.0)
    y_floor, y_ceil = rng.uniform(1.3, 1.6), -rng.uniform(1.2, 1.5)  # floor below the camera (+y)
    H = y_floor - y_ceil
    D = z_front - z_back
    tex = lambda kind, **kw: make_texture(kind, texture_rng, S, **kw)  # noqa: E731
    wall_tex = tex("plaster")
    meshes = [
        quad("floor", [-half_w, y_floor, z_back], [2 * half_w, 0, 0], [0, 0, D], tex(rng.choice(["wood", "tiles"])), 1.0),
        quad("ceiling", [-half_w, y_ceil, z_back], [2 * half_w, 0, 0], [0, 0, D], tex("plaster"), 2.0),
        quad("wall_front", [-half_w, y_ceil, z_front], [2 * half_w, 0, 0], [0, H, 0], tex("brick"), 1.5),
        quad("wall_back", [-half_w, y_ceil, z_back], [2 * half_w, 0, 0], [0, H, 0], wall_tex, 1.5),
        quad("wall_left", [-half_w, y_ceil, z_back], [0, 0, D], [0, H, 0], wall_tex, 1.5),
        quad("wall_right", [half_w, y_ceil, z_back], [0, 0, D], [0, H, 0], tex("stone"), 1.5),
        # a painting on the front wall and one on the left wall (thin boxes)
        box("painting_front", [rng.uniform(-1, 1), y_ceil + 0.45 * H, z_front - 0.03], [1.4, 0.9, 0.04], tex("painting"), 1.4),
        box("painting_left", [-half_w + 0.03, y_ceil + 0.4 * H, rng.uniform(1.0, 4.0)], [0.04, 0.8, 1.2], tex("painting"), 1.2),
    ]
    # furniture: along the side walls and near the front wall, away from the free region
    for i in range(int(rng.integers(4, 7))):
        side = rng.choice([-1.0, 1.0])
        near_front = i % 3 == 2
        sx, sy, sz = rng.uniform(0.5, 1.2), rng.uniform(0.4, 1.4), rng.uniform(0.5, 1.2)
        if near_front:
            cx, cz = rng.uniform(-half_w + 0.8, half_w - 0.8), z_front - sz / 2 - rng.uniform(0.05, 0.6)
        else:
            cx, cz = side * (half_w - sx / 2 - rng.uniform(0.05, 0.3)), rng.uniform(z_back + 1.0, z_front - 1.5)
        kind = rng.choice(["wood", "fabric", "tiles"])
        meshes.append(box(f"box{i}", [cx, y_floor - sy / 2, cz], [sx, sy, sz], tex(kind), 0.7))
        if rng.random() < 0.6:  # something on top
            r = rng.uniform(0.12, 0.25)
            meshes.append(sphere(f"ball{i}", [cx, y_floor - sy - r, cz], r, tex(rng.choice(["stone", "fabric"])), 0.5))
    for i, side in enumerate((-1.0, 1.0)):  # two columns / lamps
        meshes.append(cylinder(f"column{i}", [side * (half_w - 0.5), y_floor, z_front - 2.2 - i], rng.uniform(0.1, 0.2), H,
                               tex("stone"), 0.8))
    free_min = np.array([-half_w + 1.6, y_ceil + 0.5, z_back + 0.8])
    free_max = np.array([half_w - 1.6, y_floor - 0.5, z_front - 3.0])
    return Scene("room", seed, meshes, free_min, free_max)


def _outdoor(rng: np.random.Generator, texture_rng: np.random.Generator, seed: int, S: int) -> Scene:
    y_ground = rng.uniform(1.5, 1.8)
    extent = 60.0
    tex = lambda kind, **kw: make_texture(kind, texture_rng, S, **kw)  # noqa: E731
    meshes = [quad("ground", [-extent, y_ground, -extent], [2 * extent, 0, 0], [0, 0, 2 * extent],
                   tex("grass", base=[0.35, 0.55, 0.25]), 2.0)]
    placed = []

    def free_spot(r_min: float, r_max: float, radius: float) -> tuple[float, float]:
        for _ in range(50):  # rejection sampling of a handful of object positions (not a pixel loop)
            ang = rng.uniform(-0.65 * np.pi, 0.65 * np.pi)  # mostly in front of the camera
            dist = rng.uniform(r_min, r_max)
            x, z = dist * np.sin(ang), dist * np.cos(ang)
            if abs(x) < 3.5 + radius and -3 < z < 9 + radius:
                continue  # keep the path clear
            if all((x - px) ** 2 + (z - pz) ** 2 > (radius + pr) ** 2 for px, pz, pr in placed):
                placed.append((x, z, radius))
                return x, z
        x, z = rng.choice([-1, 1]) * (r_max + radius), r_max
        placed.append((x, z, radius))
        return x, z

    for i in range(int(rng.integers(4, 7))):  # buildings
        sx, sy, sz = rng.uniform(4, 9), rng.uniform(4, 12), rng.uniform(4, 9)
        x, z = free_spot(14, 30, max(sx, sz) / 2)
        facade = _FACADES[int(rng.integers(len(_FACADES)))]
        meshes.append(box(f"building{i}", [x, y_ground - sy / 2, z], [sx, sy, sz], tex("brick", base=facade), 2.0))
    for i in range(int(rng.integers(6, 10))):  # trees
        h, r = rng.uniform(1.5, 3.0), rng.uniform(0.15, 0.3)
        crown = rng.uniform(1.0, 2.0)
        x, z = free_spot(5, 20, crown)
        meshes.append(cylinder(f"trunk{i}", [x, y_ground, z], r, h, tex("bark", base=[0.45, 0.3, 0.2]), 0.8))
        meshes.append(sphere(f"crown{i}", [x, y_ground - h - crown * 0.7, z], crown, tex("foliage", base=[0.2, 0.5, 0.2]), 1.0))
    for i in range(int(rng.integers(4, 8))):  # rocks
        r = rng.uniform(0.3, 0.9)
        x, z = free_spot(4.5, 15, r)
        meshes.append(sphere(f"rock{i}", [x, y_ground + 0.3 * r, z], r, tex("stone", base=[0.5, 0.5, 0.48]), 0.6))
    free_min = np.array([-3.0, y_ground - 3.0, -2.5])
    free_max = np.array([3.0, y_ground - 0.8, 8.5])
    return Scene("outdoor", seed, meshes, free_min, free_max,
                 sky_horizon=(0.85, 0.9, 0.95), sky_zenith=(0.35, 0.55, 0.85),
                 light_dirs=np.array([[0.4, -0.8, 0.45], [-0.6, -0.4, -0.3]]), light_weights=(0.55, 0.15), ambient=0.4)
