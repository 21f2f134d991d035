"""urdf_kinematics: URDF parsing (with errors that name file and element) and forward kinematics of every link."""
import math

import numpy as np
import pytest

from lerobot_drivers.urdf_kinematics import JointStateMapping, RobotDescription, UrdfError, origin_transform

# base --(yaw, about z, at 0.1 up)--> arm --(fixed, 0.2 along x, rotated 90 deg about z)--> tool
#      --(slide, prismatic along the tool's x)--> finger
CHAIN = """<?xml version="1.0"?>
<robot name="chain">
  <link name="base"/><link name="arm"/><link name="tool"/><link name="finger"/>
  <joint name="yaw" type="revolute">
    <parent link="base"/><child link="arm"/>
    <origin xyz="0 0 0.1"/><axis xyz="0 0 2"/>
    <limit lower="-1" upper="1" velocity="3" effort="2"/>
  </joint>
  <joint name="mount" type="fixed">
    <parent link="arm"/><child link="tool"/>
    <origin xyz="0.2 0 0" rpy="0 0 1.5707963267948966"/>
  </joint>
  <joint name="slide" type="prismatic">
    <parent link="tool"/><child link="finger"/>
    <axis xyz="1 0 0"/>
    <limit lower="0" upper="0.05" velocity="0.1" effort="5"/>
  </joint>
</robot>
"""


def test_chain_forward_kinematics_single_and_batched():
    robot = RobotDescription.from_string(CHAIN)
    assert robot.name == "chain" and robot.root == "base" and robot.movable_joints == ["yaw", "slide"]
    assert robot.joints["yaw"].limits.velocity == 3.0 and robot.joints["mount"].limits is None
    np.testing.assert_allclose(robot.joints["yaw"].axis, [0, 0, 1])  # normalised
    at_zero = robot.link_positions({})
    np.testing.assert_allclose(at_zero["tool"], [0.2, 0, 0.1])
    np.testing.assert_allclose(at_zero["finger"], [0.2, 0, 0.1])
    pose = robot.link_poses({"yaw": math.pi / 2, "slide": 0.05})
    # yaw turns the arm to +y; the tool's x axis points along the arm's y, i.e. -x; the finger slides along it
    np.testing.assert_allclose(pose["tool"][:3, 3], [0, 0.2, 0.1], atol=1e-12)
    np.testing.assert_allclose(pose["tool"][:3, 0], [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(pose["finger"][:3, 3], [-0.05, 0.2, 0.1], atol=1e-12)
    angles = np.linspace(-1, 1, 7)
    batch = robot.link_positions(np.stack([angles, np.full(7, 0.02)], axis=1), joint_names=["yaw", "slide"])
    assert batch["finger"].shape == (7, 3)
    for k, angle in enumerate(angles):
        np.testing.assert_allclose(batch["finger"][k], robot.link_positions({"yaw": angle, "slide": 0.02})["finger"])
    by_mapping = robot.link_positions({"yaw": angles, "slide": np.full(7, 0.02)})
    np.testing.assert_allclose(by_mapping["finger"], batch["finger"])


def test_origin_uses_fixed_axis_roll_pitch_yaw():
    roll, pitch, yaw = 0.3, -0.7, 1.1

    def rotation(axis, angle):
        c, s = math.cos(angle), math.sin(angle)
        return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
                "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]

    expected = rotation("z", yaw) @ rotation("y", pitch) @ rotation("x", roll)
    transform = origin_transform((1, 2, 3), (roll, pitch, yaw))
    np.testing.assert_allclose(transform[:3, :3], expected, atol=1e-12)
    np.testing.assert_allclose(transform[:3, 3], [1, 2, 3])


def test_positions_must_name_movable_joints():
    robot = RobotDescription.from_string(CHAIN)
    with pytest.raises(ValueError, match=r"unknown joint\(s\) \['elbow'\]; movable joints are \['yaw', 'slide'\]"):
        robot.link_poses({"elbow": 0.1})
    with pytest.raises(ValueError, match=r"\['mount'\] are fixed"):
        robot.link_poses({"mount": 0.1})
    with pytest.raises(ValueError, match="need joint_names with one name per column"):
        robot.link_poses(np.zeros((3, 2)))


@pytest.mark.parametrize("edit,message", [
    (lambda x: x.replace(' effort="2"', ""), r"joint 'yaw' <limit> has no 'effort' \(URDF requires effort and "
                                             r"velocity\)"),
    (lambda x: x.replace('<limit lower="-1" upper="1" velocity="3" effort="2"/>', ""),
     r"joint 'yaw' \(revolute\) has no <limit>"),
    (lambda x: x.replace('type="prismatic"', 'type="floating"'), r"joint 'slide' has type 'floating'"),
    (lambda x: x.replace('<parent link="arm"/>', '<parent link="forearm"/>'),
     r"joint 'mount' <parent link='forearm'> names no <link>"),
    (lambda x: x.replace('<origin xyz="0.2 0 0"', '<origin xyz="0.2 0"'), r"joint 'mount' origin xyz = '0.2 0'"),
    (lambda x: x.replace('velocity="3"', 'velocity="fast"'), r"joint 'yaw' <limit velocity='fast'> is not a number"),
    (lambda x: x.replace('lower="-1" upper="1"', 'lower="1" upper="-1"'), r"joint 'yaw' <limit> lower 1.0 > upper -1.0"),
    (lambda x: x.replace('<link name="finger"/>', '<link name="finger"/><link name="stray"/>'),
     r"expected exactly one root link .* \['base', 'stray'\]"),
    (lambda x: x.replace("</robot>", ""), "not valid XML"),
])
def test_bad_urdfs_are_refused_with_the_element_named(edit, message):
    with pytest.raises(UrdfError, match=r"my\.urdf: " + message):
        RobotDescription.from_string(edit(CHAIN), "my.urdf")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(UrdfError, match=f"{tmp_path}/none.urdf: cannot read the URDF"):
        RobotDescription.from_file(tmp_path / "none.urdf")


def test_gripper_fraction_maps_onto_the_joint_limits():
    urdf = CHAIN.replace('name="slide"', 'name="gripper"')
    mapping = JointStateMapping(RobotDescription.from_string(urdf))
    assert mapping.to_urdf(["yaw", "gripper"], [0.4, 0.5]) == {"yaw": 0.4, "gripper": pytest.approx(0.025)}
    assert mapping.from_urdf({"gripper": 0.05, "yaw": -0.2}) == {"gripper": pytest.approx(1.0), "yaw": -0.2}
    assert mapping.velocity_to_urdf("gripper", 2.0) == pytest.approx(0.1)
    with pytest.raises(UrdfError, match="fraction joint 'gripper' needs a joint with <limit>"):
        JointStateMapping(RobotDescription.from_string(CHAIN))
