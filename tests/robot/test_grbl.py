"""The GRBL driver against the GRBL emulator on a real pseudo-terminal (pyserial opens it).

The emulator acknowledges like GRBL 1.1 (``ok`` once a line is planned, 15 planner blocks that
a reset empties, ``Bf`` / ``Ln`` in status reports) and runs the moves 100x faster than real
time, so a fault leaves moves planned but not run, as on a real machine.
"""

import threading
import time
import warnings

import pytest
import torch

from robot.arms import make_arm
from robot.arms.grbl import GrblArmConfig
from robot.arms.grbl.driver import MachineLockedError, StoppedError
from robot.arms.grbl.emulator import Fault, GrblEmulator
from robot.arms.grbl.protocol import explain, fmt, job_lines, parse_status
from robot.errors import DeviceConnectionError, NotConnectedError
from robot.safety import SafetyError
from tests.robot.paths import hostile_paths, stroke_paths

FAST = {110: 15000.0, 111: 15000.0, 112: 5000.0}  # mm/min: a quick machine (stock: 500)
TRAVEL_Z = 20.0  # mm: the default config's travel height above surface_z_mm = 0


def emulator(**kw) -> GrblEmulator:
    args = {"max_rate_hz": 5000.0, "time_scale": 100.0, "settings": FAST} | kw
    return GrblEmulator(**args)


@pytest.fixture
def rig(request):
    """(emulator, connected arm); emulator / config overrides via indirect params."""
    params = getattr(request, "param", {})
    emu = emulator(**params.get("emulator", {}))
    port = emu.start()
    arm = make_arm(GrblArmConfig(port=port, **params.get("config", {})))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arm.connect()
    yield emu, arm
    arm.disconnect()
    emu.close()


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def painting_line(arm, paths, after: int) -> int:
    """N of the first brush-down painting move (G1 X Y Z) at or after job line N=after."""
    lines = job_lines(arm.check(paths), arm.config)
    for i in range(after - 1, len(lines)):
        t = lines[i].text
        if t.startswith("G1 X") and lines[i].state.down and lines[i].path >= 0:
            return i + 1
    raise AssertionError("no painting line")


def assert_every_line_once(emu, report):
    moves = emu.moves()
    assert sorted(moves) == list(range(1, report.moves_total + 1))  # each job line exactly once
    assert emu.overflows == 0  # the RX buffer never overflowed
    assert emu.state == "Idle" and not emu.planner  # completed means it ran, not just planned


def assert_nothing_skipped(emu, report, fault_line: int):
    """After a restart nobody can tell which queued moves ran: none is skipped, and only moves
    queued before the fault (at most a planner's worth) run twice."""
    moves = emu.moves()
    assert set(moves) == set(range(1, report.moves_total + 1))
    twice = sorted(n for n in set(moves) if moves.count(n) > 1)
    assert len(twice) <= 15 and all(n <= fault_line for n in twice), twice
    assert emu.overflows == 0 and emu.state == "Idle" and not emu.planner


def assert_lifted_before_moving(emu, since: int, travel_z: float = TRAVEL_Z):
    """After a fault, the resume lifts the brush to travel height before any move across the
    canvas (machine mm: ``travel_z`` is the travel height in machine coordinates)."""
    log = emu.log[since:]
    first = next(i for i, m in enumerate(log) if m.n is None and m.text == "G21G90G94")
    pos = log[first].pos  # where the resume found the machine
    for move in log[first + 1 :]:
        if not any(a in move.text for a in "XYZ"):
            continue  # not a move (modes, feed, dwell)
        assert abs(move.pos[0] - pos[0]) < 1e-3 and abs(move.pos[1] - pos[1]) < 1e-3, (pos, move)
        if move.pos[2] >= travel_z - 1e-3:
            return  # lifted straight up first
    raise AssertionError("no move after the fault")


def test_long_job_streams_completely_in_order(rig):
    emu, arm = rig
    emu.time_scale = 1000.0
    paths = stroke_paths(160, k=10)
    progress = []
    report = arm.execute(paths, on_progress=lambda d, t: progress.append(d))
    assert report.completed, report.summary()
    assert report.moves_total >= 2000
    assert_every_line_once(emu, report)
    assert emu.moves() == sorted(emu.moves())  # and in order
    assert progress == list(range(1, 161))
    assert report.acked_index == report.moves_total - 1 and len(report.paths) == 160
    assert emu.resets == 0  # connecting to an idle GRBL does not reset it


def run_to_fault(emu, arm, fault: Fault, n_paths=12):
    paths = stroke_paths(n_paths)
    fault.line = painting_line(arm, paths, fault.line)
    emu.faults.append(fault)
    report = arm.execute(paths)
    assert not report.completed and report.resumable, report.summary()
    assert emu.overflows == 0
    return report, len(emu.log)


@pytest.mark.parametrize(  # 30x: GRBL keeps moving after an error, until the driver's hold
    "rig",
    [{"emulator": {"time_scale": 30.0}}, {"emulator": {"line_numbers": False, "time_scale": 30.0}}],
    indirect=True,
)
def test_rejected_line_resumes_with_it_and_its_lead_in(rig):
    emu, arm = rig
    report, since = run_to_fault(emu, arm, Fault("error", 100, code=20))
    assert "error:20 (unsupported or invalid G-code command) on line N" in report.fault
    assert emu.state == "Idle" and not emu.planner  # held and reset: nothing left to run
    final = arm.resume()
    assert final.completed, final.summary()
    assert_every_line_once(emu, final)
    assert_lifted_before_moving(emu, since)


@pytest.mark.parametrize("rig", [{}], indirect=True)
def test_hard_limit_waits_for_reset_to_continue_and_needs_unlock(rig):
    emu, arm = rig
    report, since = run_to_fault(emu, arm, Fault("limit", 100))
    assert "ALARM:1 (hard limit triggered" in report.fault and "arm.unlock()" in report.fault
    assert emu.ignored_resets == 0 and emu.resets == 1  # reset after [MSG:Reset to continue]
    assert emu.state == "Alarm" and not emu.planner and emu._critical_at is None
    with pytest.raises(MachineLockedError, match="home it"):
        arm.resume()  # never unlocked behind the user's back
    with pytest.raises(MachineLockedError, match="locked in ALARM"):
        arm.execute(stroke_paths(2))  # nor a new job streamed into a locked controller
    assert len(emu.log) == since and emu.overflows == 0
    arm.unlock()  # the user checked the machine
    final = arm.resume()
    assert final.completed, final.summary()
    assert_every_line_once(emu, final)
    assert_lifted_before_moving(emu, since)


@pytest.mark.parametrize("rig", [{}], indirect=True)
def test_soft_reset_from_outside_loses_nothing(rig):
    emu, arm = rig
    report, since = run_to_fault(emu, arm, Fault("reset", 100))
    assert "ALARM:3 (reset while in motion" in report.fault
    with pytest.raises(MachineLockedError):
        arm.resume()
    arm.unlock()
    final = arm.resume()
    assert final.completed, final.summary()
    assert_every_line_once(emu, final)
    assert_lifted_before_moving(emu, since)


@pytest.mark.parametrize("rig", [{}, {"emulator": {"line_numbers": False}}], indirect=True)
def test_port_lost_controller_powered_resets_before_continuing(rig):
    emu, arm = rig
    report, _ = run_to_fault(emu, arm, Fault("vanish", 100))
    assert "connection lost" in report.fault
    with pytest.raises(DeviceConnectionError):
        arm.resume()  # the old port is gone
    since = len(emu.log)  # meanwhile the controller runs what it had
    resets = emu.resets
    arm.config.port = emu.reconnect()
    final = arm.resume()
    assert emu.resets == resets + 1  # reset after the reconnect: no stale bytes parsed
    assert final.completed, final.summary()
    assert_every_line_once(emu, final)
    assert_lifted_before_moving(emu, since)


@pytest.mark.parametrize(
    "rig",
    [
        {
            "emulator": {"homing": True, "home_mpos": (0.0, 0.0, TRAVEL_Z)},
            "config": {"homing": True, "status_interval_s": 0.02},
        }
    ],
    indirect=True,
)
def test_port_lost_controller_rebooted_stops_until_homed(rig):
    emu, arm = rig
    arm.home()
    report, _ = run_to_fault(emu, arm, Fault("reboot", 100))
    assert "connection lost" in report.fault
    arm.config.port = emu.reconnect()
    since = len(emu.log)
    with pytest.raises(MachineLockedError, match="position is lost"):
        arm.resume()
    assert len(emu.log) == since  # nothing moved on a machine that forgot where it is
    arm.home()
    final = arm.resume()
    assert final.completed, final.summary()
    assert_nothing_skipped(emu, final, emu.faults[0].line)
    assert_lifted_before_moving(emu, since)


@pytest.mark.parametrize("rig", [{"config": {"status_interval_s": 0.02}}], indirect=True)
@pytest.mark.parametrize("banner", [True, False], ids=["banner", "banner-lost"])
def test_rebooted_machine_without_homing_resumes_after_register_position(rig, banner):
    emu, arm = rig
    run_to_fault(emu, arm, Fault("reboot", 80))
    emu._boot_banner = banner  # False: its boot message went nowhere; its position gives it away
    arm.config.port = emu.reconnect()
    with pytest.raises(MachineLockedError, match="register_position"):
        arm.resume()
    since = len(emu.log)
    arm.register_position(0.0, 0.0, TRAVEL_Z)  # the user put the brush over the origin
    final = arm.resume()
    assert final.completed, final.summary()
    assert_nothing_skipped(emu, final, emu.faults[0].line)
    assert_lifted_before_moving(emu, since, travel_z=TRAVEL_Z + emu.g54[2])


@pytest.mark.parametrize("rig", [{"config": {"status_interval_s": 0.02}}], indirect=True)
def test_controller_restart_mid_job_stops_until_registered(rig):
    emu, arm = rig
    report, since = run_to_fault(emu, arm, Fault("restart", 80))
    assert "reset or restarted" in report.fault and "register_position" in report.fault
    with pytest.raises(MachineLockedError, match="position is lost"):
        arm.resume()
    with pytest.raises(MachineLockedError):
        arm.unlock()  # $X does not bring a lost position back
        arm.resume()
    assert len(emu.log) == since  # nothing moved
    arm.register_position(0.0, 0.0, TRAVEL_Z)
    final = arm.resume()
    assert final.completed, final.summary()
    assert_nothing_skipped(emu, final, emu.faults[0].line)
    assert_lifted_before_moving(emu, since, travel_z=TRAVEL_Z + emu.g54[2])


@pytest.mark.parametrize("rig", [{"config": {"ack_timeout_s": 0.8}}], indirect=True)
def test_feed_hold_longer_than_the_timeout_is_not_a_fault(rig):
    emu, arm = rig
    paths = stroke_paths(20)
    emu.faults.append(Fault("hold", painting_line(arm, paths, 150), delay_s=2.0))
    report = arm.execute(paths)
    assert report.completed, report.summary()
    assert emu.faults[0].fired
    assert_every_line_once(emu, report)


@pytest.mark.parametrize("rig", [{"config": {"ack_timeout_s": 0.8}}], indirect=True)
def test_a_stalled_controller_times_out(rig):
    emu, arm = rig
    emu.faults.append(Fault("slow", 100, count=1, delay_s=3.0))
    report = arm.execute(stroke_paths(20))
    assert "no progress from the controller for 0.8 s" in report.fault
    final = arm.resume()
    assert final.completed, final.summary()
    assert_every_line_once(emu, final)


@pytest.mark.parametrize(
    "rig",
    [{"emulator": {"settings": {}, "time_scale": 20.0}, "config": {"ack_timeout_s": 0.8}}],
    indirect=True,
)
def test_stock_speed_settings_slow_moves_are_not_a_timeout(rig):
    emu, arm = rig  # $110=500 mm/min: the first dwell is answered after ~1.5 s of moves
    report = arm.execute(stroke_paths(1))
    assert report.completed, report.summary()
    assert_every_line_once(emu, report)


@pytest.mark.parametrize("rig", [{}], indirect=True)
def test_garbage_bytes_and_slow_acks_do_not_break_the_stream(rig):
    emu, arm = rig
    emu.time_scale = 1000.0
    emu.faults += [
        Fault("garbage", 5, every=3, count=200),
        Fault("slow", 50, count=20, delay_s=0.01),
    ]
    report = arm.execute(stroke_paths(60))
    assert report.completed, report.summary()
    assert arm.ignored_replies > 50
    assert_every_line_once(emu, report)


@pytest.mark.parametrize("rig", [{}], indirect=True)
def test_stop_mid_job_from_another_thread_then_resume(rig):
    emu, arm = rig
    stopper = threading.Thread(target=arm.stop)

    def on_progress(done, total):
        if done == 5:
            stopper.start()  # stop() from another thread while lines are queued

    report = arm.execute(stroke_paths(12), on_progress=on_progress)
    stopper.join()
    since = len(emu.log)
    assert report.stopped and not report.completed
    assert 0 < report.acked_index + 1 < report.moves_total
    assert emu.state == "Idle"  # held before the reset: no ALARM:3, position kept
    final = arm.resume()
    assert final.completed
    assert_every_line_once(emu, final)
    assert_lifted_before_moving(emu, since)


def test_homing_enabled_connect_says_to_home_and_home_unlocks():
    with emulator(homing=True, home_mpos=(0.0, 0.0, TRAVEL_Z)) as emu:
        arm = make_arm(GrblArmConfig(port=emu.port))
        with pytest.warns(UserWarning, match="locked in ALARM"):
            arm.connect()
        assert arm.alarm is not None
        with pytest.raises(MachineLockedError, match=r"arm.home\(\)"):
            arm.execute(stroke_paths(2))
        with pytest.raises(MachineLockedError, match=r"\$22=1: set homing=true"):
            arm.home()  # this config says the machine has no homing switches
        arm.disconnect()
        arm = make_arm(GrblArmConfig(port=emu.port, homing=True))
        with pytest.warns(UserWarning):
            arm.connect()
        arm.home()
        assert emu.homed == 1
        report = arm.execute(stroke_paths(2))
        arm.disconnect()
    assert report.completed, report.summary()


def test_connect_keeps_g92_offsets_of_an_idle_controller():
    with emulator() as emu:
        emu.g92 = [5.0, -3.0, 0.0]
        arm = make_arm(GrblArmConfig(port=emu.port))
        arm.connect()
        arm.disconnect()
        assert emu.resets == 0 and emu.g92 == [5.0, -3.0, 0.0]


@pytest.mark.parametrize("seed", range(3))
def test_unsafe_plans_never_reach_the_wire(seed):
    paths, bad = hostile_paths(30, seed)
    with emulator(time_scale=1000.0) as emu:
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
    painting = [m for m in emu.log if "G1X" in m.text and m.pos[2] < TRAVEL_Z - 1e-3]
    assert painting  # brush-down moves across the canvas
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


def test_gcode_travel_speed_servo_mode_codes_and_status_parsing():
    cfg = GrblArmConfig()
    travel_f = 60000 * cfg.limits.travel_speed_m_s
    lines = [ln.text for ln in job_lines(make_arm(cfg).check(stroke_paths(2)), cfg)]
    assert not any(t.startswith("G0") for t in lines)  # no rapids at the machine's max rate
    assert f"G1 Z20 F{travel_f:g}" in lines  # brush up and travel at travel_speed_m_s
    cfg = GrblArmConfig(pen="servo")
    arm = make_arm(cfg)
    lines = [ln.text for ln in job_lines(arm.check(stroke_paths(2)), cfg)]
    assert lines[0] == "G21 G90 G94"
    assert any(t.startswith("M3 S") for t in lines) and not any("Z" in t for t in lines)
    assert all(len(t) + 12 < cfg.rx_buffer_bytes for t in lines)
    status = parse_status("<Hold:0|MPos:1.000,2.500,-3.000|Bf:12,100|FS:500,0|Ln:42>")
    assert status.state == "Hold" and status.substate == 0 and status.stopped
    assert status.mpos == (1.0, 2.5, -3.0) and status.line_number == 42
    assert status.buffer == (12, 100)
    assert parse_status("<garbage") is None
    assert explain("error:5") == "error:5 (homing is not enabled ($22=0))"
    assert "unknown" not in explain("error:14") and "unknown" not in explain("ALARM:9")


def test_driver_and_plan_gcode_put_a_canvas_point_at_the_same_machine_xy():
    from planner import Plan
    from planner.gcode import GcodeConfig, plan_to_gcode
    from sim import Brush, Canvas, Strokes
    from sim.palette import Palette

    cfg = GrblArmConfig(origin_x_mm=10.0, origin_y_mm=20.0)
    ws = cfg.workspace
    palette = Palette.preset("markers")
    one = Strokes(
        torch.tensor([[0.05, 0.04]]), torch.zeros(1), torch.full((1,), 0.01), torch.zeros(1),
        torch.full((1,), 0.5), palette.colors[:1], torch.zeros(1, dtype=torch.long),
    )  # fmt: skip
    canvas = Canvas(ws.canvas_width_m, ws.canvas_height_m, 64)
    plan = Plan(canvas, Brush.preset("round"), palette, one, [0], 1, 0.0)
    path = plan.paths()[0]
    driver = [ln.text for ln in job_lines(make_arm(cfg).check([path]), cfg)]
    export = plan_to_gcode(plan, GcodeConfig(origin_mm=(10.0, 20.0)))
    x, y = (float(v) for v in path.points[0, :2])
    sx, sy = 10 + 1000 * x, 20 + 1000 * (ws.canvas_height_m - y)  # machine Y up, origin bottom-left
    start = next(t for t in export.splitlines() if t.startswith("G0 X"))
    assert start.startswith(f"G0 X{sx:.3f} Y{sy:.3f}")  # the export: travel to the start
    assert f"G1 X{fmt(sx)} Y{fmt(sy)}" in driver  # the driver: the same travel


def _in_thread(fn):
    """Run fn in a thread; returns (thread, list that receives its exception, if any)."""
    raised: list[BaseException] = []

    def run():
        try:
            fn()
        except BaseException as e:  # handed to the test
            raised.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t, raised


def lowering(emu):
    """A condition: the brush came down from travel height by more than 4 mm (the emulator
    starts at Z 0: the brush is first lifted)."""
    seen_up = [False]

    def check():
        z = emu.wpos()[2]
        seen_up[0] = seen_up[0] or z >= TRAVEL_Z - 1e-3
        return seen_up[0] and z < TRAVEL_Z - 4.0

    return check


def _dab_center(arm):
    ws = arm.config.workspace
    arm.dab(ws.canvas_width_m / 2, ws.canvas_height_m / 2, 0.0)


@pytest.mark.parametrize("rig", [{"emulator": {"time_scale": 4.0}}], indirect=True)
@pytest.mark.parametrize("what", ["dab", "home"])
def test_stop_outside_a_job_holds_before_it_resets(rig, what):
    """stop() during dab() or home(): feed hold, wait until the machine stopped, then reset:
    no ALARM:3 (a reset while moving), the position kept, the interrupted call raises."""
    emu, arm = rig
    if what == "home":
        _dab_center(arm)  # away from the origin, so that home() has a way to go
        t, raised = _in_thread(arm.home)
        moving = wait_for(lambda: emu.state == "Run" and emu.wpos()[0] < 100.0)
    else:
        t, raised = _in_thread(lambda: _dab_center(arm))
        moving = wait_for(lowering(emu))
    assert moving
    resets = emu.resets
    arm.stop()
    t.join(10.0)
    assert not t.is_alive()
    assert emu.resets == resets + 1 and emu.state == "Idle"  # not Alarm: held before the reset
    assert len(raised) == 1 and isinstance(raised[0], StoppedError), raised
    assert "stop" in str(raised[0])
    if what == "dab":
        assert 0.0 < emu.wpos()[2] < TRAVEL_Z - 4.0  # stopped where it was
    report = arm.execute(stroke_paths(2))  # the machine takes work again
    assert report.completed, report.summary()


@pytest.mark.parametrize("rig", [{"emulator": {"time_scale": 4.0}}], indirect=True)
def test_disconnect_lifts_a_brush_left_down(rig):
    emu, arm = rig
    t, _ = _in_thread(lambda: _dab_center(arm))
    assert wait_for(lowering(emu))
    arm.stop()
    t.join(10.0)
    x, y, z = emu.wpos()
    assert z < TRAVEL_Z - 4.0
    arm.disconnect()
    assert not arm.is_connected
    assert emu.state == "Idle" and emu.wpos() == pytest.approx((x, y, TRAVEL_Z), abs=1e-3)


@pytest.mark.parametrize("rig", [{}], indirect=True)
def test_disconnect_mid_job_stops_lifts_and_the_job_resumes(rig):
    emu, arm = rig
    closer = threading.Thread(target=arm.disconnect)

    def on_progress(done, total):
        if done == 5:
            closer.start()  # disconnect() from another thread while the brush paints

    report = arm.execute(stroke_paths(12), on_progress=on_progress)
    closer.join(10.0)
    assert not closer.is_alive() and not arm.is_connected
    assert not report.completed and report.resumable, report.summary()
    assert emu.state == "Idle" and not emu.planner  # stopped, nothing left running
    assert emu.wpos()[2] == pytest.approx(TRAVEL_Z, abs=1e-3)  # brush up before the port closed
    since = len(emu.log)
    final = arm.resume()  # reopens the port
    assert final.completed, final.summary()
    assert_every_line_once(emu, final)
    assert_lifted_before_moving(emu, since)


@pytest.mark.parametrize("rig", [{}], indirect=True)
def test_disconnect_never_moves_a_locked_machine(rig):
    emu, arm = rig
    run_to_fault(emu, arm, Fault("limit", 100))  # hard limit: ALARM:1, locked, brush down
    assert emu.wpos()[2] < TRAVEL_Z - 1.0
    where, moves = emu.wpos(), len(emu.log)
    arm.disconnect()
    assert emu.wpos() == where and len(emu.log) == moves and emu.state == "Alarm"


@pytest.mark.parametrize("rig", [{"emulator": {"time_scale": 30.0}}], indirect=True)
def test_lines_run_past_a_rejected_line_before_the_hold_are_run_again(rig):
    """GRBL skips a rejected line and plans the next ones from where the line before it ended:
    here the plunge is rejected with an empty planner, so the first painting move starts at
    once, diagonally from travel height, and the hold lands in the middle of it. The driver
    knows every line before the rejected one ran (the position is off the planned path: not a
    lost position), and the resume runs the rejected line and those after it again."""
    emu, arm = rig
    paths = stroke_paths(12)
    k = painting_line(arm, paths, 100) - 1  # the plunge before a stroke's first painting move
    emu.faults += [Fault("slow", k, count=1, delay_s=0.3), Fault("error", k, code=20)]
    report = arm.execute(paths)
    assert f"error:20 (unsupported or invalid G-code command) on line N{k} " in report.fault
    assert "lost" not in report.fault and report.acked_index + 1 == k - 1, report.fault
    ran_past = [m for m in emu.log if m.n is not None and m.n > k]
    since = len(emu.log)
    final = arm.resume()
    assert final.completed, final.summary()
    moves = emu.moves()
    assert set(moves) == set(range(1, final.moves_total + 1))  # nothing skipped
    twice = sorted(n for n in set(moves) if moves.count(n) > 1)
    assert twice == sorted(m.n for m in ran_past)  # only what ran past the rejected line
    assert emu.overflows == 0 and emu.state == "Idle" and not emu.planner
    assert_lifted_before_moving(emu, since)
