"""A gymnasium environment driven like a robot: fixed-rate ticks, newest-action-wins, observations out.

The ROS node (nodes/gym_robot_node.py) calls `tick(now)` on its clock at the env's rate. Each tick:
1. If the last step ended the episode and `auto_reset` is on, the env is reset and that tick only reports the reset
   observation (no step).
2. Otherwise the newest action decides:
   - no action since start/reset -> the env is *paused*: not stepped, the current observation is reported again.
     Stepping with an invented action (zeros, a sample) would move the "robot" without anyone commanding it.
   - an action younger than `action_timeout` -> one env.step with it (an action is reused on later ticks until a
     newer one arrives, like a servo that holds its last goal).
   - an action older than `action_timeout` (> 0) is stale -> `on_stale_action`: "hold" steps with it anyway
     (position-controlled envs such as PushT then hold still), "pause" stops stepping until a fresh action arrives.
Observations are split into a flat float state vector (every non-image entry, in key order) and images (every uint8
HxWx3 / HxW / HxWx1 entry, by key); `render_camera` adds env.render() as one more image.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HOLD, PAUSE = "hold", "pause"


class GymRobotError(ValueError):
    """Bad configuration, an unsupported space, or an action that does not fit the env."""


@dataclass(frozen=True)
class GymRobotConfig:
    env_id: str
    env_kwargs: dict = field(default_factory=dict)
    fps: float = 0.0  # 0 = env.metadata["render_fps"]
    seed: int | None = 0  # first reset's seed; later resets continue the env's own RNG
    state_names: tuple[str, ...] = ()  # empty = derived from the observation space
    render_camera: str = ""  # publish env.render() (render_mode rgb_array) under this camera name
    camera_names: dict = field(default_factory=dict)  # image observation key -> camera name (default: the key)
    on_stale_action: str = HOLD
    action_timeout: float = 0.5  # seconds; 0 = actions never go stale
    auto_reset: bool = True

    def __post_init__(self):
        if self.on_stale_action not in (HOLD, PAUSE):
            raise GymRobotError(f"on_stale_action must be '{HOLD}' or '{PAUSE}', got {self.on_stale_action!r}")
        if self.fps < 0 or self.action_timeout < 0:
            raise GymRobotError(f"fps and action_timeout must be >= 0, got {self.fps} and {self.action_timeout}")


@dataclass
class Observation:
    state: np.ndarray  # float64, flat
    images: dict[str, np.ndarray]  # camera name -> HxWx3 uint8 RGB


@dataclass
class TickResult:
    observation: Observation
    stepped: bool
    reset: bool = False  # this tick reset the env (auto reset)
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    status: str = ""  # why the env was not stepped ("waiting for the first action", "action stale", ...)


def _is_image_space(space) -> bool:
    from gymnasium import spaces

    return (isinstance(space, spaces.Box) and space.dtype == np.uint8
            and (len(space.shape) == 2 or (len(space.shape) == 3 and space.shape[2] in (1, 3))))


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class ObservationLayout:
    """Where each observation entry goes: (key path, names) for state parts, key path -> camera for images."""

    state_parts: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
    image_parts: tuple[tuple[tuple[str, ...], str], ...]

    @classmethod
    def from_space(cls, space) -> "ObservationLayout":
        from gymnasium import spaces

        state_parts, image_parts = [], []

        def visit(sub, path: tuple[str, ...]):
            label = ".".join(path)
            if isinstance(sub, spaces.Dict):
                for key, child in sub.spaces.items():
                    visit(child, path + (key,))
            elif _is_image_space(sub):
                image_parts.append((path, label or "image"))
            elif isinstance(sub, spaces.Box):
                size = int(np.prod(sub.shape)) if sub.shape else 1
                prefix = f"{label}_" if label else "obs_"
                names = (label,) if label and size == 1 else tuple(f"{prefix}{i}" for i in range(size))
                state_parts.append((path, names))
            elif isinstance(sub, spaces.Discrete):
                state_parts.append((path, (label or "obs_0",)))
            else:
                raise GymRobotError(f"observation entry {label or '<root>'!r} has unsupported space {sub}; "
                                    "supported: Box, Discrete, Dict of those")

        visit(space, ())
        return cls(tuple(state_parts), tuple(image_parts))

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(name for _, names in self.state_parts for name in names)

    def split(self, obs) -> Observation:
        def get(path):
            value = obs
            for key in path:
                value = value[key]
            return value

        parts = [np.asarray(get(path), dtype=np.float64).reshape(-1) for path, _ in self.state_parts]
        state = np.concatenate(parts) if parts else np.zeros(0)
        return Observation(state=state, images={name: _as_rgb(get(path)) for path, name in self.image_parts})


def make_env(env_id: str, kwargs: dict):
    """gymnasium.make, importing the id's namespace package first (`gym_pusht/PushT-v0` needs `import gym_pusht`)."""
    import gymnasium as gym
    from gymnasium.envs.registration import parse_env_id

    if ":" not in env_id:  # "module:Env-v0" is imported by gymnasium itself
        namespace, _, _ = parse_env_id(env_id)
        if namespace and not any(spec.namespace == namespace for spec in gym.registry.values()):
            try:
                importlib.import_module(namespace)
            except ImportError as error:
                raise GymRobotError(f"env_id {env_id!r}: the namespace package {namespace!r} cannot be imported "
                                    f"({error}); install it (e.g. pip install {namespace.replace('_', '-')})") from error
    if kwargs.get("render_mode") != "human":
        # headless: pygame-based renderers (Pendulum, PushT) otherwise complain about a missing display/XDG dir
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as error:
        raise GymRobotError(f"cannot make gymnasium env {env_id!r} with kwargs {kwargs}: {error}") from error


class GymRobot:
    def __init__(self, config: GymRobotConfig):
        from gymnasium import spaces

        self.config = config
        self.env = make_env(config.env_id, dict(config.env_kwargs))
        self.layout = ObservationLayout.from_space(self.env.observation_space)
        image_keys = [name for _, name in self.layout.image_parts]
        unknown = set(config.camera_names) - set(image_keys)
        if unknown:
            raise GymRobotError(f"camera_names renames {sorted(unknown)}, which are not image observations of "
                                f"{config.env_id} (image observations: {image_keys})")
        derived = self.layout.state_names
        if config.state_names and len(config.state_names) != len(derived):
            raise GymRobotError(f"state_names has {len(config.state_names)} names but {config.env_id} observations "
                                f"have {len(derived)} state values ({list(derived)})")
        self.state_names = tuple(config.state_names) or derived
        self.fps = config.fps or float(self.env.metadata.get("render_fps") or 0)
        if self.fps <= 0:
            raise GymRobotError(f"{config.env_id} declares no metadata['render_fps']; set the fps parameter")
        action_space = self.env.action_space
        if isinstance(action_space, spaces.Box):
            self.action_dim = int(np.prod(action_space.shape))
        elif isinstance(action_space, spaces.Discrete):
            self.action_dim = 1
        else:
            raise GymRobotError(f"{config.env_id} has action space {action_space}; supported: Box, Discrete")
        if config.render_camera and self.env.render_mode != "rgb_array":
            raise GymRobotError(f"render_camera={config.render_camera!r} needs render_mode='rgb_array' in env_kwargs "
                                f"(the env has render_mode={self.env.render_mode!r})")
        self._action: np.ndarray | None = None
        self._action_time = 0.0
        self._episode_over = False
        self.episode = 0
        self.steps_in_episode = 0
        self._observation = self.reset(seed=config.seed)

    @property
    def observation(self) -> Observation:
        return self._observation

    def _observe(self, raw) -> Observation:
        observation = self.layout.split(raw)
        if self.config.camera_names:
            observation.images = {self.config.camera_names.get(k, k): v for k, v in observation.images.items()}
        if self.config.render_camera:
            observation.images[self.config.render_camera] = _as_rgb(self.env.render())
        return observation

    def reset(self, seed: int | None = None) -> Observation:
        """Start a new episode. The held action is dropped: the env waits for a command of the new episode."""
        raw, _ = self.env.reset(seed=seed)
        self._action = None
        self._episode_over = False
        self.steps_in_episode = 0
        self._observation = self._observe(raw)
        return self._observation

    def set_action(self, values, now: float) -> np.ndarray:
        """Validate and store the newest action (`now` in seconds on the caller's clock); returns what will be used."""
        from gymnasium import spaces

        vector = np.asarray(values, dtype=np.float64).reshape(-1)
        if vector.size != self.action_dim:
            raise GymRobotError(f"action has {vector.size} values but {self.config.env_id} expects {self.action_dim}")
        if not np.all(np.isfinite(vector)):
            raise GymRobotError(f"action contains non-finite values: {vector.tolist()}")
        space = self.env.action_space
        if isinstance(space, spaces.Discrete):
            choice = int(round(vector[0]))
            if not space.contains(np.int64(choice)):
                raise GymRobotError(f"discrete action {choice} outside {space}")
        self._action, self._action_time = vector, now
        return vector

    def _env_action(self):
        from gymnasium import spaces

        space = self.env.action_space
        if isinstance(space, spaces.Discrete):
            return int(round(self._action[0]))
        # clip to the declared bounds: envs are free to assume in-range actions
        return np.clip(self._action.reshape(space.shape), space.low, space.high).astype(space.dtype)

    def tick(self, now: float) -> TickResult:
        if self._episode_over:
            if not self.config.auto_reset:
                return TickResult(self._observation, stepped=False, status="episode over (auto_reset off)")
            self.reset()
            self.episode += 1
            return TickResult(self._observation, stepped=False, reset=True, status="auto reset")
        if self._action is None:
            return TickResult(self._observation, stepped=False, status="waiting for the first action")
        stale = self.config.action_timeout > 0 and now - self._action_time > self.config.action_timeout
        if stale and self.config.on_stale_action == PAUSE:
            return TickResult(self._observation, stepped=False, status="action stale: paused")
        raw, reward, terminated, truncated, _ = self.env.step(self._env_action())
        self.steps_in_episode += 1
        self._observation = self._observe(raw)
        self._episode_over = bool(terminated or truncated)
        return TickResult(self._observation, stepped=True, reward=float(reward), terminated=bool(terminated),
                          truncated=bool(truncated), status="action stale: holding" if stale else "")

    def close(self) -> None:
        self.env.close()


def parse_camera_names(entries) -> dict[str, str]:
    """The camera_names parameter: ["pixels=front", ...] (observation key = camera name)."""
    names = {}
    for entry in entries:
        key, sep, camera = str(entry).partition("=")
        if not sep or not key.strip() or not camera.strip():
            raise GymRobotError(f"camera_names entries look like 'pixels=front', got {entry!r}")
        names[key.strip()] = camera.strip()
    return names


def parse_env_kwargs(text: str) -> dict[str, Any]:
    """The env_kwargs parameter: a JSON object such as '{"obs_type": "pixels_agent_pos"}'."""
    import json

    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise GymRobotError(f"env_kwargs must be a JSON object, got {text!r}: {error}") from error
    if not isinstance(value, dict):
        raise GymRobotError(f"env_kwargs must be a JSON object, got {type(value).__name__}: {text!r}")
    return value
