import pytest

from robot.arms import arm_config_class, arm_types
from robot.arms.grbl import GrblArmConfig
from robot.cameras import camera_config_class, camera_types
from robot.cli_config import ConfigError, build_config, split_options


def parse(argv, group="arm", default="sim"):
    options, rest = split_options(argv, ["arm", "camera"])
    lookup = arm_config_class if group == "arm" else camera_config_class
    return build_config(group, options[group], lookup, default), rest


def test_builtin_types_are_registered():
    assert {"sim", "grbl"} <= set(arm_types())
    assert {"sim", "opencv"} <= set(camera_types())


def test_grbl_options_fill_the_dataclass_including_nested_fields():
    cfg, rest = parse(
        [
            "--arm.type=grbl",
            "--arm.port",
            "/dev/ttyUSB3",
            "--arm.baudrate=250000",
            "--arm.homing=yes",
            "--arm.workspace.margin_m=0.01",
            "--arm.workspace.water_station=[-0.05, 0.1]",
            "--arm.limits.max_speed_m_s=0.3",
            "--camera.type=sim",
            "calibrate",
        ]
    )
    assert isinstance(cfg, GrblArmConfig)
    assert (cfg.port, cfg.baudrate, cfg.homing) == ("/dev/ttyUSB3", 250000, True)
    assert cfg.workspace.margin_m == 0.01 and cfg.workspace.water_station == (-0.05, 0.1)
    assert cfg.limits.max_speed_m_s == 0.3
    sim_cfg, _ = parse(["--arm.speed_factor=inf"])
    assert sim_cfg.speed_factor == float("inf")
    assert rest == ["calibrate"]
    cam, _ = parse(["--camera.type=sim", "--camera.noise_std=0"], group="camera")
    assert cam.type == "sim" and cam.noise_std == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--arm.type=kuka"], "unknown arm type 'kuka'; choose one of"),
        (["--arm.type=grbl", "--arm.prot=/dev/x"], "--arm.prot: GrblArmConfig has no field"),
        (["--arm.type=grbl", "--arm.baudrate=fast"], "--arm.baudrate='fast': expected an integer"),
        (["--arm.homing=maybe"], "no field 'homing'"),  # the sim arm has no homing
        (["--arm.type=grbl", "--arm.homing=maybe"], "expected a boolean"),
        (["--arm.workspace.margin=1"], "--arm.workspace.margin: Workspace has no field"),
        (["--arm.workspace.margin_m=-1"], "margin_m must be"),
        (["--arm.on_violation=ignore"], "on_violation must be one of"),
        (["--arm.workspace.water_station=(1,2)"], "expected a JSON list"),
        (["--arm.port"], "missing value"),
        (["--arm.speed_factor=1", "--arm.speed_factor=2"], "given twice"),
    ],
)
def test_bad_options_name_the_option(argv, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse(argv)
