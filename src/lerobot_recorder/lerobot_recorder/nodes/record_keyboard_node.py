"""Keyboard control of the recorder, as in lerobot-record: right arrow = save the episode now (or end the reset
period), left arrow = re-record (discard and record the same task again), Esc = save and stop.

The terminal is put in cbreak mode when stdin is a TTY; otherwise the same bytes are read from the pipe, so the
node can be scripted. The decision logic is `lerobot_recorder.keyboard_session` (tested without a terminal).

Parameters: recorder (node name of the recorder, default /recorder), task, episode_time_s (0 = until right arrow),
num_episodes (0 = until Esc).
"""
from __future__ import annotations

import os
import queue
import select
import sys
import threading

import rclpy
from rclpy.action import ActionClient
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from lerobot_msgs.action import RecordEpisode
from std_srvs.srv import Trigger

from lerobot_recorder.keyboard_session import Command, CommandKind, Key, KeyboardSession, KeyDecoder

ESC_TIMEOUT_S = 0.05


def read_keys(stream, keys: "queue.Queue[Key | None]", stop: threading.Event) -> None:
    """Read bytes from `stream` (a TTY in cbreak mode or a pipe) and queue decoded keys; None at end of input."""
    fd = stream.fileno()
    decoder = KeyDecoder()
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], ESC_TIMEOUT_S)
        if not ready:
            for key in decoder.flush():
                keys.put(key)
            continue
        data = os.read(fd, 64)
        if not data:
            for key in decoder.flush():
                keys.put(key)
            keys.put(None)
            return
        for key in decoder.feed(data):
            keys.put(key)


class RecordKeyboardNode(Node):
    def __init__(self) -> None:
        super().__init__("record_keyboard")
        self.declare_parameter("recorder", "/recorder")
        self.declare_parameter("task", "")
        self.declare_parameter("episode_time_s", 0.0)
        self.declare_parameter("num_episodes", 0)
        recorder = self.get_parameter("recorder").value.rstrip("/")
        self.session = KeyboardSession(
            task=self.get_parameter("task").value,
            episode_time_s=float(self.get_parameter("episode_time_s").value),
            num_episodes=int(self.get_parameter("num_episodes").value))
        self._action = ActionClient(self, RecordEpisode, f"{recorder}/record_episode")
        self._stop = self.create_client(Trigger, f"{recorder}/stop")
        self._goal_handle = None
        self.keys: "queue.Queue[Key | None]" = queue.Queue()
        self.done = threading.Event()
        self.create_timer(0.05, self._drain_keys)

    def start(self, timeout_s: float = 30.0) -> bool:
        if not self._action.wait_for_server(timeout_sec=timeout_s):
            self.get_logger().error(f"no RecordEpisode server at {self._action._action_name}")
            return False
        self._say("keys: → save episode / end reset, ← re-record, Esc stop")
        self._run(self.session.start())
        return True

    def _say(self, text: str) -> None:
        print(f"[record_keyboard] {text}", flush=True)

    def _drain_keys(self) -> None:
        while True:
            try:
                key = self.keys.get_nowait()
            except queue.Empty:
                return
            if key is None:  # end of input: behave as Esc
                key = Key.ESCAPE
            self._say(f"key {key.value}")
            self._run(self.session.on_key(key))

    def _run(self, commands: list[Command]) -> None:
        for command in commands:
            if command.kind is CommandKind.SEND_GOAL:
                self._say(f"recording episode: task {command.task!r}")
                goal = RecordEpisode.Goal(task=command.task, duration=command.duration)
                self._action.send_goal_async(goal).add_done_callback(self._on_goal_response)
            elif command.kind is CommandKind.STOP:
                self._stop.call_async(Trigger.Request()).add_done_callback(self._on_stop_response)
            elif command.kind is CommandKind.CANCEL_GOAL:
                if self._goal_handle is not None:
                    self._goal_handle.cancel_goal_async()
            elif command.kind is CommandKind.EXIT:
                self._say(f"done: {self.session.saved_episodes} episodes saved")
                self.done.set()

    def _on_stop_response(self, future) -> None:
        response = future.result()
        self._say(f"stop: {response.message}" if response is not None else "stop failed")
        # Esc during the reset period: the goal waiting for the reset to end must not start an episode.
        if response is not None and self.session.stopping and "reset period" in response.message:
            if self._goal_handle is not None:
                self._goal_handle.cancel_goal_async()

    def _on_goal_response(self, future) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self._say("goal rejected by the recorder (see its log)")
            self._run(self.session.on_goal_rejected())
            return
        self._goal_handle = handle
        handle.get_result_async().add_done_callback(self._on_result)

    def _on_result(self, future) -> None:
        self._goal_handle = None
        result = future.result().result
        if result.saved:
            self._say(f"episode {result.episode_index} saved: {result.frames} frames ({result.reason})")
        else:
            self._say(f"episode discarded ({result.reason})")
        self._run(self.session.on_result(result.saved))


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = RecordKeyboardNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()
    restore = None
    if sys.stdin.isatty():
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        restore = lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)  # noqa: E731
    reader = threading.Thread(target=read_keys, args=(sys.stdin, node.keys, stop), daemon=True)
    reader.start()
    try:
        if node.start():
            while rclpy.ok() and not node.done.is_set():
                executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stop.set()
        if restore is not None:
            restore()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
