"""The other end of test_interfaces_graph.py, run as a separate process.

It echoes every ActionChunk it receives on /interfaces_test/chunk_in to /interfaces_test/chunk_out, marking
the copy with its own pid, and serves the RecordEpisode action by counting frames at 50 Hz.
"""
import os
import time

import rclpy
from rclpy.action import ActionServer
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from lerobot_msgs.action import RecordEpisode
from lerobot_msgs.msg import ActionChunk


class InterfacesPeer(Node):
    def __init__(self):
        super().__init__("interfaces_peer")
        self._echo = self.create_publisher(ActionChunk, "/interfaces_test/chunk_out", 10)
        self.create_subscription(ActionChunk, "/interfaces_test/chunk_in", self._on_chunk, 10)
        self._action = ActionServer(self, RecordEpisode, "/interfaces_test/record_episode", self._record)

    def _on_chunk(self, msg: ActionChunk) -> None:
        msg.policy_id = f"echo-from-pid-{os.getpid()}:{msg.policy_id}"
        msg.chunk_id += 1000
        self._echo.publish(msg)

    def _record(self, goal_handle):
        frames = int(round(goal_handle.request.duration * 50))
        feedback = RecordEpisode.Feedback()
        for i in range(1, frames + 1):
            time.sleep(0.02)
            feedback.frames = i
            feedback.elapsed = i * 0.02
            goal_handle.publish_feedback(feedback)
        goal_handle.succeed()
        return RecordEpisode.Result(
            episode_index=7, frames=frames, saved=True, reason=f"duration reached; task={goal_handle.request.task}"
        )


def main():
    rclpy.init()
    node = InterfacesPeer()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    print("interfaces_peer ready", flush=True)
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
