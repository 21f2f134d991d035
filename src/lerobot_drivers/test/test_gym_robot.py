"""GymRobot core: observation split, tick/action semantics, auto reset, errors; built-in, custom and PushT envs."""
import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from lerobot_drivers.gym_robot import (GymRobot, GymRobotConfig, GymRobotError, ObservationLayout,
                                       parse_camera_names, parse_env_kwargs)


class CounterEnv(gym.Env):
    """A 2-D point that moves by the action; the camera image's brightness is the step count; ends after 3 steps."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode=None, episode_length=3):
        self.render_mode = render_mode
        self.episode_length = episode_length
        self.observation_space = spaces.Dict({
            "agent_pos": spaces.Box(-10, 10, (2,), np.float32),
            "pixels": spaces.Box(0, 255, (4, 6, 3), np.uint8),
            "depth": spaces.Box(0, 255, (4, 6), np.uint8),
            "phase": spaces.Discrete(5),
        })
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)

    def _obs(self):
        return {"agent_pos": self.pos.astype(np.float32), "pixels": np.full((4, 6, 3), self.t * 10, np.uint8),
                "depth": np.full((4, 6), 7, np.uint8), "phase": self.t % 5}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = self.pos + np.asarray(action, float)
        self.t += 1
        return self._obs(), float(self.t), self.t >= self.episode_length, False, {}

    def render(self):
        return np.full((5, 5, 3), 99, np.uint8)


gym.register(id="LerobotTestCounter-v0", entry_point=CounterEnv)


def make(**overrides):
    return GymRobot(GymRobotConfig(env_id="LerobotTestCounter-v0", **overrides))


def test_observation_layout_splits_state_and_images():
    robot = make()
    assert robot.state_names == ("agent_pos_0", "agent_pos_1", "phase")  # dict keys are sorted by gymnasium
    assert robot.fps == 20 and robot.action_dim == 2
    obs = robot.observation
    assert sorted(obs.images) == ["depth", "pixels"]
    assert obs.images["pixels"].shape == (4, 6, 3) and obs.images["depth"].shape == (4, 6, 3)  # mono -> rgb
    np.testing.assert_array_equal(obs.state[:2], robot.env.unwrapped.pos.astype(np.float32))
    assert obs.state[2] == 0
    flat = ObservationLayout.from_space(spaces.Box(-1, 1, (3,)))
    assert flat.state_names == ("obs_0", "obs_1", "obs_2") and not flat.image_parts
    image_only = ObservationLayout.from_space(spaces.Box(0, 255, (8, 8, 3), np.uint8))
    assert image_only.image_parts == (((), "image"),)


def test_ticks_pause_until_first_action_then_hold_and_step_with_newest():
    robot = make(seed=4)
    start = robot.observation.state.copy()
    result = robot.tick(now=0.0)
    assert not result.stepped and result.status == "waiting for the first action"
    np.testing.assert_array_equal(result.observation.state, start)
    robot.set_action([0.5, -0.25], now=0.0)
    result = robot.tick(now=0.05)
    assert result.stepped and result.reward == 1.0 and not result.terminated
    np.testing.assert_allclose(result.observation.state[:2], start[:2] + [0.5, -0.25], atol=1e-6)
    assert result.observation.images["pixels"][0, 0, 0] == 10
    # the same action is held on the next tick (not stale yet)
    result = robot.tick(now=0.1)
    np.testing.assert_allclose(result.observation.state[:2], start[:2] + [1.0, -0.5], atol=1e-6)
    # out-of-bounds actions are clipped to the space
    robot.set_action([5.0, 0.0], now=0.1)
    result = robot.tick(now=0.15)
    assert result.terminated and result.reward == 3.0
    np.testing.assert_allclose(result.observation.state[:2], start[:2] + [2.0, -0.5], atol=1e-6)
    # auto reset on the next tick, then waiting for an action of the new episode
    result = robot.tick(now=0.2)
    assert result.reset and not result.stepped and robot.episode == 1
    assert result.observation.images["pixels"][0, 0, 0] == 0
    assert robot.tick(now=0.25).status == "waiting for the first action"


def test_stale_action_hold_versus_pause_and_no_auto_reset():
    hold = make(action_timeout=0.5, on_stale_action="hold")
    hold.set_action([0.1, 0.1], now=0.0)
    result = hold.tick(now=1.0)
    assert result.stepped and result.status == "action stale: holding"
    pause = make(action_timeout=0.5, on_stale_action="pause")
    pause.set_action([0.1, 0.1], now=0.0)
    assert pause.tick(now=0.4).stepped
    result = pause.tick(now=1.0)
    assert not result.stepped and result.status == "action stale: paused"
    pause.set_action([0.1, 0.1], now=1.0)
    assert pause.tick(now=1.1).stepped
    stays = make(auto_reset=False)
    stays.set_action([0, 0], now=0)
    for i in range(3):
        stays.tick(now=0.1 * i)
    result = stays.tick(now=0.4)
    assert not result.stepped and not result.reset and "episode over" in result.status


def test_render_camera_and_clear_errors():
    robot = make(env_kwargs={"render_mode": "rgb_array"}, render_camera="overview")
    assert robot.observation.images["overview"].shape == (5, 5, 3)
    renamed = make(camera_names=parse_camera_names(["pixels=front", " depth = wrist "]))
    assert sorted(renamed.observation.images) == ["front", "wrist"]
    with pytest.raises(GymRobotError, match=r"camera_names renames \['agent_pos'\], which are not image"):
        make(camera_names={"agent_pos": "x"})
    with pytest.raises(GymRobotError, match="camera_names entries look like 'pixels=front'"):
        parse_camera_names(["pixels"])
    with pytest.raises(GymRobotError, match="render_mode='rgb_array'"):
        make(render_camera="overview")
    with pytest.raises(GymRobotError, match="action has 3 values but LerobotTestCounter-v0 expects 2"):
        make().set_action([1, 2, 3], now=0)
    with pytest.raises(GymRobotError, match="non-finite"):
        make().set_action([np.nan, 0], now=0)
    with pytest.raises(GymRobotError, match="state_names has 2 names but .* have 3 state values"):
        make(state_names=("a", "b"))
    with pytest.raises(GymRobotError, match="on_stale_action"):
        make(on_stale_action="freeze")
    with pytest.raises(GymRobotError, match="cannot make gymnasium env 'NoSuchEnv-v0'"):
        GymRobot(GymRobotConfig(env_id="NoSuchEnv-v0"))
    with pytest.raises(GymRobotError, match="namespace package 'no_such_pkg' cannot be imported"):
        GymRobot(GymRobotConfig(env_id="no_such_pkg/Env-v0"))
    assert parse_env_kwargs('{"obs_type": "state"}') == {"obs_type": "state"}
    assert parse_env_kwargs("") == {}
    with pytest.raises(GymRobotError, match="env_kwargs must be a JSON object"):
        parse_env_kwargs("[1, 2]")
    with pytest.raises(GymRobotError, match="env_kwargs must be a JSON object"):
        parse_env_kwargs("{obs_type: state}")


def test_pendulum_matches_a_directly_stepped_env():
    robot = GymRobot(GymRobotConfig(env_id="Pendulum-v1", env_kwargs={"render_mode": "rgb_array"},
                                    render_camera="render", seed=11))
    reference = gym.make("Pendulum-v1")
    obs, _ = reference.reset(seed=11)
    np.testing.assert_allclose(robot.observation.state, obs, rtol=1e-6)
    assert robot.fps == 30 and robot.state_names == ("obs_0", "obs_1", "obs_2")
    assert robot.observation.images["render"].shape == (500, 500, 3)
    for i, torque in enumerate([0.5, -1.0, 2.0, 0.0]):
        robot.set_action([torque], now=i)
        result = robot.tick(now=i)
        obs, reward, *_ = reference.step(np.array([torque], np.float32))
        np.testing.assert_allclose(result.observation.state, obs, rtol=1e-5)
        assert result.reward == pytest.approx(reward)


@pytest.mark.skipif(importlib.util.find_spec("gym_pusht") is None,
                    reason="gym_pusht not importable: pip install --no-deps gym-pusht pymunk shapely pygame cffi "
                           "pycparser (its opencv-python dependency would clobber opencv-python-headless)")
def test_pusht_pixels_and_agent_pos():
    robot = GymRobot(GymRobotConfig(env_id="gym_pusht/PushT-v0", env_kwargs={"obs_type": "pixels_agent_pos"}))
    assert robot.fps == 10 and robot.state_names == ("agent_pos_0", "agent_pos_1")
    assert robot.observation.images["pixels"].shape == (96, 96, 3)
    goal = robot.observation.state + [20.0, 0.0]
    for i in range(10):
        robot.set_action(goal, now=i)
        result = robot.tick(now=i)
        assert result.stepped
    # PD-controlled agent moves towards the commanded position
    assert np.linalg.norm(result.observation.state - goal) < 1.0  # from 20 px away
