"""The robot view of a full ROS 2 install: robot_state_publisher with the installed URDF, and rviz2 with the saved view.

Why here and not in the bringup files: robot_state_publisher and rviz2 exist only on a full ROS install (the pip
environment has neither), and robot_description must hold the URDF's text, which a bringup file cannot read. So
the bringup files start what runs everywhere — `robot_view`, which republishes the arm's joint states in URDF units
on /joint_states and draws the end-effector paths and the cube — and the launch files of policy deployments add,
through `robot_view_actions`, the two full-ROS processes:

  robot_state_publisher   robot_description = share/lerobot_bringup/urdf/<robot>.urdf; reads /joint_states,
                          publishes /robot_description (transient local), /tf and /tf_static
  rviz2 (rviz:=true)      -d share/lerobot_bringup/rviz/policy.rviz

`robot_state_publisher_parameters` is plain Python (tested in the pip environment); `robot_view_actions` needs
launch_ros.
"""
from __future__ import annotations

from pathlib import Path


def share_directory() -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("lerobot_bringup"))


def robot_state_publisher_parameters(robot: str) -> dict[str, str]:
    """{"robot_description": the URDF text} of share/lerobot_bringup/urdf/<robot>.urdf (so101, koch)."""
    urdf = share_directory() / "urdf" / f"{robot}.urdf"
    if not urdf.is_file():
        known = sorted(p.stem for p in urdf.parent.glob("*.urdf"))
        raise FileNotFoundError(f"no robot description {urdf} (installed: {known})")
    return {"robot_description": urdf.read_text()}


def rviz_config(name: str = "policy") -> Path:
    return share_directory() / "rviz" / f"{name}.rviz"


def robot_view_actions(robot: str, rviz_default: str = "false") -> list:
    """Launch actions: the `rviz` argument, robot_state_publisher and (if rviz:=true) rviz2."""
    from launch.actions import DeclareLaunchArgument
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    return [
        DeclareLaunchArgument("rviz", default_value=rviz_default, description="start rviz2 with the policy view"),
        Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
             parameters=[robot_state_publisher_parameters(robot)], output="screen"),
        Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", str(rviz_config())],
             condition=IfCondition(LaunchConfiguration("rviz")), output="screen"),
    ]
