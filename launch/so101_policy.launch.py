"""ros2 launch lerobot_bringup so101_policy.launch.py policy_path:=... [rviz:=true] [name:=value ...]

The processes of the bringup file so101_policy.yaml (found by name in the installed
share/lerobot_bringup/config/bringup), plus what only a full ROS install has: robot_state_publisher with
share/lerobot_bringup/urdf/so101.urdf and, with rviz:=true, rviz2 with share/lerobot_bringup/rviz/policy.rviz
(lerobot_bringup.robot_view_launch). The pip environment (no ros2 launch, no rviz) starts the same bringup file:
    lerobot-bringup so101_policy policy_path:=...
"""
from lerobot_bringup.launch_glue import generate_from_bringup
from lerobot_bringup.robot_view_launch import robot_view_actions

BRINGUP = "so101_policy"


def generate_launch_description():
    description = generate_from_bringup(BRINGUP)
    for action in robot_view_actions("so101"):
        description.add_action(action)
    return description
