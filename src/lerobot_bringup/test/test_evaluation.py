"""The demo's scoring: evaluation cubes, the scripted baseline's plan, the do-nothing baseline, the table."""
import numpy as np
import pytest

from lerobot_bringup.evaluation import (
    LIVE, SCENE_MODEL, EpisodeOutcome, do_nothing_outcomes, evaluation_targets, format_table, home_joints,
    render_reach, sample_path, scripted_reach_path, summarize,
)
from lerobot_drivers.sim.kinematics import forward_kinematics
from lerobot_drivers.sim.scene import ReachingScene, SceneConfig


def test_evaluation_targets_are_seeded_and_inside_the_sampling_area():
    config = SceneConfig()
    first, again, other = (evaluation_targets(s, 20) for s in (7, 7, 8))
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.allclose(np.stack(first), np.stack(other))
    radii = np.hypot(*np.stack(first).T)
    angles = np.arctan2(np.stack(first)[:, 1], np.stack(first)[:, 0])
    assert np.all((radii >= config.target_min_radius) & (radii <= config.target_max_radius))
    assert np.all(np.abs(angles) <= config.target_max_angle)


def test_the_scripted_plan_reaches_every_evaluation_cube_in_the_scene_model():
    """The scripted operator's baseline is only meaningful if its plan ends on the cube: checked with the scene's
    own reach test."""
    scene = ReachingScene(SceneConfig())
    for target in evaluation_targets(1, 10):
        path = scripted_reach_path(home_joints(), target)
        times, positions = sample_path(path, 30.0)
        assert times[0] == 0.0 and times[-1] == pytest.approx(path.duration)
        np.testing.assert_allclose(positions[0], home_joints())
        scene.set_target(*target)
        assert scene.is_reached(forward_kinematics(positions[-1])), target


def test_do_nothing_is_scored_by_the_scene_geometry():
    targets = evaluation_targets(2, 5)
    assert not any(o.reached for o in do_nothing_outcomes(targets))  # home is 11 cm above the table
    generous = do_nothing_outcomes(targets, SceneConfig(reach_radius=0.5))
    assert all(o.reached and o.time_to_reach_s == 0.0 for o in generous)


def test_summary_and_table():
    outcomes = [EpisodeOutcome("trained policy", 0, (0.1, 0.0), True, 2.0),
                EpisodeOutcome("trained policy", 1, (0.2, 0.1), False, None),
                EpisodeOutcome("trained policy", 2, (0.15, -0.1), True, 3.0)]
    summary = summarize("trained policy", LIVE, outcomes)
    assert (summary.episodes, summary.successes) == (3, 2)
    assert summary.success_rate == pytest.approx(2 / 3)
    assert summary.mean_time_to_reach_s == pytest.approx(2.5) and summary.median_time_to_reach_s == pytest.approx(2.5)
    nothing = summarize("do nothing", SCENE_MODEL, do_nothing_outcomes(evaluation_targets(0, 3)))
    table = format_table([summary, nothing]).splitlines()
    assert table[0].split(" | ")[0].strip() == "method" and "evaluated" in table[0]
    assert "trained policy" in table[2] and "2/3 (67 %)" in table[2] and "2.50 s" in table[2]
    assert "do nothing" in table[3] and "scene model" in table[3] and "0/3 (0 %)" in table[3]
    assert len({len(line) for line in table}) == 1  # columns line up


def test_render_reach_writes_a_png_of_the_pose(tmp_path):
    import cv2

    target = evaluation_targets(1, 1)[0]
    end = sample_path(scripted_reach_path(home_joints(), target), 30.0)[1][-1]
    outcome = EpisodeOutcome("trained policy", 0, tuple(target), True, 2.0, tuple(end))
    render_reach(outcome, tmp_path / "reach.png", width=160, height=120)
    image = cv2.imread(str(tmp_path / "reach.png"))
    assert image.shape == (120, 160, 3)
    with pytest.raises(ValueError, match="did not reach"):
        render_reach(EpisodeOutcome("trained policy", 1, (0.1, 0.0), False, None), tmp_path / "no.png")


class _FollowerThatRejectsLateTrajectories:
    """A demo console whose follower rejects the first `rejected` trajectories (as the driver rejects one that arrives
    after its max_late_start_s) and executes the next ones to their last point."""

    def __init__(self, start, rejected: int):
        self.joints = np.asarray(start, float)
        self.rejected = rejected
        self.sent = []

    def follower_joints(self, names):
        return self.joints.copy()

    def send_trajectory(self, names, times, positions):
        self.sent.append(np.asarray(positions[0], float))
        if len(self.sent) > self.rejected:
            self.joints = np.asarray(positions[-1], float)

    def wait_until_at(self, names, goal, tolerance, timeout_s):
        return float(np.max(np.abs(self.joints - np.asarray(goal)))) <= tolerance


def test_going_home_sends_a_new_trajectory_when_one_was_rejected():
    from lerobot_bringup.demo_evaluate import go_home

    start = home_joints() + 0.6
    console = _FollowerThatRejectsLateTrajectories(start, rejected=1)
    go_home(console)
    assert len(console.sent) == 2
    np.testing.assert_allclose(console.joints, home_joints(), atol=0.03)


def test_going_home_fails_with_the_joint_errors_when_every_trajectory_is_rejected():
    from lerobot_bringup.demo_record import DemoStageError
    from lerobot_bringup.demo_evaluate import go_home

    console = _FollowerThatRejectsLateTrajectories(home_joints() + 0.6, rejected=99)
    with pytest.raises(DemoStageError, match=r"did not reach home after 3 trajectories \(joint errors \[0\.6, 0\.6"):
        go_home(console)
    assert len(console.sent) == 3
