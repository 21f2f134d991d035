"""The simulated SO-101 reaching a cube, as a gymnasium env in dataset units.

The scene, its renderer and the arm's kinematics are `lerobot_drivers.sim` (plain Python, no ROS): the same
picture the simulated camera publishes while recording. This env puts the follower arm in a loop with a policy:

- observation: `observation.state` (6 joint positions, degrees, gripper 0..100: LeRobot's units, as the
  `sim_so101.yaml` interface records them) and `observation.images.<camera>` (H x W x 3 RGB uint8);
- action: 6 joint-position targets in the same units; the arm follows them like the simulated servos do (first-
  order approach with a 30 ms time constant, speed-limited), integrated over the control period;
- reward 1 and `terminated` when the fingertips reach the cube (`info["is_success"]`), `truncated` after
  `episode_length` steps. Every episode starts from the scripted operator's home pose with a new cube position
  drawn from the reset seed, so `reset(seed=s)` always poses the same problem.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from lerobot_drivers.sim.kinematics import JOINT_NAMES, SO101, forward_kinematics
from lerobot_drivers.sim.scene import ReachingScene, SceneConfig, TargetSampler
from lerobot_drivers.sim.scripted_operator import HOME
from lerobot_train.envs.configs import SO101ReachEnvConfig

STATE_KEY = "observation.state"
MOTOR_NAMES = [f"{name}.pos" for name in JOINT_NAMES]
_SUBSTEPS = 8  # integration steps per control period (stable for a 30 ms time constant at >= 10 Hz)


def to_dataset_units(joints: np.ndarray) -> np.ndarray:
    """Simulation units (radians, gripper opening 0..1) -> dataset units (degrees, gripper 0..100)."""
    out = np.degrees(np.asarray(joints, dtype=np.float64))
    out[5] = joints[5] * 100.0
    return out.astype(np.float32)


def from_dataset_units(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size != 6:
        raise ValueError(f"so101_reach expects 6 joint targets ({MOTOR_NAMES}), got {values.size} values")
    out = np.radians(values)
    out[5] = values[5] / 100.0
    return out


class SO101ReachEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, config: SO101ReachEnvConfig | None = None, render_mode: str | None = "rgb_array"):
        self.config = config or SO101ReachEnvConfig()
        c = self.config
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": c.fps}
        self.scene = ReachingScene(SceneConfig(width=c.image_width, height=c.image_height, view=c.view,
                                               reach_radius=c.reach_radius), seed=0)
        self.image_key = f"observation.images.{c.camera}"
        limits = SO101.limits
        low = to_dataset_units(np.array([limits[n][0] for n in JOINT_NAMES]))
        high = to_dataset_units(np.array([limits[n][1] for n in JOINT_NAMES]))
        self._low_rad, self._high_rad = from_dataset_units(low), from_dataset_units(high)
        self.action_space = gym.spaces.Box(low=low, high=high, dtype=np.float32)
        self.observation_space = gym.spaces.Dict({
            STATE_KEY: gym.spaces.Box(low=low, high=high, dtype=np.float32),
            self.image_key: gym.spaces.Box(0, 255, (c.image_height, c.image_width, 3), dtype=np.uint8),
        })
        self.joints = np.array([HOME[n] for n in JOINT_NAMES], dtype=np.float64)
        self._steps = 0
        self._image: np.ndarray | None = None

    @property
    def task(self) -> str:
        return self.config.task or ""

    def _observation(self) -> dict[str, np.ndarray]:
        self._image = self.scene.render(self.joints)
        return {STATE_KEY: to_dataset_units(self.joints), self.image_key: self._image}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.scene.sampler = TargetSampler(self.scene.config, seed)
        self.scene.randomize_target()
        self.joints = np.array([HOME[n] for n in JOINT_NAMES], dtype=np.float64)
        self._steps = 0
        return self._observation(), {"is_success": False, "target": self.scene.target_centre.copy()}

    def _follow(self, goal: np.ndarray) -> None:
        """Move the joints toward `goal` for one control period: first-order lag, capped at the servo speed."""
        c = self.config
        dt = 1.0 / c.fps / _SUBSTEPS
        max_rad_s = math.radians(c.servo_max_speed_deg_s)
        max_gripper_s = c.servo_max_speed_deg_s / 100.0  # gripper: fraction of its range per second, same scale
        limit = np.full(6, max_rad_s)
        limit[5] = max_gripper_s
        blend = 1.0 - math.exp(-dt / c.servo_time_constant_s)
        for _ in range(_SUBSTEPS):
            move = np.clip((goal - self.joints) * blend, -limit * dt, limit * dt)
            self.joints = self.joints + move

    def step(self, action):
        goal = np.clip(from_dataset_units(action), self._low_rad, self._high_rad)
        self._follow(goal)
        self._steps += 1
        pose = forward_kinematics(self.joints)
        success = self.scene.is_reached(pose)
        observation = self._observation()
        info = {"is_success": success, "tip_distance": self.scene.tip_distance(pose)}
        truncated = not success and self._steps >= self.config.episode_length
        return observation, (1.0 if success else 0.0), success, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._image if self._image is not None else self.scene.render(self.joints)
