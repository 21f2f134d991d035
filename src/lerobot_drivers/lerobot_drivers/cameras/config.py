"""Configuration of an OpenCV camera (the same knobs as LeRobot's OpenCVCameraConfig)."""
from __future__ import annotations

from dataclasses import dataclass

VALID_ROTATIONS = (0, 90, 180, 270)


class CameraConfigError(ValueError):
    """A camera parameter is out of range or the device does not deliver what was asked for."""


def parse_device(device: str | int) -> int | str:
    """'0' or 0 -> index 0; anything else ('/dev/video4', a video file path, a URL) stays a path."""
    if isinstance(device, int):
        return device
    text = str(device).strip()
    if text == "":
        raise CameraConfigError("camera device is empty: give an index such as 0 or a path such as /dev/video0")
    return int(text) if text.isdigit() else text


@dataclass(frozen=True)
class OpenCVCameraConfig:
    """What to open and what the published image must look like.

    `width`/`height` are the size of the image *after* rotation (the observation size, as in LeRobot); a 90/270
    rotation therefore asks the device for height x width. 0 for width, height or fps means "whatever the device
    delivers" (no check). `fourcc` is a 4-character code such as "MJPG", or "" to leave the device default.
    """

    device: int | str = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    rotation: int = 0
    fourcc: str = ""
    fps_tolerance: float = 0.5  # Hz; devices report e.g. 29.97 for 30

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", parse_device(self.device))
        if self.rotation not in VALID_ROTATIONS:
            raise CameraConfigError(f"camera rotation must be one of {VALID_ROTATIONS} degrees, got {self.rotation}")
        for name in ("width", "height"):
            if getattr(self, name) < 0:
                raise CameraConfigError(f"camera {name} must be >= 0 (0 = device default), got {getattr(self, name)}")
        if self.fps < 0:
            raise CameraConfigError(f"camera fps must be >= 0 (0 = device default), got {self.fps}")
        if self.fourcc and len(self.fourcc) != 4:
            raise CameraConfigError(f"camera fourcc must be 4 characters such as 'MJPG', got {self.fourcc!r}")

    @property
    def swaps_axes(self) -> bool:
        return self.rotation in (90, 270)

    @property
    def capture_size(self) -> tuple[int, int]:
        """(width, height) to request from the device, i.e. before rotation."""
        return (self.height, self.width) if self.swaps_axes else (self.width, self.height)

    @property
    def is_file_or_url(self) -> bool:
        return isinstance(self.device, str) and not self.device.startswith("/dev/")
