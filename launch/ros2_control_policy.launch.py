"""ros2 launch lerobot_bringup ros2_control_policy.launch.py policy_path:=... controller:=arm_controller

The policy node of ros2_control_policy.yaml, sending each chunk as a JointTrajectory to the joint_trajectory_controller
`controller` of a running ros2_control bringup (which brings its own robot_state_publisher). The pip environment
starts the same bringup file with: lerobot-bringup ros2_control_policy policy_path:=...
"""
from lerobot_bringup.launch_glue import generate_from_bringup

BRINGUP = "ros2_control_policy"


def generate_launch_description():
    return generate_from_bringup(BRINGUP)
