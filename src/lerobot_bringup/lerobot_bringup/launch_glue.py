"""Translate a bringup file into launch_ros actions (used by the files in launch/ on a full ROS 2 install).

`generate_from_bringup("so101_record")` finds the bringup file by name in the installed share directory (or takes
a path), so `ros2 launch lerobot_bringup so101_record.launch.py` works from any folder. The pip environment has no
launch_ros; there `lerobot-bringup so101_record` starts the same bringup file (cli.py).
"""
from __future__ import annotations

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, Shutdown, TimerAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from lerobot_bringup.runner import find_bringup, load_bringup


def _actions_for(spec):
    on_exit = [Shutdown(reason=f"{spec.name} exited")] if spec.required else None
    if spec.ros_node:
        parameters = [str(f) for f in spec.parameter_files]
        if spec.parameters:
            parameters.append(spec.parameters)
        action = Node(
            package=spec.package, executable=spec.executable, name=spec.name,
            namespace=spec.namespace or None, arguments=spec.args, parameters=parameters,
            remappings=list(spec.remappings.items()), output="screen", on_exit=on_exit,
        )
    else:
        from ament_index_python.packages import get_package_prefix

        executable = Path(get_package_prefix(spec.package)) / "lib" / spec.package / spec.executable
        action = ExecuteProcess(cmd=[str(executable), *spec.args], name=spec.name, output="screen", on_exit=on_exit,
                                sigterm_timeout="10")
    return [TimerAction(period=spec.delay_s, actions=[action])] if spec.delay_s > 0 else [action]


def generate_from_bringup(bringup: str | Path) -> LaunchDescription:
    """A LaunchDescription of the bringup file `bringup` (a name such as "so101_record", or a path)."""
    bringup_path = find_bringup(bringup)
    defaults = load_bringup(bringup_path).arguments

    def expand(context):
        overrides = {name: LaunchConfiguration(name).perform(context) for name in defaults}
        bringup = load_bringup(bringup_path, overrides)
        return [action for spec in bringup.processes for action in _actions_for(spec)]

    declared = [DeclareLaunchArgument(name, default_value=value) for name, value in defaults.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=expand)])
