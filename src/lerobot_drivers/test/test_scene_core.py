"""Simulated SO-101 kinematics and the reaching-scene renderer."""
import numpy as np
import pytest

from lerobot_drivers.sim.kinematics import SO101, forward_kinematics, inverse_kinematics, joint_vector
from lerobot_drivers.sim.scene import (FOREARM, SKY, TABLE, TARGET, TARGET_REACHED, UPPER_ARM, ReachingScene,
                                       SceneConfig, TargetSampler)


def test_forward_kinematics_zero_pose_and_signs():
    g = SO101
    pose = forward_kinematics({})
    # zero: upper arm vertical, forearm and gripper horizontal forward
    np.testing.assert_allclose(pose.elbow, [g.shoulder_forward, 0, g.shoulder_height + g.upper_arm], atol=1e-12)
    np.testing.assert_allclose(pose.tip, [g.shoulder_forward + g.forearm + g.wrist_to_tip, 0,
                                          g.shoulder_height + g.upper_arm], atol=1e-12)
    assert pose.tip_pitch == pytest.approx(0.0)
    left = forward_kinematics({"shoulder_pan": np.pi / 2})
    assert left.tip[1] == pytest.approx(g.shoulder_forward + g.forearm + g.wrist_to_tip) and abs(left.tip[0]) < 1e-12
    down = forward_kinematics({"wrist_flex": np.pi / 2})
    assert down.tip[2] == pytest.approx(pose.wrist[2] - g.wrist_to_tip)
    assert down.tip_pitch == pytest.approx(-np.pi / 2)
    forward = forward_kinematics({"shoulder_lift": 0.5})
    assert forward.elbow[0] > pose.elbow[0] and forward.elbow[2] < pose.elbow[2]
    # link lengths are preserved whatever the pose
    q = {"shoulder_pan": 0.3, "shoulder_lift": -0.7, "elbow_flex": 1.1, "wrist_flex": -0.4, "wrist_roll": 1.0}
    p = forward_kinematics(q)
    assert np.linalg.norm(p.elbow - p.shoulder) == pytest.approx(g.upper_arm)
    assert np.linalg.norm(p.wrist - p.elbow) == pytest.approx(g.forearm)
    assert np.linalg.norm(p.tip - p.wrist) == pytest.approx(g.wrist_to_tip)
    # wrist_roll turns only the jaws; the gripper opening spreads them
    rolled = forward_kinematics({**q, "wrist_roll": -1.0})
    np.testing.assert_allclose(rolled.tip, p.tip)
    assert not np.allclose(rolled.jaw_left, p.jaw_left)
    closed = forward_kinematics({**q, "gripper": 0.0})
    np.testing.assert_allclose(closed.jaw_left, closed.jaw_right)
    with pytest.raises(KeyError, match="elbow"):
        joint_vector({"elbow": 1.0})


def test_inverse_kinematics_round_trip_over_sampled_targets():
    config = SceneConfig()
    sampler = TargetSampler(config, seed=3)
    for _ in range(15):
        x, y = sampler.sample()
        goal = np.array([x, y, config.target_size + 0.01])
        solution = inverse_kinematics(goal)
        assert solution.converged, solution
        assert solution.position_error < 1e-3 and solution.pitch_error < 0.05
        np.testing.assert_allclose(forward_kinematics(solution.joints).tip, goal, atol=1e-3)
        for name, value in solution.joints.items():
            low, high = SO101.limits[name]
            assert low <= value <= high
    # joints -> FK -> IK (no pitch goal) reproduces the tip
    q = {"shoulder_pan": -0.4, "shoulder_lift": 0.4, "elbow_flex": 0.6, "wrist_flex": 0.5}
    solution = inverse_kinematics(forward_kinematics(q).tip, seed=q, pitch=None)
    assert solution.converged and solution.iterations <= 3
    far = inverse_kinematics([1.0, 0.0, 0.1])  # out of reach: best effort, not converged
    assert not far.converged and far.position_error > 0.4


def pixel(image, xy):
    return tuple(int(v) for v in image[int(round(xy[1])), int(round(xy[0]))])


def test_render_draws_links_where_forward_kinematics_puts_them():
    scene = ReachingScene(SceneConfig(width=320, height=240), seed=0)
    scene.set_target(0.2, -0.15)
    q = {"shoulder_pan": 0.6, "shoulder_lift": 0.2, "elbow_flex": 0.3, "wrist_flex": 0.8}
    image = scene.render(q)
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    pose = forward_kinematics(q)
    mid_upper = scene.projector.project([(pose.shoulder + pose.elbow) / 2])[0]
    mid_fore = scene.projector.project([(pose.elbow + pose.wrist) / 2])[0]
    assert pixel(image, mid_upper) == UPPER_ARM
    assert pixel(image, mid_fore) == FOREARM
    # the same pixel is bare table when the arm is turned away
    turned = scene.render({**q, "shoulder_pan": -0.9})
    assert pixel(turned, mid_fore) != FOREARM
    assert pixel(turned, scene.projector.project([[0.12, 0.27, 0.0]])[0]) in (TABLE, (176, 150, 112))  # table/grid
    assert pixel(image, (2, 2)) == SKY
    # other views of the same scene (same target) match a scene built for that view
    top = ReachingScene(SceneConfig(width=320, height=240, view="top"), seed=0)
    top.set_target(0.2, -0.15)
    np.testing.assert_array_equal(scene.render(q, view="top"), top.render(q))
    assert not np.array_equal(scene.render(q, view="top"), image)
    with pytest.raises(ValueError, match="view must be one of"):
        scene.render(q, view="fisheye")


def test_target_pixels_follow_the_target_and_turn_green_when_reached():
    scene = ReachingScene(SceneConfig(width=320, height=240, view="top"), seed=0)
    away = {"shoulder_pan": 0.0}  # arm straight ahead, horizontal
    first = scene.set_target(0.18, 0.12)
    centre1 = scene.projector.project([first])[0]
    image = scene.render(away)
    assert pixel(image, centre1) == TARGET
    second = scene.set_target(0.15, -0.14)
    centre2 = scene.projector.project([second])[0]
    image = scene.render(away)
    assert pixel(image, centre2) == TARGET and pixel(image, centre1) != TARGET
    assert np.linalg.norm(centre2 - centre1) > 20
    reach = inverse_kinematics(second + [0, 0, 0.01])
    assert scene.is_reached(forward_kinematics(reach.joints))
    # the cube is now green (seen from the side: from above the gripper hides most of it)
    side = ReachingScene(SceneConfig(width=320, height=240, view="three_quarter"))
    side.set_target(*second[:2])
    image = side.render(reach.joints)
    assert (image == np.array(TARGET_REACHED, np.uint8)).all(axis=2).sum() > 20
    assert not (image == np.array(TARGET, np.uint8)).all(axis=2).any()


def test_target_sampler_is_seeded_and_stays_in_the_workspace():
    config = SceneConfig()
    a = [TargetSampler(config, seed=7).sample() for _ in range(1)]
    sampler_a, sampler_b = TargetSampler(config, seed=7), TargetSampler(config, seed=7)
    seq_a = np.array([sampler_a.sample() for _ in range(50)])
    seq_b = np.array([sampler_b.sample() for _ in range(50)])
    np.testing.assert_array_equal(seq_a, seq_b)
    np.testing.assert_array_equal(seq_a[0], a[0])
    assert not np.array_equal(seq_a, np.array([TargetSampler(config, seed=8).sample() for _ in range(50)]))
    radii = np.hypot(seq_a[:, 0], seq_a[:, 1])
    assert radii.min() >= config.target_min_radius and radii.max() <= config.target_max_radius
    assert np.abs(np.arctan2(seq_a[:, 1], seq_a[:, 0])).max() <= config.target_max_angle
    with pytest.raises(ValueError, match="view must be one of"):
        SceneConfig(view="fisheye")
