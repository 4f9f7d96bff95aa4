"""`cofrida ui`: the co-painting browser UI (Gradio), a view over `cofrida.Session`.

Examples:
    cofrida ui                                   # simulation, http://127.0.0.1:7860
    cofrida ui --port 8080 --strokes 120 --proposals 6
    cofrida ui --host 0.0.0.0 --password 'long secret'     # on the network: password required
    cofrida ui --host 0.0.0.0 --ssl-certfile cert.pem --ssl-keyfile key.pem   # ... over HTTPS
    cofrida ui --robot real --arm.type=grbl --arm.port=/dev/ttyUSB0 --arm.name=plotter \\
        --camera.type=opencv --camera.device=0

Panels, top to bottom: the canvas (paint on it in simulation, or capture the real one), the
prompt with an optional region where the robot may paint, the proposals (pick one, or combine
several in the photomontage editor), the plan preview, painting with progress, pause and stop,
and the session's history and settings. Every step is persisted by the session's SQLite store
under ``--session-dir`` (default: ``sessions/`` in the user data directory).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

import gradio as gr

from cofrida.session.inputs import MAX_PROMPT_CHARS
from sim.palette import PALETTE_PRESETS
from ui import callbacks as cb
from ui import execution
from ui.cli import PASSWORD_ENV, app_config, check_password, is_loopback, parse_args
from ui.images import MONTAGE_COLOURS, MONTAGE_NAMES, hex_colour
from ui.login import ClientAddress, LoginGuard
from ui.state import AppConfig, SessionOpener, TabState

__all__ = ["PASSWORD_ENV", "build_app", "is_loopback", "main", "parse_args", "serve"]
IMAGE_HEIGHT = 320  # px, height of the output image boxes
# Gradio copies what the browser uploads and downloads into its cache (GRADIO_TEMP_DIR; `main`
# puts it in the server's temporary folder, removed when the server stops): every hour it
# deletes the copies older than a day, for a server that runs for weeks. (frequency s, age s)
GRADIO_CACHE_S = (3600, 86400)
# The status line is a bar fixed to the bottom of the window: whatever button was pressed, its
# message (and the progress of a long step) is in sight. History captions wrap, never cut off.
CSS = """
#status {position: fixed; left: 0; right: 0; bottom: 0; z-index: 1000; margin: 0;
         min-height: 2.6em; padding: 0.4em 1.2em; background: var(--background-fill-primary);
         border-top: 2px solid var(--color-accent); box-shadow: 0 -2px 8px rgba(0,0,0,.15)}
#status.error-status, #status:has(.status-error) {border-top-color: #d33}
body, gradio-app {padding-bottom: 4.5em}
#history .caption-label, #proposals .caption-label {white-space: normal !important;
         overflow: visible !important; text-overflow: clip !important}
#prompt-count {text-align: right; opacity: .7; margin-top: -0.5em}
footer {display: none !important}
"""
# The editors' palette popup stayed open over the canvas after a colour was picked and swallowed
# the next strokes: picking a colour closes it, by imitating a click outside the popup (what
# closes it in Gradio's own code). Gradio 6.31 has no option or event for this (`gr.Brush`
# takes sizes and colours only; the popup's closing is internal to the editor's front end), so
# this relies on its class names (".swatch-container .color"); the browser test picks a paint
# and fails if the palette stays open, so an upgrade that renames them is caught.
CLOSE_PALETTE_JS = """
() => {
  document.addEventListener("click", (event) => {
    const colour = event.target.closest(".swatch-container .color");
    if (!colour) return;
    setTimeout(() => {  // what a click outside the popup does: it closes
      const outside = document.querySelector("h1") || document.body;
      for (const type of ["pointerdown", "mousedown", "pointerup", "mouseup", "click"]) {
        outside.dispatchEvent(new MouseEvent(type, {bubbles: true}));
      }
      document.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape", bubbles: true}));
    }, 0);
  }, true);
}
"""
ERROR_MARK = "\u26a0\ufe0f "  # the status starts with it when a step was refused or failed


def _editor(elem_id: str, label: str, brush: gr.Brush, height_px: int) -> gr.ImageEditor:
    """An image editor over the canvas: brush only, no uploads, no layers, no transforms."""
    return gr.ImageEditor(
        label=label,
        elem_id=elem_id,
        type="numpy",
        image_mode="RGBA",
        sources=(),
        transforms=(),
        layers=False,
        brush=brush,
        eraser=gr.Eraser(),
        format="png",
        canvas_size=(cb.EDITOR_PX, height_px),
        buttons=[],
    )


def _image(label: str, elem_id: str, fmt: str) -> gr.Image:
    """An output image ("png" or "gif"), fitted into a box `IMAGE_HEIGHT` px high."""
    return gr.Image(
        label=label,
        elem_id=elem_id,
        interactive=False,
        format=fmt,
        height=IMAGE_HEIGHT,
        buttons=["download", "fullscreen"],
    )


def shown(fn, outputs: list, status) -> object:
    """`fn` for Gradio, with its `gradio.Error` shown in the status bar instead of as error
    badges over every output: the other outputs keep what they showed (`gradio.skip`).

    Args:
        fn: a callback (function or generator) whose results go to `outputs`.
        outputs: its output components, in order.
        status: the status component, one of `outputs`.
    """
    k = outputs.index(status)

    def refused(e: gr.Error) -> tuple:
        values = [gr.skip()] * len(outputs)
        values[k] = ERROR_MARK + str(e.message)
        return tuple(values) if len(outputs) > 1 else values[0]

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error as e:
                yield refused(e)

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as e:
            return refused(e)

    return function


def browser_secret(session_dir) -> str:
    """The key the browser's memory of its session is encrypted with, kept in `session_dir` so
    a reload after a restart of the app still finds its session."""
    import secrets
    from pathlib import Path

    path = Path(session_dir) / ".browser-secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
    return path.read_text().strip()


def build_app(config: AppConfig, opener: SessionOpener | None = None) -> gr.Blocks:
    """The Gradio app for `config` (not launched). Each browser tab gets its own `TabState`.

    Args:
        config: the app's configuration.
        opener: the `SessionOpener` to share (default: a new one for `config`).
    """
    opener = opener or SessionOpener(config)
    preview = TabState(opener)  # sizes and brushes of a new session, for the layout only
    height_px = round(cb.EDITOR_PX * cb.canvas_size(preview)[0] / cb.canvas_size(preview)[1])
    brush = cb.person_brush(preview)
    preview.close()
    sim = config.simulated

    with gr.Blocks(title="CoFRIDA co-painting", delete_cache=GRADIO_CACHE_S) as app:
        tab = gr.State(lambda: TabState(opener), delete_callback=lambda t: t.close())
        # The browser remembers its session: a reload reopens it (and follows the painting).
        remembered = gr.BrowserState(
            None, storage_key="cofrida-session", secret=browser_secret(config.session_dir)
        )
        gr.Markdown("# CoFRIDA: paint together with a robot")
        banner = gr.Markdown(elem_id="banner")
        status = gr.Markdown(elem_id="status")

        # 1. the canvas and the person's turn
        with gr.Row():
            with gr.Column(scale=3):
                editor = _editor(
                    "canvas-editor",
                    "Your turn: paint with the robot's paints" if sim else "The canvas (camera)",
                    brush,
                    height_px,
                )
                with gr.Row():
                    done_btn = gr.Button(
                        "Done: save my turn", variant="primary", elem_id="done-drawing", visible=sim
                    )
                    capture_btn = gr.Button(
                        "Capture the canvas (I painted on the paper)",
                        elem_id="capture",
                        visible=not sim,
                    )
                with gr.Accordion("Start from a photo of a canvas", open=False, visible=sim):
                    upload = gr.File(
                        label="PNG or JPEG, cropped to the canvas",
                        file_types=["image"],
                        type="filepath",
                        elem_id="upload",
                    )
                    upload_btn = gr.Button("Use this photo", elem_id="use-upload")
            with gr.Column(scale=2):
                canvas_img = _image("The canvas (the robot paints here)", "robot-canvas", "png")
                replay = _image("The robot's last turn, replayed", "replay", "gif")

        # 2. prompt, region, proposals
        with gr.Row():
            with gr.Column(scale=2):
                prompt = gr.Textbox(
                    label="What should the painting become?",
                    elem_id="prompt",
                    placeholder="a sunny meadow with a red house",
                    lines=1,
                    max_length=MAX_PROMPT_CHARS,
                )
                prompt_count = gr.Markdown(f"0/{MAX_PROMPT_CHARS}", elem_id="prompt-count")
                with gr.Accordion("Where may the robot paint? (optional)", open=False):
                    gr.Markdown(
                        "Brush over the area the robot may change; leave it empty to "
                        "let it paint anywhere."
                    )
                    region = _editor(
                        "region-editor",
                        "Region",
                        gr.Brush(colors=["#ff00ff"], default_size=24, color_mode="fixed"),
                        height_px,
                    )
                propose_btn = gr.Button("Propose", variant="primary", elem_id="propose")
            with gr.Column(scale=3):
                gallery = gr.Gallery(
                    label="Proposals, best first: click one to choose it",
                    elem_id="proposals",
                    columns=4,
                    object_fit="contain",
                    allow_preview=False,
                    interactive=False,
                    format="png",
                )
                target = _image("The target (what the robot paints towards)", "target", "png")
        with gr.Accordion("Combine proposals (photomontage)", open=False):
            legend = ", ".join(
                f"<span style='color:{hex_colour([c / 255 for c in rgb])}'>{name} = {k + 1}</span>"
                for k, (rgb, name) in enumerate(zip(MONTAGE_COLOURS, MONTAGE_NAMES, strict=True))
            )
            gr.Markdown(
                f"Brush over the base proposal with the colour of another proposal "
                f"where you want its content ({legend}); unbrushed parts stay the "
                "base. The composite becomes the target."
            )
            base = gr.Number(
                label="Base proposal",
                value=1,
                precision=0,
                minimum=1,
                maximum=8,
                elem_id="montage-base",
            )
            montage = _editor(
                "montage-editor",
                "Photomontage",
                gr.Brush(
                    colors=[hex_colour([c / 255 for c in rgb]) for rgb in MONTAGE_COLOURS],
                    default_size=16,
                    color_mode="fixed",
                ),
                height_px,
            )
            combine_btn = gr.Button("Use the composite as the target", elem_id="combine")

        # 3. plan and paint
        with gr.Row():
            plan_btn = gr.Button("Plan the strokes", variant="primary", elem_id="plan")
            paint_btn = gr.Button("Paint", variant="primary", elem_id="paint")
            pause_btn = gr.Button("Pause", elem_id="pause")
            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
            undo_btn = gr.Button("Undo the robot's turn", elem_id="undo", visible=sim)
        plan_info = gr.Markdown(elem_id="plan-info")
        with gr.Row():
            overlay = _image("Where the robot will paint", "plan-overlay", "png")
            animation = _image("The plan, animated", "plan-animation", "gif")
        plan_download = gr.File(
            label="The plan: SVG drawing and G-code (GRBL)",
            file_count="multiple",
            interactive=False,
            elem_id="plan-files",
        )

        # 4. history, sessions, settings
        with gr.Accordion("Session history", open=True):
            history = gr.Gallery(
                label="Turns",
                elem_id="history",
                columns=6,
                fit_columns=False,  # small thumbnails however few turns there are
                height=240,
                object_fit="contain",
                allow_preview=True,
                interactive=False,
            )
            session_list = gr.Gallery(
                label="Your sessions (newest first): click one to open it",
                elem_id="session-list",
                columns=6,
                fit_columns=False,
                height=220,
                object_fit="contain",
                allow_preview=False,
                interactive=False,
            )
            with gr.Row():
                sessions = gr.Dropdown(label="Sessions", choices=[], elem_id="sessions")
                open_btn = gr.Button("Open this session")
                export_btn = gr.Button("Export (zip)", elem_id="export")
            export_file = gr.File(label="Export", interactive=False, height=90)
        with gr.Accordion("Settings", open=False):
            strokes = gr.Slider(
                1,
                1000,
                value=config.strokes,
                step=1,
                elem_id="strokes",
                label="Stroke budget per robot turn",
            )
            n_proposals = gr.Slider(
                1,
                8,
                value=config.proposals,
                step=1,
                label="Proposals per prompt",
                elem_id="n-proposals",
            )
            palette = gr.Dropdown(
                sorted(PALETTE_PRESETS),
                value=config.palette,
                label="Paints (for a new session)",
                visible=sim,
            )
            model = gr.Dropdown(
                opener.model_choices(),
                value=opener.model_choices()[0],
                label="Model (for a new session): default-bundle is the shipped W4A4 model",
                elem_id="model",
            )
            new_btn = gr.Button("New session")
            gr.Markdown(f"Brush: {config.brush}. Mode: {'simulation' if sim else 'real robot'}.")

        # ---- wiring -------------------------------------------------------------------------
        # Every step's message goes to the status bar; a refused step changes nothing else.
        # Spinners show only on the status bar: the canvases stay visible and usable.
        canvas_outs = [editor, region, canvas_img, history, status]

        def on(event, fn, inputs, outputs, **kwargs):
            return event(
                shown(fn, outputs, status), inputs, outputs, show_progress_on=[status], **kwargs
            )

        def remember(event):  # the browser remembers the session the step used (or made)
            event.then(cb.session_name, [tab], [remembered], show_progress="hidden")

        def on_load(t, name):
            *outs, choices, proposals = cb.load(t, name)
            # The tab's state is an output: Gradio keeps a state a load event changes only then.
            listed = cb.session_gallery(t)
            return (
                *outs, cb.session_banner(t), gr.Dropdown(choices=choices), proposals, listed,
                *cb.turn_view(t), t,
            )  # fmt: skip

        def follow(t, progress=gr.Progress()):  # noqa: B008 (Gradio API)
            yield from execution.follow(t, progress)

        # the current turn's target and plan too (drawn again from the session's record)
        turn_outs = [target, overlay, animation, plan_info, plan_download]
        load_outs = [*canvas_outs, banner, sessions, gallery, session_list, *turn_outs, tab]
        on(app.load, on_load, [tab, remembered], load_outs).then(
            shown(follow, [*canvas_outs, replay], status),
            [tab],
            [*canvas_outs, replay],
            show_progress_on=[status],
        ).then(cb.session_name, [tab], [remembered], show_progress="hidden")
        remember(on(done_btn.click, cb.submit_drawing, [tab, editor], canvas_outs))
        remember(on(capture_btn.click, cb.capture_turn, [tab], canvas_outs))
        remember(on(upload_btn.click, cb.upload_canvas, [tab, upload], canvas_outs))
        prompt.input(
            None, [prompt], [prompt_count], js=f"(t) => `${{t.length}}/{MAX_PROMPT_CHARS}`"
        )

        def on_propose(t, text, marks, n, progress=gr.Progress()):  # noqa: B008 (Gradio API)
            return cb.propose(t, text, marks, n, progress)

        propose_outs = [gallery, montage, status, target, overlay, animation, plan_info,
                        plan_download]  # fmt: skip
        for event in (propose_btn.click, prompt.submit):
            done = on(event, on_propose, [tab, prompt, region, n_proposals], propose_outs)
            done.then(cb.session_banner, [tab], [banner], show_progress="hidden")
            remember(done)

        def on_select(t, evt: gr.SelectData):
            return cb.choose(t, evt.index)

        on(gallery.select, on_select, [tab], [target, status])
        base.change(lambda t, b: cb.montage_editor(t, b), [tab, base], [montage])
        on(combine_btn.click, cb.combine, [tab, base, montage], [target, status])

        def on_plan(t, n, progress=gr.Progress()):  # noqa: B008 (Gradio API)
            return cb.plan(t, n, progress)

        plan_outs = [overlay, animation, plan_info, status, plan_download]
        on(plan_btn.click, on_plan, [tab, strokes], plan_outs)

        def on_paint(t, progress=gr.Progress()):  # noqa: B008 (Gradio API)
            yield from execution.paint(t, progress)

        on(paint_btn.click, on_paint, [tab], [*canvas_outs, replay])
        pause_btn.click(execution.pause, [tab], [status], queue=False)
        stop_btn.click(execution.stop, [tab], [status], queue=False)

        def on_undo(t):
            return (*cb.undo(t), *cb.cleared_after_undo())

        undo_outs = [*canvas_outs, replay, gallery, target, overlay, animation, plan_info,
                     plan_download]  # fmt: skip
        on(undo_btn.click, on_undo, [tab], undo_outs)
        on(export_btn.click, cb.export, [tab], [export_file, status])

        def on_open(t, name, paints, model_name=None):
            outs = cb.open_session(t, name, paints, model_name)
            editor_update = gr.ImageEditor(value=outs[0], brush=outs[7])  # the session's paints
            return (
                editor_update, *outs[1:6], gr.Dropdown(choices=outs[6]), cb.session_banner(t),
                cb.session_gallery(t), *cb.turn_view(t),
            )  # fmt: skip

        def on_pick(t, paints, evt: gr.SelectData):
            outs = cb.open_listed(t, evt.index, paints)
            editor_update = gr.ImageEditor(value=outs[0], brush=outs[7])
            return (
                editor_update, *outs[1:6], gr.Dropdown(choices=outs[6]), cb.session_banner(t),
                gr.skip(), *cb.turn_view(t),
            )  # fmt: skip

        session_outs = [*canvas_outs, gallery, sessions, banner, session_list, *turn_outs]
        remember(on(session_list.select, on_pick, [tab, palette], session_outs))
        remember(on(open_btn.click, on_open, [tab, sessions, palette], session_outs))
        sessions.focus(
            lambda t: gr.Dropdown(choices=t.opener.session_choices()),
            [tab],
            [sessions],
            show_progress="hidden",
        )

        def on_new(t, p, m):
            return on_open(t, None, p, m)

        remember(on(new_btn.click, on_new, [tab, palette, model], session_outs))
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the app until interrupted; returns the exit code (2: refused to start)."""
    args, arm_options, camera_options = parse_args(sys.argv[1:] if argv is None else argv)
    password = args.password or os.environ.get(PASSWORD_ENV) or None
    if not is_loopback(args.host) and not password:
        print(
            f"cofrida ui: refusing to serve on {args.host} without a password: anyone on the "
            f"network could drive the robot. Pass --password (or set ${PASSWORD_ENV}), or "
            "keep the default --host 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    problem = check_password(password)
    if problem is not None:
        print(f"cofrida ui: {problem}", file=sys.stderr)
        return 2
    if password and args.ssl_certfile is None and not is_loopback(args.host):
        print(
            "cofrida ui: note: the password travels unencrypted over plain HTTP; give "
            "--ssl-certfile and --ssl-keyfile to serve HTTPS",
            file=sys.stderr,
        )
    config = app_config(args, arm_options, camera_options)
    if args.robot == "real":
        from ui.robot_mode import device_configs

        try:
            device_configs(arm_options, camera_options)
        except ValueError as e:
            print(f"cofrida ui: {e}", file=sys.stderr)
            return 2
    try:
        from cofrida.commands._output import prepare_output_dir

        prepare_output_dir(config.session_dir, "--session-dir")
        opener = SessionOpener(config)
        print("cofrida ui: loading the proposer...", file=sys.stderr, flush=True)
        opener.proposer(config.palette)  # once, now, rather than on the first click
    except (ValueError, FileNotFoundError) as e:
        print(f"cofrida ui: {e}", file=sys.stderr)
        return 2
    print(f"cofrida ui: sessions in {config.session_dir}", file=sys.stderr, flush=True)
    ssl = (args.ssl_certfile, args.ssl_keyfile) if args.ssl_certfile else None
    if not os.environ.get("GRADIO_TEMP_DIR"):  # Gradio's cache goes with the server's folder
        os.environ["GRADIO_TEMP_DIR"] = str(opener.temp_root() / "gradio")
    try:
        with stop_on_sigterm():
            serve(
                config, args.host, args.port, (args.user, password) if password else None,
                opener, ssl=ssl,
            )  # fmt: skip
    except OSError as e:  # the port is taken, a certificate cannot be read, ...
        print(f"cofrida ui: cannot serve on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # stopped while starting up (Gradio handles it once serving)
        pass
    finally:
        opener.close()  # the tabs' temporary folders (downloads); the sessions stay
    print("cofrida ui: stopped", file=sys.stderr, flush=True)
    return 0


def _interrupt(signum: int, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) stops the server like Ctrl-C: the server closes and
    the process exits normally, running its clean-up (Python's default on SIGTERM is to die on
    the spot, leaving the temporary folders behind). A handler someone else installed is kept;
    off the main thread (where signals cannot be handled) this does nothing."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def serve(
    config: AppConfig,
    host: str,
    port: int,
    auth: tuple[str, str] | None,
    opener: SessionOpener | None = None,
    block: bool = True,
    ssl: tuple[str, str] | None = None,
    login: LoginGuard | None = None,
) -> gr.Blocks:
    """Build and launch the app on host:port; with `auth` (user, password) every page and API
    call needs the login, checked by a `LoginGuard` (slowed down, locked after repeated
    failures, per client address; `login` overrides its settings). `ssl` (certificate file,
    key file) serves HTTPS. Blocks until interrupted unless `block` is False (tests), in which
    case the running app is returned (stop it with ``app.close()``)."""
    app = build_app(config, opener)
    app.queue(default_concurrency_limit=2)
    if auth is not None and login is None:
        login = LoginGuard(*auth)
    from starlette.middleware import Middleware

    app.launch(
        app_kwargs={"middleware": [Middleware(ClientAddress)]},  # the login check's address
        server_name=host,
        server_port=port,
        auth=None if login is None else login.check,
        ssl_certfile=None if ssl is None else str(ssl[0]),
        ssl_keyfile=None if ssl is None else str(ssl[1]),
        ssl_verify=False,  # the app's own (maybe self-signed) certificate
        max_file_size=config.max_upload_bytes,
        css=CSS,
        js=CLOSE_PALETTE_JS,
        footer_links=[],
        show_error=True,
        quiet=not block,
        prevent_thread_lock=not block,
    )
    return app


if __name__ == "__main__":
    sys.exit(main())
