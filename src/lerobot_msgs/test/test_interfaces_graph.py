"""lerobot_msgs over real DDS between two processes: ActionChunk round trip and a RecordEpisode goal."""
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.graph

PEER = Path(__file__).with_name("interfaces_peer.py")


def _spin_until(executor, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def test_action_chunk_and_record_episode_cross_processes(spawn, rclpy_context):
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from lerobot_msgs.action import RecordEpisode
    from lerobot_msgs.msg import ActionChunk

    peer = spawn([sys.executable, str(PEER)], "interfaces_peer")
    peer.wait_for_output("interfaces_peer ready")

    node = Node("interfaces_test_client", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    received = []
    node.create_subscription(ActionChunk, "/interfaces_test/chunk_out", received.append, 10)
    pub = node.create_publisher(ActionChunk, "/interfaces_test/chunk_in", 10)

    horizon, dim = 50, 6
    actions = np.arange(horizon * dim, dtype=np.float32) * 0.01
    chunk = ActionChunk()
    chunk.header.stamp.sec, chunk.header.stamp.nanosec = 12, 500_000_000
    chunk.policy_id = "act-test"
    chunk.chunk_id = 3
    chunk.observation_stamp.sec, chunk.observation_stamp.nanosec = 12, 400_000_000
    chunk.names = [f"joint_{i}" for i in range(dim)]
    chunk.horizon, chunk.action_dim, chunk.period = horizon, dim, 1 / 30
    chunk.actions = actions.tolist()
    chunk.inference_latency = 0.042
    chunk.rtc_delay_steps = 2

    # Publish until the peer's echo arrives (discovery takes a moment).
    deadline = time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        pub.publish(chunk)
        executor.spin_once(timeout_sec=0.1)
    assert received, f"no ActionChunk echoed back; peer output:\n{peer.output()}"
    echo = received[0]
    assert echo.policy_id == f"echo-from-pid-{peer.pid}:act-test"
    assert peer.pid != os.getpid()
    assert echo.chunk_id == 1003
    assert (echo.header.stamp.sec, echo.header.stamp.nanosec) == (12, 500_000_000)
    assert (echo.observation_stamp.sec, echo.observation_stamp.nanosec) == (12, 400_000_000)
    assert list(echo.names) == chunk.names
    assert (echo.horizon, echo.action_dim, echo.rtc_delay_steps) == (horizon, dim, 2)
    assert echo.period == pytest.approx(1 / 30)
    assert echo.inference_latency == pytest.approx(0.042)
    np.testing.assert_array_equal(np.asarray(echo.actions, dtype=np.float32).reshape(horizon, dim),
                                  actions.reshape(horizon, dim))

    # RecordEpisode: goal accepted, feedback streamed, result returned.
    client = ActionClient(node, RecordEpisode, "/interfaces_test/record_episode")
    assert client.wait_for_server(timeout_sec=20), peer.output()
    feedback = []
    send = client.send_goal_async(RecordEpisode.Goal(task="pick the cube", duration=0.2),
                                  feedback_callback=lambda fb: feedback.append(fb.feedback.frames))
    assert _spin_until(executor, send.done, 10)
    handle = send.result()
    assert handle.accepted
    result_future = handle.get_result_async()
    assert _spin_until(executor, result_future.done, 10)
    result = result_future.result().result
    assert (result.episode_index, result.frames, result.saved) == (7, 10, True)
    assert result.reason == "duration reached; task=pick the cube"
    assert feedback, "no feedback received"
    assert feedback == sorted(feedback) and feedback[-1] <= 10
    executor.shutdown()
    node.destroy_node()
