"""robot_view's core: end-effector paths by URDF forward kinematics, the executed path, the cube marker."""
from pathlib import Path

import numpy as np
import pytest

from lerobot_bringup.robot_view import (
    CUBE_REACHED_RGBA, CUBE_RGBA, EXECUTED_RGBA, PREDICTED_RGBA, EndEffectorKinematics, ExecutedPath, cube_marker,
    executed_path_marker, predicted_path_marker,
)
from lerobot_drivers.sim.kinematics import JOINT_NAMES, forward_kinematics
from lerobot_drivers.urdf_kinematics import UrdfError

URDF = Path(__file__).resolve().parents[1] / "urdf" / "so101.urdf"


@pytest.fixture(scope="module")
def kinematics():
    return EndEffectorKinematics.from_file(URDF)


def test_tip_path_equals_the_simulators_fingertips_for_a_chunk(kinematics):
    """A chunk of random rows (suite units: gripper as opening fraction) lands where the simulator draws the tip."""
    rng = np.random.default_rng(3)
    rows = rng.uniform(-1.2, 1.2, (16, 6))
    rows[:, 5] = rng.uniform(0.0, 1.0, 16)
    points = kinematics.tip_positions(JOINT_NAMES, rows)
    expected = np.stack([forward_kinematics(row).tip for row in rows])
    assert points.shape == (16, 3)
    np.testing.assert_allclose(points, expected, atol=1e-9)
    assert kinematics.frame == "base_link"


def test_joint_order_of_the_chunk_is_read_by_name(kinematics):
    rows = np.array([[0.3, -0.2, 0.4, 0.9, 0.0, 0.5]])
    order = [5, 3, 1, 0, 2, 4]
    shuffled = kinematics.tip_positions([JOINT_NAMES[i] for i in order], rows[:, order])
    np.testing.assert_allclose(shuffled, kinematics.tip_positions(JOINT_NAMES, rows))


def test_a_chunk_for_another_robot_is_refused(kinematics):
    with pytest.raises(ValueError, match="unknown joint"):
        kinematics.tip_positions(["joint_1", "joint_2"], [[0.0, 0.0]])
    with pytest.raises(ValueError, match="2 values per row but 3 joint names"):
        kinematics.tip_positions(JOINT_NAMES[:3], [[0.0, 0.0]])
    with pytest.raises(UrdfError, match="no link 'tool0'"):
        EndEffectorKinematics.from_file(URDF, tip_link="tool0")


def test_executed_path_keeps_recent_points_and_thins_standing_still():
    path = ExecutedPath(history_s=1.0, min_step_m=0.01)
    for k in range(30):  # 3 s at 10 Hz, moving 5 mm per sample along x, then standing still
        path.add(k * 100_000_000, np.array([0.005 * min(k, 20), 0.0, 0.1]))
    points = path.points()
    assert len(points) <= 12  # about one second kept
    assert np.all(np.diff(points[:-1, 0]) >= 0.01 - 1e-9)  # thinned to 1 cm steps
    assert points[-1, 0] == pytest.approx(0.1)  # ... ending where the tip is now
    path.clear()
    assert path.points().shape == (0, 3)
    with pytest.raises(ValueError):
        ExecutedPath(history_s=0.0)


def test_markers_have_the_documented_colours_and_cube_centre():
    line = predicted_path_marker(np.zeros((4, 3)))
    assert line.rgba == PREDICTED_RGBA and executed_path_marker(np.zeros((2, 3))).rgba == EXECUTED_RGBA
    assert PREDICTED_RGBA != EXECUTED_RGBA
    cube = cube_marker((0.2, -0.1, 0.03), 0.03, reached=False)
    np.testing.assert_allclose(cube.centre, [0.2, -0.1, 0.015])  # the scene reports the top face's centre
    assert cube.rgba == CUBE_RGBA and cube_marker((0, 0, 0.03), 0.03, reached=True).rgba == CUBE_REACHED_RGBA
