"""Gamepad jog teleop node (pygame joystick; mapping in lerobot_drivers.teleop.gamepad).

pygame is an optional dependency: without it the node exits with code 1 and says how to install it.
Subscribes: joint_states_topic (default /follower/joint_states).
Publishes:  command_topic (default /follower/joint_commands, sensor_msgs/JointState) at `rate` Hz while a stick or
            button is active; nothing while the pad is idle (the arm holds its last goal).
Parameters: the PARAMETERS table below (`gamepad_teleop --help`).
Without a gamepad plugged in it logs that and keeps looking every 2 s.
"""
from __future__ import annotations

import os
import sys

from rclpy.node import Node
from sensor_msgs.msg import JointState

from lerobot_drivers.teleop.gamepad import GamepadJog
from lerobot_drivers.teleop.jog import SO_ARM_JOINTS, JogTarget
from lerobot_drivers.nodes.parameters import (
    ParameterSpec, declare_parameters, help_text, parameter_values, wants_help,
)
from lerobot_drivers.nodes.runner import run_node
from lerobot_drivers.qos import LATEST_JOINT_STATE_QOS

INSTALL_HINT = ("the gamepad teleop needs pygame, which is not installed in this Python environment.\n"
                "Install it with:  pip install 'pygame>=2.5,<2.7'  (inside the workspace venv: "
                "source env.bash first), then start the node again.")


PARAMETERS = (
    ParameterSpec("joint_names", list(SO_ARM_JOINTS), "joints of the arm, in command order", read_only=True),
    ParameterSpec("joystick", 0, "pygame joystick index", bounds=(0, 64), read_only=True),
    ParameterSpec("rate", 50.0, "command rate while a stick or button is active (Hz)", bounds=(1.0, 500.0),
                  read_only=True),
    ParameterSpec("max_speed", 1.0, "body joint speed at full stick (rad/s)", bounds=(0.01, 10.0), read_only=True),
    ParameterSpec("gripper_speed", 1.0, "gripper opening speed (fraction/s)", bounds=(0.01, 10.0), read_only=True),
    ParameterSpec("deadzone", 0.1, "stick deflection ignored around the centre", bounds=(0.0, 0.9), read_only=True),
    ParameterSpec("resync_after", 1.0, "idle seconds after which the jog restarts from the measured state",
                  bounds=(0.0, 60.0), read_only=True),
    ParameterSpec("command_topic", "/follower/joint_commands", "where the JointState commands go", read_only=True),
    ParameterSpec("joint_states_topic", "/follower/joint_states", "the arm's measured state (the jog starts from it)",
                  read_only=True),
)


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
        declare_parameters(self, PARAMETERS)
        p = parameter_values(self, PARAMETERS)
        self.teleop = GamepadJog(JogTarget(list(p["joint_names"]), resync_after=float(p["resync_after"])),
                                 max_speed=float(p["max_speed"]), gripper_speed=float(p["gripper_speed"]),
                                 deadzone=float(p["deadzone"]))
        self.joystick_index = int(p["joystick"])
        self.period = 1.0 / float(p["rate"])
        self.command_topic = str(p["command_topic"])
        self.command_pub = self.create_publisher(JointState, self.command_topic, 10)
        self.create_subscription(JointState, str(p["joint_states_topic"]),
                                 lambda m: self.teleop.jog.update_state(m.name, m.position),
                                 LATEST_JOINT_STATE_QOS.profile())
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
    description = __doc__.split("\n\n")[0]
    if wants_help(sys.argv[1:] if args is None else args):  # help works without pygame
        print(help_text("gamepad_teleop", description, PARAMETERS))
        return 0
    pygame = _import_pygame()
    if pygame is None:
        print(f"gamepad_teleop: {INSTALL_HINT}", file=sys.stderr)
        return 1
    return run_node(lambda: GamepadTeleopNode(pygame), "gamepad_teleop", args,
                    on_exit=lambda _node: pygame.quit(), description=description, parameters=PARAMETERS)

if __name__ == "__main__":
    sys.exit(main())
