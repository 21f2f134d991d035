"""Video side of the dataset tools: copy episode segments between concatenated mp4 files without re-encoding.

In a v3.0 dataset every episode of a camera is a contiguous segment `[from_timestamp, to_timestamp)` of one mp4, and
every episode starts on a keyframe (each episode was encoded on its own, then stream-copied into the file). So an
episode can be moved to another file by copying its packets and shifting their timestamps ("remux"). When that is
not possible (the segment does not start on a keyframe, or its packets do not match its frame count) the segment is
decoded and re-encoded with the encoder described in info.json.

Output files roll over like upstream's writer: when `size(current file) + size(segment) >= video_files_size_in_mb`,
and also when a segment's stream parameters (codec, size, pixel format, codec extradata) differ from the current
file's, since one mp4 stream has one set of parameters.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import av
import numpy as np

from .format import next_chunk_file, video_file_path
from .video import SegmentEncoder, VideoEncoderConfig



@dataclass(frozen=True)
class Placement:
    """Where a segment landed in the output: file numbers and its new span in seconds."""

    chunk_index: int
    file_index: int
    from_timestamp: float
    to_timestamp: float
    reencoded: bool


@dataclass
class _Segment:
    packets: list[av.Packet]
    time_base: Fraction
    start_pts: int
    nbytes: int
    template: Any  # the source stream (for add_stream_from_template)
    params: tuple


def _stream_params(stream: Any) -> tuple:
    cc = stream.codec_context
    return (cc.name, cc.width, cc.height, str(cc.format.name if cc.format else None), bytes(cc.extradata or b""))


def read_segment(path: Path, from_ts: float, to_ts: float, n_frames: int, fps: int) -> tuple[_Segment, Any] | None:
    """Packets of [from_ts, to_ts) in one mp4, or None when they cannot be stream-copied as a self-contained segment.

    Returns (segment, container); the caller closes the container after muxing (packets reference its buffers).
    """
    container = av.open(str(path))
    stream = container.streams.video[0]
    tb = stream.time_base
    half = Fraction(1, 2 * fps)
    start = Fraction(from_ts).limit_denominator(1_000_000)
    end = Fraction(to_ts).limit_denominator(1_000_000)
    container.seek(int(round(start / tb)), stream=stream, backward=True, any_frame=False)
    packets: list[av.Packet] = []
    for pkt in container.demux(stream):
        if pkt.dts is None and pkt.pts is None:  # flush packet at end of file
            continue
        pts = pkt.pts if pkt.pts is not None else pkt.dts
        t = pts * tb
        if pkt.dts is not None and pkt.dts * tb >= end + 4 * half:
            break
        if start - half <= t < end - half:
            packets.append(pkt)
    ok = (
        len(packets) == n_frames
        and packets[0].is_keyframe
        and abs(min(p.pts for p in packets) * tb - start) < half
    )
    if not ok:
        container.close()
        return None
    start_pts = min(p.pts for p in packets)
    seg = _Segment(
        packets=packets,
        time_base=tb,
        start_pts=start_pts,
        nbytes=sum(p.size for p in packets),
        template=stream,
        params=_stream_params(stream),
    )
    return seg, container


def iter_segment_frames(path: Path, from_ts: float, n_frames: int, fps: int) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (i, decoded frame) for the frames at from_ts + i/fps, i < n_frames (nearest decoded frame), one at a
    time so long episodes never sit in memory. Raises when the file holds fewer frames than that."""
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        container.seek(int(round(from_ts / tb)), stream=stream, backward=True, any_frame=False)
        tol = 0.5 / fps
        for frame in container.decode(stream):
            if float(frame.pts * tb) < from_ts + count / fps - tol:
                continue
            yield count, frame
            count += 1
            if count >= n_frames:
                return
    raise RuntimeError(f"{path}: decoded {count} frames from t={from_ts:.4f}s, expected {n_frames}")


def decode_segment_frames(
    path: Path, from_ts: float, n_frames: int, fps: int, keep: Sequence[int] | None = None
) -> list[np.ndarray]:
    """RGB frames (H,W,3 uint8) of the segment; with `keep`, only those frame positions (in `keep` order)."""
    wanted = None if keep is None else set(keep)
    got: dict[int, np.ndarray] = {}
    for i, frame in iter_segment_frames(path, from_ts, n_frames, fps):
        if wanted is None or i in wanted:
            got[i] = frame.to_ndarray(format="rgb24")
    order = range(n_frames) if keep is None else keep
    return [got[i] for i in order]


def reencode_segment(
    src: Path, from_ts: float, n_frames: int, fps: int, feature_info: Mapping[str, Any], dst: Path
) -> None:
    """Decode n_frames from src at from_ts and encode them into a standalone mp4 (first frame a keyframe) with the
    encoder the camera was recorded with, rebuilt from its info.json block (defaults as upstream: AV1 via SVT,
    g=2, crf=30, preset 12)."""
    config = VideoEncoderConfig.from_video_info(dict(feature_info))
    encoder: SegmentEncoder | None = None
    try:
        for _, frame in iter_segment_frames(src, from_ts, n_frames, fps):
            rgb = frame.to_ndarray(format="rgb24")
            if encoder is None:
                encoder = SegmentEncoder(dst, fps, rgb.shape[1], rgb.shape[0], config)
            encoder.add(rgb)
        if encoder is not None:
            encoder.finish()
    except BaseException:
        if encoder is not None:
            encoder.abort()
        raise


class VideoFileSink:
    """Output mp4 files of one camera: appends episode segments by remux, rolling files like upstream's writer."""

    def __init__(
        self,
        root: Path,
        video_key: str,
        fps: int,
        chunks_size: int,
        file_size_mb: float,
        feature_info: Mapping[str, Any],
        force_reencode: bool = False,
    ):
        self.root = root
        self.video_key = video_key
        self.fps = fps
        self.chunks_size = chunks_size
        self.limit_bytes = file_size_mb * 1024 * 1024
        self.feature_info = dict(feature_info)
        self.force_reencode = force_reencode
        self.chunk, self.file = 0, 0
        self._out: Any = None
        self._out_stream: Any = None
        self._params: tuple | None = None
        self._bytes = 0
        self._position = Fraction(0)  # seconds written into the current file
        self._started = False
        self.reencoded_segments = 0

    def _open_next(self, seg: _Segment) -> None:
        if self._out is not None:
            self._close_current()
            self.chunk, self.file = next_chunk_file(self.chunk, self.file, self.chunks_size)
        elif self._started:
            self.chunk, self.file = next_chunk_file(self.chunk, self.file, self.chunks_size)
        self._started = True
        path = video_file_path(self.root, self.video_key, self.chunk, self.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(path), "w", options={"movflags": "faststart"})
        self._out_stream = self._out.add_stream_from_template(seg.template, opaque=True)
        self._params = seg.params
        self._bytes = 0
        self._position = Fraction(0)

    def _close_current(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            self._out_stream = None

    def add_episode(self, src: Path, from_ts: float, to_ts: float, n_frames: int) -> Placement:
        reencoded = False
        opened = None if self.force_reencode else read_segment(src, from_ts, to_ts, n_frames, self.fps)
        tmpdir = None
        try:
            if opened is None:
                tmpdir = tempfile.TemporaryDirectory(prefix="lerobot_reencode_")
                tmp = Path(tmpdir.name) / "segment.mp4"
                reencode_segment(src, from_ts, n_frames, self.fps, self.feature_info, tmp)
                opened = read_segment(tmp, 0.0, n_frames / self.fps, n_frames, self.fps)
                if opened is None:
                    raise RuntimeError(f"re-encoded segment of {src} at {from_ts:.4f}s is not stream-copyable")
                reencoded = True
                self.reencoded_segments += 1
            seg, container = opened
            try:
                return self._mux(seg, n_frames, reencoded)
            finally:
                container.close()
        finally:
            if tmpdir is not None:
                tmpdir.cleanup()

    def _mux(self, seg: _Segment, n_frames: int, reencoded: bool) -> Placement:
        needs_new = (
            self._out is None
            or seg.params != self._params
            or (self._bytes > 0 and self._bytes + seg.nbytes >= self.limit_bytes)
        )
        if needs_new:
            self._open_next(seg)
        start = self._position
        # Shift in the source time base; PyAV rebases packet.time_base -> the output stream's time base on mux.
        shift = int(round(start / seg.time_base)) - seg.start_pts
        for pkt in seg.packets:
            if pkt.pts is not None:
                pkt.pts += shift
            if pkt.dts is not None:
                pkt.dts += shift
            pkt.stream = self._out_stream
            self._out.mux(pkt)
        self._bytes += seg.nbytes
        duration = Fraction(n_frames, self.fps)
        self._position = start + duration
        return Placement(self.chunk, self.file, float(start), float(start + duration), reencoded)

    def close(self) -> None:
        self._close_current()
