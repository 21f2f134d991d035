"""Video side of the writer: encoder settings, per-camera background workers, mp4 concatenation.

Each camera (video feature) and each image feature has one worker thread fed through a bounded queue while the
episode is being recorded, so `save_episode` only has to flush the last few frames. Video frames are encoded
with PyAV into a per-episode segment mp4 (CFR, pts = frame number, time base 1/fps); at save time the segment
is stream-copied (remuxed, no re-encode) onto the end of the camera's current file, or moved to a new file.
Workers also keep downsampled copies of the frames for the image stats, so no episode is held in RAM.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .durable_io import fsync_file
from .stats import FrameSampler, Stats, image_stats
from .thread_scheduling import keeping_thread_scheduling

log = logging.getLogger(__name__)

CODEC_ALIASES = {"av1": "libsvtav1", "h264": "libx264", "hevc": "libx265"}
# codec name stored in info.json (stream.codec.canonical_name) -> encoder used to append to that file
CANONICAL_TO_ENCODER = {"av1": "libsvtav1", "h264": "libx264", "hevc": "libx265"}


class EncoderError(RuntimeError):
    """A camera/image worker failed (encoding, disk full...). The episode in progress cannot be saved."""


class EncoderStalledError(EncoderError):
    """A worker queue stayed full for longer than the stall timeout."""


class EncoderHungError(EncoderError):
    """A worker did not take or finish a command (begin, end, abort an episode) within `command_timeout_s`: a hung
    encoder or disk. The worker stays unusable (every later call raises this at once): close the writer and open
    the dataset again."""


@dataclass
class VideoEncoderConfig:
    """Encoder settings for video features (defaults as upstream lerobot: AV1 via SVT, GOP 2, crf 30, preset 12).

    `queue_maxsize` frames are buffered per camera; when the encoder cannot keep up, `add_frame` blocks (up to
    `stall_timeout_s`) and the stall is counted and logged. Frames are never dropped.
    `command_timeout_s` bounds every other wait on a camera's worker: queueing the begin/end/abort of an episode
    and finishing an episode (encoding the frames still queued, flushing the encoder, writing the segment). A
    worker that takes longer is hung (a stuck encoder or disk): the call fails with EncoderHungError naming the
    camera and the stage, so the writer's caller is never blocked for good.
    """

    vcodec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int | None = 2
    crf: int | None = 30
    preset: int | str | None = None
    fast_decode: int = 0
    extra_options: dict[str, str] = field(default_factory=dict)
    encoder_threads: int | None = None
    queue_maxsize: int = 60
    stall_timeout_s: float = 30.0
    command_timeout_s: float = 60.0  # generous: flushing up to queue_maxsize frames on a busy machine

    def __post_init__(self) -> None:
        name = self.encoder_name
        try:
            av.codec.Codec(name, "w")
        except Exception as exc:  # noqa: BLE001 - PyAV raises several types for unknown codecs
            raise ValueError(f"video encoder: codec {self.vcodec!r} ({name}) is not available in PyAV") from exc
        if self.queue_maxsize < 1:
            raise ValueError(f"video encoder: queue_maxsize must be >= 1, got {self.queue_maxsize}")
        if not self.stall_timeout_s > 0 or not self.command_timeout_s > 0:
            raise ValueError(f"video encoder: stall_timeout_s and command_timeout_s must be > 0, got "
                             f"{self.stall_timeout_s} and {self.command_timeout_s}")

    @property
    def encoder_name(self) -> str:
        return CODEC_ALIASES.get(self.vcodec, self.vcodec)

    @property
    def resolved_preset(self) -> int | str | None:
        if self.preset is None and self.encoder_name == "libsvtav1":
            return 12
        return self.preset

    def codec_options(self) -> dict[str, str]:
        """AVOptions passed to the encoder."""
        opts: dict[str, str] = {}
        if self.g is not None:
            opts["g"] = str(self.g)
        if self.crf is not None:
            opts["crf"] = str(self.crf)
        if self.resolved_preset is not None:
            opts["preset"] = str(self.resolved_preset)
        name = self.encoder_name
        if name == "libsvtav1":
            params = []
            if self.fast_decode:
                params.append(f"fast-decode={max(0, min(2, int(self.fast_decode)))}")
            if self.encoder_threads:
                params.append(f"lp={int(self.encoder_threads)}")
            if params:
                opts["svtav1-params"] = ":".join(params)
        elif name in ("libx264", "libx265"):
            if self.fast_decode:
                opts["tune"] = "fastdecode"
            # No B-frames: pts == dts, so per-episode segments concatenate with exact k/fps timestamps.
            opts["bf"] = "0"
            if self.encoder_threads:
                opts["threads"] = str(int(self.encoder_threads))
        for k, v in self.extra_options.items():
            opts.setdefault(k, str(v))
        return opts

    def info_fields(self) -> dict[str, Any]:
        """Encoder-derived keys recorded into info.json features[key]['info'] (as upstream HEAD)."""
        return {
            "video.g": self.g,
            "video.crf": self.crf,
            "video.preset": self.resolved_preset,
            "video.fast_decode": self.fast_decode,
            "video.extra_options": dict(self.extra_options),
        }

    @classmethod
    def from_video_info(cls, info: dict[str, Any], **overrides: Any) -> "VideoEncoderConfig":
        """Rebuild the settings a dataset was recorded with from a features[key]['info'] dict."""
        kwargs: dict[str, Any] = {}
        codec = info.get("video.codec")
        if codec:
            kwargs["vcodec"] = CANONICAL_TO_ENCODER.get(codec, codec)
        for key in ("g", "crf", "preset", "fast_decode", "extra_options"):
            if f"video.{key}" in info:
                kwargs[key] = info[f"video.{key}"]
        if info.get("video.pix_fmt"):
            kwargs["pix_fmt"] = info["video.pix_fmt"]
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- workers
@dataclass
class SpilledPngs:
    """The PNG frames of one image feature for one episode, written back to back into a staging file while
    recording (an episode of full-size PNGs does not fit in RAM); frame i is `size[i]` bytes at `offset[i]`."""

    path: Path
    offsets: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def read(self, start: int, stop: int) -> list[bytes]:
        """Frames start..stop-1 (one contiguous read)."""
        if start >= stop:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offsets[start])
            blob = f.read(self.offsets[stop - 1] + self.sizes[stop - 1] - self.offsets[start])
        base = self.offsets[start]
        return [blob[o - base : o - base + n] for o, n in zip(self.offsets[start:stop], self.sizes[start:stop])]

    def bytes_between(self, start: int, stop: int) -> int:
        return sum(self.sizes[start:stop])


@dataclass
class WorkerResult:
    """What a worker hands back at the end of an episode."""

    num_frames: int
    stats: Stats | None
    segment_path: Path | None = None  # video workers
    pngs: SpilledPngs | None = None  # image workers


_FRAME = 0
_BEGIN = 1
_END = 2
_ABORT = 3
_STOP = 4


class FrameWorker:
    """One background thread fed by a bounded queue; subclasses implement the per-frame work."""

    def __init__(self, name: str, queue_maxsize: int, stall_timeout_s: float, sample_stats: bool = True,
                 command_timeout_s: float = 60.0):
        self.name = name
        self._q: queue.Queue = queue.Queue(maxsize=queue_maxsize)
        self._stall_timeout_s = stall_timeout_s
        self._command_timeout_s = command_timeout_s
        self._hung: str | None = None  # what the worker failed to do in time; set once, for good
        self._sample_stats = sample_stats
        self.stalls = 0
        self.stall_seconds = 0.0
        self._error: BaseException | None = None
        self._sampler = FrameSampler()
        self._frames = 0
        self._thread = threading.Thread(target=self._run, name=f"lerobot-writer-{name}", daemon=True)
        self._thread.start()

    # ---- producer side (recording thread)
    @property
    def backlog(self) -> int:
        return self._q.qsize()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def put_frame(self, frame_hwc: np.ndarray) -> None:
        self._check_not_hung()
        if self._error is not None:
            raise EncoderError(f"{self.name}: worker failed: {self._error!r}") from self._error
        try:
            self._q.put_nowait((_FRAME, frame_hwc))
            return
        except queue.Full:
            pass
        # The worker cannot keep up: wait (never drop), count and log the stall.
        self.stalls += 1
        t0 = time.monotonic()
        if self.stalls == 1 or self.stalls % 100 == 0:
            log.warning("%s: encoder queue full (%d frames), add_frame blocks (stall #%d)", self.name, self._q.maxsize, self.stalls)
        try:
            self._q.put((_FRAME, frame_hwc), timeout=self._stall_timeout_s)
        except queue.Full:
            raise EncoderStalledError(
                f"{self.name}: encoder queue stayed full for {self._stall_timeout_s:.1f} s; the episode cannot be recorded in real time"
            ) from None
        finally:
            self.stall_seconds += time.monotonic() - t0

    def begin(self, payload: Any) -> None:
        self._send(_BEGIN, payload, "begin an episode")

    def request_end(self) -> Future:
        """Ask the worker to finish the episode; the future gets the WorkerResult (or the worker's error). Wait for
        it with `wait_end`."""
        fut: Future = Future()
        self._send(_END, fut, "end the episode")
        return fut

    def wait_end(self, fut: Future, what: str = "the episode", timeout: float | None = None) -> WorkerResult:
        """The result of `request_end` (raises the worker's error); EncoderHungError past `timeout` (default
        command_timeout_s). `what` names the episode in that error."""
        return self._wait(fut, f"finish {what}", timeout)

    def end(self) -> WorkerResult:
        """Finish the episode: wait for the queue to drain and return the result (raises the worker's error)."""
        return self.wait_end(self.request_end())

    def abort(self) -> None:
        fut: Future = Future()
        self._send(_ABORT, fut, "abort the episode")
        self._wait(fut, "abort the episode")

    def stop(self, timeout: float = 30.0) -> None:
        """End the thread (waiting at most `timeout`); a hung worker is left behind (it is a daemon thread) with a
        stop request queued if there is room, so it ends if it ever comes back."""
        if not self._thread.is_alive():
            return
        try:
            self._q.put((_STOP, None), timeout=0 if self._hung else timeout)
        except queue.Full:
            return
        if not self._hung:
            self._thread.join(timeout)

    # ---- bounded waits on the worker thread
    def _check_not_hung(self) -> None:
        if self._hung is not None:
            raise EncoderHungError(f"{self.name}: the worker is hung ({self._hung}); close the writer and open the "
                                   "dataset again")

    def _declare_hung(self, what: str) -> EncoderHungError:
        self._hung = what
        log.error("%s: worker hung: %s", self.name, what)
        return EncoderHungError(f"{self.name}: {what} (a hung encoder or disk?)")

    def _send(self, kind: int, payload: Any, stage: str) -> None:
        self._check_not_hung()
        try:
            self._q.put((kind, payload), timeout=self._command_timeout_s)
        except queue.Full:
            raise self._declare_hung(f"its queue stayed full for {self._command_timeout_s:g} s when asked to "
                                     f"{stage}") from None

    def _wait(self, fut: Future, stage: str, timeout: float | None = None) -> Any:
        limit = self._command_timeout_s if timeout is None else max(0.0, timeout)
        try:
            return fut.result(timeout=limit)
        except FutureTimeout:
            raise self._declare_hung(f"the worker did not {stage} within {self._command_timeout_s:g} s") from None

    # ---- worker thread
    def _run(self) -> None:
        while True:
            kind, payload = self._q.get()
            if kind == _FRAME:
                if self._error is None:
                    try:
                        self._on_frame(payload)
                        if self._sample_stats:
                            self._sampler.add(payload)
                        self._frames += 1
                    except BaseException as exc:  # noqa: BLE001 - reported to the producer
                        log.error("%s: worker failed: %r", self.name, exc)
                        self._error = exc
            elif kind == _BEGIN:
                self._reset()
                try:
                    self._on_begin(payload)
                except BaseException as exc:  # noqa: BLE001
                    self._error = exc
            elif kind == _END:
                fut = payload
                try:
                    if self._error is not None:
                        raise EncoderError(f"{self.name}: worker failed: {self._error!r}") from self._error
                    stats = None
                    if self._sample_stats and self._frames > 0:
                        stats = image_stats(self._sampler.samples())
                    fut.set_result(self._on_end(self._frames, stats))
                except BaseException as exc:  # noqa: BLE001
                    self._safe_abort()
                    fut.set_exception(exc)
                finally:
                    self._reset()
            elif kind == _ABORT:
                self._safe_abort()
                self._reset()
                payload.set_result(None)
            elif kind == _STOP:
                self._safe_abort()
                return

    def _reset(self) -> None:
        self._error = None
        self._frames = 0
        self._sampler.reset()

    def _safe_abort(self) -> None:
        try:
            self._on_abort()
        except BaseException as exc:  # noqa: BLE001
            log.warning("%s: cleanup after abort failed: %r", self.name, exc)

    # ---- subclass hooks (run in the worker thread)
    def _on_begin(self, payload: Any) -> None:  # pragma: no cover - default
        pass

    def _on_frame(self, frame_hwc: np.ndarray) -> None:
        raise NotImplementedError

    def _on_end(self, num_frames: int, stats: Stats | None) -> WorkerResult:
        raise NotImplementedError

    def _on_abort(self) -> None:
        pass


class SegmentEncoder:
    """Encodes RGB frames (H, W, 3 uint8) into one standalone mp4 segment: CFR, pts = frame number, time base
    1/fps, first frame a keyframe, so segments can be stream-copied one after another into a dataset's file."""

    def __init__(self, path: Path | str, fps: int, width: int, height: int, config: VideoEncoderConfig):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._time_base = Fraction(1, int(fps))
        self._frames = 0
        self._codec_open = False  # PyAV opens the codec, and SVT-AV1 starts its threads, at the first encode
        self._container: Any = av.open(str(self.path), "w")
        try:
            stream = self._container.add_stream(config.encoder_name, rate=int(fps), options=config.codec_options())
            stream.width = width
            stream.height = height
            stream.pix_fmt = config.pix_fmt
            stream.time_base = self._time_base
        except BaseException:
            self._container.close()
            raise
        self._stream = stream

    def add(self, frame_hwc: np.ndarray) -> None:
        # Zero-copy wrap of a C-contiguous array. The encoder converts rgb24 -> yuv420p with swscale, as upstream's
        # encoder does (OpenCV's I420 conversion is cheaper but its chroma filter differs).
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(frame_hwc), format="rgb24")
        frame.pts = self._frames
        frame.time_base = self._time_base
        self._container.mux(self._encode(frame))
        self._frames += 1

    def finish(self) -> int:
        """Flush the encoder and close the file; returns the number of frames."""
        self._container.mux(self._encode(None))
        self._container.close()
        return self._frames

    def _encode(self, frame: av.VideoFrame | None) -> list:
        if self._codec_open:
            return self._stream.encode(frame)
        self._codec_open = True
        return keeping_thread_scheduling(self._stream.encode, frame)  # SVT-AV1 turns it real-time as root

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - a failed encoder may refuse to flush; the file is deleted anyway
            pass
        self.path.unlink(missing_ok=True)


class VideoSegmentWorker(FrameWorker):
    """Encodes one camera's frames of the current episode into a segment mp4 (SegmentEncoder) in its thread."""

    def __init__(self, name: str, fps: int, width: int, height: int, config: VideoEncoderConfig):
        self._fps = int(fps)
        self._width = width
        self._height = height
        self._config = config
        self._encoder: SegmentEncoder | None = None
        super().__init__(name, config.queue_maxsize, config.stall_timeout_s, command_timeout_s=config.command_timeout_s)

    def _on_begin(self, payload: Any) -> None:
        self._on_abort()
        self._encoder = SegmentEncoder(payload, self._fps, self._width, self._height, self._config)

    def _on_frame(self, frame_hwc: np.ndarray) -> None:
        if self._encoder is None:
            raise EncoderError(f"{self.name}: frame received outside an episode")
        self._encoder.add(frame_hwc)

    def _on_end(self, num_frames: int, stats: Stats | None) -> WorkerResult:
        if self._encoder is None:
            raise EncoderError(f"{self.name}: no episode was started")
        encoder, self._encoder = self._encoder, None
        encoder.finish()
        fsync_file(encoder.path)
        return WorkerResult(num_frames=num_frames, stats=stats, segment_path=encoder.path)

    def _on_abort(self) -> None:
        if self._encoder is not None:
            self._encoder.abort()
            self._encoder = None


class PngImageWorker(FrameWorker):
    """PNG-encodes an image feature's frames into a spill file of the episode (embedded into the data parquet,
    a bounded batch of frames at a time, when the episode is saved)."""

    def __init__(self, name: str, queue_maxsize: int = 60, stall_timeout_s: float = 30.0, compress_level: int = 6,
                 command_timeout_s: float = 60.0):
        self._compress_level = compress_level
        self._spill: SpilledPngs | None = None
        self._file: Any = None
        super().__init__(name, queue_maxsize, stall_timeout_s, command_timeout_s=command_timeout_s)

    def _on_begin(self, payload: Any) -> None:
        self._on_abort()
        path = Path(payload)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "wb")
        self._spill = SpilledPngs(path)

    def _on_frame(self, frame_hwc: np.ndarray) -> None:
        if self._file is None or self._spill is None:
            raise EncoderError(f"{self.name}: frame received outside an episode")
        png = encode_png(frame_hwc, self._compress_level)
        self._spill.offsets.append(self._file.tell())
        self._spill.sizes.append(len(png))
        self._file.write(png)

    def _on_end(self, num_frames: int, stats: Stats | None) -> WorkerResult:
        if self._file is None:
            raise EncoderError(f"{self.name}: no episode was started")
        self._file.close()
        spill, self._file, self._spill = self._spill, None, None
        return WorkerResult(num_frames=num_frames, stats=stats, pngs=spill)

    def _on_abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._spill is not None:
            self._spill.path.unlink(missing_ok=True)
            self._spill = None


def encode_png(frame_hwc: np.ndarray, compress_level: int = 6) -> bytes:
    import cv2  # local import: opencv is only needed for image features

    if frame_hwc.ndim == 3 and frame_hwc.shape[2] == 3:
        bgr = np.ascontiguousarray(frame_hwc[:, :, ::-1])
    elif frame_hwc.ndim == 3 and frame_hwc.shape[2] == 1:
        bgr = frame_hwc[:, :, 0]
    else:
        bgr = frame_hwc
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)])
    if not ok:
        raise EncoderError("PNG encoding failed")
    return buf.tobytes()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) declared by a PNG's IHDR header, or None when the bytes do not start like a PNG."""
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")


def decode_png(data: bytes, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """PNG bytes -> (H, W, C) uint8 RGB (C=1 for grayscale); ValueError for bytes that do not decode. With
    `expected_hw`, a PNG whose header declares another size is refused BEFORE decoding (a hostile header can
    declare gigapixels)."""
    import cv2

    if expected_hw is not None:
        declared = png_size(data)
        if declared is not None and declared != tuple(expected_hw):
            raise ValueError(f"image is {declared[1]}x{declared[0]} (declared in its PNG header), expected "
                             f"{expected_hw[1]}x{expected_hw[0]}")
    try:
        arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ValueError(f"image bytes could not be decoded: {str(exc).strip().splitlines()[-1]}") from None
    if arr is None:
        raise ValueError("image bytes could not be decoded")
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.shape[2] == 4:
        return np.ascontiguousarray(arr[:, :, [2, 1, 0, 3]])
    return np.ascontiguousarray(arr[:, :, ::-1])


# ---------------------------------------------------------------------------------------------- mp4 files
def concat_segment(target: Path, segment: Path, tmp: Path) -> None:
    """Write `target` + `segment` (stream copy, no re-encode, faststart) into `tmp`.

    Segment packets are shifted to start where the target's last packet ends, so the timeline stays CFR.
    The caller flushes `tmp` and atomically renames it over `target` (durable_io.atomic_output).
    """
    with av.open(str(target)) as src_a, av.open(str(segment)) as src_b:
        in_a = src_a.streams.video[0]
        in_b = src_b.streams.video[0]
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"}) as out:
            ost = out.add_stream_from_template(in_a, opaque=True)
            end = 0
            for pkt in src_a.demux(in_a):
                if pkt.dts is None:
                    continue
                end = max(end, pkt.pts + (pkt.duration or 0))
                pkt.stream = ost
                out.mux(pkt)
            offset = Fraction(end) * in_a.time_base / in_b.time_base
            if offset.denominator != 1:
                raise ValueError(f"cannot concatenate {segment} onto {target}: time bases {in_a.time_base} and {in_b.time_base} do not align")
            shift = int(offset)
            for pkt in src_b.demux(in_b):
                if pkt.dts is None:
                    continue
                pkt.pts += shift
                pkt.dts += shift
                pkt.stream = ost
                out.mux(pkt)


def video_frame_count(path: Path | str) -> int:
    """Number of video frames (from the mp4 sample table when present, else by demuxing)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.frames:
            return int(s.frames)
        return sum(1 for p in c.demux(s) if p.dts is not None)


def probe_video_info(path: Path | str) -> dict[str, Any]:
    """Stream-derived keys of features[key]['info'] (as upstream get_video_info)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pix_fmt = s.codec_context.pix_fmt or s.format.name
        info = {
            "video.height": s.height,
            "video.width": s.width,
            "video.codec": s.codec.canonical_name if hasattr(s, "codec") else s.codec_context.name,
            "video.pix_fmt": pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(s.base_rate),
            "video.channels": pix_fmt_channels(pix_fmt),
            "has_audio": len(c.streams.audio) > 0,
        }
    return info


def pix_fmt_channels(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 3
    if pix_fmt.startswith("gray"):
        return 1
    if pix_fmt.startswith(("rgba", "bgra", "argb", "abgr", "yuva")):
        return 4
    return 3


__all__ = [
    "EncoderError",
    "EncoderHungError",
    "EncoderStalledError",
    "FrameWorker",
    "PngImageWorker",
    "SegmentEncoder",
    "SpilledPngs",
    "VideoEncoderConfig",
    "VideoSegmentWorker",
    "WorkerResult",
    "concat_segment",
    "decode_png",
    "encode_png",
    "probe_video_info",
    "video_frame_count",
]
