"""Check the viewer in a real browser: headless Chromium (software WebGL) opens `voyager-pipe view RUN_DIR`.

    python tools/check_viewer.py RUN_DIR --screenshot out.png [--chromium PATH] [--size 1280x800]

Starts the viewer in this process on a free port, launches Chromium headless with a fresh profile
and its DevTools port, waits until the page has connected to the viewer, then takes screenshots
(DevTools ``Page.captureScreenshot``) until the view is drawn. It then hides the point cloud
(server side, as the "point cloud" checkbox does), takes another screenshot, shows it again and takes
the final one (saved as PNG; the hidden one as PNG_no_points.png).

Fails (exit 1) when the screenshot is nearly uniform (grey standard deviation < 8) or when the point
cloud makes no visible difference (< 5% of the pixels change when it is hidden). Prints the load
times and the screenshot statistics as JSON. Needs Chromium (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--hide-scrollbars", "--mute-audio"]
MIN_STD = 8.0  # grey levels: below this the picture is "nearly uniform"
MIN_POINTS_CHANGE = 0.05  # fraction of pixels that must change when the point cloud is hidden


class DevTools:
    """The smallest Chrome DevTools Protocol client: one page target, request/response by id."""

    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self.socket = connect(ws_url, max_size=64 * 1024 * 1024)
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return message.get("result", {})

    def screenshot(self) -> np.ndarray:
        """``[H, W, 3]`` uint8."""
        import cv2

        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]

    def close(self) -> None:
        self.socket.close()


def find_browser(name: str | None) -> str:
    for candidate in ([name] if name else BROWSERS):
        path = shutil.which(candidate)
        if path:
            return path
    raise SystemExit("check_viewer: no Chromium found (Debian/Ubuntu: apt-get update && apt-get install -y chromium); "
                     "or pass --chromium PATH")


def page_target(profile: Path, timeout: float) -> str:
    """WebSocket URL of the browser's page, read from DevToolsActivePort once Chromium is up."""
    deadline = time.monotonic() + timeout
    port_file = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if port_file.is_file() and port_file.read_text().strip():
            port = port_file.read_text().split()[0]
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5))
            except OSError:
                targets = []
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise SystemExit(f"check_viewer: Chromium did not start within {timeout:.0f} s")


def statistics(image: np.ndarray) -> dict:
    grey = image.astype(np.float64).mean(axis=2)  # [H, W]
    colours = np.unique((image // 8).reshape(-1, 3), axis=0).shape[0]  # distinct colours at 5 bits per channel
    return {"size": f"{image.shape[1]}x{image.shape[0]}", "grey_mean": round(float(grey.mean()), 2),
            "grey_std": round(float(grey.std()), 2), "distinct_colours_5bit": int(colours)}


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 12).mean())


def settled(devtools: DevTools, deadline: float) -> np.ndarray:
    """A screenshot once the page stopped changing (three shots 1 s apart each differ from the previous in
    < 0.2% of the pixels): new content fades in, slowly with software WebGL, so an early shot is washed out."""
    previous = devtools.screenshot()
    stable = 0
    while time.perf_counter() < deadline and stable < 3:
        time.sleep(1.0)
        current = devtools.screenshot()
        stable = stable + 1 if changed_fraction(previous, current) < 0.002 else 0
        previous = current
    return previous


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--screenshot", required=True, metavar="PNG", help="where to save the screenshot")
    parser.add_argument("--chromium", metavar="PATH", help="browser executable (default: chromium on PATH)")
    parser.add_argument("--size", default="1280x800", help="window size WIDTHxHEIGHT (default 1280x800)")
    parser.add_argument("--max-points", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the page to draw")
    args = parser.parse_args(argv)

    import cv2

    from voyager_pipe.view.run_folder import read_run_folder
    from voyager_pipe.view.viewer import WorldViewer

    width, height = (int(x) for x in args.size.lower().split("x"))
    figures: dict = {"run": str(args.run_dir)}
    t0 = time.perf_counter()
    run = read_run_folder(args.run_dir, max_points=args.max_points)
    viewer = WorldViewer(port=0, max_points=args.max_points)
    viewer.show_run(run)
    figures["viewer_ready_s"] = round(time.perf_counter() - t0, 3)
    figures["points_shown"] = int(run.xyz.shape[0])
    figures["frames"] = run.num_frames

    browser = find_browser(args.chromium)
    profile = Path(tempfile.mkdtemp(prefix="check_viewer_profile_"))
    process = subprocess.Popen([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                f"--window-size={width},{height}", viewer.url],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = False
    try:
        t_browser = time.perf_counter()
        devtools = DevTools(page_target(profile, 30))
        deadline = t_browser + args.timeout
        while not viewer.server.get_clients():  # the page connects and reports its camera
            if time.perf_counter() > deadline:
                raise SystemExit(f"check_viewer: the page did not connect to the viewer within {args.timeout:.0f} s")
            time.sleep(0.1)
        figures["browser_connected_s"] = round(time.perf_counter() - t_browser, 3)
        viewer.set_frame(0)  # the view camera at trajectory frame 0 (the browser is connected now)

        # 1. the first drawn (non-uniform) picture, then a settled one
        shot = devtools.screenshot()
        while statistics(shot)["grey_std"] < MIN_STD and time.perf_counter() < deadline:
            time.sleep(0.5)
            shot = devtools.screenshot()
        figures["first_draw_s"] = round(time.perf_counter() - t_browser, 3)
        first = settled(devtools, deadline)
        figures["settled_s"] = round(time.perf_counter() - t_browser, 3)

        # 2. the point cloud hidden (server side, as the checkbox does), then shown again: the figures compare
        #    these two (the first settled picture can still be fading in on a slow machine)
        viewer.gui_show_points.value = False
        without_points = settled(devtools, time.perf_counter() + 60)
        viewer.gui_show_points.value = True
        with_points = settled(devtools, time.perf_counter() + 60)
        devtools.close()

        cv2.imwrite(str(args.screenshot), with_points[..., ::-1])
        cv2.imwrite(str(Path(args.screenshot).with_name(Path(args.screenshot).stem + "_no_points.png")),
                    without_points[..., ::-1])
        figures["screenshot"] = statistics(with_points)
        figures["screenshot_without_points"] = statistics(without_points)
        figures["changed_by_points"] = round(changed_fraction(with_points, without_points), 4)
        figures["first_settled_vs_final"] = round(changed_fraction(first, with_points), 4)
        uniform = figures["screenshot"]["grey_std"] < MIN_STD
        no_points = figures["changed_by_points"] < MIN_POINTS_CHANGE
        ok = not uniform and not no_points
        figures["result"] = "ok" if ok else ("FAIL: nearly uniform screenshot" if uniform else "FAIL: no point cloud visible")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)
        viewer.close()
    print(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
