"""ROS-free control core of the arm driver: command sources -> one safe goal per control tick.

Everything here works on plain numbers (seconds on the node clock, ROS units: radians for body joints, a
fraction for the gripper), so it is unit-tested without a ROS graph. `nodes/arm_driver_node.py` only translates
messages and parameters into these types and owns the bus thread.
"""
from lerobot_drivers.control.commands import (
    CommandRejected, JointPositionCommand, JointTrajectoryCommand, TrajectoryPoint, trajectory_from_action_chunk,
)
from lerobot_drivers.control.controller import GoalController
from lerobot_drivers.control.safety import PositionLimit, RelativeTargetLimit, VelocityLimit
from lerobot_drivers.control.units import JointUnit, UnitMap

__all__ = [
    "CommandRejected", "GoalController", "JointPositionCommand", "JointTrajectoryCommand", "JointUnit",
    "PositionLimit", "RelativeTargetLimit", "TrajectoryPoint", "UnitMap", "VelocityLimit",
    "trajectory_from_action_chunk",
]
