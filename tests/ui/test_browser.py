"""The proof of the browser UI: `cofrida ui` in its own process, driven by Playwright in
Debian's headless Chromium the way a person would use it: draw on the canvas with the mouse,
type a prompt, get proposals, pick one, plan, paint in simulation, and see the canvas change.
Along the way, what made people think their painting was lost: a mistake leaves every picture
in place (the message is in the status bar, in sight of the buttons), the editor is usable
right after a saved turn, new proposals clear the old target and plan, and a reload while the
robot paints reattaches to the session and shows the painting going on, with the turn's
proposals, target and plan drawn again. After Undo, a second tab and a reload show the
canvas as it is again (the person's) and the status bar; so does a fresh page.

Screenshots (after the mistake, after the reload, after the robot's turn, of a second tab and
of a reload after Undo) are kept under pytest's tmp dir and copied to ``test-artifacts/ui/``
in the checkout (the paths are printed).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.ui.conftest import start_ui

CHROMIUM = Path("/usr/bin/chromium")
# Headless Chromium as ../shared/ENVIRONMENT.md says works here.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
STARTUP_S = 120  # s: the server imports torch, gradio and the proposer on a busy machine
STEP_S = 60  # s: the longest wait for one step of the turn

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python: pip install -e '.[ui]'"
)
if not CHROMIUM.exists():
    pytest.skip(
        "needs Debian's Chromium at /usr/bin/chromium: `sudo apt-get install chromium` "
        "(`make setup` installs it when run as root or with sudo)",
        allow_module_level=True,
    )


@pytest.fixture
def server(tmp_path):
    """`cofrida ui` on a free loopback port with small, quick settings; yields its URL."""
    args = ["--quick", "--strokes", "20", "--proposals", "2", "--canvas-px", "128",
            "--speed", "8", "--session-dir", str(tmp_path / "sessions")]  # fmt: skip
    proc, url = start_ui(args, tmp_path / "server.log", {}, STARTUP_S)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pixels(locator) -> np.ndarray:
    """An element's screenshot as (H, W, 3) int array."""
    png = locator.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def wait_status(page, text: str) -> None:
    """Wait until the status line says `text`; fail with what it says instead."""
    try:
        page.wait_for_function(
            "t => document.querySelector('#status').innerText.includes(t)", arg=text,
            timeout=STEP_S * 1000,
        )  # fmt: skip
    except sync_api.TimeoutError:
        page.screenshot(path=str(ARTIFACTS / "failed_wait.png"), full_page=True)  # diagnosis
        pytest.fail(f"waited for {text!r}; the status says {page.inner_text('#status')!r}")


def in_view(page, selector: str) -> bool:
    """Whether the element is entirely inside the browser window."""
    return page.evaluate(
        "s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }",
        selector,
    )


def no_error_badges(page) -> None:
    """No component is replaced by Gradio's red 'Error' badge."""
    badges = page.get_by_text("Error", exact=True)
    assert badges.count() == 0 or not any(b.is_visible() for b in badges.all())


def reopened_view(page, shot: Path) -> tuple[str, np.ndarray | None]:
    """What a tab that (re)opened the session shows once its page has loaded: (the status
    bar's text, the canvas image's pixels or None when no canvas image is shown). Its
    screenshot goes to `shot` and at once to ``test-artifacts/ui/`` (kept when a check fails).
    """
    # The load event fills the status bar and the canvas; what shows instead after the wait
    # is what the caller checks.
    with contextlib.suppress(sync_api.TimeoutError):
        page.wait_for_function(
            "() => document.querySelector('#status').innerText.trim() !== ''"
            " && !!document.querySelector('#robot-canvas img')?.getAttribute('src')",
            timeout=STEP_S * 1000,
        )
    page.wait_for_timeout(500)  # the image is swapped in
    page.screenshot(path=str(shot))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
    image = page.locator("#robot-canvas img")
    shown = image.count() == 1 and image.is_visible() and image.get_attribute("src")
    return page.inner_text("#status").strip(), pixels(image) if shown else None


def draw(page, canvas, y: float = 0.55) -> None:
    """Drag a brush stroke across the editor, like a person with a mouse."""
    box = canvas.bounding_box()  # again each time: a late layout change moves it
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.30 * w, y0 + y * h)
    page.mouse.down()
    for k in range(1, 5):  # a few moves: each is a software-rendered WebGL frame (~1 s)
        page.mouse.move(x0 + (0.30 + 0.1 * k) * w, y0 + (y + 0.04 * k) * h)
    page.mouse.up()


def test_a_person_and_the_sim_robot_paint_a_turn_in_the_browser(server, tmp_path, capsys):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tabs = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = tabs.new_page()
        page.set_default_timeout(STEP_S * 1000)
        page.goto(server)

        # 0. A mistake before anything: a message in the status bar, in sight; nothing else
        #    changes (no error badge replaces a component).
        canvas = page.locator("#canvas-editor canvas").first
        canvas.wait_for()
        page.wait_for_timeout(1000)  # the layout settles (banner, brush, gallery)
        wait_status(page, "Paint on the canvas")  # what to do first, in the status bar
        page.click("#done-drawing")
        wait_status(page, "nothing drawn yet")
        no_error_badges(page)
        assert in_view(page, "#status") and canvas.is_visible()
        shots = [tmp_path / "ui_after_error.png"]  # kept for a person to look at
        page.screenshot(path=str(shots[-1]))

        # 1. The person drags a brush stroke across the canvas and saves the turn.
        history_images = page.locator("#history img")
        for attempt in range(3):
            draw(page, canvas)
            page.wait_for_timeout(1000 * (attempt + 1))  # the editor sends its layers late
            page.click("#done-drawing")
            try:  # saved when the turn appears in the history
                history_images.first.wait_for(timeout=10_000 * (attempt + 1))
                break
            except sync_api.TimeoutError:
                # On a loaded machine the stroke can reach the server after the click: the
                # page says "nothing drawn yet" (as a person would see it); they draw again.
                continue
        wait_status(page, "is saved")
        robot_canvas = page.locator("#robot-canvas img")
        before = pixels(robot_canvas)
        assert (before.sum(-1) < 200).mean() > 0.002, "the person's dark stroke is on the canvas"

        # The editor is usable at once: a new stroke in another paint shows within seconds (no
        # spinner over it; the palette closes once a paint is picked, not swallowing strokes).
        editor_before = pixels(canvas)
        t0 = time.monotonic()
        page.click("#canvas-editor button[aria-label='Color']")
        paints = page.locator("#canvas-editor .swatch-container .color")
        paints.nth(3).click()
        page.wait_for_function(  # the palette closes by itself
            "() => { const c = document.querySelector('#canvas-editor .swatch-container .color');"
            " return !c || c.offsetParent === null; }",
            timeout=10_000,
        )
        draw(page, canvas, y=0.25)
        while np.abs(pixels(canvas) - editor_before).sum(-1).max() < 60:
            assert time.monotonic() - t0 < 20, "the editor did not take a stroke after saving"
            page.wait_for_timeout(500)
        editor_ready_s = time.monotonic() - t0

        # A step out of order: the message, and every picture still shows the painting.
        page.click("#plan")
        wait_status(page, "choose a proposal")
        assert in_view(page, "#status")
        no_error_badges(page)
        assert np.abs(pixels(robot_canvas) - before).max() < 40  # still the painting

        # 2. A prompt, proposals, a choice, a plan (the SVG and G-code to download).
        prompt = page.locator("#prompt textarea")
        prompt.fill("a sunny meadow with a red house")
        prompt.press("End")
        prompt.type(" ")
        page.wait_for_function(
            "() => document.querySelector('#prompt-count').innerText.includes('/500')"
        )
        page.click("#propose")
        wait_status(page, "2 proposals for")
        page.locator("#proposals img").first.click()
        wait_status(page, "is the target")
        page.click("#plan")
        assert in_view(page, "#status"), "the status is in sight of the Plan button"
        wait_status(page, "Planned")
        assert "20 strokes" in page.inner_text("#plan-info")
        files = page.inner_text("#plan-files")
        assert "plan_turn_2\n.svg" in files and "plan_turn_2\n.gcode" in files

        # New proposals: the old target and plan go away.
        page.click("#propose")
        wait_status(page, "2 proposals for")
        assert page.locator("#target img").count() == 0
        assert page.locator("#plan-overlay img").count() == 0
        assert page.inner_text("#plan-info").strip() == ""
        page.locator("#proposals img").first.click()
        wait_status(page, "is the target")
        page.click("#plan")
        wait_status(page, "Planned")

        # 3. The sim arm paints; the person reloads the page mid-way: the page reopens the
        #    session by itself and shows the painting going on; the canvas changes.
        banner = page.inner_text("#banner")
        target_before = pixels(page.locator("#target img"))
        page.click("#paint")
        wait_status(page, "Painting: ")
        painting_two = "/Painting: ([2-9]|1[0-9])\\/20/"  # two strokes or more painted
        page.wait_for_function(
            f"() => {painting_two}.test(document.querySelector('#status').innerText)"
        )
        page.reload()
        page.locator("#canvas-editor canvas").first.wait_for()
        page.wait_for_function(
            "() => /Welcome back|Painting: /.test(document.querySelector('#status').innerText)"
        )
        assert page.inner_text("#banner") == banner, "the same session, reopened"
        # ...with everything of the turn it showed: the proposals, the target and the plan.
        page.locator("#plan-overlay img").first.wait_for()
        target_after = pixels(page.locator("#target img"))
        assert target_after.shape == target_before.shape
        assert np.abs(target_after - target_before).mean() < 10, "the same target, drawn again"
        assert "20 strokes" in page.inner_text("#plan-info")
        assert page.locator("#plan-animation img").count() == 1
        assert page.locator("#proposals img").count() == 2
        shots.append(tmp_path / "ui_after_reload.png")
        page.screenshot(path=str(shots[-1]))
        wait_status(page, "The robot painted 20 strokes")
        page.wait_for_timeout(500)  # the last image is swapped in
        after = pixels(robot_canvas)
        # The sessions are listed with a thumbnail, the time and the first prompt.
        assert page.locator("#session-list img").count() == 1
        assert "a sunny meadow with a red house" in page.inner_text("#session-list")
        # person, the robot turn of the first proposals (cancelled), the painted one
        assert len(page.locator("#history img").all()) == 3
        assert "CANCELLED robot" in page.inner_text("#history")
        shots.append(tmp_path / "ui_after_robot_turn.png")
        page.screenshot(path=str(shots[-1]), full_page=True)

        # 4. Undo: the replay and the history say so, nothing of the undone turn stays.
        page.click("#undo")
        wait_status(page, "undone")
        assert page.locator("#replay img").count() == 0
        assert page.locator("#proposals img").count() == 0
        assert "UNDONE robot" in page.inner_text("#history")
        undone = pixels(robot_canvas)  # the canvas the robot's turn started from, again
        assert np.abs(undone - before).mean() < 10, "the person's canvas, as before the turn"
        second = tabs.new_page()  # a second tab of the same browser
        second.goto(server)
        second.locator("#canvas-editor canvas").first.wait_for()
        shots.append(tmp_path / "ui_second_tab.png")
        status, shown = reopened_view(second, shots[-1])
        assert "Welcome back" in status, f"the second tab's status bar says {status!r}"
        assert shown is not None, "the second tab shows no canvas"
        assert shown.shape == undone.shape
        assert np.abs(shown - undone).mean() < 10, "the second tab shows the canvas as it is"
        assert "UNDONE robot" in second.inner_text("#history")
        # A plain reload of the first tab after Undo: it takes the session back, the same view.
        page.reload()
        page.locator("#canvas-editor canvas").first.wait_for()
        shots.append(tmp_path / "ui_reload_after_undo.png")
        status, shown = reopened_view(page, shots[-1])
        assert "Welcome back" in status, f"after a reload the status bar says {status!r}"
        assert shown is not None, "after a reload no canvas is shown"
        assert shown.shape == undone.shape
        assert np.abs(shown - undone).mean() < 10, "after a reload, the canvas as it is"
        browser.close()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = [shutil.copy(shot, ARTIFACTS / shot.name) for shot in shots]
    with capsys.disabled():
        print(f"\nbrowser screenshots: {kept}; editor usable {editor_ready_s:.1f} s after saving")
    assert before.shape == after.shape
    changed = np.abs(after - before).sum(-1) > 40
    assert changed.mean() > 0.01, "the robot's strokes changed the canvas shown in the page"
