"""`cofrida ui` cleans up after itself: stopped by a service manager (SIGTERM) or Ctrl-C
(SIGINT), the server process removes the temporary folders its tabs made for downloads, also
those of a tab the browser never closed, and keeps the sessions.

The server runs in its own process with its temporary folder (TMPDIR) in the test's tmp dir, so
the test sees exactly the folders it made; a client drives one tab over Gradio's API the way
the page's buttons do (upload a canvas, export the session), and never closes the tab.
"""

from __future__ import annotations

import signal
import urllib.request

import pytest
from PIL import Image

from tests.ui.conftest import start_ui

gradio_client = pytest.importorskip("gradio_client", reason="comes with the 'ui' extra")

STOP_S = 30  # s: the longest wait for the stopped server to exit


def start_server(tmp_path, temp_dir):
    """`cofrida ui` (stand-in proposer, quick planner) with TMPDIR=`temp_dir`; (process, URL)."""
    args = ["--quick", "--model", "scene-stand-in", "--canvas-px", "128",
            "--session-dir", str(tmp_path / "sessions")]  # fmt: skip
    env = {"TMPDIR": str(temp_dir), "GRADIO_TEMP_DIR": None}  # Gradio's cache in TMPDIR too
    return start_ui(args, tmp_path / "server.log", env)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_server_leaves_no_temporary_folders_and_keeps_the_sessions(tmp_path, stop):
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    photo = tmp_path / "canvas.png"
    Image.new("RGB", (128, 99), (200, 180, 150)).save(photo)
    proc, url = start_server(tmp_path, temp_dir)
    try:
        tab = gradio_client.Client(url, verbose=False, download_files=False)
        status = tab.predict(gradio_client.handle_file(str(photo)), api_name="/upload_canvas")[-1]
        assert "canvas now" in status
        archive, status = tab.predict(api_name="/export")
        assert "Exported the session" in status
        with urllib.request.urlopen(archive["url"], timeout=30) as r:  # the browser's download
            assert r.read(2) == b"PK"  # a zip
        made = list(temp_dir.glob("cofrida-ui-*/**/export/*.zip"))
        assert made, "the export is made in the server's temporary folder"
        proc.send_signal(stop)  # the tab stays open: nothing told the server it went away
        code = proc.wait(timeout=STOP_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(temp_dir.glob("cofrida-ui-*")) == []
    left = sorted(p for p in temp_dir.rglob("*") if p.is_file())
    assert left == []  # nor Gradio's copies of the uploaded photo and the exported zip
    assert code == 0, (tmp_path / "server.log").read_text()  # a normal exit
    saved = list((tmp_path / "sessions").glob("*/session.sqlite"))
    assert len(saved) == 1  # the person's session stays
