"""OpenCV camera core against a real OpenCV source without hardware: a lossless video file written with PyAV."""
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from lerobot_drivers.cameras import (CameraConfigError, CameraOpenError, CaptureThread, OpenCVCamera,
                                     OpenCVCameraConfig, rotate_image)
from lerobot_drivers.cameras.capture import CONNECTING, RECONNECTING, STREAMING
from lerobot_drivers.cameras.video_file import write_video_file

W, H = 64, 48
RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def quadrant_frame(base=RED, corner=GREEN):
    """Frame of `base` colour whose top-left quadrant is `corner`: shows both colour order and rotation."""
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = base
    frame[: H // 2, : W // 2] = corner
    return frame


def make_video(path, base=RED, n=10, fps=30):
    return write_video_file(path, [quadrant_frame(base)] * n, fps=fps)


def test_config_validation_names_the_field():
    with pytest.raises(CameraConfigError, match="rotation"):
        OpenCVCameraConfig(rotation=45)
    with pytest.raises(CameraConfigError, match="fourcc"):
        OpenCVCameraConfig(fourcc="MJPEG")
    with pytest.raises(CameraConfigError, match="width"):
        OpenCVCameraConfig(width=-1)
    assert OpenCVCameraConfig(device="2").device == 2
    assert OpenCVCameraConfig(device="/dev/video2").device == "/dev/video2"
    assert OpenCVCameraConfig(width=640, height=480, rotation=90).capture_size == (480, 640)


def test_reads_rgb_frames_with_exact_content(tmp_path):
    video = make_video(tmp_path / "cam.mkv")
    camera = OpenCVCamera(OpenCVCameraConfig(device=str(video), width=W, height=H, fps=30))
    camera.open()
    stamps = iter(range(100))
    frame, stamp = camera.grab(lambda: next(stamps))
    camera.release()
    assert stamp == 0
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, quadrant_frame())  # RGB order, not OpenCV's BGR
    assert (camera.actual_width, camera.actual_height, camera.actual_fps) == (W, H, 30.0)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_matches_numpy_clockwise_rotation(tmp_path, rotation):
    video = make_video(tmp_path / "cam.mkv")
    width, height = (H, W) if rotation in (90, 270) else (W, H)  # published size is after rotation
    camera = OpenCVCamera(OpenCVCameraConfig(device=str(video), width=width, height=height, rotation=rotation))
    camera.open()
    frame, _ = camera.grab(lambda: None)
    camera.release()
    expected = np.rot90(quadrant_frame(), k=-rotation // 90)  # np.rot90 turns counter-clockwise for k>0
    np.testing.assert_array_equal(frame, expected)
    assert frame.shape == (height, width, 3)
    # clockwise 90: the green top-left quadrant ends up top-right
    if rotation == 90:
        assert tuple(frame[0, -1]) == GREEN and tuple(frame[-1, 0]) == RED
    assert rotate_image(quadrant_frame(), 0) is not None


def test_clear_errors_for_missing_device_and_size_or_fps_mismatch(tmp_path):
    video = make_video(tmp_path / "cam.mkv")
    with pytest.raises(CameraOpenError, match="cannot open camera device .*missing.mkv"):
        OpenCVCamera(OpenCVCameraConfig(device=str(tmp_path / "missing.mkv"))).open()
    with pytest.raises(CameraConfigError, match="delivers 64x48 but 640x480 was requested"):
        OpenCVCamera(OpenCVCameraConfig(device=str(video), width=640, height=480)).open()
    with pytest.raises(CameraConfigError, match="runs at 30 fps but 60 fps was requested"):
        OpenCVCamera(OpenCVCameraConfig(device=str(video), width=W, height=H, fps=60)).open()
    with pytest.raises(CameraOpenError, match="not open"):
        OpenCVCamera(OpenCVCameraConfig(device=str(video))).grab(lambda: None)


class FrameLog:
    def __init__(self):
        self.frames, self.statuses = [], []
        self.lock = threading.Lock()

    def on_frame(self, frame, stamp):
        with self.lock:
            self.frames.append((frame[-1, -1].copy(), stamp))

    def wait_for(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.02)
        return False


def test_capture_thread_paces_stamps_and_reconnects_when_file_is_replaced(tmp_path):
    video = make_video(tmp_path / "cam.mkv", base=RED, n=5)
    log = FrameLog()
    camera = OpenCVCamera(OpenCVCameraConfig(device=str(video), width=W, height=H))
    camera.open()
    capture = CaptureThread(camera, log.on_frame, stamp=time.monotonic, on_status=log.statuses.append, fps=100,
                            backoff_initial=0.05, backoff_max=0.2)
    capture.start()
    try:
        # The 5-frame file ends; the thread reopens it (same path) and keeps streaming.
        assert log.wait_for(lambda l: len(l.frames) >= 12), capture.status
        assert capture.status.reconnects >= 1
        stamps = [s for _, s in log.frames]
        assert stamps == sorted(stamps)
        assert all(tuple(c) == RED for c, _ in log.frames)
        # Remove the file: opens fail and back off; recreate it blue: frames resume with the new content.
        video.unlink()
        assert log.wait_for(lambda l: any(s.state == RECONNECTING and "cannot open" in s.last_error
                                          for s in l.statuses)), log.statuses
        assert capture.status.open_failures >= 1
        make_video(video, base=BLUE, n=5)
        assert log.wait_for(lambda l: any(tuple(c) == BLUE for c, _ in l.frames)), capture.status
        assert capture.status.state == STREAMING
    finally:
        capture.stop()
    assert not camera.is_open


def test_capture_thread_connects_when_device_appears_later(tmp_path):
    video = tmp_path / "late.mkv"
    log = FrameLog()
    camera = OpenCVCamera(OpenCVCameraConfig(device=str(video), width=W, height=H))
    capture = CaptureThread(camera, log.on_frame, stamp=time.monotonic, on_status=log.statuses.append, fps=100,
                            backoff_initial=0.05, backoff_max=0.2)
    capture.start()
    try:
        assert log.wait_for(lambda l: l.statuses and l.statuses[0].state == CONNECTING)
        assert "cannot open" in log.statuses[0].last_error
        time.sleep(0.3)
        assert not log.frames
        make_video(video, base=GREEN)
        assert log.wait_for(lambda l: len(l.frames) >= 3), capture.status
        assert tuple(log.frames[0][0]) == GREEN
        assert capture.status.reconnects == 0  # first connection, not a reconnection
    finally:
        capture.stop()


def test_a_file_that_opens_but_never_decodes_backs_off_with_an_error(tmp_path):
    """Issue: a video file OpenCV opens but cannot decode (AV1 here: this OpenCV build has no AV1 decoder) was
    reopened ~15 times a second, announced as "streaming" each time, never as an error."""
    video = tmp_path / "av1.mp4"
    # Encoded in a process of its own: SVT-AV1 run as root switches the thread that opens it to SCHED_FIFO 99.
    encode = f"""
import av, numpy as np
with av.open({str(video)!r}, "w") as container:
    stream = container.add_stream("libsvtav1", rate=30)
    stream.width, stream.height, stream.pix_fmt = {W}, {H}, "yuv420p"
    for i in range(5):
        frame = av.VideoFrame.from_ndarray(np.full(({H}, {W}, 3), 40 * i, np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
"""
    subprocess.run([sys.executable, "-c", encode], check=True, capture_output=True, timeout=120)
    log = FrameLog()
    camera = OpenCVCamera(OpenCVCameraConfig(device=str(video)))
    capture = CaptureThread(camera, log.on_frame, stamp=time.monotonic, on_status=log.statuses.append, fps=100,
                            backoff_initial=0.1, backoff_max=0.4)
    capture.start()
    try:
        assert log.wait_for(lambda l: capture.status.open_failures >= 3), capture.status
        time.sleep(1.0)
        status = capture.status
    finally:
        capture.stop()
    assert not log.frames
    assert not any(s.state == STREAMING for s in log.statuses), log.statuses
    assert "opened, but delivered no frame" in status.last_error
    # Backing off (0.1, 0.2, 0.4, 0.4 ... s) instead of reopening at the frame rate: a handful of attempts.
    assert status.open_failures <= 10, status
