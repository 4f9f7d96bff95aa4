"""The GRBL driver against the GRBL emulator on a real pseudo-terminal (pyserial opens it)."""

import threading

import pytest

from robot.arms import make_arm
from robot.arms.grbl import GrblArmConfig
from robot.arms.grbl.emulator import Fault, GrblEmulator
from robot.arms.grbl.protocol import job_lines, parse_status
from robot.errors import DeviceConnectionError, NotConnectedError
from robot.safety import SafetyError
from tests.robot.paths import hostile_paths, stroke_paths

RATE = 5000.0  # lines/s: fast, so a 2000-line job takes well under a second


@pytest.fixture
def rig(request):
    """(emulator, connected arm); faults and config overrides via indirect params."""
    params = getattr(request, "param", {})
    emu = GrblEmulator(max_rate_hz=RATE, faults=params.get("faults", ()))
    port = emu.start()
    arm = make_arm(GrblArmConfig(port=port, **params.get("config", {})))
    arm.connect()
    yield emu, arm
    arm.disconnect()
    emu.close()


def assert_every_move_once(emu, report):
    moves = emu.moves()
    assert sorted(moves) == list(range(1, report.moves_total + 1))  # each job line exactly once
    assert emu.overflows == 0  # the RX buffer never overflowed


def test_long_job_streams_completely_in_order(rig):
    emu, arm = rig
    paths = stroke_paths(160, k=10)
    progress = []
    report = arm.execute(paths, on_progress=lambda d, t: progress.append(d))
    assert report.completed, report.summary()
    assert report.moves_total >= 2000
    assert_every_move_once(emu, report)
    assert emu.moves() == sorted(emu.moves())  # and in order
    assert progress == list(range(1, 161))
    assert report.acked_index == report.moves_total - 1 and len(report.paths) == 160


FAULTS = {
    "error": (Fault("error", 700, code=20), "error:20 (unsupported or invalid G-code command)"),
    "alarm": (Fault("alarm", 700, code=1), "ALARM:1 (hard limit triggered)"),
    "vanish": (Fault("vanish", 700), "connection lost"),
    "slow": (
        Fault("slow", 700, count=1, delay_s=1.0),
        "no acknowledgement from the controller for 0.4 s",
    ),
}


@pytest.mark.parametrize(
    "rig",
    [{"faults": [f], "config": {"ack_timeout_s": 0.4}} for f, _ in FAULTS.values()],
    ids=list(FAULTS),
    indirect=True,
)
def test_fault_reports_then_resume_completes_every_move_once(rig, request):
    emu, arm = rig
    kind = request.node.callspec.id
    expected = FAULTS[kind][1]
    report = arm.execute(stroke_paths(100))
    assert not report.completed and report.resumable
    assert expected in report.fault
    assert f"last acknowledged line N{report.acked_index + 1} of {report.moves_total}" in (
        report.fault
    )
    assert 600 <= report.acked_index + 1 < 700 or kind == "vanish"
    if kind == "vanish":
        with pytest.raises(DeviceConnectionError):
            arm.resume()  # the old port is gone
        arm.config.port = emu.reconnect()
    final = arm.resume()
    assert final.completed, final.summary()
    assert_every_move_once(emu, final)


@pytest.mark.parametrize(
    "rig",
    [
        {
            "faults": [
                Fault("garbage", 5, every=3, count=200),
                Fault("slow", 50, count=20, delay_s=0.01),
            ]
        }
    ],
    indirect=True,
)
def test_garbage_bytes_and_slow_acks_do_not_break_the_stream(rig):
    emu, arm = rig
    report = arm.execute(stroke_paths(60))
    assert report.completed, report.summary()
    assert arm.ignored_replies > 50
    assert_every_move_once(emu, report)


@pytest.mark.parametrize("rig", [{}], indirect=True)
def test_stop_mid_job_from_another_thread_then_resume(rig):
    emu, arm = rig
    stopper = threading.Thread(target=arm.stop)

    def on_progress(done, total):
        if done == 50:
            stopper.start()  # stop() from another thread while lines are in flight

    report = arm.execute(stroke_paths(300), on_progress=on_progress)
    stopper.join()
    assert report.stopped and not report.completed
    assert 0 < report.acked_index + 1 < report.moves_total
    assert emu.resets >= 2  # connect + stop
    final = arm.resume()
    assert final.completed
    assert_every_move_once(emu, final)


@pytest.mark.parametrize("seed", range(3))
def test_unsafe_plans_never_reach_the_wire(seed):
    paths, bad = hostile_paths(30, seed)
    with GrblEmulator(max_rate_hz=RATE) as emu:
        arm = make_arm(GrblArmConfig(port=emu.port))
        arm.connect()
        if any(bad):
            with pytest.raises(SafetyError):
                arm.execute(paths)
            assert emu.log == []  # refused before a single byte of the job
        clip = make_arm(GrblArmConfig(port=emu.port, on_violation="clip"))
        arm.disconnect()
        clip.connect()
        report = clip.execute(paths)
        clip.disconnect()
    assert report.completed
    ws, cfg = clip.config.workspace, clip.config
    x0, y0, x1, y1 = ws.paint_box
    feed_max = 60000 * cfg.limits.max_speed_m_s
    painting = [m for m in emu.log if "G1X" in m.text]  # brush-down moves across the canvas
    assert painting
    for move in painting:
        x, y, z = move.pos
        assert 1000 * x0 - 1e-3 <= x <= 1000 * x1 + 1e-3, move
        assert 1000 * y0 - 1e-3 <= y <= 1000 * y1 + 1e-3, move
        assert cfg.surface_z_mm - cfg.press_depth_mm * ws.max_press - 1e-3 <= z, move
        if "F" in move.text:
            assert float(move.text.split("F")[1]) <= feed_max + 1e-6, move


def test_connection_errors_are_clear():
    arm = make_arm(GrblArmConfig(port="/dev/does-not-exist"))
    with pytest.raises(DeviceConnectionError, match="could not open GRBL port"):
        arm.connect()
    with pytest.raises(NotConnectedError):
        arm.execute(stroke_paths(1))


def test_servo_mode_gcode_and_status_parsing():
    cfg = GrblArmConfig(pen="servo")
    arm = make_arm(cfg)
    lines = [ln.text for ln in job_lines(arm.check(stroke_paths(2)), cfg)]
    assert lines[0] == "G21 G90 G94"
    assert any(t.startswith("M3 S") for t in lines) and not any("Z" in t for t in lines)
    assert all(len(t) + 12 < cfg.rx_buffer_bytes for t in lines)
    status = parse_status("<Run|MPos:1.000,2.500,-3.000|FS:500,0|Ln:42>")
    assert status.state == "Run" and status.mpos == (1.0, 2.5, -3.0) and status.line_number == 42
    assert parse_status("<garbage") is None
