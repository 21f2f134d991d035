"""The policy-deployment bringup and launch files: they parse, wire the policy node to the right executor, name
interfaces and robot descriptions that exist, and the launch files add the full-ROS robot view.

(Every shipped bringup file's executables and parameter files are checked to exist by test_bringup.py.)
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lerobot_bringup.runner import find_bringup, load_bringup
from lerobot_recorder.interface import find_interface, load_interface

WORKSPACE = Path(__file__).resolve().parents[3]
ARM_DRIVER_POLICIES = ("sim_so101_policy", "sim_so101_policy_record", "so101_policy", "so101_policy_record",
                       "koch_policy")
ALL_POLICIES = ARM_DRIVER_POLICIES + ("ros2_control_policy",)


def processes(name: str, **overrides: str) -> dict:
    return {spec.name: spec for spec in load_bringup(find_bringup(name), overrides).processes}


def robot_of(bringup_name: str) -> str:
    """The URDF (share/lerobot_bringup/urdf/<robot>.urdf) a policy bringup's robot view must use."""
    return "koch" if bringup_name.startswith("koch") else "so101"


def interface_of(value: str):
    return load_interface(find_interface(value))


@pytest.mark.parametrize("name", ARM_DRIVER_POLICIES)
def test_policy_chunks_go_to_the_arm_driver_and_the_interface_exists(name):
    procs = processes(name, policy_path="/ckpt")
    policy = procs["policy"].parameters
    assert procs["policy"].executable == "policy_node" and procs["policy"].required
    assert policy["policy_path"] == "/ckpt" and policy["autostart"] is True
    assert policy["action_chunk_topic"] == "/follower/action_chunk"
    assert policy["trajectory_topic"] == ""  # one executor per arm
    assert policy["executor_goals_topic"] == "/follower/joint_goals"
    follower = procs["follower"]
    assert follower.namespace == "follower" and "joint_commands" not in follower.remappings  # no leader teleop
    assert "leader" not in procs and "scripted_operator" not in procs
    interface = interface_of(policy["interface"])
    assert interface.state.sources[0].topic == "/follower/joint_states"
    assert procs["robot_view"].parameters["robot"] == robot_of(name)


def test_simulated_deployment_matches_the_demo_recording():
    """A checkpoint trained on sim_so101_demo recordings is served through sim_so101_demo_policy: same features
    (names, shapes, units, fps); only the recorded action's source differs (the driver's goals, no leader)."""
    procs = processes("sim_so101_policy_record")
    recorded = interface_of("sim_so101_demo")
    served = interface_of(procs["policy"].parameters["interface"])
    assert procs["recorder"].parameters["interface"] == procs["policy"].parameters["interface"]
    assert served.dataset_features() == recorded.dataset_features() and served.fps == recorded.fps
    assert served.action.sources[0].topic == "/follower/joint_goals"
    assert recorded.action.sources[0].topic == "/leader/joint_states"
    camera = procs["front_camera"].parameters
    front = served.images["front"]
    assert (camera["width"], camera["height"]) == (front.width, front.height)
    assert camera["base_frame"] == "base_link"  # the URDF's root, so the cube marker and TF agree
    recording = processes("sim_so101_demo_record")
    assert recording["front_camera"].parameters["view"] == camera["view"] == "top"  # the policy sees what it learned
    assert interface_of(recording["recorder"].parameters["interface"]).dataset_features() == recorded.dataset_features()


@pytest.mark.parametrize("robot", ("so101", "koch"))
def test_rollout_interfaces_have_the_training_features(robot):
    teleop, rollout = interface_of(robot), interface_of(f"{robot}_rollout")
    assert rollout.dataset_features() == teleop.dataset_features()
    assert rollout.action.sources[0].topic == "/follower/joint_goals"


def test_ros2_control_example_sends_trajectories_to_the_controller():
    procs = processes("ros2_control_policy", controller="my_arm_controller", policy_path="user/model")
    policy = procs["policy"].parameters
    assert policy["trajectory_topic"] == "/my_arm_controller/joint_trajectory"
    assert policy["action_chunk_topic"] == ""
    assert interface_of(policy["interface"]).state.sources[0].topic == "/joint_states"


def test_dry_run_builds_the_command_lines(capsys):
    from lerobot_bringup import cli

    assert cli.main(["sim_so101_policy", "--dry-run", "policy_path:=/tmp/ckpt", "mode:=rtc"]) == 0
    out = capsys.readouterr().out
    for name in ("follower_bus", "follower", "front_camera", "policy", "robot_view"):
        assert f"\n{name}: " in "\n" + out, out


def test_launch_files_of_policies_add_the_robot_view():
    """Each policy launch file names its bringup file and adds robot_state_publisher (+ rviz) for an installed URDF."""
    for name in ALL_POLICIES:
        path = WORKSPACE / "launch" / f"{name}.launch.py"
        tree = ast.parse(path.read_text())
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", "") == "robot_view_actions"]
        if name == "ros2_control_policy":
            assert not calls  # the robot's own ros2_control bringup runs robot_state_publisher
            continue
        assert len(calls) == 1, name
        assert calls[0].args[0].value == robot_of(name)


def test_robot_state_publisher_gets_the_installed_urdf():
    from lerobot_bringup.robot_view_launch import robot_state_publisher_parameters, rviz_config

    description = robot_state_publisher_parameters("so101")["robot_description"]
    assert description.lstrip().startswith("<?xml") or "<robot" in description
    for joint in ("shoulder_pan", "elbow_flex", "gripper"):
        assert f'name="{joint}"' in description
    assert rviz_config().is_file()
    with pytest.raises(FileNotFoundError, match="installed: .*so101"):
        robot_state_publisher_parameters("ur5")
