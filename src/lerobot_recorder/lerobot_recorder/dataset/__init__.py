"""LeRobotDataset v3.0: format constants, writer (and reader/validation, owned elsewhere).

The writer is imported lazily so that `lerobot_recorder.dataset.format` stays cheap to import.
"""

from __future__ import annotations

from typing import Any

_WRITER_NAMES = ("LeRobotDatasetWriter", "EpisodeSummary", "FrameValidationError", "EpisodeSaveError", "recover")
_VIDEO_NAMES = ("VideoEncoderConfig", "EncoderError", "EncoderStalledError")

__all__ = [*_WRITER_NAMES, *_VIDEO_NAMES]


def __getattr__(name: str) -> Any:
    if name in _WRITER_NAMES:
        from . import writer

        return getattr(writer, name)
    if name in _VIDEO_NAMES:
        from . import video

        return getattr(video, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
