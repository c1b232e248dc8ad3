"""WorldViewer: a viser server showing a world point cloud, the trajectory as image frusta and a timeline.

One class serves the three uses: ``voyager-pipe view RUN`` (:meth:`WorldViewer.show_run`),
``gen --view`` (frames and points added clip by clip, :mod:`voyager_pipe.view.live`) and
``explore`` (segments added and dropped). Scene nodes::

    /world/points            the world cache (downsampled to max_points, full colour)
    /frusta/<i:05d>          trajectory camera i with its frame as the frustum image
    /trajectory              the camera path as a line
    /current                 the timeline's camera (highlighted frustum)
    /exports/mesh, /exports/gaussians   exports found in the run folder

The timeline (slider, play/pause, speed) moves every connected browser's view camera to the
trajectory pose of the current frame (and the "reset view" pose of new browsers), and shows
that frame's RGB | colourised depth | mask in the side panel. Poses are converted once, by
:func:`voyager_pipe.view.poses.viser_poses`.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time

import numpy as np
import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.view.poses import look_at_up, vertical_fov, viser_poses
from voyager_pipe.view.budget import downsample_points
from voyager_pipe.view.run_folder import FrameFiles, RunFolder, run_summary

POINTS = "/world/points"
FRUSTA = "/frusta"
TRAJECTORY = "/trajectory"
CURRENT = "/current"
MESH = "/exports/mesh"
GAUSSIANS = "/exports/gaussians"

_FRUSTUM_COLOR = (60, 60, 60)
_CURRENT_COLOR = (255, 60, 30)


def frustum_name(index: int) -> str:
    return f"{FRUSTA}/{index:05d}"


def import_viser():
    """The viser module, or one clear line saying how to install it."""
    try:
        import viser
    except ImportError:
        raise MissingDependencyError("the viewer needs viser: pip install 'voyager_pipe[view]' (or pip install viser)") from None
    return viser


def check_port_free(host: str, port: int, flag: str = "--port") -> None:
    """InputError (one line, naming the option ``flag``) when ``host:port`` cannot be bound; port 0 means "any free port"."""
    if port == 0:
        return
    if not 0 < port < 65536:
        raise InputError(f"{flag}: {port} is not a TCP port (1..65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r}: cannot resolve ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is not "in use"
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(f"{flag} {port}: {host}:{port} is in use or cannot be bound ({exc.strerror}); "
                             f"choose another {flag}") from None


class WorldViewer:
    """A viser server with the run's scene and GUI (see the module docstring).

    Args:
        host, port: where to listen (port 0: any free port; a port in use is an InputError).
        max_points: point budget of the displayed cloud (and of displayed Gaussians).
        title: label of the GUI panel.
        port_flag: the command-line option named in errors about the port.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, max_points: int = 1_000_000,
                 title: str = "voyager-pipe", port_flag: str = "--port"):
        if max_points < 1:
            raise InputError(f"--max-points: must be >= 1, got {max_points}")
        viser = import_viser()
        check_port_free(host, port, port_flag)
        with contextlib.redirect_stdout(io.StringIO()):  # viser prints its own banner; we print one URL line
            self.server = viser.ViserServer(host=host, port=port, label=title, verbose=False)
        if port and self.server.get_port() != port:  # lost a race for the port: viser moved to the next one
            self.server.stop()
            raise InputError(f"{port_flag} {port}: {host}:{port} is in use; choose another {port_flag}")
        self.host = host
        self.max_points = max_points
        self.frames: FrameFiles | None = None  # where frame i's images are read for the panel
        self._lock = threading.RLock()
        self._w2c = np.zeros((0, 4, 4))  # [N, 4, 4] OpenCV world-to-camera
        self._wxyz = np.zeros((0, 4))  # [N, 4] viser camera-to-world rotation
        self._position = np.zeros((0, 3))  # [N, 3] camera centres
        self._fov = 1.0  # vertical, radians
        self._aspect = 4.0 / 3.0
        self._thumbnails: dict[int, np.ndarray] = {}  # frame -> frustum image (kept to rebuild after undo)
        self.scene_depth = 1.0  # typical depth of the scene from camera 0 (sizes frusta and points)
        self.frame_index = 0
        self._at_pose = False  # the view sits at the timeline's trajectory pose (frusta hidden)
        self._moved_at = 0.0
        self._move_on_slider = True  # False while the program (not the user) moves the slider without moving the view
        # What the timeline last sent to the browsers (the pose of frame_index): tests read these.
        self.view_wxyz = np.array([1.0, 0.0, 0.0, 0.0])
        self.view_position = np.zeros(3)
        self._stop = threading.Event()
        self._build_gui()
        self.server.on_client_connect(self._on_client_connect)
        self._player = threading.Thread(target=self._play_loop, name="viewer-timeline", daemon=True)
        self._player.start()

    # ------------------------------------------------------------------ info
    @property
    def port(self) -> int:
        return self.server.get_port()

    @property
    def url(self) -> str:
        host = "localhost" if self.host in ("0.0.0.0", "::", "127.0.0.1", "localhost") else self.host
        return f"http://{host}:{self.port}"

    def access_hint(self) -> str:
        """The URL and how to reach it from another machine over SSH."""
        return (f"viewer: {self.url}\n"
                f"  remote machine? on your laptop run: ssh -N -L {self.port}:localhost:{self.port} "
                f"<user>@{socket.gethostname()}  then open http://localhost:{self.port}")

    @property
    def num_frames(self) -> int:
        return self._w2c.shape[0]

    def close(self) -> None:
        self._stop.set()
        with contextlib.redirect_stdout(io.StringIO()):
            self.server.stop()

    # ------------------------------------------------------------------ GUI
    def _build_gui(self) -> None:
        gui = self.server.gui
        with gui.add_folder("Timeline"):
            self.gui_frame = gui.add_slider("frame", min=0, max=1, step=1, initial_value=0, disabled=True)
            self.gui_play = gui.add_checkbox("play", initial_value=False, hint="play the trajectory")
            self.gui_fps = gui.add_slider("speed (fps)", min=1, max=60, step=1, initial_value=12)
            self.gui_follow = gui.add_checkbox("view follows timeline", initial_value=True,
                                               hint="move the view camera to the current frame's pose")
            self.gui_panel = gui.add_image(np.zeros((8, 24, 3), np.uint8), label="RGB | depth | mask", format="jpeg")
        with gui.add_folder("Display"):
            self.gui_point_size = gui.add_slider("point size", min=0.0005, max=0.1, step=0.0005, initial_value=0.01)
            self.gui_show_points = gui.add_checkbox("point cloud", initial_value=True)
            self.gui_show_frusta = gui.add_checkbox("camera frusta", initial_value=True)
            self.gui_show_path = gui.add_checkbox("trajectory", initial_value=True)
            self.gui_show_mesh = gui.add_checkbox("mesh", initial_value=True, visible=False)
            self.gui_show_gaussians = gui.add_checkbox("gaussians", initial_value=True, visible=False)
        self.gui_overview = gui.add_button("overview", hint="view the world and the camera path from behind camera 0")
        self.gui_info = gui.add_markdown("")
        self.gui_overview.on_click(lambda event: self.set_overview())

        self.gui_frame.on_update(lambda event: self._show_frame(int(self.gui_frame.value), move_view=self._move_on_slider))
        self.gui_point_size.on_update(lambda event: self._set_node(POINTS, point_size=float(self.gui_point_size.value)))
        self.gui_show_frusta.on_update(lambda event: self._update_frusta_visibility())
        for box, name in ((self.gui_show_points, POINTS), (self.gui_show_path, TRAJECTORY),
                          (self.gui_show_mesh, MESH), (self.gui_show_gaussians, GAUSSIANS)):
            box.on_update(lambda event, box=box, name=name: self._set_node(name, visible=bool(box.value)))

    def _set_node(self, name: str, **values) -> None:
        handle = self.server.scene.get_handle_by_name(name)
        if handle is not None:
            for key, value in values.items():
                setattr(handle, key, value)

    def set_info(self, text: str) -> None:
        self.gui_info.content = text

    # ------------------------------------------------------------------ scene
    def configure_scale(self, xyz, cameras: Cameras) -> None:
        """Size frusta and points from the scene: median depth of the points seen from camera 0."""
        xyz = _numpy(xyz)
        if xyz.shape[0] == 0:
            return
        sample = xyz[:: max(1, xyz.shape[0] // 100_000)].astype(np.float64)  # [<=~100k, 3]
        w2c = cameras.w2c[0].to(torch.float64).numpy()  # [4, 4]
        depth = sample @ w2c[:3, :3].T + w2c[:3, 3]  # [S, 3] camera coordinates
        z = depth[:, 2][depth[:, 2] > 0]
        self.scene_depth = float(np.median(z)) if z.size else float(np.median(np.linalg.norm(depth, axis=1)))
        fx = float(cameras.K[0, 0, 0])
        footprint = 2.0 * self.scene_depth / fx  # two pixels of camera 0 at the median depth
        self.gui_point_size.max = max(footprint * 20, 1e-4)
        self.gui_point_size.step = footprint / 20
        self.gui_point_size.min = footprint / 20
        self.gui_point_size.value = footprint
        self.server.scene.set_up_direction(tuple(-cameras.c2w[0, :3, 1].to(torch.float64).numpy()))

    def set_points(self, xyz, rgb) -> int:
        """Show ``xyz`` [P, 3] with colours ``rgb`` [P, 3] (uint8, or float in [0, 1]); returns the count shown."""
        xyz, rgb = _numpy(xyz), _numpy(rgb)
        if rgb.dtype != np.uint8:
            rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
        xyz, rgb = downsample_points(xyz, rgb, self.max_points)
        with self._lock:
            if xyz.shape[0] == 0:
                self.server.scene.remove_by_name(POINTS)
                return 0
            self.server.scene.add_point_cloud(POINTS, points=xyz.astype(np.float32), colors=rgb,
                                              point_size=float(self.gui_point_size.value), precision="float32",
                                              point_shape="square", point_shading="flat",
                                              visible=bool(self.gui_show_points.value))
        return int(xyz.shape[0])

    def add_cameras(self, cameras: Cameras, start: int, thumbnails=None) -> None:
        """Append trajectory frames ``start .. start + len(cameras) - 1`` as frusta (``thumbnails``:
        one ``[h, w, 3]`` uint8 image or None per camera); earlier frames from ``start`` on are replaced."""
        with self._lock:
            if start < self.num_frames:
                self.truncate(start)
            if start != self.num_frames:
                raise ValueError(f"add_cameras: start {start} leaves a gap after {self.num_frames} frames")
            wxyz, position = viser_poses(cameras.w2c)  # [n, 4], [n, 3]
            self._fov = vertical_fov(cameras.K[0], cameras.height)
            self._aspect = cameras.width / cameras.height
            self._w2c = np.concatenate([self._w2c, cameras.w2c.to(torch.float64).numpy()])
            self._wxyz = np.concatenate([self._wxyz, wxyz])
            self._position = np.concatenate([self._position, position])
            if self.num_frames == len(cameras):
                self.server.scene.add_frame(FRUSTA, show_axes=False)
                self._update_frusta_visibility()
            for k in range(len(cameras)):  # one scene node per camera
                image = thumbnails[k] if thumbnails is not None else None
                if image is not None:
                    self._thumbnails[start + k] = image
                self._add_frustum(start + k)
            self._update_path()
            self.gui_frame.max = max(self.num_frames - 1, 1)
            self.gui_frame.disabled = self.num_frames < 2

    def _add_frustum(self, index: int) -> None:
        self.server.scene.add_camera_frustum(
            frustum_name(index), fov=self._fov, aspect=self._aspect, scale=0.08 * self.scene_depth,
            thickness=0.004 * self.scene_depth, color=_FRUSTUM_COLOR, image=self._thumbnails.get(index),
            format="jpeg", wxyz=self._wxyz[index], position=self._position[index])

    def truncate(self, num_frames: int) -> None:
        """Drop frames ``num_frames ..`` (explore's undo)."""
        with self._lock:
            for index in range(num_frames, self.num_frames):
                self.server.scene.remove_by_name(frustum_name(index))
                self._thumbnails.pop(index, None)
            self._w2c, self._wxyz, self._position = self._w2c[:num_frames], self._wxyz[:num_frames], self._position[:num_frames]
            self._update_path()
            self.gui_frame.max = max(self.num_frames - 1, 1)
            self.gui_frame.disabled = self.num_frames < 2
            if self.frame_index >= num_frames and num_frames:
                self.set_frame(num_frames - 1)

    def _update_path(self) -> None:
        if self.num_frames < 2:
            self.server.scene.remove_by_name(TRAJECTORY)
            return
        segments = np.stack([self._position[:-1], self._position[1:]], axis=1).astype(np.float32)  # [N-1, 2, 3]
        self.server.scene.add_line_segments(TRAJECTORY, points=segments, colors=(255, 160, 0), thickness=2.0, thickness_units="screen",
                                            visible=bool(self.gui_show_path.value))

    def show_mesh(self, path) -> None:
        from voyager_pipe.view.exports import load_mesh

        self.server.scene.add_mesh_trimesh(MESH, load_mesh(path), visible=bool(self.gui_show_mesh.value))
        self.gui_show_mesh.visible = True

    def show_gaussians(self, path) -> None:
        from voyager_pipe.view.exports import load_gaussians

        self.server.scene.add_gaussian_splats(GAUSSIANS, **load_gaussians(path, self.max_points),
                                              visible=bool(self.gui_show_gaussians.value))
        self.gui_show_gaussians.visible = True

    # ------------------------------------------------------------------ timeline
    def set_frame(self, index: int, move_view: bool = True) -> None:
        """Move the timeline to frame ``index`` (the same path as dragging the slider); ``move_view=False``
        updates the slider, highlight and panel but leaves the browsers' cameras where they are."""
        index = int(min(max(index, 0), max(self.num_frames - 1, 0)))
        with self._lock:
            if int(self.gui_frame.value) != index:
                self._move_on_slider = move_view
                try:
                    self.gui_frame.value = index  # runs _show_frame through the slider's callback
                finally:
                    self._move_on_slider = True
            else:
                self._show_frame(index, move_view=move_view)

    def _show_frame(self, index: int, move_view: bool = True) -> None:
        with self._lock:
            if not 0 <= index < self.num_frames:
                return
            self.frame_index = index
            wxyz, position = self._wxyz[index], self._position[index]
            self.server.scene.add_camera_frustum(CURRENT, fov=self._fov, aspect=self._aspect, scale=0.1 * self.scene_depth,
                                                 thickness=0.008 * self.scene_depth, color=_CURRENT_COLOR,
                                                 wxyz=wxyz, position=position, visible=not self._at_pose)
            if move_view and self.gui_follow.value:
                self.view_wxyz, self.view_position = wxyz.copy(), position.copy()
                centre, target, up = look_at_up(self._w2c[index], self.scene_depth)
                initial = self.server.initial_camera  # "reset view" and new browsers
                initial.position, initial.look_at, initial.up, initial.fov = centre, target, up, self._fov
                self._at_pose, self._moved_at = True, time.monotonic()
                for client in self.server.get_clients().values():
                    self._move_client(client)
                self._update_frusta_visibility()
            panel = self.frames.panel(index) if self.frames is not None else None
            if panel is not None:
                self.gui_panel.image = panel

    def _move_client(self, client) -> None:
        with client.atomic():
            client.camera.wxyz = self.view_wxyz
            client.camera.position = self.view_position
            client.camera.fov = self._fov

    def _update_frusta_visibility(self) -> None:
        """Frusta are hidden while the view sits at a trajectory pose (they would cover it with their images)."""
        self._set_node(FRUSTA, visible=bool(self.gui_show_frusta.value) and not self._at_pose)
        self._set_node(CURRENT, visible=not self._at_pose)

    def _on_camera(self, camera) -> None:
        """A browser moved its camera: once the user leaves the trajectory pose, frusta come back."""
        if not self._at_pose or time.monotonic() - self._moved_at < 1.0:
            return
        look = tf_matrix(camera.wxyz)[:, 2]  # [3]
        pose_look = tf_matrix(self.view_wxyz)[:, 2]  # [3]
        moved = np.linalg.norm(np.asarray(camera.position) - self.view_position) > 1e-3 * self.scene_depth
        if moved or float(look @ pose_look) < 1 - 1e-4:
            self._at_pose = False
            self._update_frusta_visibility()

    def _on_client_connect(self, client) -> None:
        client.camera.on_update(self._on_camera)
        if self.num_frames and self._at_pose:
            self._move_client(client)

    def set_overview(self) -> None:
        """Initial view: behind and above camera 0, looking at the scene ahead of it (frusta in sight)."""
        if not self.num_frames:
            return
        centre, target, up = look_at_up(self._w2c[0], 0.5 * self.scene_depth)
        back = (target - centre) / max(np.linalg.norm(target - centre), 1e-12)  # [3] forward of camera 0
        position = centre - 0.8 * self.scene_depth * back + 0.4 * self.scene_depth * up
        initial = self.server.initial_camera
        initial.position, initial.look_at, initial.up, initial.fov = position, target, up, self._fov
        for client in self.server.get_clients().values():
            with client.atomic():
                client.camera.position = position
                client.camera.look_at = target
                client.camera.up_direction = up
        self._at_pose = False
        self._update_frusta_visibility()

    def _play_loop(self) -> None:
        while not self._stop.is_set():
            if self.gui_play.value and self.num_frames > 1:
                self.set_frame((self.frame_index + 1) % self.num_frames)
            self._stop.wait(1.0 / max(float(self.gui_fps.value), 1.0))

    # ------------------------------------------------------------------ a finished run
    def show_run(self, run: RunFolder, wait: bool = True) -> None:
        """Everything of a run folder: points, frusta, exports, timeline at frame 0.

        The frame images (frustum thumbnails, the panel) are read by a background thread; with
        ``wait=False`` this returns before they are in, so the URL can be printed at once.
        """
        self.frames = FrameFiles(run.path)
        self.configure_scale(run.xyz, run.cameras)
        self.set_points(run.xyz, run.rgb)
        self.add_cameras(run.cameras, 0)
        self.gui_fps.value = min(run.fps, 60)
        self.set_info(run_summary(run))
        self.set_overview()
        loader = threading.Thread(target=self._load_run_media, args=(run,), name="viewer-media", daemon=True)
        loader.start()
        if wait:
            loader.join()

    def _load_run_media(self, run: RunFolder) -> None:
        self._show_frame(self.frame_index, move_view=False)
        for index in range(run.num_frames):  # frustum images, one file each
            thumbnail = self.frames.thumbnail(index)
            with self._lock:
                if thumbnail is not None and index < self.num_frames:
                    self._thumbnails[index] = thumbnail
                    self._add_frustum(index)
        if "mesh" in run.exports:
            self.show_mesh(run.exports["mesh"])
        if "gaussians" in run.exports:
            self.show_gaussians(run.exports["gaussians"])

    def serve_forever(self) -> None:
        """Block until Ctrl+C."""
        try:
            while not self._stop.is_set():
                time.sleep(0.5)
        finally:
            self.close()


def tf_matrix(wxyz) -> np.ndarray:
    """Rotation matrix [3, 3] of a unit quaternion (w, x, y, z)."""
    from voyager_pipe.camera.rotations import quaternion_to_matrix

    return quaternion_to_matrix(torch.as_tensor(np.asarray(wxyz, dtype=np.float64))).numpy()


def _numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)
