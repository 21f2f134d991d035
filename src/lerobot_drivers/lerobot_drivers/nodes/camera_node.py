"""OpenCV camera as a lifecycle node: /cameras/<camera_name>/image_raw (sensor_msgs/Image rgb8).

Lifecycle: configure opens the device (and starts the capture thread), activate publishes, deactivate stops
publishing (the device keeps streaming so stamps stay fresh on re-activation), cleanup/shutdown release it.
`autostart` (default true) runs configure + activate at start-up, since the pip environment has no lifecycle CLI;
with autostart a device that cannot be configured ends the process with exit code 1.

Parameters: the PARAMETERS table below (`opencv_camera --help`). Frames are stamped on the node clock the moment
they are grabbed. Health goes to /diagnostics at 1 Hz.
"""
from __future__ import annotations

import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image

from lerobot_drivers.cameras import (CameraConfigError, CameraOpenError, CaptureStatus, CaptureThread, OpenCVCamera,
                                     OpenCVCameraConfig)
from lerobot_drivers.cameras.capture import STREAMING
from lerobot_drivers.nodes.lifecycle_main import run_lifecycle_node
from lerobot_drivers.nodes.parameters import AUTOSTART, ParameterSpec, declare_parameters
from lerobot_drivers.qos import CAMERA_IMAGE_QOS
from lerobot_drivers.image_conversion import numpy_to_image_msg

PARAMETERS = (
    ParameterSpec("camera_name", "camera", "name in the topic /cameras/<camera_name>/image_raw and in diagnostics",
                  read_only=True),
    ParameterSpec("device", "0", "camera index (0), device path (/dev/video0, /dev/v4l/by-id/...), video file or URL",
                  dynamic_typing=True, read_only=True),
    ParameterSpec("width", 640, "image width after rotation (0 = device default)", bounds=(0, 16384), read_only=True),
    ParameterSpec("height", 480, "image height after rotation (0 = device default)", bounds=(0, 16384),
                  read_only=True),
    ParameterSpec("fps", 30.0, "frames per second asked of the device (0 = device default)", dynamic_typing=True,
                  read_only=True),
    ParameterSpec("rotation", 0, "clockwise rotation of the image: 0, 90, 180 or 270", bounds=(0, 270),
                  read_only=True),
    ParameterSpec("fourcc", "", "4-character pixel format asked of the device (e.g. MJPG); empty = device default",
                  read_only=True),
    ParameterSpec("frame_id", "", "header.frame_id; empty = <camera_name>_optical_frame", read_only=True),
    ParameterSpec("topic", "", "image topic; empty = /cameras/<camera_name>/image_raw", read_only=True),
    ParameterSpec("wait_for_device", False, "false: configure fails when the device cannot be opened; true: "
                  "configure succeeds and the capture thread keeps retrying", read_only=True),
    ParameterSpec("backoff_max", 2.0, "longest wait between two attempts to reopen a lost device (s)",
                  bounds=(0.1, 60.0), read_only=True),
    AUTOSTART,
)


class CameraNode(LifecycleNode):
    def __init__(self, node_name: str = "opencv_camera", **kwargs):
        super().__init__(node_name, **kwargs)
        declare_parameters(self, PARAMETERS)
        self._capture: CaptureThread | None = None
        self._image_pub = None
        self._active = threading.Event()
        self._published = 0
        self._rate_window = (time.monotonic(), 0)
        self._measured_fps = 0.0
        self._camera_name = ""
        self._frame_id = ""
        self._config: OpenCVCameraConfig | None = None
        self._last_capture_error = ""  # the capture's previous error: a looping file's end is not news
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)

    # --- lifecycle -------------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        param = lambda name: self.get_parameter(name).value  # noqa: E731
        self._camera_name = str(param("camera_name"))
        try:
            self._config = OpenCVCameraConfig(device=param("device"), width=int(param("width")),
                                              height=int(param("height")), fps=float(param("fps")),
                                              rotation=int(param("rotation")), fourcc=str(param("fourcc")))
        except (CameraConfigError, ValueError, TypeError) as error:
            self.get_logger().error(f"camera {self._camera_name}: bad parameters: {error}")
            return TransitionCallbackReturn.FAILURE
        camera = OpenCVCamera(self._config)
        try:
            camera.open()
        except (CameraOpenError, CameraConfigError) as error:
            if not param("wait_for_device"):
                self.get_logger().error(f"camera {self._camera_name}: {error}")
                return TransitionCallbackReturn.FAILURE
            self.get_logger().warning(f"camera {self._camera_name}: {error}; waiting for it (wait_for_device=true)")
        topic = str(param("topic")) or f"/cameras/{self._camera_name}/image_raw"
        self._frame_id = str(param("frame_id")) or f"{self._camera_name}_optical_frame"
        self._image_pub = self.create_lifecycle_publisher(Image, topic, CAMERA_IMAGE_QOS.profile())
        self._capture = CaptureThread(camera, self._on_frame, stamp=lambda: self.get_clock().now(),
                                      on_status=self._on_status, fps=self._config.fps,
                                      backoff_max=float(param("backoff_max")))
        self._capture.start()
        if camera.is_open:
            self.get_logger().info(
                f"camera {self._camera_name}: opened {self._config.device!r} at {camera.actual_width}x"
                f"{camera.actual_height} {camera.actual_fps:g} fps (rotation {self._config.rotation}) -> {topic}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active.set()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active.clear()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        self._active.clear()
        if self._capture is not None:
            self._capture.stop()  # the thread releases the device on its way out
            self._capture = None
        if self._image_pub is not None:
            self.destroy_lifecycle_publisher(self._image_pub)
            self._image_pub = None

    # --- capture thread callbacks ------------------------------------------------------------------------------
    def _on_frame(self, frame, when) -> None:
        if not self._active.is_set() or self._image_pub is None:
            return
        self._image_pub.publish(numpy_to_image_msg(frame, "rgb8", stamp=when.to_msg(), frame_id=self._frame_id))
        self._published += 1

    def _on_status(self, status: CaptureStatus) -> None:
        log = self.get_logger()
        # A video file used as a source ends and is reopened every loop: expected, so not worth a line each time.
        looping_file = self._config is not None and self._config.is_file_or_url
        came_back_from, self._last_capture_error = self._last_capture_error, status.last_error
        if status.state == STREAMING:
            if looping_file and "end of file" in came_back_from:
                log.debug(f"camera {self._camera_name}: streaming again (loop {status.reconnects})")
            else:
                log.info(f"camera {self._camera_name}: streaming (reconnects so far: {status.reconnects})")
        elif status.last_error:
            text = (f"camera {self._camera_name}: {status.state}: {status.last_error}; next attempt in "
                    f"{status.retry_in:.2f} s")
            if status.last_error.startswith("opened, but delivered no frame"):  # unusable: say so loudly, once
                log.error(text + (" (OpenCV cannot decode it: e.g. AV1 video, which this OpenCV build lacks; "
                                  "convert it to H.264/MJPEG/FFV1)" if looping_file else ""))
            elif looping_file and "end of file" in status.last_error:
                log.debug(text)
            else:
                log.warning(text)

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        start, count = self._rate_window
        if now - start >= 1.0:
            self._measured_fps = (self._published - count) / (now - start)
            self._rate_window = (now, self._published)
        status = DiagnosticStatus(name=f"{self.get_name()}: camera {self._camera_name}",
                                  hardware_id=str(self._config.device) if self._config else "")
        capture = self._capture.status if self._capture else None
        if capture is None:
            status.level, status.message = DiagnosticStatus.STALE, "not configured"
        elif capture.state == STREAMING:
            status.level, status.message = DiagnosticStatus.OK, "streaming" if self._active.is_set() else "inactive"
        else:
            status.level, status.message = DiagnosticStatus.ERROR, f"{capture.state}: {capture.last_error}"
        if capture is not None:
            status.values = [KeyValue(key=k, value=str(v)) for k, v in (
                ("state", capture.state), ("frames_captured", capture.frames), ("frames_published", self._published),
                ("published_fps", f"{self._measured_fps:.2f}"), ("reconnects", capture.reconnects),
                ("open_failures", capture.open_failures))]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)


def main(args=None) -> int:
    return run_lifecycle_node(CameraNode, "opencv_camera", args, description=__doc__.split("\n\n")[0],
                              parameters=PARAMETERS, on_exit=CameraNode.release)


if __name__ == "__main__":
    sys.exit(main())
