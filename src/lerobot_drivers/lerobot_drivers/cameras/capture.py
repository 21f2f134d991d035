"""A capture thread that keeps a camera streaming: paces to fps, stamps frames, reconnects with backoff.

Why a thread: VideoCapture.grab() blocks until the device has a frame, which must not stall the ROS executor.
Why reconnect here: USB cameras drop off the bus and come back (a new /dev/videoN open succeeds once udev is done);
a video file that ends or is replaced behaves the same way, which is also how the tests exercise this path.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Generic, TypeVar

import numpy as np

from lerobot_drivers.cameras.config import CameraConfigError
from lerobot_drivers.cameras.opencv_camera import CameraOpenError, OpenCVCamera

Stamp = TypeVar("Stamp")

CONNECTING, STREAMING, RECONNECTING, STOPPED = "connecting", "streaming", "reconnecting", "stopped"


@dataclass(frozen=True)
class CaptureStatus:
    state: str = CONNECTING
    frames: int = 0
    reconnects: int = 0  # successful re-opens after the device was lost
    open_failures: int = 0  # consecutive failed open attempts
    last_error: str = ""
    retry_in: float = 0.0  # seconds until the next open attempt when not streaming


class CaptureThread(Generic[Stamp]):
    """Owns an OpenCVCamera while running. `on_frame(rgb, stamp)` is called from the capture thread.

    `on_status(status)` is called on every state change (connecting/streaming/reconnecting/stopped), so a node can
    log and publish diagnostics without polling.
    """

    def __init__(self, camera: OpenCVCamera, on_frame: Callable[[np.ndarray, Stamp], None],
                 stamp: Callable[[], Stamp], on_status: Callable[[CaptureStatus], None] | None = None,
                 fps: float = 0.0, backoff_initial: float = 0.1, backoff_max: float = 2.0,
                 failures_before_reconnect: int = 3):
        self.camera = camera
        self._on_frame = on_frame
        self._stamp = stamp
        self._on_status = on_status or (lambda status: None)
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._failures_before_reconnect = failures_before_reconnect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._status = CaptureStatus(state=STREAMING if camera.is_open else CONNECTING)

    @property
    def status(self) -> CaptureStatus:
        with self._lock:
            return self._status

    def _set_status(self, notify: bool = True, **changes) -> None:
        with self._lock:
            old = self._status
            self._status = replace(old, **changes)
            new = self._status
        if notify and (new.state != old.state or new.last_error != old.last_error):
            self._on_status(new)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("capture thread already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.camera.config.device}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._set_status(state=STOPPED)

    def _run(self) -> None:
        backoff = self._backoff_initial
        ever_streamed = self.camera.is_open
        frames_since_open = 1 if self.camera.is_open else 0  # opened by the caller: counts as streaming already
        failures = 0
        next_due = time.monotonic()
        while not self._stop.is_set():
            if not self.camera.is_open:
                try:
                    self.camera.open()
                except (CameraOpenError, CameraConfigError) as error:
                    backoff = self._back_off(ever_streamed, str(error), backoff)
                    continue
                # Not "streaming" yet: a device (or file) that opens may still never deliver a frame.
                frames_since_open, failures = 0, 0
                next_due = time.monotonic()
            if self._period:
                # Pace to the configured fps: a real camera blocks in grab() anyway; a file would run flat out.
                delay = next_due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_due = max(next_due + self._period, time.monotonic() - self._period)
            try:
                frame, when = self.camera.grab(self._stamp)
            except (CameraOpenError, CameraConfigError) as error:
                failures += 1
                if failures >= self._failures_before_reconnect:
                    self.camera.release()
                    if frames_since_open == 0:
                        # Opened, but not one frame: unusable as it is (a codec this OpenCV build cannot decode, a
                        # broken file). Back off like a failed open instead of reopening it many times a second.
                        backoff = self._back_off(ever_streamed, f"opened, but delivered no frame: {error}", backoff)
                    else:
                        self._set_status(state=RECONNECTING, last_error=f"device lost: {error}", retry_in=0.0)
                continue
            failures = 0
            if frames_since_open == 0:
                status = self.status
                self._set_status(state=STREAMING, last_error="", open_failures=0, retry_in=0.0,
                                 reconnects=status.reconnects + (1 if ever_streamed else 0))
                ever_streamed, backoff = True, self._backoff_initial
            frames_since_open += 1
            with self._lock:
                self._status = replace(self._status, frames=self._status.frames + 1)
            try:
                self._on_frame(frame, when)
            except Exception as error:  # a failing consumer must not kill the capture; report it instead
                self._set_status(last_error=f"frame handler failed: {type(error).__name__}: {error}")
        self.camera.release()

    def _back_off(self, ever_streamed: bool, error: str, backoff: float) -> float:
        """Report a failed open (or an open without a frame), wait, and return the next, longer, backoff."""
        status = self.status
        self._set_status(state=RECONNECTING if ever_streamed else CONNECTING, last_error=error,
                         open_failures=status.open_failures + 1, retry_in=backoff)
        self._stop.wait(backoff)
        return min(backoff * 2.0, self._backoff_max)
