"""`cofrida ui` on the command line, the app's layout, and the real-robot mode (with the sim
arm and the sim camera standing in for the hardware)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import gradio as gr
import numpy as np
import pytest

from cofrida.commands.robot import main as robot_main
from tests.ui.conftest import STROKES, free_port, small_config
from ui import app, execution
from ui import callbacks as cb
from ui.state import SessionOpener, TabState


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.0.9", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("192.168.1.20", False), ("::", False), ("painter.local", False)],
)  # fmt: skip
def test_only_loopback_hosts_count_as_private(host, loopback):
    assert app.is_loopback(host) is loopback


def test_serving_on_the_network_without_a_password_is_refused(capsys, monkeypatch):
    monkeypatch.delenv(app.PASSWORD_ENV, raising=False)
    assert app.main(["--host", "0.0.0.0", "--port", "7999"]) == 2
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 without a password" in err
    assert "--password" in err and app.PASSWORD_ENV in err


def test_a_password_protects_every_page_and_call(tmp_path, opener):
    port = free_port()
    served = app.serve(small_config(tmp_path), "127.0.0.1", port, ("cofrida", "s3cret"), opener,
                       block=False)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/config", timeout=10)
        assert refused.value.code == 401
        login = urllib.parse.urlencode({"username": "cofrida", "password": "wrong"}).encode()
        with pytest.raises(urllib.error.HTTPError) as wrong:
            urllib.request.urlopen(f"{base}/login", data=login, timeout=10)
        assert wrong.value.code == 400
        jar = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        login = urllib.parse.urlencode({"username": "cofrida", "password": "s3cret"}).encode()
        assert json.load(jar.open(f"{base}/login", data=login, timeout=10)) == {"success": True}
        assert json.load(jar.open(f"{base}/config", timeout=10))["mode"] == "blocks"
    finally:
        served.close()


def test_bad_options_exit_with_a_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        app.parse_args(["--arm.type=grbl"])
    assert exit_info.value.code == 2
    assert "--arm.* / --camera.* options need --robot real" in capsys.readouterr().err
    assert app.main(["--robot", "real", "--arm.type=nosuch"]) == 2
    assert "--arm.type" in capsys.readouterr().err


def test_the_app_builds_with_every_panel(tmp_path, opener):
    blocks = app.build_app(small_config(tmp_path), opener)
    assert isinstance(blocks, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in blocks.blocks.values()}
    wanted = {
        "canvas-editor",
        "prompt",
        "region-editor",
        "propose",
        "proposals",
        "target",
        "montage-editor",
        "combine",
        "plan",
        "plan-overlay",
        "plan-animation",
        "paint",
        "pause",
        "stop",
        "undo",
        "robot-canvas",
        "replay",
        "history",
        "export",
        "status",
    }
    assert wanted <= ids


def test_the_person_paints_with_the_robots_paints_and_brush_size(tab):
    brush = cb.person_brush(tab)
    assert brush.color_mode == "fixed" and len(brush.colors) == 8  # the acrylic set
    assert brush.default_color == "#171717"  # mars black, the darkest
    assert 2 <= brush.default_size <= 10  # a 2-10 mm round brush on a 28 cm canvas, 512 px


def test_real_mode_without_a_calibration_says_what_to_run(tmp_path, opener):
    config = small_config(tmp_path, robot="real", arm_options={"type": "sim"},
                          camera_options={"type": "sim"})  # fmt: skip
    tab = TabState(SessionOpener(config, opener._proposers))
    with pytest.raises(gr.Error, match=r"no canvas calibration saved .*`cofrida robot calibrate`"):
        cb.capture_turn(tab)
    tab.close()


def test_real_mode_captures_the_canvas_and_paints_on_the_arm(tmp_path, opener):
    assert robot_main(["calibrate", "--arm.type=sim", "--camera.type=sim", "--yes"]) == 0
    config = small_config(tmp_path, robot="real", arm_options={"type": "sim"},
                          camera_options={"type": "sim"})  # fmt: skip
    tab = TabState(SessionOpener(config, opener._proposers))
    *_, status = cb.capture_turn(tab)
    assert "Captured the canvas" in status
    s = tab.session
    assert s.camera is not None and not tab.config.simulated
    with pytest.raises(gr.Error, match="paint on the paper and press 'Capture the canvas'"):
        cb.submit_drawing(tab, cb.load(tab)[0])
    before = s.canvas.clone()
    cb.propose(tab, "a red house", None, 2)
    cb.choose(tab, 0)
    cb.plan(tab, STROKES)
    last = list(execution.paint(tab))[-1]
    assert f"painted {STROKES} strokes" in last[4]
    changed = (s.canvas - before).abs().sum(0) > 0.3  # seen through the camera
    assert float(changed.float().mean()) > 0.005
    assert np.asarray(last[2]).shape[1] == cb.PREVIEW_PX
    tab.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--port", "70000"], "--port must be 1..65535"),
     (["--port", "-1"], "--port must be 1..65535"),
     (["--canvas-px", "5"], "--canvas-px must be 64..1024"),
     (["--canvas-px", "100000"], "--canvas-px must be 64..1024"),
     (["--ssl-certfile", "cert.pem"], "give both --ssl-certfile and --ssl-keyfile"),
     (["--ssl-certfile", "nope.pem", "--ssl-keyfile", "nope.key"], "--ssl-certfile: no file")],
)  # fmt: skip
def test_bad_numbers_and_files_are_refused_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        app.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_short_password_is_refused(capsys, monkeypatch):
    monkeypatch.delenv(app.PASSWORD_ENV, raising=False)
    assert app.main(["--host", "0.0.0.0", "--password", "x"]) == 2
    assert "the password is 1 characters long; use at least 8" in capsys.readouterr().err


def _login(base: str, password: str, context=None, source: str | None = None) -> int:
    """POST the login form; `source`: the client's loopback address (default: the OS's)."""
    import http.client

    form = urllib.parse.urlencode({"username": "cofrida", "password": password})
    if source is None:
        try:
            with urllib.request.urlopen(f"{base}/login", data=form.encode(), timeout=60,
                                        context=context) as r:  # fmt: skip
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
    url = urllib.parse.urlsplit(base)
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=60, context=context,
                                           source_address=(source, 0))  # fmt: skip
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60,
                                          source_address=(source, 0))  # fmt: skip
    try:
        conn.request("POST", "/login", form,
                     {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        return conn.getresponse().status
    finally:
        conn.close()


def test_guessing_the_password_is_slow_and_then_locked_out(tmp_path, opener):
    from concurrent.futures import ThreadPoolExecutor

    port = free_port()
    served = app.serve(small_config(tmp_path), "127.0.0.1", port, ("cofrida", "a long secret"),
                       opener, block=False)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        # 8 guessers in parallel for 2.5 s: one wrong password per second gets through.
        deadline = time.monotonic() + 2.5

        def guess(k: int) -> int:
            tries = 0
            while time.monotonic() < deadline:
                assert _login(base, f"guess {k}.{tries}") == 400
                tries += 1
            return tries

        with ThreadPoolExecutor(8) as pool:
            tries = sum(pool.map(guess, range(8)))
        assert tries <= 12, f"{tries} guesses in 2.5 s"  # unthrottled: ~100
    finally:
        served.close()


def test_repeated_failures_lock_logins_and_https_is_served(tmp_path, opener):
    import ssl
    import subprocess

    from ui.login import LoginGuard

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    guard = LoginGuard("cofrida", "a long secret", fail_delay_s=0.05, lockout_after=5)
    served = app.serve(small_config(tmp_path), "127.0.0.1", port, ("cofrida", "a long secret"),
                       opener, block=False, ssl=(cert, key), login=guard)  # fmt: skip
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(cert))
    trust.check_hostname = False
    try:
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10)
        assert _login(base, "a long secret", trust) == 200
        # An attacker at 127.0.0.1 locks 127.0.0.1 (the right password included)...
        wrong = [_login(base, "wrong", trust, source="127.0.0.1") for _ in range(5)]
        assert wrong == [400] * 5
        assert _login(base, "a long secret", trust, source="127.0.0.1") == 400
        # ...while the person at another address logs in at once with the right password.
        t0 = time.monotonic()
        assert _login(base, "a long secret", trust, source="127.0.0.2") == 200
        assert time.monotonic() - t0 < 5
        assert guard.locked("127.0.0.1") and not guard.locked("127.0.0.2")
    finally:
        served.close()
