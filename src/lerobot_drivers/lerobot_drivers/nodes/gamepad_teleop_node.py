"""Gamepad jog teleop node (pygame joystick; mapping in lerobot_drivers.teleop.gamepad).

pygame is an optional dependency: without it the node exits with code 1 and says how to install it.
Subscribes: joint_states_topic (default /follower/joint_states).
Publishes:  command_topic (default /follower/joint_commands, sensor_msgs/JointState) at `rate` Hz while a stick or
            button is active; nothing while the pad is idle (the arm holds its last goal).
Parameters: joint_names (SO-100/101 six), joystick (index, 0), rate (50 Hz), max_speed (1.0 rad/s),
            gripper_speed (1.0 /s), deadzone (0.1), resync_after (1.0 s).
Without a gamepad plugged in it logs that and keeps looking every 2 s.
"""
from __future__ import annotations

import os
import sys

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from lerobot_drivers.teleop.gamepad import GamepadJog
from lerobot_drivers.teleop.jog import SO_ARM_JOINTS, JogTarget
from lerobot_drivers.nodes.runner import run_node

INSTALL_HINT = ("the gamepad teleop needs pygame, which is not installed in this Python environment.\n"
                "Install it with:  pip install 'pygame>=2.5,<2.7'  (inside the workspace venv: "
                "source env.bash first), then start the node again.")


def _import_pygame():
    try:
        import pygame
    except ImportError:
        return None
    return pygame


class GamepadTeleopNode(Node):
    """`pygame` is passed in so that importing this module never needs it."""

    def __init__(self, pygame):
        super().__init__("gamepad_teleop")
        self.pygame = pygame
        p = lambda name, default: self.declare_parameter(name, default).value  # noqa: E731
        joints = list(p("joint_names", list(SO_ARM_JOINTS)))
        self.teleop = GamepadJog(JogTarget(joints, resync_after=float(p("resync_after", 1.0))),
                                 max_speed=float(p("max_speed", 1.0)),
                                 gripper_speed=float(p("gripper_speed", 1.0)), deadzone=float(p("deadzone", 0.1)))
        self.joystick_index = int(p("joystick", 0))
        self.period = 1.0 / float(p("rate", 50.0))
        self.command_topic = str(p("command_topic", "/follower/joint_commands"))
        self.command_pub = self.create_publisher(JointState, self.command_topic, 10)
        self.create_subscription(JointState, str(p("joint_states_topic", "/follower/joint_states")),
                                 lambda m: self.teleop.jog.update_state(m.name, m.position),
                                 qos_profile_sensor_data)
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # joystick events need the video subsystem, not a screen
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        self.pygame.display.init()
        self.pygame.joystick.init()
        self.joystick = None
        self._look_for_pad()
        self.create_timer(2.0, self._look_for_pad)
        self.create_timer(self.period, self._poll)

    def _look_for_pad(self) -> None:
        if self.joystick is not None:
            return
        self.pygame.joystick.quit()
        self.pygame.joystick.init()
        count = self.pygame.joystick.get_count()
        if self.joystick_index >= count:
            self.get_logger().warning(
                f"no gamepad {self.joystick_index} found (pygame sees {count} joysticks); plug one in, "
                "retrying every 2 s", throttle_duration_sec=30.0)
            return
        self.joystick = self.pygame.joystick.Joystick(self.joystick_index)
        self.joystick.init()
        self.get_logger().info(f"gamepad {self.joystick.get_name()!r}: {self.joystick.get_numaxes()} axes, "
                               f"{self.joystick.get_numbuttons()} buttons -> {self.command_topic}")

    def _poll(self) -> None:
        for event in self.pygame.event.get():
            if event.type == self.pygame.JOYDEVICEREMOVED and self.joystick is not None:
                self.get_logger().warning("gamepad unplugged")
                self.joystick = None
        if self.joystick is None:
            return
        axes = [self.joystick.get_axis(i) for i in range(self.joystick.get_numaxes())]
        buttons = [self.joystick.get_button(i) for i in range(self.joystick.get_numbuttons())]
        command = self.teleop.update(axes, buttons, self.period, self.get_clock().now().nanoseconds * 1e-9)
        if command is not None:
            msg = JointState(name=list(command.names), position=list(command.positions))
            msg.header.stamp = self.get_clock().now().to_msg()
            self.command_pub.publish(msg)


def main(args=None) -> int:
    pygame = _import_pygame()
    if pygame is None:
        print(f"gamepad_teleop: {INSTALL_HINT}", file=sys.stderr)
        return 1
    return run_node(lambda: GamepadTeleopNode(pygame), "gamepad_teleop", args, config_errors=(),
                    on_exit=lambda _node: pygame.quit())

if __name__ == "__main__":
    sys.exit(main())
