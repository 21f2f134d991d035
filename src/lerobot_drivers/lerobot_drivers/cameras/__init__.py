"""Cameras: OpenCV capture with rotation, size/fps checks and a reconnecting capture thread (ROS-free core)."""
from lerobot_drivers.cameras.config import CameraConfigError, OpenCVCameraConfig
from lerobot_drivers.cameras.opencv_camera import CameraOpenError, OpenCVCamera, rotate_image
from lerobot_drivers.cameras.capture import CaptureStatus, CaptureThread

__all__ = ["CameraConfigError", "CameraOpenError", "CaptureStatus", "CaptureThread", "OpenCVCamera",
           "OpenCVCameraConfig", "rotate_image"]
