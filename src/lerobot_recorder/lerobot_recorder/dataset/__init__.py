"""LeRobotDataset v3.0: format constants, writer (and reader/validation, owned elsewhere).

The writer is imported lazily so that `lerobot_recorder.dataset.format` stays cheap to import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LeRobotDatasetWriter", "VideoEncoderConfig", "EpisodeSummary", "FrameValidationError"]


def __getattr__(name: str) -> Any:
    if name in ("LeRobotDatasetWriter", "EpisodeSummary", "FrameValidationError"):
        from . import writer

        return getattr(writer, name)
    if name == "VideoEncoderConfig":
        from . import video

        return video.VideoEncoderConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
