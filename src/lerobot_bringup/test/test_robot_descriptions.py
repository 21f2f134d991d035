"""The shipped robot descriptions (urdf/so101.urdf, urdf/koch.urdf) against the arm definitions and the simulator.

- every LeRobot motor is a joint of the URDF with all four limits, equal to the arm definition's (so the arm
  driver's default velocity limits are the URDF's: one source, held together here);
- forward kinematics from the URDF equals the simulator's kinematics for random joint angles;
- both files are installed in share/lerobot_bringup/urdf.
"""
from pathlib import Path

import numpy as np
import pytest

from lerobot_drivers.arms import MOTOR_NAMES, get_arm_definition
from lerobot_drivers.sim.kinematics import KOCH, SO101, forward_kinematics
from lerobot_drivers.urdf_kinematics import JointStateMapping, RobotDescription

URDF_DIR = Path(__file__).resolve().parents[1] / "urdf"
ROBOTS = {"so101.urdf": ("so101_follower", SO101), "koch.urdf": ("koch_follower", KOCH)}


@pytest.fixture(params=sorted(ROBOTS))
def robot(request):
    arm, geometry = ROBOTS[request.param]
    return RobotDescription.from_file(URDF_DIR / request.param), get_arm_definition(arm), geometry


def test_every_lerobot_joint_has_complete_limits_equal_to_the_arm_definition(robot):
    description, definition, _ = robot
    assert description.movable_joints == list(MOTOR_NAMES)
    for name in MOTOR_NAMES:
        joint = description.joints[name]
        assert joint.type == "revolute", name
        limits, expected = joint.limits, definition.joint_limits[name]
        assert limits.lower < limits.upper and limits.velocity > 0 and limits.effort > 0, name
        assert (limits.lower, limits.upper, limits.velocity, limits.effort) == pytest.approx(
            (expected.lower, expected.upper, expected.velocity, expected.effort), abs=1e-6), name


def test_driver_velocity_limits_are_the_urdf_ones_in_topic_units(robot):
    description, definition, _ = robot
    mapping = JointStateMapping(description)
    # ros_velocity_limits is what the arm driver's max_velocity defaults to (rad/s; gripper opening fraction/s)
    for name, ros_limit in zip(definition.motor_names, definition.ros_velocity_limits()):
        assert mapping.velocity_to_urdf(name, ros_limit) == pytest.approx(description.joints[name].limits.velocity)


def test_body_position_limits_are_the_simulated_arm_ones(robot):
    description, _, geometry = robot
    for name in MOTOR_NAMES[:-1]:
        limits = description.joints[name].limits
        assert (limits.lower, limits.upper) == pytest.approx(geometry.limits[name], abs=1e-6), name


def test_forward_kinematics_matches_the_simulator(robot):
    description, _, geometry = robot
    mapping = JointStateMapping(description)
    rng = np.random.default_rng(7)
    lows = np.array([geometry.limits[n][0] for n in MOTOR_NAMES])
    highs = np.array([geometry.limits[n][1] for n in MOTOR_NAMES])
    samples = rng.uniform(lows, highs, size=(200, 6))
    samples[:, 5] = rng.uniform(0.05, 1.0, 200)  # gripper fraction, open enough to give the jaw plane
    urdf_values = [mapping.to_urdf(MOTOR_NAMES, row) for row in samples]
    poses = description.link_poses({n: np.array([v[n] for v in urdf_values]) for n in MOTOR_NAMES})
    for k, row in enumerate(samples):
        sim = forward_kinematics(row, geometry)
        np.testing.assert_allclose(poses["base_link"][k, :3, 3], sim.base, atol=1e-9)
        np.testing.assert_allclose(poses["upper_arm_link"][k, :3, 3], sim.shoulder, atol=1e-9)
        np.testing.assert_allclose(poses["lower_arm_link"][k, :3, 3], sim.elbow, atol=1e-9)
        np.testing.assert_allclose(poses["wrist_link"][k, :3, 3], sim.wrist, atol=1e-9)
        np.testing.assert_allclose(poses["gripper_tip"][k, :3, 3], sim.tip, atol=1e-9)
        gripper = poses["gripper_link"][k]
        np.testing.assert_allclose(gripper[:3, 0], (sim.tip - sim.wrist) / geometry.wrist_to_tip, atol=1e-9)
        # the jaw plane: the simulator opens its jaws along the gripper frame's y axis (wrist_roll turns it)
        side = (sim.jaw_left - sim.tip) / np.linalg.norm(sim.jaw_left - sim.tip)
        np.testing.assert_allclose(gripper[:3, 1], side, atol=1e-9)


def test_gripper_fraction_maps_closed_and_open_to_the_joint_limits(robot):
    description, _, _ = robot
    mapping = JointStateMapping(description)
    limits = description.joints["gripper"].limits
    assert mapping.to_urdf(["gripper"], [0.0])["gripper"] == pytest.approx(limits.lower)
    assert mapping.to_urdf(["gripper"], [1.0])["gripper"] == pytest.approx(limits.upper)
    # opening moves the moving jaw's tip away from the fixed jaw (towards the gripper frame's +y)
    closed = description.link_poses({"gripper": limits.lower})
    opened = description.link_poses({"gripper": limits.upper})
    jaw_tip = np.array([0.05, 0.0, 0.0, 1.0])
    in_gripper = [np.linalg.inv(p["gripper_link"]) @ p["moving_jaw_link"] @ jaw_tip for p in (closed, opened)]
    assert in_gripper[1][1] > in_gripper[0][1] + 0.02


def test_descriptions_are_installed_in_the_share_directory():
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        share = Path(get_package_share_directory("lerobot_bringup"))
    except PackageNotFoundError:
        pytest.skip("lerobot_bringup is not installed in this environment (run `make setup`)")
    for name in ROBOTS:
        assert (share / "urdf" / name).read_text() == (URDF_DIR / name).read_text()
