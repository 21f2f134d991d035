"""Live recording and bag conversion of the same message stream give identical datasets.

A publisher process streams JointStates + Images over DDS with explicit header stamps; the recorder node records
them. The same schedule is written into a bag with rosbags and converted with lerobot-bag-convert. Data parquet
values must be equal and the decoded video frames identical.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import recorder_streams as rs  # noqa: E402

pytestmark = pytest.mark.graph

HERE = Path(__file__).parent


def recorder_command(interface: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lerobot_recorder.nodes.recorder_node", "--ros-args",
            "-p", f"interface:={interface}", "-p", f"dataset_root:={root}", "-p", "autostart:=true",
            "-p", "latency_s:=2.0", *[a for p in extra for a in ("-p", p)]]


def wait_for(predicate, timeout: float, executor=None, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if executor is not None:
            executor.spin_once(timeout_sec=0.05)
        else:
            time.sleep(0.05)
        value = predicate()
        if value:
            return value
    raise TimeoutError(f"timed out waiting for {what}")


def read_t0(publisher) -> int:
    publisher.wait_for_output("t0=", timeout=60)
    return int(re.search(r"t0=(\d+)", publisher.output()).group(1))


def decoded_frames(root: Path, key: str) -> list[np.ndarray]:
    import av

    files = sorted((root / "videos" / key).rglob("*.mp4"))
    frames = []
    for path in files:
        with av.open(str(path)) as container:
            frames += [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return frames


def test_live_recording_equals_bag_conversion(spawn, rclpy_context, tmp_path):
    import rclpy
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor
    from std_srvs.srv import Trigger

    from lerobot_msgs.action import RecordEpisode
    from lerobot_recorder.bag_convert import convert_bags
    from lerobot_recorder.interface import load_interface

    interface_path = rs.write_interface(tmp_path)
    live_root = tmp_path / "live"
    recorder = spawn(recorder_command(interface_path, live_root, "vcodec:=libsvtav1", "reset_time_s:=0.0"),
                     "recorder")
    recorder.wait_for_output("recorder ready", timeout=60)

    node = rclpy.create_node("parity_test_client", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    action = ActionClient(node, RecordEpisode, "/recorder/record_episode")
    stop = node.create_client(Trigger, "/recorder/stop")
    assert action.wait_for_server(timeout_sec=60), recorder.output()
    assert stop.wait_for_service(timeout_sec=30)

    send = action.send_goal_async(RecordEpisode.Goal(task="parity task", duration=0.0))
    handle = wait_for(lambda: send.done() and send.result(), 30, executor, "goal response")
    assert handle.accepted
    result_future = handle.get_result_async()

    publisher = spawn([sys.executable, str(HERE / "recorder_test_publisher.py"), "--duration", "3"], "publisher")
    t0 = read_t0(publisher)
    wait_for(lambda: publisher.popen.poll() is not None, 60, executor, "publisher end")
    assert publisher.popen.returncode == 0, publisher.output()
    schedule = rs.make_schedule(t0, 3.0)
    # Past the staleness limit of the last messages, the live episode cannot gain frames any more.
    wait_for(lambda: time.time_ns() > schedule.end_ns + 1_000_000_000, 10, executor, "stream tail")
    response = stop.call_async(Trigger.Request())
    wait_for(response.done, 60, executor, "stop response")
    assert response.result().success, response.result().message
    wait_for(result_future.done, 60, executor, "episode result")
    result = result_future.result().result
    assert result.saved and result.episode_index == 0
    # Both end at the last tick every stream covers (no frames repeating the last values after the data stopped).
    expected = rs.expected_frames(schedule, t0 - rs.NS, rs.covered_end_ns(schedule) + 1)
    assert result.frames == len(expected) >= 85
    node.destroy_node()
    recorder.stop()
    # The SVT-AV1 encoder's ~25-line banner per start used to hide the recorder's own messages.
    assert "Svt[info]" not in recorder.log_path.read_text(errors="replace")

    bag = rs.write_bag(tmp_path / "bag", schedule, storage="mcap")
    converted_root = tmp_path / "converted"
    conversion = convert_bags([bag], load_interface(interface_path), converted_root, task="parity task",
                              vcodec="libsvtav1", progress=False, latency_s=2.0)
    assert len(conversion.saved_episodes) == 1

    live = pq.read_table(live_root / "data/chunk-000/file-000.parquet").to_pandas()
    converted = pq.read_table(converted_root / "data/chunk-000/file-000.parquet").to_pandas()
    assert len(live) == len(converted) == len(expected)
    assert list(live.columns) == list(converted.columns)
    for column in live.columns:
        np.testing.assert_array_equal(np.stack(live[column].to_numpy()), np.stack(converted[column].to_numpy()),
                                      err_msg=column)
    np.testing.assert_array_equal(np.stack(live["observation.state"].to_numpy()), np.stack([e.state for e in expected]))
    np.testing.assert_array_equal(np.stack(live["action"].to_numpy()), np.stack([e.action for e in expected]))

    live_frames = decoded_frames(live_root, "observation.images.front")
    converted_frames = decoded_frames(converted_root, "observation.images.front")
    assert len(live_frames) == len(converted_frames) == len(expected)
    for i, (a, b) in enumerate(zip(live_frames, converted_frames)):
        np.testing.assert_array_equal(a, b, err_msg=f"decoded video frame {i}")
    # Both encoded what was published: each frame is close to the camera image current at its tick.
    for frame, e in zip(live_frames, expected):
        assert np.abs(frame.astype(int) - rs.camera_image(e.camera_index).astype(int)).mean() < 10
