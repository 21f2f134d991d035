"""Frame-accurate random access to the concatenated mp4 files of a LeRobotDataset v3.0, with PyAV.

A query is a timestamp in seconds from the start of the file (`from_timestamp + frame timestamp`). The frame
returned is the decoded frame whose presentation time is within `tolerance_s` of the query, as upstream LeRobot
does; if no frame is that close, `FrameTimestampError` says which file, which time and the nearest frame found.

Speed comes from keeping decoders open: each file keeps its container and its position, so a query just after
the last decoded frame continues decoding forward instead of seeking (sequential reads, episode iteration and
delta_timestamps windows), and recently returned frames are cached. Only a jump backwards or far ahead seeks
to the keyframe at or before the query, the way upstream's pyav backend does.

Colour conversion is PyAV's default `rgb24` reformat (FFmpeg swscale), the same call upstream's pyav path uses,
so with the same PyAV/FFmpeg build both produce identical pixels.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np

# Upstream's default tolerance between a query timestamp and the frame's presentation time.
DEFAULT_TOLERANCE_S = 1e-4


class FrameTimestampError(ValueError):
    """No decoded frame lies within the tolerance of a queried timestamp."""


class VideoFileDecoder:
    """One open mp4 file: returns RGB frames (H, W, 3 uint8) for timestamps in seconds from the file start."""

    def __init__(
        self, path: Path | str, cached_frames: int = 64, forward_decode_frames: int = 12, threads: int = 1
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        self._container = av.open(str(self.path))
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{self.path}: no video stream")
        self._stream = self._container.streams.video[0]
        # One thread per decoder by default: random access decodes ~1.4 frames per seek, where decoder threads
        # cost more CPU than they save, and DataLoader workers already decode in parallel. 0 = FFmpeg's choice.
        self._stream.codec_context.thread_count = threads
        self._time_base: Fraction = self._stream.time_base
        rate = self._stream.average_rate or self._stream.base_rate or 30
        self.fps = float(rate)
        # A gap this small is cheaper to decode through than to seek over (a seek decodes from a keyframe anyway).
        self._forward_window_s = forward_decode_frames / self.fps
        self._frames: Iterator[av.VideoFrame] | None = None
        self._last_ts: float | None = None  # presentation time of the last frame pulled from self._frames
        self._cache: OrderedDict[float, np.ndarray] = OrderedDict()
        self._cache_size = cached_frames

    # ------------------------------------------------------------------ public
    def frames_at(self, timestamps: Sequence[float], tolerance_s: float = DEFAULT_TOLERANCE_S) -> np.ndarray:
        """Frames for `timestamps` (seconds from file start), stacked as (T, H, W, 3) uint8 in query order."""
        wanted = sorted(set(float(t) for t in timestamps))
        found: dict[float, np.ndarray] = {}
        for t in wanted:
            found[t] = self._frame_at(t, tolerance_s)
        return np.stack([found[float(t)] for t in timestamps])

    def close(self) -> None:
        self._frames = None
        self._cache.clear()
        self._container.close()

    # ------------------------------------------------------------------ internals
    def _cached(self, t: float, tolerance_s: float) -> np.ndarray | None:
        for ts, rgb in self._cache.items():
            if abs(ts - t) < tolerance_s:
                self._cache.move_to_end(ts)
                return rgb
        return None

    def _remember(self, ts: float, rgb: np.ndarray) -> None:
        self._cache[ts] = rgb
        self._cache.move_to_end(ts)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _seek(self, t: float) -> None:
        # Same seek as upstream's pyav backend: stream time base, backward to the keyframe at or before t.
        offset = int(round(t / self._time_base))
        self._container.seek(offset, backward=True, any_frame=False, stream=self._stream)
        self._frames = self._container.decode(self._stream)
        self._last_ts = None

    def _frame_at(self, t: float, tolerance_s: float) -> np.ndarray:
        hit = self._cached(t, tolerance_s)
        if hit is not None:
            return hit
        can_continue = (
            self._frames is not None
            and self._last_ts is not None
            and self._last_ts < t - tolerance_s
            and t - self._last_ts <= self._forward_window_s
        )
        if not can_continue:
            self._seek(t)
        assert self._frames is not None
        previous: float | None = None
        for frame in self._frames:
            ts = float(frame.pts * self._time_base)
            self._last_ts = ts
            if ts < t - tolerance_s:
                previous = ts
                continue
            if abs(ts - t) < tolerance_s:
                rgb = frame.to_ndarray(format="rgb24")
                self._remember(ts, rgb)
                return rgb
            self._frames = None  # we decoded past t: the next query must seek
            raise FrameTimestampError(self._miss_message(t, tolerance_s, [x for x in (previous, ts) if x is not None]))
        self._frames = None
        raise FrameTimestampError(
            self._miss_message(t, tolerance_s, [previous] if previous is not None else [])
            + " (query is past the end of the video stream)"
        )

    def _miss_message(self, t: float, tolerance_s: float, neighbours: list[float]) -> str:
        nearest = min(neighbours, key=lambda ts: abs(ts - t)) if neighbours else None
        near = f"nearest decoded frame at {nearest:.6f} s (|dt|={abs(nearest - t):.6f} s)" if nearest is not None else "no frame decoded"
        return f"{self.path}: no frame within tolerance_s={tolerance_s} of timestamp {t:.6f} s; {near}"


# Decoders inherited through fork(), deliberately never deallocated (see VideoDecoderPool.decoder).
_FORK_ORPHANS: list = []


class VideoDecoderPool:
    """Open decoders keyed by file path, least recently used closed first. Safe to use after fork (a DataLoader
    worker): decoders opened by another process are dropped, never shared."""

    def __init__(self, max_open_files: int = 16, cached_frames: int = 64, threads: int = 1) -> None:
        self._max_open = max_open_files
        self._cached_frames = cached_frames
        self._threads = threads
        self._decoders: OrderedDict[Path, VideoFileDecoder] = OrderedDict()
        self._pid = os.getpid()

    def decoder(self, path: Path | str) -> VideoFileDecoder:
        if os.getpid() != self._pid:
            # Forked (a DataLoader worker): the parent's FFmpeg contexts are not ours to use, and must not even
            # be freed here: freeing waits on worker threads that exist only in the parent and deadlocks.
            # Keep them referenced forever (a few KB) and start afresh.
            _FORK_ORPHANS.append(self._decoders)
            self._decoders = OrderedDict()
            self._pid = os.getpid()
        path = Path(path)
        dec = self._decoders.get(path)
        if dec is None:
            dec = VideoFileDecoder(path, cached_frames=self._cached_frames, threads=self._threads)
            self._decoders[path] = dec
            while len(self._decoders) > self._max_open:
                _, old = self._decoders.popitem(last=False)
                old.close()
        else:
            self._decoders.move_to_end(path)
        return dec

    def frames_at(
        self, path: Path | str, timestamps: Sequence[float], tolerance_s: float = DEFAULT_TOLERANCE_S
    ) -> np.ndarray:
        return self.decoder(path).frames_at(timestamps, tolerance_s)

    def close(self) -> None:
        for dec in self._decoders.values():
            dec.close()
        self._decoders.clear()

    def __getstate__(self) -> dict:
        # Pickled into spawn-started DataLoader workers: ship the settings, not open FFmpeg handles.
        return {"max_open_files": self._max_open, "cached_frames": self._cached_frames, "threads": self._threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


def decode_frames(path: Path | str, timestamps: Sequence[float], tolerance_s: float = DEFAULT_TOLERANCE_S) -> np.ndarray:
    """One-shot decode (opens and closes the file): (T, H, W, 3) uint8 frames at `timestamps`."""
    dec = VideoFileDecoder(path)
    try:
        return dec.frames_at(timestamps, tolerance_s)
    finally:
        dec.close()

