"""The scripted operator's demonstrations: smooth paths that end with the fingertip on the target."""
import math

import numpy as np
import pytest

from lerobot_drivers.sim.kinematics import JOINT_NAMES, forward_kinematics
from lerobot_drivers.sim.scripted_operator import (
    GRIPPER_CLOSED, HOME, JointPath, minimum_jerk, plan_home, plan_reach, to_lerobot_units,
)


def test_minimum_jerk_profile():
    assert minimum_jerk(0.0) == 0.0 and minimum_jerk(1.0) == 1.0 and minimum_jerk(0.5) == pytest.approx(0.5)
    assert minimum_jerk(-1.0) == 0.0 and minimum_jerk(2.0) == 1.0
    # zero velocity at both ends
    assert minimum_jerk(1e-3) < 1e-7 and 1.0 - minimum_jerk(1 - 1e-3) < 1e-7


def test_path_interpolates_and_holds():
    path = JointPath([np.zeros(2), np.ones(2), np.array([1.0, 3.0])], [1.0, 2.0])
    assert path.duration == 3.0
    np.testing.assert_allclose(path.at(0.0), [0, 0])
    np.testing.assert_allclose(path.at(0.5), [0.5, 0.5])
    np.testing.assert_allclose(path.at(1.0), [1, 1])
    np.testing.assert_allclose(path.at(2.0), [1, 2])
    np.testing.assert_allclose(path.at(10.0), [1, 3])
    with pytest.raises(ValueError, match="3 waypoints need 2 durations"):
        JointPath([np.zeros(2)] * 3, [1.0])


@pytest.mark.parametrize("target", [(0.20, 0.0, 0.02), (0.18, 0.10, 0.02), (0.22, -0.12, 0.02)])
def test_reach_ends_on_the_target_with_the_gripper_closed(target):
    path = plan_reach(dict(HOME), target)
    final = dict(zip(JOINT_NAMES, path.at(path.duration)))
    tip = forward_kinematics(final).tip
    assert np.linalg.norm(tip - (np.array(target) + [0, 0, 0.005])) < 0.005
    assert final["gripper"] == pytest.approx(GRIPPER_CLOSED)
    np.testing.assert_allclose(path.at(0.0), [HOME[n] for n in JOINT_NAMES])
    # smooth: no joint jumps more than 0.1 rad between 30 Hz samples
    samples = np.array([path.at(t) for t in np.arange(0, path.duration, 1 / 30)])
    assert np.max(np.abs(np.diff(samples, axis=0))) < 0.1


def test_home_and_units():
    start = {n: 0.5 for n in JOINT_NAMES}
    path = plan_home(start)
    np.testing.assert_allclose(path.at(path.duration), [HOME[n] for n in JOINT_NAMES])
    units = to_lerobot_units(np.array([math.pi / 2, 0, 0, 0, -math.pi, 0.25]))
    assert units["shoulder_pan"] == pytest.approx(90.0) and units["wrist_roll"] == pytest.approx(-180.0)
    assert units["gripper"] == pytest.approx(25.0)
