"""Synthetic scenes with exact ground truth: procedural textured meshes ray-cast by Open3D.

>>> from voyager_pipe.scenes import make_scene, scene_trajectory, render_ground_truth
>>> scene = make_scene("room", seed=0)
>>> cams = scene_trajectory(scene, "orbit", frames=8, width=128, height=96)
>>> rgb, depth = render_ground_truth(scene, cams)  # [8, 3, 96, 128], [8, 1, 96, 128]
"""

from voyager_pipe.scenes.folder import write_scene_folder
from voyager_pipe.scenes.layouts import SCENE_KINDS, Scene, make_scene
from voyager_pipe.scenes.meshes import TexturedMesh, box, cylinder, quad, sphere
from voyager_pipe.scenes.raycast import SceneRaycaster, render_ground_truth, texture_lookup
from voyager_pipe.scenes.textures import make_texture
from voyager_pipe.scenes.trajectories import SCENE_TRAJECTORIES, scene_trajectory

__all__ = [
    "SCENE_KINDS", "SCENE_TRAJECTORIES", "Scene", "SceneRaycaster", "TexturedMesh", "box", "cylinder", "make_scene",
    "make_texture", "quad", "render_ground_truth", "scene_trajectory", "sphere", "texture_lookup", "write_scene_folder",
]
