import cv2
import numpy as np
import pytest

from robot.arms import make_arm
from robot.arms.sim import SimArmConfig
from robot.cameras import make_camera
from robot.cameras.opencv import OpenCVCameraConfig
from robot.cameras.sim import SimCameraConfig
from robot.errors import DeviceConnectionError, NotConnectedError


def test_sim_camera_sees_the_sim_arms_canvas_with_markers():
    arm = make_arm(SimArmConfig(canvas_px=256))
    arm.connect()
    cam = make_camera(SimCameraConfig(width=480, height=360), arm=arm)
    with pytest.raises(NotConnectedError):
        cam.capture()
    cam.connect()
    frame = cam.capture()
    assert frame.shape == (360, 480, 3) and frame.dtype == np.uint8
    detector = cv2.aruco.ArucoDetector(
        cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), cv2.aruco.DetectorParameters()
    )
    _, ids, _ = detector.detectMarkers(frame)
    assert sorted(ids.ravel().tolist()) == [0, 1, 2, 3]
    assert not np.array_equal(frame, cam.capture())  # sensor noise differs per frame


def test_opencv_camera_reads_a_recorded_png_sequence_through_the_real_class(tmp_path):
    # the far edge only: cv2.VideoCapture itself reads the recorded frames (CAP_IMAGES)
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)]
    for i, f in enumerate(frames):
        f[..., 0] = 200  # red in RGB
        cv2.imwrite(str(tmp_path / f"frame_{i:03d}.png"), f[..., ::-1])
    cam = make_camera(OpenCVCameraConfig(device=str(tmp_path / "frame_%03d.png")))
    cam.connect()
    got = [cam.capture() for _ in range(3)]
    for f, g in zip(frames, got, strict=True):
        np.testing.assert_array_equal(f, g)
    with pytest.raises(DeviceConnectionError, match="gave no frame"):
        cam.capture()  # end of the sequence
    cam.disconnect()


def test_opencv_camera_that_cannot_open_says_so(tmp_path):
    cam = make_camera(OpenCVCameraConfig(device=str(tmp_path / "missing_%03d.png")))
    with pytest.raises(DeviceConnectionError, match="could not open camera"):
        cam.connect()
