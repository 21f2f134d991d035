"""Upstream lerobot 0.4.4 (the oracle venv) reads what the recorder path writes: a converted bag with two
episodes, and a dataset whose recording process was SIGKILLed in the middle of an episode, then appended to."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import recorder_streams as rs  # noqa: E402

from oracle import oracle_env  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

T0 = 1_750_000_000 * rs.NS + 250_000_000

# Run in a child process: record episode 0, start episode 1, then SIGKILL itself mid-episode.
CRASHING_RECORDER = """
import os, signal, sys
sys.path.insert(0, {test_dir!r})
import recorder_streams as rs
from lerobot_recorder.interface import load_interface
from lerobot_recorder.recording_session import EpisodeGoal, RecordingSession
from lerobot_recorder.recording_dataset import open_dataset_writer

interface = load_interface({interface!r})
opened = open_dataset_writer(interface, __import__("pathlib").Path({root!r}), vcodec="libsvtav1",
                             append={append!r})
writer, first = opened.writer, opened.next_episode_index
session = RecordingSession(interface.stream_specs(), interface.fps, writer, interface.frame_values,
                           latency_s=0.1, first_episode_index=first)
schedule = rs.make_schedule({t0}, 4.0)
now = {t0}
session.advance(now)
started = False
for m in schedule.messages:
    for sample in interface.decode(m.topic(), rs.rclpy_message(m), m.arrival_ns):
        session.add_sample(sample)
    now = m.arrival_ns
    if not started and now >= {t0} + 200_000_000:
        session.begin(EpisodeGoal({task!r}, 1.0), now)
        started = True
    for report in session.advance(now):
        print("saved", report.episode_index, report.frames, report.first_frame_ns, report.last_frame_ns, flush=True)
        if {crash!r}:
            session.begin(EpisodeGoal("never saved"), now)
    if {crash!r} and session.episode is not None and session.episode.task == "never saved" \\
            and session.episode.frames >= 15:
        os.kill(os.getpid(), signal.SIGKILL)
writer.close()
"""


def _run_recorder(tmp_path: Path, interface: Path, root: Path, t0: int, task: str, append: bool, crash: bool):
    script = CRASHING_RECORDER.format(test_dir=str(Path(__file__).parent), interface=str(interface),
                                      root=str(root), append=append, t0=t0, task=task, crash=crash)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    if crash:
        assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("saved"))
    _, index, frames, first_ns, last_ns = line.split()
    return int(index), int(frames), int(first_ns), int(last_ns)


def _check_rows(items, start_index: int, expected: list[rs.ExpectedFrame], task: str) -> None:
    for f, e in enumerate(expected):
        item = items[start_index + f]
        where = f"upstream item {start_index + f}"
        np.testing.assert_array_equal(item["observation.state"], e.state, err_msg=where)
        np.testing.assert_array_equal(item["action"], e.action, err_msg=where)
        assert int(item["frame_index"]) == f and item["task"] == task, where
        assert float(item["timestamp"]) == pytest.approx(f / rs.FPS, abs=1e-4), where
        image = item["observation.images.front"]  # float CHW in [0, 1]
        image = np.transpose(np.asarray(image) * 255.0, (1, 2, 0))
        assert np.abs(image - rs.camera_image(e.camera_index)).mean() < 12, where


def test_upstream_reads_converted_bag_and_crash_recovered_dataset(tmp_path):
    from lerobot_recorder.bag_convert import convert_bags
    from lerobot_recorder.interface import load_interface

    interface_path = rs.write_interface(tmp_path)
    interface = load_interface(interface_path)

    # 1. A bag split into two episodes by marker messages.
    schedule = rs.make_schedule(T0, 3.0)
    marker = T0 + 1_400_000_000
    bag = rs.write_bag(tmp_path / "bag", schedule, storage="mcap",
                       markers=[(T0 - 10_000_000, "first"), (marker, "second")])
    converted = tmp_path / "converted"
    result = convert_bags([bag], interface, converted, split_topic="/episode_marker", progress=False)
    assert [e.task for e in result.saved_episodes] == ["first", "second"]
    first = rs.expected_frames(schedule, T0 - 10_000_000, marker)
    second = rs.expected_frames(schedule, marker, rs.covered_end_ns(schedule) + 1)

    # 2. A recording killed during its second episode, reopened, appended to.
    crashed = tmp_path / "crashed"
    t1 = T0 + 100 * rs.NS
    saved = _run_recorder(tmp_path, interface_path, crashed, t1, "before crash", append=False, crash=True)
    t2 = T0 + 200 * rs.NS
    after = _run_recorder(tmp_path, interface_path, crashed, t2, "after crash", append=True, crash=False)
    assert saved[0] == 0 and after[0] == 1

    items = oracle_env.read_many_with_upstream({"converted": (converted, None), "crashed": (crashed, None)})
    conv = items["converted"]
    assert conv.num_episodes == 2 and conv.length == len(first) + len(second)
    _check_rows(conv, 0, first, "first")
    _check_rows(conv, len(first), second, "second")

    crash = items["crashed"]
    assert crash.num_episodes == 2
    before = rs.expected_frames(rs.make_schedule(t1, 4.0), saved[2], saved[3] + 1)
    again = rs.expected_frames(rs.make_schedule(t2, 4.0), after[2], after[3] + 1)
    assert len(before) == saved[1] and len(again) == after[1]
    assert crash.length == len(before) + len(again)
    _check_rows(crash, 0, before, "before crash")
    _check_rows(crash, len(before), again, "after crash")
