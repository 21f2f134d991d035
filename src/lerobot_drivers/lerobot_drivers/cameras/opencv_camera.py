"""One OpenCV VideoCapture: open with the requested format, check it, grab RGB frames, rotate them."""
from __future__ import annotations

from typing import Callable, TypeVar

import numpy as np

from lerobot_drivers.cameras.config import CameraConfigError, OpenCVCameraConfig

Stamp = TypeVar("Stamp")


class CameraOpenError(RuntimeError):
    """The device could not be opened or stopped delivering frames."""


def rotate_image(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate clockwise by 0/90/180/270 degrees (270 = LeRobot's -90)."""
    import cv2

    if rotation == 0:
        return image
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if rotation not in codes:
        raise CameraConfigError(f"rotation must be 0, 90, 180 or 270 degrees, got {rotation}")
    return cv2.rotate(image, codes[rotation])


class OpenCVCamera:
    """Not thread-safe: one capture thread owns it (see capture.CaptureThread)."""

    def __init__(self, config: OpenCVCameraConfig):
        self.config = config
        self._capture = None
        self.actual_width = 0
        self.actual_height = 0
        self.actual_fps = 0.0

    @property
    def is_open(self) -> bool:
        return self._capture is not None

    def open(self) -> None:
        """Open and configure the device; raise CameraOpenError / CameraConfigError with what went wrong."""
        import cv2

        self.release()
        cv2.setNumThreads(1)  # conversions are tiny; OpenCV's thread pool only competes with the ROS executor
        cfg = self.config
        capture = cv2.VideoCapture(cfg.device, cv2.CAP_ANY)
        if not capture.isOpened():
            capture.release()
            raise CameraOpenError(f"cannot open camera device {cfg.device!r}: no such device or file, it is busy, "
                                  "or OpenCV has no backend for it")
        try:
            self._apply_format(capture)
        except Exception:
            capture.release()
            raise
        self._capture = capture

    def _apply_format(self, capture) -> None:
        import cv2

        cfg = self.config
        want_w, want_h = cfg.capture_size
        if not cfg.is_file_or_url:  # a file has the format it was written with; setting it is meaningless
            if cfg.fourcc:
                capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*cfg.fourcc))
            if want_w and want_h:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, want_w)
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, want_h)
            if cfg.fps:
                capture.set(cv2.CAP_PROP_FPS, cfg.fps)
        width = int(round(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
        height = int(round(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        if want_w and want_h and (width, height) != (want_w, want_h):
            raise CameraConfigError(
                f"camera {cfg.device!r} delivers {width}x{height} but {want_w}x{want_h} was requested "
                f"(published size {cfg.width}x{cfg.height}, rotation {cfg.rotation})")
        if cfg.fps and abs(fps - cfg.fps) > cfg.fps_tolerance:
            raise CameraConfigError(f"camera {cfg.device!r} runs at {fps:g} fps but {cfg.fps:g} fps was requested")
        self.actual_width, self.actual_height, self.actual_fps = width, height, fps

    def grab(self, stamp: Callable[[], Stamp]) -> tuple[np.ndarray, Stamp]:
        """Grab one frame, call `stamp()` the moment it is grabbed, then decode; returns (HxWx3 RGB rotated, stamp)."""
        if self._capture is None:
            raise CameraOpenError(f"camera {self.config.device!r} is not open")
        if not self._capture.grab():
            raise CameraOpenError(f"camera {self.config.device!r} delivered no frame (unplugged or end of file)")
        when = stamp()
        ok, frame = self._capture.retrieve()
        if not ok or frame is None:
            raise CameraOpenError(f"camera {self.config.device!r} grabbed a frame that could not be decoded")
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise CameraOpenError(f"camera {self.config.device!r} delivered a frame of shape {frame.shape}; "
                                  "expected HxWx3 colour")
        want_w, want_h = self.config.capture_size
        if want_w and want_h and frame.shape[:2] != (want_h, want_w):
            raise CameraConfigError(f"camera {self.config.device!r} delivered a {frame.shape[1]}x{frame.shape[0]} "
                                    f"frame but {want_w}x{want_h} was requested")
        import cv2

        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return rotate_image(rgb, self.config.rotation), when

    def release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
