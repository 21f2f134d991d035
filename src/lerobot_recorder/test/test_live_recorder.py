"""LiveRecorder (the recorder node's rules, ROS-free): the real recording thread and dataset writer, messages fed as
the node's subscriptions would, time driven by the test.

Covers what review and hostile input found (issue 9): glitched stamps, malformed compressed images, values that
overflow float32, the discard default and episode removal off the node's locks, a hung writer, memory before the
first activation; and (issue 15) an episode without a frame is an error that names the silent stream.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import recorder_streams as rs  # noqa: E402

from lerobot_recorder import live_recorder  # noqa: E402
from lerobot_recorder.live_recorder import LiveRecorder, RecorderSettings  # noqa: E402
from lerobot_recorder.recording_session import RecorderState  # noqa: E402

T0 = 1_800_000_000 * rs.NS + 987_654_321
MS = 1_000_000


class ListLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(f"INFO {msg}")

    def warning(self, msg: str) -> None:
        self.lines.append(f"WARN {msg}")

    def error(self, msg: str) -> None:
        self.lines.append(f"ERROR {msg}")

    def text(self) -> str:
        return "\n".join(self.lines)


class LiveRig:
    """A configured LiveRecorder whose clock is the arrival time of the last message fed."""

    def __init__(self, tmp_path: Path, interface_text: str | None = None, **settings) -> None:
        path = tmp_path / "iface.yaml"
        path.write_text(interface_text or rs.interface_yaml())
        self.now = T0 - 500 * MS
        self.log = ListLog()
        defaults = dict(vcodec="h264", reset_time_s=0.0, latency_s=0.1)
        defaults.update(settings)
        self.recorder = LiveRecorder(RecorderSettings(str(path), str(tmp_path / "ds"), **defaults),
                                     clock=lambda: self.now, log=self.log)
        self.recorder.configure()
        self.root = tmp_path / "ds"

    def feed(self, messages, until_ns: int | None = None) -> None:
        """Deliver messages (rs.ScheduledMessage or (topic, msg, arrival_ns)) in order, moving the clock along."""
        for m in messages:
            topic, msg, arrival = ((m.topic(), rs.rclpy_message(m), m.arrival_ns) if isinstance(m, rs.ScheduledMessage)
                                   else m)
            if until_ns is not None and arrival > until_ns:
                break
            self.now = max(self.now, arrival)
            self.recorder.on_message(topic, msg)
        if until_ns is not None:
            self.now = max(self.now, until_ns)

    def settle(self) -> None:
        """Until the recording loop has evaluated every tick due at the current clock."""
        wait_for(lambda: self.recorder.session.assembler is not None and
                 self.recorder.session.assembler.clock.next_time_ns > self.now - 2 * 100 * MS, "ticks evaluated")

    def record(self, task: str, schedule: rs.Schedule, start_ns: int, end_ns: int):
        """Begin an episode at start_ns, feed the schedule up to end_ns, stop; the episode's report."""
        self.feed(schedule.messages, until_ns=start_ns)
        outcome = self.recorder.try_begin(task, 0.0)
        assert outcome.attempt, outcome
        self.feed([m for m in schedule.messages if start_ns < m.arrival_ns <= end_ns], until_ns=end_ns)
        self.settle()
        stopped = self.stop()
        report = self.recorder.take_report(outcome.attempt)
        assert report is not None, stopped
        return report

    def stop(self):
        """~/stop while the clock runs on (the last ticks are evaluated once their latency has passed)."""
        answers = []
        stopping = threading.Thread(target=lambda: answers.append(self.recorder.stop()))
        stopping.start()
        while stopping.is_alive():
            self.now += 20 * MS
            time.sleep(0.01)
        return answers[0]

    def close(self) -> None:
        self.recorder.close("test done")


def wait_for(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture
def rig(tmp_path):
    made = []

    def make(**kwargs) -> LiveRig:
        made.append(LiveRig(tmp_path, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_nothing_is_buffered_before_the_first_activation(rig):
    """Issue: subscriptions filled pending samples without bound while configured but not active (~80 MB/s with
    three cameras). Inactive, a message is counted and dropped undecoded."""
    r = rig()
    schedule = rs.make_schedule(T0, 3.0)
    r.feed(schedule.messages)
    camera = r.recorder.topics["/rt/cameras/front/image_raw"]
    assert camera.received == camera.ignored_inactive == 90
    assert r.recorder.session.buffered_samples == 0
    r.recorder.activate()
    r.feed(rs.make_schedule(T0 + 4 * rs.NS, 0.5).messages)
    assert 0 < r.recorder.session.buffered_samples <= 3 * r.recorder.session.buffer_capacity


def test_pending_samples_before_the_first_tick_are_bounded(rig):
    r = rig()
    session = r.recorder.session
    from lerobot_recorder.alignment import Sample

    for i in range(5000):
        session.add_sample(Sample("observation.state", T0 + i, np.zeros(6, np.float32)))
    assert session.buffered_samples == session.buffer_capacity


def test_a_glitched_live_stamp_costs_one_message(rig):
    """A JointState stamped an hour ahead is dropped as implausibly stamped and does not move the stream's last
    stamp: later messages are not non-monotonic, the episode keeps its frames."""
    r = rig()
    r.recorder.activate()
    schedule = rs.make_schedule(T0, 2.0, faults={("follower", 40): "stamp_ahead"})
    report = r.record("glitch", schedule, T0 + 200 * MS, T0 + 1800 * MS)
    follower = r.recorder.topics["/rt/follower/joint_states"]
    assert follower.implausible_stamps == 1 and follower.non_monotonic == 0
    expected = rs.expected_frames(schedule, report.first_frame_ns, report.last_frame_ns + 1)
    assert report.saved and report.frames == len(expected) and report.dropped == 0
    assert report.frames >= 40  # ~1.5 s at 30 fps, not cut at the glitch
    assert "stamped 3600.000 s after it arrived" in r.log.text()


def test_a_value_that_overflows_float32_skips_the_tick_not_the_episode(rig):
    """1e39 rad is finite in float64 and inf in float32 after rad2deg: that tick has no frame, the episode is
    saved, and the recorder is not in ERROR."""
    r = rig()
    r.recorder.activate()
    schedule = rs.make_schedule(T0, 2.0, faults={("follower", 40): "overflow"})
    report = r.record("overflow", schedule, T0 + 200 * MS, T0 + 1800 * MS)
    assert report.saved and r.recorder.snapshot.state != RecorderState.ERROR
    assert report.drops["observation.state"]["invalid"] >= 1
    assert report.frames == len(rs.expected_frames(schedule, report.first_frame_ns, report.last_frame_ns + 1))
    assert "values out of float32 range" in r.log.text() and "shoulder_lift=1e+39" in r.log.text()


COMPRESSED_INTERFACE = f"""\
robot_type: test_arm
fps: 30
observation:
  state:
    topic: /rt/follower/joint_states
    joints: {rs.JOINTS}
  images:
    front: {{topic: /rt/cameras/front/compressed, type: compressed, height: {rs.HEIGHT}, width: {rs.WIDTH}}}
action:
  topic: /rt/leader/joint_states
  joints: {rs.JOINTS}
"""


def _jpeg_declaring(width: int, height: int) -> bytes:
    """A JPEG whose frame header declares width x height (the scan data is not a real image)."""
    sof = b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03" + b"\x01\x22\x00" \
        + b"\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + sof + b"\xff\xd9"


def test_malformed_compressed_images_never_stop_the_input(rig):
    """Issue: a header declaring a huge image made cv2.imdecode raise cv2.error (not caught), which ended the
    ingest thread for good. The declared size is checked first; any decode failure is an invalid sample."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    r = rig(interface_text=COMPRESSED_INTERFACE)
    r.recorder.activate()
    topic = "/rt/cameras/front/compressed"
    good = cv2.imencode(".jpg", rs.camera_image(0)[:, :, ::-1])[1].tobytes()
    for i, data in enumerate([_jpeg_declaring(60000, 60000), b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"garbage",
                              good[:200], good]):
        msg = CompressedImage(format="jpeg", data=data)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(T0 + i * 10 * MS, rs.NS)
        r.recorder.on_message(topic, msg)  # never raises
    health = r.recorder.topics[topic]
    assert health.received == 5 and health.invalid_total() == 4
    assert "declares 60000x60000; not decoded" in r.log.text()
    # Something that is not a CompressedImage at all (a broken bridge) is counted, not raised either.
    r.recorder.on_message(topic, object())
    assert health.invalid_total() == 5


def test_an_episode_without_frames_is_an_error_naming_the_silent_stream(rig):
    """Issue: no camera -> each episode 'discarded ... no frames' at INFO, '0 ticks dropped' when all were lost, the
    optional task listed as missing. Now: an error that names the camera's stream, and a warning at the start."""
    r = rig()
    r.recorder.activate()
    schedule = rs.make_schedule(T0, 2.0)
    no_camera = rs.Schedule(T0, [m for m in schedule.messages if m.kind != "camera"])
    report = r.record("no camera", no_camera, T0 + 200 * MS, T0 + 1500 * MS)
    assert not report.saved and report.reason.startswith("error: no frames were recorded")
    assert "observation.images.front missing on" in report.reason
    assert "task" not in report.drops
    assert report.summary().startswith("episode not saved (error: no frames were recorded") and "no frame in" in \
        report.summary()
    assert "no message on /rt/cameras/front/image_raw (observation.images.front)" in r.log.text()
    assert not r.root.exists()  # nothing saved, nothing left behind


def _record_three(r: LiveRig) -> None:
    schedule = rs.make_schedule(T0, 6.0)
    for i, task in enumerate(("first", "second", "third")):
        if r.recorder.snapshot.state == RecorderState.RESETTING:
            assert r.recorder.stop().message == "reset period ended"
            wait_for(lambda: r.recorder.snapshot.state == RecorderState.IDLE, "idle")
        start = T0 + (200 + 1800 * i) * MS
        report = r.record(task, schedule, start, start + 1000 * MS)
        assert report.saved and report.episode_index == i


def test_discard_by_default_removes_the_last_saved_episode(rig):
    """Issue: an empty DiscardEpisode request (episode_index defaulted to 0) removed the OLDEST episode during the
    reset period. The default is -1 now: the episode in progress, else the last saved one."""
    from lerobot_dataset.reader import DatasetMeta
    from lerobot_msgs.srv import DiscardEpisode

    assert DiscardEpisode.Request().episode_index == -1
    r = rig(reset_time_s=30.0)
    r.recorder.activate()
    _record_three(r)
    assert r.recorder.snapshot.state == RecorderState.RESETTING  # "discard the take I just recorded"
    outcome = r.recorder.discard(DiscardEpisode.Request().episode_index)
    assert outcome.success and outcome.episode_index == 2 and outcome.total_episodes == 2, outcome
    r.close()
    assert DatasetMeta(r.root).tasks == ["first", "second"]


def test_removal_runs_off_the_recorders_locks(rig, monkeypatch):
    """Removing an older episode rewrites the whole dataset: meanwhile status, stop and goal checks answer at once
    (the removal runs on its own thread), and an explicit index removes exactly that episode."""
    from lerobot_dataset.reader import DatasetMeta

    r = rig()
    r.recorder.activate()
    _record_three(r)
    release = threading.Event()
    real_remove = live_recorder.remove_saved_episode

    def slow_remove(writer, root, index):
        release.wait(60)  # a big dataset: the rewrite takes long
        return real_remove(writer, root, index)

    monkeypatch.setattr(live_recorder, "remove_saved_episode", slow_remove)
    answers = []
    remover = threading.Thread(target=lambda: answers.append(r.recorder.discard(0)))
    remover.start()
    wait_for(lambda: r.recorder.snapshot.removing == 0, "removal started")
    started = time.monotonic()
    assert "being removed" in r.recorder.goal_refusal("t", 1.0)
    assert not r.recorder.stop().success
    assert r.recorder.health("/recorder")[0].name == "/recorder: recorder"
    assert time.monotonic() - started < 5.0
    release.set()
    remover.join(60)
    assert answers[0].success and answers[0].episode_index == 0 and answers[0].total_episodes == 2, answers
    assert r.recorder.goal_refusal("t", 1.0) is None
    r.close()
    assert DatasetMeta(r.root).tasks == ["second", "third"]


def test_an_index_during_an_episode_is_refused(rig):
    r = rig()
    r.recorder.activate()
    schedule = rs.make_schedule(T0, 2.0)
    r.feed(schedule.messages, until_ns=T0 + 200 * MS)
    assert r.recorder.try_begin("take", 0.0).attempt
    refused = r.recorder.discard(0)
    assert not refused.success and "episode_index -1 (the default) discards it" in refused.message
    assert r.recorder.discard().success  # -1: the take in progress


def test_a_hung_writer_never_deadlocks_the_recorder(rig):
    """Issue: blocking puts/results without timeouts while holding the node lock: a hung encoder or disk froze
    every service. Now the save hangs on the recording thread only; callers get an answer within writer_timeout_s,
    the health says what hangs, and close() returns."""
    r = rig(writer_timeout_s=2.0)
    r.recorder.activate()
    hang = threading.Event()
    r.recorder.writer._test_hook = lambda stage: hang.wait(120) if stage == "data_written" else None
    schedule = rs.make_schedule(T0, 2.0)
    r.feed(schedule.messages, until_ns=T0 + 200 * MS)
    attempt = r.recorder.try_begin("hangs", 0.0).attempt
    r.feed([m for m in schedule.messages if m.arrival_ns > T0 + 200 * MS], until_ns=T0 + 1500 * MS)
    r.settle()
    started = time.monotonic()
    outcome = r.stop()  # the save starts and hangs
    assert not outcome.success and "did not finish within 2 s" in outcome.message
    assert "the recorder did not get to" in r.recorder.discard().message
    assert time.monotonic() - started < 15.0
    wait_for(lambda: r.recorder.health("/recorder")[0].level == 2, "hung writer reported")
    assert "has not returned" in r.recorder.health("/recorder")[0].message
    started = time.monotonic()
    r.recorder.close("test")  # bounded even now
    assert time.monotonic() - started < 15.0
    assert "exiting without closing the dataset" in r.log.text()
    hang.set()  # the writer comes back: its thread finishes the save it was in
    assert attempt > 0


def test_the_disk_guard_measures_the_disk_a_new_dataset_will_be_on(rig, tmp_path):
    """The dataset folder appears with the first saved episode, so until then the guard measures the nearest
    existing parent (measuring the missing folder failed and left the guard blind: no refusal on a full disk)."""
    r = rig(min_free_disk_mb=1e12, warn_free_disk_mb=1e12)  # more than any disk: "nearly full"
    assert not r.root.exists()
    state = wait_for(lambda: r.recorder.disk.state if r.recorder.disk.state.free_mb >= 0 else None, "disk measured")
    assert state.full and state.low
    r.recorder.activate()
    assert "below min_free_disk_mb" in r.recorder.goal_refusal("take", 0.0)
    deeper = tmp_path / "not" / "yet" / "there"
    assert live_recorder.DiskGuard(0.0, 0.0).measure(deeper).free_mb > 0
