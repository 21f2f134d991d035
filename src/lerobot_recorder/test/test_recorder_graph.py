"""Recorder node over real DDS: episode control (action, feedback, stop, cancel, discard, reset period), append,
SIGKILL during an episode, malformed inputs -> diagnostics and skipped frames. Contents are checked against
the published schedule."""
from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import recorder_streams as rs  # noqa: E402

pytestmark = pytest.mark.graph

HERE = Path(__file__).parent
SAVED_RE = re.compile(r"episode (\d+) saved \((.*?)\): (\d+) frames.*?frames stamped (\d+)\.\.(\d+) ns")
TICKS_RE = re.compile(r"episode (\d+) saved \(.*?\): (\d+) frames, (\d+) ticks dropped \(\+(\d+) before")
# A timed episode of D seconds holds D * fps grid ticks. On a busy machine a tick whose data arrived after latency_s
# is lost (counted as dropped or waiting, never filled in): the tests allow a few, and check that every tick is
# accounted for and that the frames written are exactly the published values.
LOST_TICKS_TOLERATED = 5


def tick_accounting(log: str, episode: int) -> tuple[int, int]:
    """(frames, ticks dropped or waiting) of a saved episode, from the recorder's summary line."""
    match = next(m for m in TICKS_RE.finditer(log) if int(m.group(1)) == episode)
    return int(match.group(2)), int(match.group(3)) + int(match.group(4))


def recorder_command(interface: Path, root: Path, *params: str) -> list[str]:
    return [sys.executable, "-m", "lerobot_recorder.nodes.recorder_node", "--ros-args",
            "-p", f"interface:={interface}", "-p", f"dataset_root:={root}", "-p", "autostart:=true",
            "-p", "latency_s:=1.0", "-p", "vcodec:=h264", *[a for p in params for a in ("-p", p)]]


def start_recorder(spawn, interface: Path, root: Path, *params: str, name: str = "recorder"):
    """A recorder node process (see recorder_command), once it has said it is ready."""
    recorder = spawn(recorder_command(interface, root, *params), name)
    recorder.wait_for_output("recorder ready", timeout=60)
    return recorder


def publisher_command(duration: float, faults=()) -> list[str]:
    return [sys.executable, str(HERE / "recorder_test_publisher.py"), "--duration", str(duration),
            "--faults", json.dumps([list(f) for f in faults])]


class RecorderClient:
    """Test-side node: action client, services, status and diagnostics of /recorder."""

    def __init__(self, context, name: str = "recorder_test_client"):
        import rclpy
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from std_srvs.srv import Trigger

        from diagnostic_msgs.msg import DiagnosticArray
        from lerobot_msgs.action import RecordEpisode
        from lerobot_msgs.msg import RecorderStatus
        from lerobot_msgs.srv import DiscardEpisode

        self.RecordEpisode, self.Trigger, self.DiscardEpisode = RecordEpisode, Trigger, DiscardEpisode
        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.action = ActionClient(self.node, RecordEpisode, "/recorder/record_episode")
        self.stop_client = self.node.create_client(Trigger, "/recorder/stop")
        self.discard_client = self.node.create_client(DiscardEpisode, "/recorder/discard_episode")
        self.statuses: list = []
        self.diagnostics: list = []
        self.node.create_subscription(RecorderStatus, "/recorder/status", self.statuses.append, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.feedback: list = []

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
            value = predicate()
            if value:
                return value
        raise TimeoutError(f"timed out waiting for {what}")

    def ready(self, recorder) -> None:
        assert self.action.wait_for_server(timeout_sec=60), recorder.output()
        assert self.stop_client.wait_for_service(timeout_sec=30)
        assert self.discard_client.wait_for_service(timeout_sec=30)

    def wait_streaming(self, min_received: int = 10, timeout: float = 30) -> None:
        """Until the recorder's diagnostics show every topic received (a fresh recorder is still discovering)."""
        def streaming() -> bool:
            for array in self.diagnostics[-3:]:
                topics = [s for s in array.status if ": topic " in s.name]
                received = [int(next((kv.value for kv in s.values if kv.key == "received"), "0")) for s in topics]
                if topics and min(received) >= min_received:
                    return True
            return False

        self.diagnostics.clear()
        self.wait(streaming, timeout, "recorder receiving every topic")

    def send(self, task: str, duration: float = 0.0):
        future = self.action.send_goal_async(self.RecordEpisode.Goal(task=task, duration=duration),
                                             feedback_callback=lambda fb: self.feedback.append(fb.feedback))
        handle = self.wait(lambda: future.done() and future.result(), 30, "goal response")
        return handle, (handle.get_result_async() if handle.accepted else None)

    def result(self, future, timeout: float = 60):
        self.wait(future.done, timeout, "episode result")
        return future.result()

    def call(self, client, request, timeout: float = 120):
        future = client.call_async(request)
        self.wait(future.done, timeout, "service response")
        return future.result()

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.node.destroy_node()


def saved_windows(log: str) -> dict[int, tuple[int, int, int]]:
    """episode index -> (frames, first frame stamp, last frame stamp) from the recorder's log."""
    return {int(m.group(1)): (int(m.group(3)), int(m.group(4)), int(m.group(5))) for m in SAVED_RE.finditer(log)}


def check_episode_contents(root: Path, episode: int, schedule: rs.Schedule, window: tuple[int, int, int],
                           task: str) -> None:
    from lerobot_dataset.reader import LeRobotDatasetReader

    frames, first_ns, last_ns = window
    expected = rs.expected_frames(schedule, first_ns, last_ns + 1)
    reader = LeRobotDatasetReader(root, episodes=[episode], return_uint8=True)
    try:
        rows = [reader[i] for i in range(len(reader))]
    finally:
        reader.close()
    assert len(rows) == frames == len(expected)
    np.testing.assert_array_equal(np.stack([r["observation.state"] for r in rows]), np.stack([e.state for e in expected]))
    np.testing.assert_array_equal(np.stack([r["action"] for r in rows]), np.stack([e.action for e in expected]))
    assert {r["task"] for r in rows} == {task}
    for r, e in list(zip(rows, expected))[::10]:
        image = np.transpose(r["observation.images.front"], (1, 2, 0))
        assert np.abs(image.astype(int) - rs.camera_image(e.camera_index).astype(int)).mean() < 10


def validate(root: Path) -> None:
    from lerobot_dataset.reader import DatasetMeta
    from lerobot_recorder.recording_dataset import validate_saved_episode

    meta = DatasetMeta(root)
    for index in range(meta.total_episodes):
        ok, message = validate_saved_episode(root, index)
        assert ok, message
    try:  # the reader helper's whole-dataset validation, when present
        from lerobot_dataset import validate as dataset_validate
    except ImportError:
        return
    report = dataset_validate.validate_dataset(root)
    assert getattr(report, "ok", True), report


def test_episode_control(spawn, rclpy_context, tmp_path):
    from lerobot_msgs.msg import RecorderStatus

    interface = rs.write_interface(tmp_path)
    root = tmp_path / "ds"
    recorder = start_recorder(spawn, interface, root, "reset_time_s:=1.5")
    client = RecorderClient(rclpy_context)
    try:
        client.ready(recorder)
        publisher = spawn(publisher_command(30.0), "publisher")
        publisher.wait_for_output("t0=", timeout=60)
        t0 = int(re.search(r"t0=(\d+)", publisher.output()).group(1))
        schedule = rs.make_schedule(t0, 30.0)
        client.wait(lambda: time.time_ns() > t0 + 300_000_000, 10, "stream start")

        # 1. A 1 s goal: feedback while recording, saved with 30 frames, then the reset period.
        handle, result_future = client.send("one second", 1.0)
        assert handle.accepted
        result = client.result(result_future).result
        assert result.saved and result.episode_index == 0 and result.reason == "duration reached"
        frames, lost = tick_accounting(recorder.output(), 0)
        assert result.frames == frames and frames + lost == 30 and lost <= LOST_TICKS_TOLERATED
        assert any(fb.frames > 0 and fb.elapsed > 0 for fb in client.feedback)
        client.wait(lambda: client.statuses and client.statuses[-1].state == RecorderStatus.STATE_RESETTING, 10,
                    "RESETTING status")

        # 2. A goal during the reset period waits for its end, then records until ~/stop.
        client.statuses.clear()
        handle, result_future = client.send("until stopped")
        assert handle.accepted
        client.wait(lambda: any(s.state == RecorderStatus.STATE_RECORDING for s in client.statuses), 10, "RECORDING")
        states = [s.state for s in client.statuses]
        assert states[0] == RecorderStatus.STATE_RESETTING, states
        client.spin_for(1.0)
        response = client.call(client.stop_client, client.Trigger.Request())
        assert response.success and "episode 1 saved" in response.message, response.message
        result = client.result(result_future).result
        assert result.saved and result.episode_index == 1 and result.reason == "stopped"
        assert 25 <= result.frames <= 60
        response = client.call(client.stop_client, client.Trigger.Request())  # ends the reset period
        assert response.success and response.message == "reset period ended"

        # 3. Cancel = discard.
        handle, result_future = client.send("canceled")
        client.wait(lambda: client.statuses[-1].state == RecorderStatus.STATE_RECORDING and
                    client.statuses[-1].task == "canceled", 10, "recording 'canceled'")
        client.spin_for(0.5)
        handle.cancel_goal_async()
        wrapped = client.result(result_future)
        assert not wrapped.result.saved and wrapped.result.reason == "canceled" and wrapped.result.episode_index == -1
        from action_msgs.msg import GoalStatus

        assert wrapped.status == GoalStatus.STATUS_CANCELED
        client.call(client.stop_client, client.Trigger.Request())

        # 4. ~/discard_episode during an episode: re-record semantics.
        handle, result_future = client.send("discarded")
        client.wait(lambda: client.statuses[-1].state == RecorderStatus.STATE_RECORDING and
                    client.statuses[-1].task == "discarded", 10, "recording 'discarded'")
        client.spin_for(0.5)
        response = client.call(client.discard_client, client.DiscardEpisode.Request(episode_index=-1))
        assert response.success and response.total_episodes == 2
        result = client.result(result_future).result
        assert not result.saved and result.reason == "re-record requested"
        client.call(client.stop_client, client.Trigger.Request())

        # 5. An episode index that does not exist is refused with the reason.
        response = client.call(client.discard_client, client.DiscardEpisode.Request(episode_index=7))
        assert not response.success and "episode 7 does not exist" in response.message

        # 6. One goal at a time.
        handle, result_future = client.send("first", 5.0)
        assert handle.accepted
        second, _ = client.send("second", 1.0)
        assert not second.accepted
        client.spin_for(1.0)
        client.call(client.stop_client, client.Trigger.Request())
        assert client.result(result_future).result.saved

        # 7. Remove the last saved episode ("first"), then record again: the new one takes its index.
        client.call(client.stop_client, client.Trigger.Request())  # end the reset period
        response = client.call(client.discard_client, client.DiscardEpisode.Request(episode_index=-1))
        assert response.success and response.episode_index == 2 and response.total_episodes == 2, response.message
        handle, result_future = client.send("after removal", 1.0)
        result = client.result(result_future).result
        assert result.saved and result.episode_index == 2

        # Status and diagnostics flow.
        assert client.statuses[-1].dataset_root == str(root)
        client.wait(lambda: any(any("topic /rt/cameras/front/image_raw" in s.name for s in d.status)
                                for d in client.diagnostics), 10, "diagnostics")
    finally:
        client.close()
    recorder.stop()
    log = recorder.log_path.read_text(errors="replace")  # output() needs the open log; stop() closed it
    windows = saved_windows(log)
    assert sorted(windows) == [0, 1, 2], log
    check_episode_contents(root, 0, schedule, windows[0], "one second")
    check_episode_contents(root, 1, schedule, windows[1], "until stopped")
    # saved_windows keeps the last report per index: episode 2 is "after removal".
    check_episode_contents(root, 2, schedule, windows[2], "after removal")
    validate(root)


def test_append_and_sigkill_keep_saved_episodes(spawn, rclpy_context, tmp_path):
    from lerobot_dataset.reader import DatasetMeta

    interface = rs.write_interface(tmp_path)
    root = tmp_path / "ds"
    publisher = spawn(publisher_command(60.0), "publisher")
    recorder = start_recorder(spawn, interface, root, "reset_time_s:=0.0", name="recorder1")
    client = RecorderClient(rclpy_context)
    try:
        client.ready(recorder)
        publisher.wait_for_output("t0=", timeout=60)
        t0 = int(re.search(r"t0=(\d+)", publisher.output()).group(1))
        client.wait(lambda: time.time_ns() > t0 + 300_000_000, 10, "stream start")
        _, future = client.send("first", 1.0)
        assert client.result(future).result.saved
        recorder.stop()  # SIGINT: clean shutdown

        # append: the next episode gets index 1.
        recorder = start_recorder(spawn, interface, root, "reset_time_s:=0.0", "append:=true", name="recorder2")
        client.ready(recorder)
        client.wait_streaming()
        _, future = client.send("second", 1.0)
        result = client.result(future).result
        assert result.saved and result.episode_index == 1

        # SIGKILL during an episode: earlier episodes stay intact.
        client.feedback.clear()
        _, future = client.send("killed")
        client.wait(lambda: client.feedback and client.feedback[-1].frames > 15, 20, "frames of 'killed'")
        recorder.send_signal(signal.SIGKILL)
        recorder.popen.wait(10)
    finally:
        client.close()
    meta = DatasetMeta(root)
    assert meta.total_episodes == 2
    assert meta.tasks == ["first", "second"] or sorted(meta.tasks) == ["first", "second"]
    validate(root)

    # The dataset reopens for appending after the crash.
    recorder = start_recorder(spawn, interface, root, "reset_time_s:=0.0", "append:=true", name="recorder3")
    client = RecorderClient(rclpy_context, "recorder_test_client3")
    try:
        client.ready(recorder)
        client.wait_streaming()
        _, future = client.send("after crash", 1.0)
        result = client.result(future).result
        assert result.saved and result.episode_index == 2
    finally:
        client.close()
    recorder.stop()
    assert DatasetMeta(root).total_episodes == 3
    validate(root)


def test_malformed_inputs_give_diagnostics_and_skipped_frames(spawn, rclpy_context, tmp_path):
    interface = rs.write_interface(tmp_path)
    root = tmp_path / "ds"
    faults = [("follower", 20, "nan"), ("leader", 40, "wrong_names"), ("camera", 30, "wrong_size"),
              ("follower", 60, "non_monotonic"), ("camera", 45, "wrong_encoding")]
    recorder = start_recorder(spawn, interface, root, "reset_time_s:=0.0")
    client = RecorderClient(rclpy_context)
    try:
        client.ready(recorder)
        handle, future = client.send("faulty stream")
        assert handle.accepted
        publisher = spawn(publisher_command(3.0, faults), "publisher")
        publisher.wait_for_output("published", timeout=60)
        t0 = int(re.search(r"t0=(\d+)", publisher.output()).group(1))
        schedule = rs.make_schedule(t0, 3.0, faults={(k, i): f for k, i, f in faults})
        client.wait(lambda: time.time_ns() > schedule.end_ns + 1_000_000_000, 10, "stream tail")
        client.diagnostics.clear()
        client.spin_for(1.5)
        response = client.call(client.stop_client, client.Trigger.Request())
        assert response.success
        result = client.result(future).result
        expected = rs.expected_frames(schedule, t0 - rs.NS, rs.covered_end_ns(schedule) + 1)
        assert result.saved and result.frames == len(expected)
        # Faulty messages that a tick would have used cost frames (a 50 Hz message may fall between ticks).
        clean_schedule = rs.make_schedule(t0, 3.0)
        clean = rs.expected_frames(clean_schedule, t0 - rs.NS, rs.covered_end_ns(clean_schedule) + 1)
        assert result.frames < len(clean)
        assert "observation.images.front: {" in response.message and "'invalid': 2" in response.message
    finally:
        client.close()
    statuses = {s.name.split(": ", 1)[1]: s for s in client.diagnostics[-1].status}
    follower = statuses["topic /rt/follower/joint_states"]
    leader = statuses["topic /rt/leader/joint_states"]
    camera = statuses["topic /rt/cameras/front/image_raw"]
    values = {name: {kv.key: kv.value for kv in s.values} for name, s in statuses.items()}
    from diagnostic_msgs.msg import DiagnosticStatus

    assert follower.level == camera.level == leader.level == DiagnosticStatus.WARN
    assert values["topic /rt/follower/joint_states"]["invalid"] == "1"
    assert values["topic /rt/follower/joint_states"]["non_monotonic"] == "1"
    assert values["topic /rt/leader/joint_states"]["invalid"] == "1"
    assert values["topic /rt/cameras/front/image_raw"]["invalid"] == "2"
    # Ticks that would have used a rejected message are counted per stream (which ones depends on timing).
    assert sum(int(v) for vals in values.values() for k, v in vals.items() if k.endswith("ticks invalid")) >= 1
    log = recorder.output()
    assert "/rt/follower/joint_states: non-finite values: elbow_flex=nan" in log
    assert "lacks joint(s) ['gripper']" in log
    assert "expected a 96x64 image" in log
    assert "unsupported image encoding '16UC1'" in log
    assert "is not after the previous message's stamp" in log
    recorder.stop()
    windows = saved_windows(recorder.log_path.read_text(errors="replace"))
    check_episode_contents(root, 0, schedule, windows[0], "faulty stream")


def test_keyboard_node_drives_the_recorder(spawn, tmp_path):
    """record_keyboard reads keys from a pipe (no TTY): → saves, ← re-records, Esc saves and exits."""
    import os
    import subprocess

    from lerobot_dataset.reader import DatasetMeta

    interface = rs.write_interface(tmp_path)
    root = tmp_path / "ds"
    publisher = spawn(publisher_command(60.0), "publisher")
    recorder = start_recorder(spawn, interface, root, "reset_time_s:=0.5")
    publisher.wait_for_output("t0=", timeout=60)
    log_path = tmp_path / "keyboard.log"
    with open(log_path, "wb") as log:
        keyboard = subprocess.Popen(
            [sys.executable, "-m", "lerobot_recorder.nodes.record_keyboard_node", "--ros-args",
             "-p", "task:=keyboard task"], stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    output = lambda: log_path.read_text(errors="replace")  # noqa: E731

    def wait_text(text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while output().count(text) < count:
            assert time.monotonic() < deadline, f"no {count}x {text!r} in:\n{output()}\n{recorder.output()}"
            assert keyboard.poll() is None or output().count(text) >= count, output()
            time.sleep(0.05)

    def press(data: bytes) -> None:
        keyboard.stdin.write(data)
        keyboard.stdin.flush()

    try:
        wait_text("recording episode", 1)
        time.sleep(1.5)
        press(b"\x1b[C")  # → save
        wait_text("episode 0 saved")
        wait_text("recording episode", 2)
        time.sleep(1.5)
        press(b"\x1b[D")  # ← re-record
        wait_text("episode discarded")
        wait_text("recording episode", 3)
        time.sleep(1.5)
        press(b"\x1b")  # Esc: save and stop
        wait_text("done: 2 episodes saved")
        assert keyboard.wait(20) == 0
    finally:
        if keyboard.poll() is None:
            os.killpg(keyboard.pid, signal.SIGKILL)
            keyboard.wait(5)
    recorder.stop()
    meta = DatasetMeta(root)
    assert meta.total_episodes == 2 and meta.tasks == ["keyboard task"]
    assert all(ep.length > 20 for ep in meta.episodes)


def test_sim_time_drives_the_frame_clock(spawn, rclpy_context, tmp_path):
    """use_sim_time: ticks, durations and stamps follow /clock (sim time starts at 1000 s), not the wall clock."""
    interface = rs.write_interface(tmp_path)
    root = tmp_path / "ds"
    publisher = spawn(publisher_command(8.0) + ["--sim-clock"], "publisher")
    recorder = start_recorder(spawn, interface, root, "reset_time_s:=0.0", "use_sim_time:=true")
    client = RecorderClient(rclpy_context)
    try:
        client.ready(recorder)
        publisher.wait_for_output("t0=", timeout=60)
        t0 = int(re.search(r"t0=(\d+)", publisher.output()).group(1))
        assert 1000 * rs.NS < t0 < 1100 * rs.NS
        client.wait(lambda: client.statuses and client.statuses[-1].header.stamp.sec >= t0 // rs.NS, 20,
                    "status stamped in sim time")
        client.spin_for(0.5)
        handle, future = client.send("sim", 1.0)
        result = client.result(future).result
        assert result.saved
    finally:
        client.close()
    recorder.stop()
    log = recorder.log_path.read_text(errors="replace")
    windows = saved_windows(log)
    frames, first_ns, last_ns = windows[0]
    # The property, not an exact count: the 1 s of sim time holds 30 grid ticks, each a frame or a counted loss;
    # frames are stamped in sim time, one grid period apart, and hold exactly the published values.
    written, lost = tick_accounting(log, 0)
    assert written == frames == result.frames and written + lost == 30 and lost <= LOST_TICKS_TOLERATED
    assert 1000 * rs.NS < first_ns <= last_ns < 1100 * rs.NS
    # Stamps are whole nanoseconds on a 1/30 s grid, so the span is rounded to periods (29 periods can be
    # 966666666 ns).
    assert last_ns - first_ns <= rs.NS and round((last_ns - first_ns) * rs.FPS / rs.NS) + 1 >= frames
    check_episode_contents(root, 0, rs.make_schedule(t0, 8.0), windows[0], "sim")


def test_low_disk_space_stops_recording_cleanly(spawn, rclpy_context, tmp_path):
    """Below min_free_disk_mb the episode in progress is saved and new goals are refused until space is back."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    from diagnostic_msgs.msg import DiagnosticStatus

    interface = rs.write_interface(tmp_path)
    root = tmp_path / "ds"
    publisher = spawn(publisher_command(30.0), "publisher")
    recorder = start_recorder(spawn, interface, root, "reset_time_s:=0.0")
    client = RecorderClient(rclpy_context)
    set_params = client.node.create_client(SetParameters, "/recorder/set_parameters")

    def set_min_free(mb: float) -> None:
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=mb)
        response = client.call(set_params, SetParameters.Request(parameters=[Parameter(name="min_free_disk_mb",
                                                                                       value=value)]))
        assert response.results[0].successful

    try:
        client.ready(recorder)
        assert set_params.wait_for_service(timeout_sec=30)
        publisher.wait_for_output("t0=", timeout=60)
        handle, future = client.send("until the disk fills")
        assert handle.accepted
        client.wait(lambda: client.feedback and client.feedback[-1].frames > 10, 20, "frames")
        set_min_free(1e12)  # more than any disk: "nearly full"
        result = client.result(future).result
        assert result.saved and result.reason == "disk nearly full"
        client.spin_for(1.5)
        refused, _ = client.send("refused", 1.0)
        assert not refused.accepted
        client.diagnostics.clear()
        client.wait(lambda: any(s.name.endswith(": recorder") and s.level == DiagnosticStatus.ERROR and
                                "disk nearly full" in s.message for d in client.diagnostics for s in d.status),
                    10, "disk diagnostics")
        set_min_free(1.0)
        client.spin_for(1.5)
        handle, future = client.send("space is back", 1.0)
        assert handle.accepted and client.result(future).result.saved

        # SIGINT during an episode: the node saves it while shutting down.
        client.feedback.clear()
        handle, future = client.send("interrupted")
        client.wait(lambda: client.feedback and client.feedback[-1].frames > 10, 20, "frames of 'interrupted'")
    finally:
        client.close()
    recorder.stop()
    log = recorder.log_path.read_text(errors="replace")
    assert "episode 2 saved (recorder shut down)" in log, log
    validate(root)
