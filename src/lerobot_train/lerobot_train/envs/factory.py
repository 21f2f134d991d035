"""Build evaluation environments from their config and turn their observations into a policy batch.

A policy batch is what `LoadedPolicy` and the processors take: dataset units, batched on the first axis, state
float32 (B, D), cameras float32 (B, 3, H, W) in [0, 1], and `task` as a list of strings.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from lerobot_train.envs.configs import EnvConfig, GymEnvConfig, SO101ReachEnvConfig

OBS_STATE = "observation.state"
OBS_ENV_STATE = "observation.environment_state"
OBS_IMAGE = "observation.image"
OBS_IMAGES = "observation.images"


class EnvError(RuntimeError):
    """An environment cannot be built, or its observations cannot be read as policy inputs."""


def make_envs(config: EnvConfig, n_envs: int) -> list[Any]:
    """`n_envs` independent environments (stepped together in one process by the evaluation loop)."""
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if isinstance(config, SO101ReachEnvConfig):
        from lerobot_train.envs.reach import SO101ReachEnv

        return [SO101ReachEnv(config) for _ in range(n_envs)]
    if isinstance(config, GymEnvConfig):
        from lerobot_drivers.gym_robot import GymRobotError, make_env

        env_id = config.gym_id
        if config.package:
            import importlib

            try:
                importlib.import_module(config.package)
            except ImportError as exc:
                raise EnvError(f"env.package {config.package!r} cannot be imported: {exc}") from None
        kwargs = {**config.gym_kwargs, "max_episode_steps": config.episode_length}
        try:
            return [make_env(env_id, dict(kwargs)) for _ in range(n_envs)]
        except GymRobotError as exc:
            raise EnvError(str(exc)) from None
    raise EnvError(f"no factory for env type {config.type!r}")


def _to_chw_float(images: Sequence[np.ndarray], key: str) -> np.ndarray:
    stacked = np.stack([np.asarray(im) for im in images])
    if stacked.ndim != 4 or stacked.shape[-1] not in (1, 3):
        raise EnvError(f"{key}: expected H x W x 3 (or x 1) images, got shape {stacked.shape[1:]}")
    if stacked.dtype != np.uint8:
        raise EnvError(f"{key}: expected uint8 images, got {stacked.dtype}")
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def _lerobot_keys(observation: Any) -> dict[str, Any]:
    """One env observation with LeRobot keys (upstream's mapping for gym envs; ours already uses LeRobot keys)."""
    if not isinstance(observation, dict):
        return {OBS_STATE: observation}  # a plain Box observation is the state vector
    if any(k.startswith("observation") for k in observation):
        return dict(observation)
    out: dict[str, Any] = {}
    pixels = observation.get("pixels")
    if isinstance(pixels, dict):
        out.update({f"{OBS_IMAGES}.{k}": v for k, v in pixels.items()})
    elif pixels is not None:
        out[OBS_IMAGE] = pixels
    if "agent_pos" in observation:
        out[OBS_STATE] = observation["agent_pos"]
    if "environment_state" in observation:
        out[OBS_ENV_STATE] = observation["environment_state"]
    if not out:
        raise EnvError(f"cannot map observation keys {sorted(observation)} to LeRobot features "
                       f"(expected pixels / agent_pos / environment_state, or observation.* keys)")
    return out


def observation_to_batch(observations: Sequence[Any], task: str | None) -> dict[str, Any]:
    """A list of env observations (one per env) -> one policy batch in dataset units."""
    mapped = [_lerobot_keys(o) for o in observations]
    keys = list(mapped[0])
    batch: dict[str, Any] = {}
    for key in keys:
        values = [m[key] for m in mapped]
        first = np.asarray(values[0])
        if first.ndim == 3 and first.dtype == np.uint8:
            batch[key] = _to_chw_float(values, key)
        else:
            batch[key] = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in values])
    batch["task"] = [task or ""] * len(mapped)
    return batch


def env_task(env: Any, config: EnvConfig) -> str:
    return config.task or getattr(env.unwrapped, "task", "") or ""
