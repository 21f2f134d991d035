"""Write frames to a lossless video file that cv2.VideoCapture can read: a camera source without hardware.

Used by tests and demos to drive the OpenCV camera node through its real capture path (device = file path).
FFV1 in Matroska is lossless, so pixel values survive the round trip exactly.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np


def write_video_file(path: str | Path, frames: Iterable[np.ndarray], fps: int = 30) -> Path:
    """Write HxWx3 RGB uint8 frames; the file appears atomically (written next to it, then renamed)."""
    import av

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    container = av.open(str(partial), "w", format="matroska")
    stream = None
    try:
        for frame in frames:
            if stream is None:
                stream = container.add_stream("ffv1", rate=fps)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "bgr0"
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"no frames given for video file {path}")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    os.replace(partial, path)
    return path
