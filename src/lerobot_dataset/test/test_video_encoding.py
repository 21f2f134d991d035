"""Video side of the writer: encoder settings, CFR concatenation, keyframes per episode, backlog/stall reporting."""

import logging
import os
import threading
import time
from contextlib import contextmanager
from fractions import Fraction

import av
import numpy as np
import pytest

from lerobot_dataset import LeRobotDatasetWriter, VideoEncoderConfig
from lerobot_dataset import format as F
from lerobot_dataset import thread_scheduling as sched
from lerobot_dataset.video import VideoSegmentWorker, concat_segment, probe_video_info, video_frame_count
from lerobot_dataset.writer import EpisodeSaveError

FPS = 30
H, W = 48, 64
CAM = "observation.images.cam"
FEATS = {
    "observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
    CAM: {"dtype": "video", "shape": (H, W, 3), "names": ["height", "width", "channels"]},
}


def frame(value):
    return {"observation.state": np.zeros(2, np.float32), CAM: np.full((H, W, 3), value, np.uint8)}


def packets(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(p.pts, p.dts, p.is_keyframe) for p in c.demux(s) if p.dts is not None], s.time_base


def test_encoder_config_defaults_and_options():
    cfg = VideoEncoderConfig()
    assert (cfg.vcodec, cfg.pix_fmt, cfg.g, cfg.crf, cfg.resolved_preset) == ("libsvtav1", "yuv420p", 2, 30, 12)
    assert cfg.codec_options() == {"g": "2", "crf": "30", "preset": "12"}
    assert VideoEncoderConfig(fast_decode=5, encoder_threads=2).codec_options()["svtav1-params"] == "fast-decode=2:lp=2"
    h264 = VideoEncoderConfig(vcodec="h264", preset="veryfast", crf=23, extra_options={"crf": "1", "tune": "zerolatency"})
    assert h264.encoder_name == "libx264"
    # structured keys win over extra_options; no B-frames so segments concatenate with pts == dts
    assert h264.codec_options() == {"g": "2", "crf": "23", "preset": "veryfast", "bf": "0", "tune": "zerolatency"}
    assert VideoEncoderConfig(vcodec="av1").encoder_name == "libsvtav1"
    with pytest.raises(ValueError, match="not available"):
        VideoEncoderConfig(vcodec="no_such_codec")
    back = VideoEncoderConfig.from_video_info({"video.codec": "h264", "video.g": 4, "video.crf": 20, "video.preset": "fast"})
    assert (back.encoder_name, back.g, back.crf, back.preset) == ("libx264", 4, 20, "fast")


@pytest.mark.parametrize("codec", ["libsvtav1", "h264"])
def test_episodes_concatenate_cfr_each_starting_on_keyframe(tmp_path, codec):
    root = tmp_path / "ds"
    lengths = [7, 12, 5]
    cfg = VideoEncoderConfig(vcodec=codec, g=30 if codec == "h264" else 2, preset="ultrafast" if codec == "h264" else None)
    with LeRobotDatasetWriter.create(root, FPS, FEATS, video_encoder=cfg) as w:
        for ep, n in enumerate(lengths):
            for i in range(n):
                w.add_frame(frame(10 + 40 * ep + 3 * i), task="t")
            w.save_episode()
    path = F.video_file_path(root, CAM, 0, 0)
    pkts, tb = packets(path)
    assert len(pkts) == sum(lengths)
    assert all(p == d for p, d, _ in pkts)  # no reordering
    times = [Fraction(p) * tb for p, _, _ in pkts]
    assert times == [Fraction(k, FPS) for k in range(sum(lengths))]
    keys = {Fraction(p) * tb for p, _, k in pkts if k}
    assert {Fraction(0), Fraction(7, FPS), Fraction(19, FPS)} <= keys  # even with a GOP longer than the episode
    info = probe_video_info(path)
    assert info["video.codec"] == ("av1" if codec == "libsvtav1" else "h264")
    assert (info["video.width"], info["video.height"], info["video.fps"], info["video.pix_fmt"]) == (W, H, 30, "yuv420p")
    with av.open(str(path)) as c:
        means = [f.to_ndarray(format="rgb24").mean() for f in c.decode(video=0)]
    assert abs(means[7] - 50) < 4 and abs(means[19 + 4] - (10 + 80 + 12)) < 4


def test_concat_segment_direct(tmp_path):
    cfg = VideoEncoderConfig()
    worker = VideoSegmentWorker("cam", FPS, W, H, cfg)
    try:
        segs = []
        for n in (4, 6):
            p = tmp_path / f"seg{n}.mp4"
            worker.begin(p)
            for i in range(n):
                worker.put_frame(np.full((H, W, 3), 100, np.uint8))
            res = worker.end()
            assert res.num_frames == n and res.segment_path == p
            assert res.stats["count"].tolist() == [n] and res.stats["mean"].shape == (3, 1, 1)
            segs.append(p)
    finally:
        worker.stop()
    concat_segment(segs[0], segs[1], tmp_path / "out.mp4")
    assert video_frame_count(tmp_path / "out.mp4") == 10
    pkts, tb = packets(tmp_path / "out.mp4")
    assert [Fraction(p) * tb for p, _, _ in pkts] == [Fraction(k, FPS) for k in range(10)]


class _SlowEncode:
    """Wraps the real per-frame encode with a delay, to emulate an encoder that cannot keep up."""

    def __init__(self, worker, delay_s):
        self.real = worker._on_frame
        self.delay_s = delay_s

    def __call__(self, frame_hwc):
        time.sleep(self.delay_s)
        self.real(frame_hwc)


def test_backlog_blocks_and_is_reported_never_drops(tmp_path, caplog):
    root = tmp_path / "ds"
    cfg = VideoEncoderConfig(queue_maxsize=2)
    n = 15
    with LeRobotDatasetWriter.create(root, FPS, FEATS, video_encoder=cfg) as w:
        worker = w._workers[CAM]
        worker._on_frame = _SlowEncode(worker, 0.02)
        backlog_seen = []
        with caplog.at_level(logging.WARNING):
            for i in range(n):
                w.add_frame(frame(5 * i), task="t")
                backlog_seen.append(w.encoder_backlog)
        assert max(backlog_seen) >= 1
        assert w.encoder_stalls >= 1 and w.encoder_stall_seconds > 0
        assert any("encoder queue full" in r.getMessage() and CAM in r.getMessage() for r in caplog.records)
        summary = w.save_episode()
        assert summary.encoder_stalls == w.encoder_stalls >= 1
        assert w.encoder_backlog == 0
    assert video_frame_count(F.video_file_path(root, CAM, 0, 0)) == n  # every frame made it


def test_stall_timeout_abandons_episode_with_clear_error(tmp_path):
    root = tmp_path / "ds"
    cfg = VideoEncoderConfig(queue_maxsize=1, stall_timeout_s=0.1)
    with LeRobotDatasetWriter.create(root, FPS, FEATS, video_encoder=cfg) as w:
        worker = w._workers[CAM]
        slow = _SlowEncode(worker, 0.5)
        worker._on_frame = slow
        with pytest.raises(EpisodeSaveError, match=f"{CAM}: encoder queue stayed full"):
            for i in range(10):
                w.add_frame(frame(i), task="t")
        assert w.episode_length == 0
        worker._on_frame = slow.real
        for i in range(3):
            w.add_frame(frame(i), task="t")
        assert w.save_episode().episode_index == 0
    assert video_frame_count(F.video_file_path(root, CAM, 0, 0)) == 3


class _HungEncode:
    """Makes a worker's per-frame work block, as a hung encoder or a dead disk does, until released."""

    def __init__(self, worker):
        self.real = worker._on_frame
        self.release = threading.Event()

    def __call__(self, frame_hwc):
        self.release.wait(120)
        self.real(frame_hwc)


def _finishes_within(seconds, call):
    """call() run on a helper thread: its result or exception, or a test failure if it has not returned in time
    (so a writer that deadlocks fails the test instead of hanging the test run)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@contextmanager
def _writer_with_a_hung_encoder(root, cfg):
    """A new dataset's writer whose camera encoder hangs until the test is over; closing it must not block."""
    w = LeRobotDatasetWriter.create(root, FPS, FEATS, video_encoder=cfg)
    hang = _HungEncode(w._workers[CAM])
    w._workers[CAM]._on_frame = hang
    try:
        yield w
        _finishes_within(30, w.close)
    finally:
        hang.release.set()


def test_a_hung_encoder_fails_the_save_naming_the_camera(tmp_path):
    """Issue 9 item 7: save_episode waited for the camera worker without a bound, so a hung encoder or disk kept
    the caller (the recorder's recording thread) forever. Now the save fails after command_timeout_s with the
    camera and the stage named, and every later call fails at once instead of waiting again."""
    with _writer_with_a_hung_encoder(tmp_path / "ds", VideoEncoderConfig(vcodec="h264", command_timeout_s=1.0)) as w:
        for i in range(3):
            w.add_frame(frame(i), task="t")
        with pytest.raises(EpisodeSaveError, match=f"{CAM}: the worker did not finish episode 0 within 1 s"):
            _finishes_within(30, w.save_episode)
        assert w.episode_length == 0
        with pytest.raises(EpisodeSaveError, match=f"{CAM}: the worker is hung"):
            _finishes_within(30, lambda: w.add_frame(frame(0), task="t"))
    assert not (tmp_path / "ds").exists()  # nothing was saved: nothing left behind


def test_a_hung_encoder_never_blocks_the_discard_after_a_stall(tmp_path):
    """A full queue in front of a hung encoder: add_frame gives up after stall_timeout_s and discards the episode;
    that discard (it queued an abort behind the full queue and waited for it) is bounded too, as is the next
    episode's begin."""
    cfg = VideoEncoderConfig(vcodec="h264", queue_maxsize=2, stall_timeout_s=0.2, command_timeout_s=1.0)
    with _writer_with_a_hung_encoder(tmp_path / "ds", cfg) as w:
        def record_until_it_fails():
            for i in range(10):
                w.add_frame(frame(i), task="t")

        with pytest.raises(EpisodeSaveError, match=f"{CAM}: encoder queue stayed full"):
            _finishes_within(30, record_until_it_fails)
        assert w.episode_length == 0
        with pytest.raises(EpisodeSaveError, match=f"{CAM}: the worker is hung.*abort the episode"):
            _finishes_within(30, lambda: w.add_frame(frame(0), task="t"))


as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root may switch a thread to real-time scheduling")


@as_root
def test_video_encoding_leaves_no_thread_real_time(tmp_path):
    """SVT-AV1 switches the thread that opens it to SCHED_FIFO 99 as root (and its encoder threads inherit it); a
    recording (here through the writer's camera worker thread) must not leave real-time threads behind."""
    before = sched.real_time_threads()
    with LeRobotDatasetWriter.create(tmp_path / "ds", FPS, FEATS, use_videos=True, fsync=False) as writer:
        for i in range(4):
            writer.add_frame(frame(i * 40), task="t")
        writer.save_episode()  # waits for the camera worker's encoder (during its first encode SVT is at FIFO 99)
    assert sched.real_time_threads() == before


@as_root
def test_scheduling_guard_restores_the_caller_and_the_threads_it_started():
    """As SVT-AV1 does: pthread_setschedparam(self, SCHED_FIFO, 99), then start threads (they inherit it). After
    the guard, the caller, those threads and any thread the caller starts later are back on the caller's policy."""
    started = threading.Event()
    stop = threading.Event()

    def go_real_time_and_start_a_thread():
        sched.set_own_scheduling(os.SCHED_FIFO, 99)
        worker = threading.Thread(target=lambda: (started.set(), stop.wait(10)), daemon=True)
        worker.start()
        started.wait(10)
        return worker.native_id

    def thread_started_now():
        seen = []
        later = threading.Thread(target=lambda: (seen.append(sched.own_scheduling_as_glibc_records_it()),
                                                 stop.wait(10)), daemon=True)
        later.start()
        while not seen:
            time.sleep(0.01)
        return later.native_id, seen[0]

    caller = threading.get_native_id()
    before = sched.thread_schedules()[caller]
    try:
        worker_tid = sched.keeping_thread_scheduling(go_real_time_and_start_a_thread)
        later_tid, later_as_glibc_records_it = thread_started_now()
        after = sched.thread_schedules()
        assert after[caller] == before
        assert after[worker_tid] == before
        assert after[later_tid] == before
        # glibc hands its record of the caller's policy to new threads, and Fast DDS applies what it reads there to
        # each thread it starts: a reset behind glibc's back made every DDS thread started later FIFO 99.
        assert sched.own_scheduling_as_glibc_records_it() == before
        assert later_as_glibc_records_it == before
    finally:
        stop.set()
        sched.set_own_scheduling(*before)
