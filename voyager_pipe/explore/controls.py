"""Explore controls in the viewer: buttons and keys that call the session's action API (server side).

Buttons (one per action, undo, save) and keys: W/S forward/backward, A/D left/right, Q/E up/down,
arrow keys turn left/right and look up/down. viser has no keyboard events, so a small script in
an HTML element maps keys to clicks on the same buttons; everything else runs in Python: a click
queues the action on one worker thread (one segment at a time; clicks while a segment is being
generated are refused with a note), the status line says "generating ..." meanwhile, and the new
frames are added and played along the trajectory as they arrive.
"""

from __future__ import annotations

import threading
import time

from voyager_pipe.explore.actions import ACTIONS
from voyager_pipe.view.run_folder import frame_panel, thumbnail

# action -> (button label, key as KeyboardEvent.key)
KEYS = {
    "forward": ("forward (W)", "w"), "backward": ("backward (S)", "s"),
    "left": ("left (A)", "a"), "right": ("right (D)", "d"),
    "up": ("up (Q)", "q"), "down": ("down (E)", "e"),
    "turn_left": ("turn left (\u2190)", "ArrowLeft"), "turn_right": ("turn right (\u2192)", "ArrowRight"),
    "look_up": ("look up (\u2191)", "ArrowUp"), "look_down": ("look down (\u2193)", "ArrowDown"),
}
_KEY_SCRIPT = """<img src="data:," style="display:none" onerror="if(!window.__voyagerKeys){window.__voyagerKeys=1;
var m=%s;document.addEventListener('keydown',function(e){var t=e.target&&e.target.tagName;
if(t==='INPUT'||t==='TEXTAREA'||e.ctrlKey||e.metaKey||e.altKey)return;var l=m[e.key]||m[e.key.toLowerCase()];if(!l)return;
var b=Array.from(document.querySelectorAll('button')).find(function(x){return x.textContent.trim()===l;});
if(b){b.click();e.preventDefault();e.stopImmediatePropagation();}},true);}">keys: W/S A/D Q/E, arrows"""


class SessionFrames:
    """The viewer's frame source for an in-memory session (panel and thumbnails from its tensors)."""

    def __init__(self, session):
        self.session = session
        self._depth_range: tuple[int, tuple[float, float]] | None = None

    def depth_range(self) -> tuple[float, float]:
        from voyager_pipe.io.video import inverse_depth_range

        count = len(self.session.depth)
        if self._depth_range is None or self._depth_range[0] != count:
            self._depth_range = (count, inverse_depth_range([d[0].numpy() for d in self.session.depth]))
        return self._depth_range[1]

    def _arrays(self, index: int):
        from voyager_pipe.io.images import to_uint8

        s = self.session
        if not 0 <= index < len(s.rgb):
            return None
        return to_uint8(s.rgb[index]), s.depth[index][0].numpy(), s.mask[index][0].numpy()

    def thumbnail(self, index: int):
        arrays = self._arrays(index)
        return None if arrays is None else thumbnail(arrays[0])

    def panel(self, index: int):
        arrays = self._arrays(index)
        return None if arrays is None else frame_panel(*arrays, depth_range=self.depth_range())


class ExploreControls:
    """Buttons, keys and the worker thread linking a :class:`~voyager_pipe.view.viewer.WorldViewer` to an
    :class:`~voyager_pipe.explore.session.ExploreSession`.

    Args:
        viewer, session: the two sides.
        out_dir: where ``save`` writes the run folder.
        play_delay: seconds between the new frames when they are played after a segment.
    """

    def __init__(self, viewer, session, out_dir, play_delay: float = 0.08):
        self.viewer = viewer
        self.session = session
        self.out_dir = out_dir
        self.play_delay = play_delay
        self.busy = threading.Event()
        self.last_error: str | None = None
        self.log: list[str] = []  # what the controls did (action names, "undo", "save"), in order
        self._lock = threading.Lock()
        gui = viewer.server.gui
        with gui.add_folder("Explore", order=-1):
            self.gui_status = gui.add_markdown("ready")
            self.buttons = {}
            for action in ACTIONS:
                self.buttons[action] = gui.add_button(KEYS[action][0])
                self.buttons[action].on_click(lambda event, action=action: self.request(action))
            self.gui_step = gui.add_number("step (units)", initial_value=session.settings.step, min=1e-4, step=0.05)
            self.gui_turn = gui.add_number("turn (degrees)", initial_value=session.settings.turn_deg, min=0.1, max=180.0, step=1.0)
            self.gui_undo = gui.add_button("undo")
            self.gui_save = gui.add_button("save")
            gui.add_html(_KEY_SCRIPT % _js_object({key: label for label, key in KEYS.values()}))
        self.gui_undo.on_click(lambda event: self.request("undo"))
        self.gui_save.on_click(lambda event: self.request("save"))
        viewer.frames = SessionFrames(session)
        self.refresh(0)

    # ------------------------------------------------------------------ requests
    def request(self, what: str) -> bool:
        """Queue an action, ``"undo"`` or ``"save"``; False (and a note) while a segment is being generated."""
        with self._lock:
            if self.busy.is_set():
                self.gui_status.content = f"busy: **{what}** ignored (a segment is being generated)"
                return False
            self.busy.set()
        threading.Thread(target=self._work, args=(what,), name=f"explore-{what}", daemon=True).start()
        return True

    def wait_idle(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.busy.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError("explore: the segment did not finish in time")
            time.sleep(0.02)

    def _set_buttons(self, disabled: bool) -> None:
        for button in (*self.buttons.values(), self.gui_undo, self.gui_save):
            button.disabled = disabled

    def _work(self, what: str) -> None:
        session = self.session
        try:
            self._set_buttons(True)
            self.last_error = None
            if what == "save":
                self.gui_status.content = f"saving to {self.out_dir} ..."
                session.save(self.out_dir)
                self.gui_status.content = f"saved {session.num_frames} frames to {self.out_dir}"
            elif what == "undo":
                before = session.num_frames
                if session.undo():
                    self.viewer.truncate(session.num_frames)
                    self.refresh(max(0, session.num_frames - session.config.generate.clip_len))
                    self.gui_status.content = f"undone: {before} -> {session.num_frames} frames"
                else:
                    self.gui_status.content = "nothing to undo"
            else:
                session.settings.step = float(self.gui_step.value)
                session.settings.turn_deg = float(self.gui_turn.value)
                self.gui_status.content = f"**generating** {what} (segment {session.segments + 1}) ..."
                result = session.step(what)
                self.refresh(result.start, play_from=result.new_from)
                self.gui_status.content = (f"{what}: frames {result.new_from}..{result.stop - 1} in {result.seconds:.1f} s, "
                                           f"+{result.added_points:,} points ({len(session.cache):,})")
            self.log.append(what)
        except Exception as exc:  # shown in the page; the session stays as it was before the failing step
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.gui_status.content = f"error: {self.last_error}"
        finally:
            self._set_buttons(False)
            self.busy.clear()

    # ------------------------------------------------------------------ viewer
    def refresh(self, start: int, play_from: int | None = None) -> None:
        """Frusta of frames ``start ..``, the cache points, then play the new frames (or show the last)."""
        session, viewer = self.session, self.viewer
        cameras = session.cameras
        if viewer.num_frames == 0:
            viewer.configure_scale(session.cache.points, cameras)
        frames = SessionFrames(session)
        viewer.add_cameras(cameras[start:], start, [frames.thumbnail(i) for i in range(start, session.num_frames)])
        viewer.set_points(session.cache.points, session.cache.colors)
        viewer.set_info(f"explore: {session.num_frames} frames, {session.segments} segments, {len(session.cache):,} points; "
                        f"save -> {self.out_dir}")
        for index in range(play_from if play_from is not None else session.num_frames - 1, session.num_frames):
            viewer.set_frame(index)
            if play_from is not None:
                time.sleep(self.play_delay)


def _js_object(mapping: dict[str, str]) -> str:
    import json

    return json.dumps(mapping).replace('"', "&quot;")
