"""Keyboard teleop node over DDS (topic and stdin line protocols) and the gamepad node's start-up paths."""
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.graph

STATE = {"shoulder_pan": 0.1, "shoulder_lift": -0.2, "elbow_flex": 0.3, "wrist_flex": 0.0, "wrist_roll": 0.5,
         "gripper": 0.5}


class ArmStandIn:
    """Publishes a fixed joint state and records the commands the teleop sends."""

    def __init__(self, context, prefix):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import JointState
        from std_msgs.msg import String

        self.node = Node("teleop_test_arm", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.commands = []
        self.node.create_subscription(JointState, f"{prefix}/joint_commands", self.commands.append, 10)
        self.state_pub = self.node.create_publisher(JointState, f"{prefix}/joint_states", 10)
        self.keys_pub = self.node.create_publisher(String, "/keyboard_teleop/keys", 10)
        self.state = JointState(name=list(STATE), position=list(STATE.values()))
        self.node.create_timer(0.05, lambda: self.state_pub.publish(self.state))

    def spin_until(self, predicate, timeout=30.0, each=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            if each:
                each()
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def _every(period, action):
    """A callable for spin_until(each=...) that runs `action` at most once per `period` seconds."""
    last = [float("-inf")]

    def maybe():
        if time.monotonic() - last[0] >= period:
            last[0] = time.monotonic()
            action()
    return maybe


def keyboard_args(prefix, mode):
    return [sys.executable, "-m", "lerobot_drivers.nodes.keyboard_teleop_node", "--ros-args", "-p", f"input:={mode}",
            "-p", f"joint_states_topic:={prefix}/joint_states", "-p", f"command_topic:={prefix}/joint_commands"]


def test_keyboard_node_jogs_from_keys_on_its_topic(spawn, rclpy_context):
    from std_msgs.msg import String

    proc = spawn(keyboard_args("/kb_topic", "topic"), "keyboard_teleop")
    arm = ArmStandIn(rclpy_context, "/kb_topic")
    try:
        proc.wait_for_output("keyboard teleop (topic input)")
        # wait until the node has the arm's state, then send two presses of q and one of y in one line
        assert arm.spin_until(lambda: arm.keys_pub.get_subscription_count() > 0
                              and arm.state_pub.get_subscription_count() > 0)
        # A line that arrives before the node has the arm's state is rejected as a whole ("no joint state yet"),
        # so resending until commands come back cannot double-count the first accepted line.
        assert arm.spin_until(lambda: len(arm.commands) >= 3, each=_every(1.0, lambda: arm.keys_pub.publish(
            String(data="q q y")))), proc.output()
        last = dict(zip(arm.commands[2].name, arm.commands[2].position))
        assert last == pytest.approx({**STATE, "shoulder_pan": 0.2, "gripper": 0.6})
        assert [c.position[0] for c in arm.commands[:2]] == pytest.approx([0.15, 0.2])
        assert arm.commands[2].header.stamp.sec > 0
        arm.keys_pub.publish(String(data="esc"))
        assert proc.popen.wait(20) == 0  # esc quits cleanly
    finally:
        arm.close()


def test_keyboard_node_reads_stdin_lines_when_not_a_terminal(rclpy_context, tmp_path):
    log = open(tmp_path / "keyboard_stdin.log", "wb")
    proc = subprocess.Popen(keyboard_args("/kb_stdin", "auto"), stdin=subprocess.PIPE, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    arm = ArmStandIn(rclpy_context, "/kb_stdin")
    try:
        assert arm.spin_until(lambda: arm.state_pub.get_subscription_count() > 0)

        def press_w():
            proc.stdin.write(b"w\n")
            proc.stdin.flush()

        assert arm.spin_until(lambda: arm.commands, each=_every(1.0, press_w)), \
            (tmp_path / "keyboard_stdin.log").read_text()
        assert dict(zip(arm.commands[0].name, arm.commands[0].position))["shoulder_lift"] == pytest.approx(-0.15)
        assert "keyboard teleop (stdin input)" in (tmp_path / "keyboard_stdin.log").read_text()
    finally:
        arm.close()
        proc.stdin.close()
        if proc.poll() is None:
            os.killpg(proc.pid, 2)
            proc.wait(10)
        log.close()


def test_gamepad_node_without_pygame_says_how_to_install_it(spawn):
    blocked = ("import sys; sys.modules['pygame'] = None\n"
               "from lerobot_drivers.nodes.gamepad_teleop_node import main\n"
               "sys.exit(main())")
    proc = spawn([sys.executable, "-c", blocked], "gamepad_no_pygame")
    assert proc.popen.wait(30) == 1
    assert "needs pygame" in proc.output() and "pip install 'pygame" in proc.output()


def test_gamepad_node_without_a_gamepad_keeps_looking(spawn):
    pytest.importorskip("pygame", reason="pygame is an optional dependency of the gamepad teleop")
    proc = spawn([sys.executable, "-m", "lerobot_drivers.nodes.gamepad_teleop_node"], "gamepad_no_pad",
                 env={**os.environ, "SDL_JOYSTICK_DISABLE_UDEV": "1"})
    proc.wait_for_output("no gamepad 0 found (pygame sees 0 joysticks)", timeout=30)
    assert proc.popen.poll() is None


def test_keyboard_node_reads_single_keys_from_a_terminal(rclpy_context, tmp_path):
    """stdin is a (pseudo) terminal: keys act without Enter, and the terminal mode is restored on exit."""
    import pty
    import termios

    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    log = open(tmp_path / "keyboard_tty.log", "wb")
    proc = subprocess.Popen(keyboard_args("/kb_tty", "auto"), stdin=slave, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    arm = ArmStandIn(rclpy_context, "/kb_tty")
    try:
        assert arm.spin_until(lambda: arm.state_pub.get_subscription_count() > 0)
        assert arm.spin_until(lambda: arm.commands, each=_every(1.0, lambda: os.write(master, b"e"))), \
            (tmp_path / "keyboard_tty.log").read_text()
        assert dict(zip(arm.commands[0].name, arm.commands[0].position))["elbow_flex"] == pytest.approx(0.35)
        assert "keyboard teleop (tty input)" in (tmp_path / "keyboard_tty.log").read_text()
        os.write(master, b"\x1b")  # esc quits
        assert proc.wait(20) == 0
        assert termios.tcgetattr(slave) == before
    finally:
        arm.close()
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(10)
        os.close(master)
        os.close(slave)
        log.close()
