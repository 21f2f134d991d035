"""Which frames around the current one a policy sees: `delta_timestamps` from a policy config.

Upstream (`datasets/factory.py::resolve_delta_timestamps`) turns the config's delta indices into seconds for
every dataset feature: `observation.*` (state AND cameras) get `observation_delta_indices`, `action` gets
`action_delta_indices`, `next.reward` gets `reward_delta_indices`; an index list of None means "no window,
just the current frame". For ACT (n_obs_steps=1, chunk 100) that is `{"action": [0, 1/fps, ..., 99/fps]}`;
for Diffusion (n_obs_steps=2, horizon 16) observations get `[-1/fps, 0]` and the action `[-1/fps .. 14/fps]`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

ACTION = "action"
REWARD = "next.reward"
OBS_PREFIX = "observation."


def _indices(config: Any, name: str) -> list[int] | None:
    """A delta-indices property of the config as a list of ints, or None; a clear error for anything else."""
    if not hasattr(config, name):
        raise TypeError(f"{type(config).__name__} has no '{name}': a policy config must define it (a list of ints or None)")
    value = getattr(config, name)
    if value is None:
        return None
    try:
        out = [int(i) for i in value]
    except (TypeError, ValueError):
        raise TypeError(f"{type(config).__name__}.{name} must be a list of ints or None, got {value!r}") from None
    if any(o != v for o, v in zip(out, value)):
        raise TypeError(f"{type(config).__name__}.{name} must hold whole frame offsets, got {list(value)}")
    return out


def _config_feature_keys(config: Any) -> list[str]:
    keys: list[str] = []
    for attr in ("input_features", "output_features"):
        feats = getattr(config, attr, None) or {}
        keys += [k for k in feats if k not in keys]
    return keys


def delta_timestamps_for(
    policy_config: Any, fps: int | float, features: Iterable[str] | Mapping[str, Any] | None = None
) -> dict[str, list[float]]:
    """`{feature: [seconds, ...]}` windows for a policy, as upstream's resolve_delta_timestamps.

    Args:
        policy_config: anything with `observation_delta_indices`, `action_delta_indices` and
            `reward_delta_indices` (lists of ints or None), e.g. a PreTrainedConfig.
        fps: the dataset's frame rate.
        features: the dataset's feature keys (upstream walks the dataset's features). Without it, the
            config's `input_features` and `output_features` keys are used; pass the dataset's features
            when the config's features are not filled in yet.

    Returns an empty dict when the policy needs no windows (upstream returns None then).
    """
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    obs = _indices(policy_config, "observation_delta_indices")
    act = _indices(policy_config, "action_delta_indices")
    rew = _indices(policy_config, "reward_delta_indices")
    keys: Sequence[str] = list(features) if features is not None else _config_feature_keys(policy_config)
    out: dict[str, list[float]] = {}
    for key in keys:
        if key == REWARD and rew is not None:
            out[key] = [i / fps for i in rew]
        if key == ACTION and act is not None:
            out[key] = [i / fps for i in act]
        if key.startswith(OBS_PREFIX) and obs is not None:
            out[key] = [i / fps for i in obs]
    return out
