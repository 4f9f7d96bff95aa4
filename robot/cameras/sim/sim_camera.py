"""`SimCamera`: renders the simulated canvas as a camera above it would see it.

The board (canvas plus four ArUco markers touching its corners, on a light table) is projected
through a homography that models the camera's tilt and roll, rendered at twice the resolution
and area-averaged down (anti-aliased edges, like optics). Light falls off across the frame, the
sensor has a colour cast (white balance, channel crosstalk, black level, all in linear light)
and noise. The true canvas-to-image homography is exposed so tests can check calibration.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from robot.calibration.markers import aruco_dictionary, marker_corners_m
from robot.cameras.camera import Camera
from robot.cameras.sim.config import SimCameraConfig
from robot.errors import refuses_reconnect, requires_connection
from sim.canvas import Canvas
from sim.palette import linear_to_srgb, srgb_to_linear

_TABLE = 0.9  # sRGB grey of the table around the canvas
_SS = 2  # supersampling factor


class SimCamera(Camera):
    """The simulated camera. See `SimCameraConfig`.

    Args:
        config: camera settings.
        arm: a `SimArm` whose canvas is filmed (its ``canvas`` and ``canvas_image()``); None:
            blank paper of the config's canvas size.
    """

    config_class = SimCameraConfig

    def __init__(self, config: SimCameraConfig, arm=None) -> None:
        super().__init__(config)
        self.arm = arm
        if arm is not None:
            self.canvas = arm.canvas
        else:
            self.canvas = Canvas(config.canvas_width_m, config.canvas_height_m, 512)
        self._rng: np.random.Generator | None = None
        self.canvas_to_image = self._projection()  # (3, 3): canvas meters -> image px

    @property
    def is_connected(self) -> bool:
        return self._rng is not None

    @refuses_reconnect
    def connect(self) -> None:
        self._rng = np.random.default_rng(self.config.seed)

    def disconnect(self) -> None:
        self._rng = None

    def _projection(self) -> np.ndarray:
        """Homography canvas meters -> image px (pixel centres at integers)."""
        c, cv = self.config, self.canvas
        s = c.marker_size_m
        x0, y0, x1, y1 = -1.5 * s, -1.5 * s, cv.width_m + 1.5 * s, cv.height_m + 1.5 * s
        bw, bh = x1 - x0, y1 - y0
        scale = c.fill * c.width / bw
        scale = min(scale, c.fill * c.height / bh)
        hw, hh = 0.5 * bw * scale, 0.5 * bh * scale
        k = c.keystone * hw  # the far (top) edge is narrower
        quad = np.array([[-hw + k, -hh], [hw - k, -hh], [hw, hh], [-hw, hh]])
        a = math.radians(c.rotation_deg)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        quad = quad @ rot.T + np.array([0.5 * (c.width - 1), 0.5 * (c.height - 1)])
        board = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return cv2.getPerspectiveTransform(board.astype(np.float32), quad.astype(np.float32))

    @requires_connection
    def capture(self) -> np.ndarray:
        """One frame: (height, width, 3) uint8 RGB."""
        c, cv = self.config, self.canvas
        size = (c.width * _SS, c.height * _SS)
        up = np.array([[_SS, 0, 0.5 * (_SS - 1)], [0, _SS, 0.5 * (_SS - 1)], [0, 0, 1]])
        h_img = up @ self.canvas_to_image  # meters -> supersampled px
        # 1. the table, 2. the canvas, 3. the markers (sRGB, float32 0..1)
        frame = np.zeros((size[1], size[0], 3), np.float32)
        s = c.marker_size_m
        table = np.array([[-1.5 * s, -1.5 * s, 1]]).T
        self._paste(
            frame,
            np.full((4, 4, 3), _TABLE, np.float32),
            h_img,
            table,
            cv.width_m + 3 * s,
            cv.height_m + 3 * s,
        )
        image = self._canvas_rgb()
        self._paste(frame, image, h_img, np.array([[0, 0, 1]]).T, cv.width_m, cv.height_m)
        dictionary = aruco_dictionary(c.aruco_dictionary)
        for marker_id, corners in marker_corners_m(cv.width_m, cv.height_m, s).items():
            tile = cv2.aruco.generateImageMarker(dictionary, marker_id, 240)
            tile = np.repeat(tile[..., None].astype(np.float32) / 255.0, 3, axis=2)
            origin = np.array([[corners[0, 0], corners[0, 1], 1]]).T
            self._paste(frame, tile, h_img, origin, s, s)
        frame = cv2.resize(frame, (c.width, c.height), interpolation=cv2.INTER_AREA)
        return self._sensor(frame)

    def _canvas_rgb(self) -> np.ndarray:
        if self.arm is not None:
            img = self.arm.canvas_image()
        else:
            img = torch.ones(3, *self.canvas.size_px)
        return img.permute(1, 2, 0).contiguous().numpy().astype(np.float32)  # (H, W, 3)

    @staticmethod
    def _paste(frame, tile, h_img, origin, width_m, height_m) -> None:
        """Warp `tile` (h, w, 3), covering width_m x height_m from `origin` m, into `frame`."""
        th, tw = tile.shape[:2]
        # tile px (centres at integers) -> meters -> frame px
        to_m = np.array(
            [
                [width_m / tw, 0, origin[0, 0] + 0.5 * width_m / tw],
                [0, height_m / th, origin[1, 0] + 0.5 * height_m / th],
                [0, 0, 1],
            ]
        )
        h = h_img @ to_m
        size = (frame.shape[1], frame.shape[0])
        warped = cv2.warpPerspective(
            tile, h, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        # coverage of the tile's full extent (its outer pixel edges), anti-aliased by the resize
        mask = cv2.warpPerspective(
            np.ones((th * 4, tw * 4), np.float32),
            h @ np.array([[0.25, 0, -0.375], [0, 0.25, -0.375], [0, 0, 1]]),
            size,
            flags=cv2.INTER_NEAREST,
        )[..., None]
        frame *= 1 - mask
        frame += mask * warped

    def _sensor(self, frame: np.ndarray) -> np.ndarray:
        c = self.config
        lin = srgb_to_linear(torch.from_numpy(frame)).numpy()  # (H, W, 3) float32
        h, w = lin.shape[:2]
        xx = np.arange(w, dtype=np.float32)[None, :] / w
        yy = np.arange(h, dtype=np.float32)[:, None] / h
        light = 1.0 - c.light_falloff * (xx + 0.5 * yy) / 1.5  # (H, W), lamp at the top-left
        lin = lin * light[..., None]
        x = c.crosstalk
        mix = np.array([[1 - 2 * x, x, x], [x, 1 - 2 * x, x], [x, x, 1 - 2 * x]])
        lin = lin @ (np.diag(c.white_balance) @ mix).T.astype(np.float32) + c.black_level
        out = linear_to_srgb(torch.from_numpy(lin).clamp(min=0)).numpy()
        out = out + self._rng.normal(0.0, c.noise_std, out.shape).astype(np.float32)
        return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
