"""Make upstream lerobot 0.4.4 importable and able to decode video in the CPU-only oracle venv.

Import this module BEFORE anything imports torchvision or lerobot. It does two things:

1. torchvision 0.28.0 from PyPI is a CUDA build: its `_C` extension does not load next to the CPU torch, and its
   `_meta_registrations` then calls `register_fake("torchvision::nms")` on an operator that was never defined.
   Defining the two op schemas first lets the pure-Python parts (transforms, models) import. The C++ kernels
   stay unavailable; lerobot's dataset code does not use them.
2. torchvision 0.28 no longer has `torchvision.io.VideoReader`, which lerobot 0.4.4's `video_backend="pyav"` path
   (`decode_video_frames_torchvision`) calls. We put back a thin PyAV implementation of the part of its API
   that lerobot uses: construct, `seek(t, keyframes_only)`, iterate `{"data": CHW uint8 tensor, "pts": seconds}`,
   and `.container`. It follows the behaviour of torchvision's own pyav backend: seek backward to the keyframe
   at or before t, then decode forward, converting each frame with PyAV's default rgb24 conversion.
   lerobot's own timestamp matching and tolerance check then run unchanged.
"""

from __future__ import annotations

import torch

_TV_LIB = torch.library.Library("torchvision", "DEF")
_TV_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_TV_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

import av  # noqa: E402
import torchvision  # noqa: E402
import torchvision.io  # noqa: E402


class PyAVVideoReader:
    """Stand-in for torchvision.io.VideoReader with the pyav backend (video streams only)."""

    def __init__(self, src: str, stream: str = "video", num_threads: int = 0) -> None:
        if not stream.startswith("video"):
            raise NotImplementedError(f"oracle VideoReader shim only decodes video streams, got {stream!r}")
        self.container = av.open(str(src))
        self._stream = self.container.streams.video[0]
        self._frames = self.container.decode(self._stream)

    def seek(self, time_s: float, keyframes_only: bool = False) -> "PyAVVideoReader":
        # torchvision's pyav backend: offset in stream time_base, backward to the nearest keyframe.
        offset = int(round(time_s / self._stream.time_base))
        self.container.seek(offset, backward=True, any_frame=False, stream=self._stream)
        self._frames = self.container.decode(self._stream)
        return self

    def __iter__(self) -> "PyAVVideoReader":
        return self

    def __next__(self) -> dict:
        frame = next(self._frames)  # StopIteration at end of stream ends the iteration, as in torchvision
        pts = float(frame.pts * frame.time_base)
        rgb = frame.to_rgb().to_ndarray()
        return {"data": torch.from_numpy(rgb).permute(2, 0, 1), "pts": pts}


torchvision.io.VideoReader = PyAVVideoReader
torchvision.set_video_backend = lambda backend: None
