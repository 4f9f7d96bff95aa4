import json

from cofrida.cli import main


def test_cofrida_robot_calibrate_sim_end_to_end(capsys):
    assert (
        main(["robot", "calibrate", "--arm.type=sim", "--arm.name=simbot", "--camera.type=sim"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["reprojection_max_px"] < 1.0 and summary["delta_e_after"] <= 3.0
    assert summary["saved"]["canvas"].endswith("calibrations/simbot/canvas.json")


def test_cofrida_robot_up_and_bad_options(capsys):
    assert main(["robot", "up"]) == 2
    assert "--arm.type" in capsys.readouterr().err
    assert main(["robot", "calibrate", "--arm.type=kuka"]) == 2
    assert "unknown arm type 'kuka'" in capsys.readouterr().err


def test_bench_robot_quick_prints_json_last(capsys):
    from cofrida.benchmarks.robot import main as bench

    assert bench(["--quick", "--rate", "2000", "--lines", "500"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["grbl_completed"] and result["grbl_stream_efficiency"] > 0.5
    assert result["ik_max_err_mm"] < 0.1
    assert 0 <= result["brush_height_err_mm"] < 0.5  # within one 0.5 mm step
    assert result["robot_to_canvas_before_mm"] > 4 and result["robot_to_canvas_err_mm"] < 1.0
