"""RecordingSession (ROS-free): episode windows on the absolute frame grid, state machine, reset period,
stop/discard, gaps, and the real dataset writer underneath. Time is driven by the test."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import recorder_streams as rs  # noqa: E402

from lerobot_recorder.alignment import FrameClock  # noqa: E402
from lerobot_recorder.interface import load_interface  # noqa: E402
from lerobot_recorder.recording_session import (  # noqa: E402
    EpisodeGoal, RecorderBusy, RecorderState, RecordingSession, grid_clock,
)
from lerobot_recorder.recording_dataset import open_dataset_writer, validate_saved_episode  # noqa: E402

T0 = 1_800_000_000 * rs.NS + 987_654_321
MS = 1_000_000


class Rig:
    """A session over the real writer, fed from a schedule as a live node would be (arrival order)."""

    def __init__(self, tmp_path: Path, reset_time_s: float = 0.0, latency_s: float = 0.1, append: bool = False):
        self.interface = load_interface(rs.write_interface(tmp_path))
        self.root = tmp_path / "ds"
        opened = open_dataset_writer(self.interface, self.root, vcodec="h264", append=append)
        self.writer, first = opened.writer, opened.next_episode_index
        self.session = RecordingSession(
            self.interface.stream_specs(), self.interface.fps, self.writer, self.interface.frame_values,
            latency_s=latency_s, reset_time_s=reset_time_s,
            validate_episode=lambda i: validate_saved_episode(self.root, i), first_episode_index=first)
        self.schedule = rs.make_schedule(T0, 6.0)
        self.cursor = 0
        self.reports = []

    def run_until(self, now_ns: int) -> None:
        """Deliver every message that has arrived by now_ns, then advance the session (10 ms polling)."""
        messages = self.schedule.messages
        t = now_ns if not hasattr(self, "now") else self.now
        while t < now_ns:
            t = min(t + 10 * MS, now_ns)
            while self.cursor < len(messages) and messages[self.cursor].arrival_ns <= t:
                m = messages[self.cursor]
                for sample in self.interface.decode(m.topic(), rs.rclpy_message(m), m.arrival_ns):
                    self.session.add_sample(sample)
                self.cursor += 1
            self.reports += self.session.advance(t)
        self.now = now_ns

    def record_saved_episodes(self, tasks) -> list[int]:
        """From the start of the schedule, one 0.5 s episode per task, back to back; the saved episode indices."""
        self.now = T0
        self.run_until(T0 + 300 * MS)
        for task in tasks:
            self.session.begin(EpisodeGoal(task, 0.5), self.now)
            self.run_until(self.now + 800 * MS)
        return [r.episode_index for r in self.reports if r.saved]


def test_grid_clock_ticks_are_absolute_instants():
    clock = grid_clock(30, T0)
    first = clock.next_time_ns
    assert first >= T0 and first - T0 < rs.NS // 30 + 1
    ticks = [clock.advance()[1] for _ in range(100)]
    assert ticks == list(rs.grid_ticks(T0, ticks[-1] + 1))
    # The same instants whatever the start: a clock started a few seconds earlier passes through them.
    earlier = FrameClock(30, (T0 // rs.NS - 3) * rs.NS)
    earlier_ticks = {earlier.time_ns(i) for i in range(400)}
    assert set(ticks) <= earlier_ticks


def test_duration_episode_frames_match_the_stream(tmp_path):
    rig = Rig(tmp_path, reset_time_s=0.5)
    rig.now = T0 - rs.NS
    rig.run_until(T0 - 500 * MS)
    assert rig.session.state == RecorderState.IDLE
    start = T0 + 1 * rs.NS + 3 * MS
    rig.run_until(start)
    attempt = rig.session.begin(EpisodeGoal("pick", 1.0), start)
    rig.run_until(start + 1 * rs.NS + 50 * MS)
    # The last ticks wait for the latency (or for every stream to pass them) before the episode can end.
    rig.run_until(start + 1 * rs.NS + 200 * MS)
    assert len(rig.reports) == 1
    report = rig.reports[0]
    assert report.saved and report.episode_index == 0 and report.attempt == attempt
    assert report.reason == "duration reached" and report.validation_ok, report.validation_message
    expected = rs.expected_frames(rig.schedule, start, start + rs.NS)
    assert report.frames == len(expected) == 30
    assert report.first_frame_ns == expected[0].tick_ns and report.dropped == 0
    assert rig.session.state == RecorderState.RESETTING
    with pytest.raises(RecorderBusy):
        rig.session.begin(EpisodeGoal("next"), rig.now)
    rig.run_until(rig.now + 600 * MS)
    assert rig.session.state == RecorderState.IDLE
    rig.writer.close()

    from lerobot_dataset.reader import LeRobotDatasetReader

    reader = LeRobotDatasetReader(rig.root)
    rows = [reader[i] for i in range(len(reader))]
    reader.close()
    np.testing.assert_array_equal(np.stack([r["observation.state"] for r in rows]), np.stack([e.state for e in expected]))
    np.testing.assert_array_equal(np.stack([r["action"] for r in rows]), np.stack([e.action for e in expected]))
    assert rows[0]["task"] == "pick"


def test_stop_discard_and_reset_skip(tmp_path):
    rig = Rig(tmp_path, reset_time_s=10.0)
    rig.now = T0
    rig.run_until(T0 + 500 * MS)
    rig.session.begin(EpisodeGoal("discard me"), rig.now)
    rig.run_until(rig.now + 700 * MS)
    assert rig.session.episode.frames > 0
    report = rig.session.discard(rig.now)
    assert not report.saved and report.episode_index == -1 and report.reason == "re-record requested"
    assert rig.session.state == RecorderState.RESETTING
    assert rig.session.stop(rig.now)  # ends the reset period
    rig.run_until(rig.now + 20 * MS)
    assert rig.session.state == RecorderState.IDLE

    begin = rig.now
    rig.session.begin(EpisodeGoal("stopped"), begin)
    rig.run_until(begin + 1 * rs.NS)
    stop_at = rig.now
    assert rig.session.stop(stop_at)
    assert rig.session.state == RecorderState.RECORDING  # ticks before stop_at still wait for their latency
    rig.run_until(stop_at + 200 * MS)
    saved = [r for r in rig.reports if r.saved]
    assert len(saved) == 1 and saved[0].episode_index == 0 and saved[0].reason == "stopped"
    assert saved[0].frames == len(rs.expected_frames(rig.schedule, begin, stop_at))
    assert rig.session.stop(rig.now) and rig.session.state == RecorderState.RESETTING  # reset then ended
    rig.run_until(rig.now + 10 * MS)
    assert not rig.session.stop(rig.now)  # nothing to stop when idle
    rig.writer.close()


def test_episode_without_frames_is_not_saved_and_gaps_are_reported(tmp_path):
    rig = Rig(tmp_path)
    rig.now = T0 - 2 * rs.NS
    rig.session.begin(EpisodeGoal("nothing yet", 0.5), rig.now)
    rig.run_until(rig.now + 800 * MS)
    assert rig.reports[-1].saved is False and "no frames" in rig.reports[-1].reason
    assert rig.reports[-1].waiting == 15 and rig.reports[-1].drops["observation.state"] == {"missing": 15}

    # A camera outage in the middle of an episode: one gap, counted per stream and reason.
    rig.schedule.messages = [m for m in rig.schedule.messages
                             if not (m.kind == "camera" and T0 + 2 * rs.NS <= m.stamp_ns < T0 + 2 * rs.NS + 300 * MS)]
    rig.run_until(T0 + 1 * rs.NS)
    rig.session.begin(EpisodeGoal("outage", 2.0), rig.now)
    rig.run_until(rig.now + 2500 * MS)
    report = rig.reports[-1]
    assert report.saved
    assert len(report.gaps) == 1
    gap_start, gap_ticks = report.gaps[0]
    assert gap_ticks == report.dropped == report.drops["observation.images.front"]["stale"]
    assert 5 <= gap_ticks <= 8
    assert T0 + 2 * rs.NS <= gap_start <= T0 + 2 * rs.NS + 150 * MS
    rig.writer.close()


def test_writer_failure_puts_the_session_in_error(tmp_path):
    rig = Rig(tmp_path)
    rig.now = T0
    rig.run_until(T0 + 300 * MS)
    rig.session.begin(EpisodeGoal("doomed", 0.5), rig.now)
    rig.run_until(rig.now + 200 * MS)

    def broken_save():
        raise OSError(28, "No space left on device")

    rig.writer.save_episode = broken_save
    rig.run_until(rig.now + 600 * MS)
    report = rig.reports[-1]
    assert not report.saved and report.reason.startswith("error: saving failed")
    assert rig.session.state == RecorderState.ERROR and "No space left" in rig.session.message
    with pytest.raises(RecorderBusy):
        rig.session.begin(EpisodeGoal("after"), rig.now)


def test_remove_saved_episodes_and_keep_recording(tmp_path):
    from lerobot_dataset.reader import DatasetMeta
    from lerobot_recorder.recording_dataset import remove_saved_episode

    rig = Rig(tmp_path)
    assert rig.record_saved_episodes(("keep", "drop")) == [0, 1]
    with pytest.raises(ValueError, match="episode 5 does not exist"):
        remove_saved_episode(rig.writer, rig.root, 5)
    writer, removed = remove_saved_episode(rig.writer, rig.root, -1)
    assert removed == 1 and writer.total_episodes == 1
    assert DatasetMeta(rig.root).tasks == ["keep"]
    assert validate_saved_episode(rig.root, 0)[0]
    writer, removed = remove_saved_episode(writer, rig.root, 0)  # the only one: an empty dataset remains
    assert removed == 0 and writer.total_episodes == 0
    # Recording continues into the rebuilt dataset.
    rig.writer = rig.session.writer = writer
    rig.session.next_episode_index = 0
    rig.session.begin(EpisodeGoal("again", 0.5), rig.now)
    rig.run_until(rig.now + 800 * MS)
    assert rig.reports[-1].saved and rig.reports[-1].episode_index == 0
    writer.close()
    meta = DatasetMeta(rig.root)
    assert meta.total_episodes == 1 and meta.tasks == ["again"]
    assert not any(p.name.startswith("ds.delete") for p in tmp_path.iterdir())
    assert not any(p.name.startswith(".ds.") for p in tmp_path.iterdir())  # the tools' staging/backup folders


class CrashAtRename(BaseException):
    """Stands for the process dying: nothing after the rename runs, no cleanup (`except Exception` misses it)."""


def test_removal_interrupted_between_the_renames_is_finished_by_the_dataset_recovery(tmp_path, monkeypatch):
    """The recorder's removal swaps folders through the dataset package's journal, so a crash between taking the
    original away and putting the rebuilt copy in its place is finished by whatever opens the dataset next
    (LeRobotDatasetWriter.open, `lerobot-dataset recover`), and the interface file survives the rebuild."""
    from lerobot_dataset import LeRobotDatasetWriter
    from lerobot_dataset.reader import DatasetMeta
    from lerobot_recorder.recording_dataset import INTERFACE_FILE, remove_saved_episode

    rig = Rig(tmp_path)
    assert rig.record_saved_episodes(("drop", "keep")) == [0, 1]
    interface_text = (rig.root / INTERFACE_FILE).read_text()

    real_replace = __import__("os").replace

    def crash_when_the_copy_moves_in(src, dst, *args, **kwargs):
        if Path(dst) == rig.root:
            raise CrashAtRename()
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr("os.replace", crash_when_the_copy_moves_in)
    with pytest.raises(CrashAtRename):
        remove_saved_episode(rig.writer, rig.root, 0)
    monkeypatch.undo()
    assert not rig.root.exists()  # the crash came between the two renames

    writer = LeRobotDatasetWriter.open(rig.root)  # the dataset package alone finishes the swap
    assert writer.total_episodes == 1
    writer.close()
    meta = DatasetMeta(rig.root)
    assert meta.total_episodes == 1 and meta.tasks == ["keep"]
    assert validate_saved_episode(rig.root, 0)[0]
    assert (rig.root / INTERFACE_FILE).read_text() == interface_text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("ds", ".ds"))) == ["ds"]


def test_clock_jumping_back_ends_the_episode_and_starts_a_new_grid(tmp_path):
    rig = Rig(tmp_path)
    rig.now = T0
    rig.run_until(T0 + 300 * MS)
    rig.session.begin(EpisodeGoal("before the restart"), rig.now)
    rig.run_until(rig.now + 700 * MS)
    frames = rig.session.episode.frames
    assert frames > 10
    old_grid = rig.session.assembler
    # A simulation restarts: its clock is 5 s earlier; the episode keeps what it had and is saved.
    reports = rig.session.advance(T0 - 5 * rs.NS)
    assert len(reports) == 1 and reports[0].saved and reports[0].reason == "clock jumped back"
    assert reports[0].frames == frames
    assert rig.session.assembler is not old_grid and rig.session.state == RecorderState.IDLE
    assert rig.session.assembler.clock.next_time_ns >= T0 - 5 * rs.NS
    rig.writer.close()


def test_a_clock_leaping_forward_starts_a_new_grid_instead_of_walking_the_gap(tmp_path):
    """A stamp from 2038 (or a simulation fast-forwarded by hours) as the clock: a new grid at once, the episode
    in progress saved, not billions of ticks evaluated one by one."""
    rig = Rig(tmp_path)
    rig.now = T0
    rig.run_until(T0 + 300 * MS)
    rig.session.begin(EpisodeGoal("before the leap"), rig.now)
    rig.run_until(rig.now + 500 * MS)
    leap = (2**31 - 1) * rs.NS
    started = time.monotonic()
    reports = rig.session.advance(leap)
    assert time.monotonic() - started < 5.0  # (it would take days tick by tick)
    assert len(reports) == 1 and reports[0].saved and reports[0].reason == "clock jumped forward"
    assert rig.session.assembler.clock.next_time_ns >= leap
    rig.writer.close()


def test_a_frame_the_writer_rejects_skips_that_tick_only(tmp_path):
    """The writer's frame check (here: a value the interface turned into inf) costs that tick, not the episode."""
    rig = Rig(tmp_path)
    build = rig.session.build_frame
    poisoned = {"tick": None}

    def build_with_one_inf(frame):
        values = build(frame)
        if poisoned["tick"] is None and rig.session.episode is not None and rig.session.episode.frames == 5:
            poisoned["tick"] = frame.time_ns
            values["observation.state"] = values["observation.state"].copy()
            values["observation.state"][0] = np.inf
        return values

    rig.session.build_frame = build_with_one_inf
    rig.now = T0
    rig.run_until(T0 + 300 * MS)
    rig.session.begin(EpisodeGoal("one bad frame", 1.0), rig.now)
    rig.run_until(rig.now + 1500 * MS)
    report = rig.reports[-1]
    assert report.saved and rig.session.state != RecorderState.ERROR
    assert report.drops == {"frame": {"invalid": 1}} and report.dropped == 1 and poisoned["tick"] is not None
    rig.writer.close()
