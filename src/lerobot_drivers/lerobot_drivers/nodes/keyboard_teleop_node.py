"""Keyboard jog teleop node: key presses -> JointState commands (key map: lerobot_drivers.teleop.keyboard).

Subscribes: joint_states_topic (default /follower/joint_states; the jog starts from it), ~/keys (std_msgs/String,
            line protocol: whitespace-separated key names or runs of one-character keys).
Publishes:  command_topic (default /follower/joint_commands, sensor_msgs/JointState, every joint of the arm, stamped
            on the node clock) on each key press that moves the target.
Parameters: the PARAMETERS table below (`keyboard_teleop --help`).
"""
from __future__ import annotations

import queue
import sys
import threading

from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from lerobot_drivers.qos import LATEST_JOINT_STATE_QOS
from lerobot_drivers.teleop.jog import SO_ARM_JOINTS, JogTarget
from lerobot_drivers.nodes.parameters import ParameterSpec, declare_parameters, parameter_values
from lerobot_drivers.nodes.runner import run_node
from lerobot_drivers.teleop.keyboard import KeyboardJog, help_text, parse_key_line
from lerobot_drivers.teleop.terminal import TerminalKeys

INPUTS = ("auto", "tty", "stdin", "topic")

PARAMETERS = (
    ParameterSpec("joint_names", list(SO_ARM_JOINTS), "joints of the arm, in command order", read_only=True),
    ParameterSpec("step", 0.05, "body joint step per key press (rad)", bounds=(0.0001, 1.0), read_only=True),
    ParameterSpec("gripper_step", 0.1, "gripper step per key press (opening fraction)", bounds=(0.001, 1.0),
                  read_only=True),
    ParameterSpec("resync_after", 1.0, "idle seconds after which the jog restarts from the measured state",
                  bounds=(0.0, 60.0), read_only=True),
    ParameterSpec("input", "auto", "where keys come from: auto = the terminal in cbreak mode if stdin is a TTY, else "
                  "stdin lines; topic = only ~/keys", choices=INPUTS, read_only=True),
    ParameterSpec("command_topic", "/follower/joint_commands", "where the JointState commands go", read_only=True),
    ParameterSpec("joint_states_topic", "/follower/joint_states", "the arm's measured state (the jog starts from it)",
                  read_only=True),
)


class KeyboardTeleopNode(Node):
    def __init__(self, **kwargs):
        super().__init__("keyboard_teleop", **kwargs)
        declare_parameters(self, PARAMETERS)
        p = parameter_values(self, PARAMETERS)
        self.teleop = KeyboardJog(JogTarget(list(p["joint_names"]), resync_after=float(p["resync_after"])),
                                  step=float(p["step"]), gripper_step=float(p["gripper_step"]))
        self.input_mode = str(p["input"])
        if self.input_mode not in INPUTS:
            raise ValueError(f"parameter input must be one of {INPUTS}, got {self.input_mode!r}")
        if self.input_mode == "auto":
            self.input_mode = "tty" if sys.stdin is not None and sys.stdin.isatty() else "stdin"
        self.command_topic = str(p["command_topic"])
        self.command_pub = self.create_publisher(JointState, self.command_topic, 10)
        self.create_subscription(JointState, str(p["joint_states_topic"]),
                                 lambda m: self.teleop.jog.update_state(m.name, m.position), LATEST_JOINT_STATE_QOS.profile())
        self.create_subscription(String, "~/keys", lambda m: self._enqueue_line(m.data), 10)
        self.keys: queue.Queue[str] = queue.Queue()
        self.quit = threading.Event()
        self._stop_reader = threading.Event()
        # Keys are read on a thread (blocking terminal/stdin reads) and applied on the executor thread, so the jog
        # target is only touched from one thread.
        self.create_timer(0.01, self._drain_keys)
        self._reader = None
        if self.input_mode in ("tty", "stdin"):
            self._reader = threading.Thread(target=self._read_tty if self.input_mode == "tty" else self._read_stdin,
                                            daemon=True)
            self._reader.start()
        self.get_logger().info(f"keyboard teleop ({self.input_mode} input) -> {self.command_topic}\n{help_text()}")

    def _enqueue_line(self, line: str) -> None:
        for key in parse_key_line(line):
            self.keys.put(key)

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            if self._stop_reader.is_set():
                return
            self._enqueue_line(line)

    def _read_tty(self) -> None:
        with TerminalKeys() as terminal:
            while not self._stop_reader.is_set():
                key = terminal.read_key(timeout=0.1)
                if key:
                    self.keys.put(key)

    def _drain_keys(self) -> None:
        while True:
            try:
                key = self.keys.get_nowait()
            except queue.Empty:
                return
            outcome = self.teleop.handle(key, self.get_clock().now().nanoseconds * 1e-9)
            if outcome.message:
                self.get_logger().info(outcome.message)
            if outcome.command is not None:
                msg = JointState(name=list(outcome.command.names), position=list(outcome.command.positions))
                msg.header.stamp = self.get_clock().now().to_msg()
                self.command_pub.publish(msg)
            if outcome.quit:
                self.quit.set()

    def stop(self) -> None:
        self._stop_reader.set()
        if self._reader is not None and self.input_mode == "tty":
            self._reader.join(1.0)  # restores the terminal mode


def main(args=None) -> int:
    return run_node(KeyboardTeleopNode, "keyboard_teleop", args, on_exit=KeyboardTeleopNode.stop,
                    description=__doc__.split("\n\n")[0], parameters=PARAMETERS, until=lambda node: node.quit.is_set())


if __name__ == "__main__":
    sys.exit(main())
