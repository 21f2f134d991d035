"""Configure-time assembly: checkpoint + robot interface + settings -> a ready PolicyRuntime (ROS-free).

`build_served_policy` is what the node's configure transition does (and what the benchmark does without ROS):
find and read the interface, load the checkpoint, refuse it when it does not match the interface (every
difference listed), derive the safety gates' bounds, build the runtime and run the warm-up inferences.
Everything that can be wrong with the setup is found here, before the robot moves.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lerobot_recorder.interface import RobotInterface, find_interface, load_interface
from lerobot_policy_node.runtime.compatibility import CompatibilityReport, check_compatible
from lerobot_policy_node.runtime.engine import PolicyRuntime, RuntimeConfig
from lerobot_policy_node.runtime.errors import ConfigurationError
from lerobot_policy_node.runtime.execution import ExecutionMonitor, ExecutionMonitorConfig
from lerobot_policy_node.runtime.gates import GateConfig, SafetyGates
from lerobot_policy_node.runtime.limits import (
    StepBoundConfig, action_limits, step_bound_from_dataset, urdf_joint_limits,
)
from lerobot_policy_node.runtime.observation import ObservationAssembler
from lerobot_policy_node.runtime.policy_runner import PolicyRunner

@dataclass(frozen=True)
class ServingConfig:
    # The checkpoint: a pretrained_model/ folder or a Hugging Face Hub repo id (+ revision), and the torch device.
    policy_path: str
    # The robot interface: a file, or a name looked up in config/robots (e.g. sim_so101).
    interface: str
    policy_revision: str = ""
    device: str = "cpu"
    # Inference runtime (see engine.RuntimeConfig).
    mode: str = "sync"
    aggregate_fn_name: str = "weighted_average"
    chunk_size_threshold: float = 0.5
    # Rows of each chunk to execute; 0: sync executes the policy's n_action_steps (as upstream's select_action),
    # async/rtc the whole chunk.
    actions_per_chunk: int = 0
    # RTC soft-mask end (rows of the new chunk); 0: the overlap with the old chunk (see engine.RuntimeConfig).
    execution_horizon: int = 0
    warmup_inferences: int = 2
    use_torch_compile: bool = False
    retry_delay_s: float = 0.5
    max_consecutive_errors: int = 10
    # Safety gates (see gates.py): URDF for joint limits (file or XML text; empty: no position limits).
    urdf: str = ""
    limit_action: str = "clamp"
    max_first_row_deviation: float = 30.0
    # Boundary-jump bound: explicit per action dimension (dataset units per tick), else derived from a dataset
    # (empty: the checkpoint's training dataset, from train_config.json, when it is on this machine), else off.
    max_boundary_jump: tuple[float, ...] = ()
    jump_reference_dataset: str = ""
    jump_factor: float = 5.0
    jump_action: str = "clamp"
    # Count executed rows from the executor's reported goals (the node subscribes to them) instead of time.
    executor_goals: bool = False
    executor_goal_tolerance: float = 5.0
    executor_goal_timeout_s: float = 0.2


@dataclass
class ServedPolicy:
    runtime: PolicyRuntime
    interface: RobotInterface
    policy: Any  # lerobot_train.LoadedPolicy
    compatibility: CompatibilityReport
    policy_id: str
    notes: list[str] = field(default_factory=list)  # what configure should log


def _load_interface(name_or_path: str) -> RobotInterface:
    if not name_or_path:
        raise ConfigurationError("no robot interface given: set `interface` to a file or a name in config/robots")
    try:
        return load_interface(find_interface(name_or_path))
    except FileNotFoundError as error:
        raise ConfigurationError(str(error)) from None


def _checkpoint_folder(policy: Any) -> Path | None:
    source = getattr(policy, "source", "")
    folder = Path(source) if source else None
    return folder if folder is not None and folder.is_dir() else None


def _training_dataset(policy: Any) -> Path | None:
    """The dataset root named in the checkpoint's train_config.json, when it exists on this machine."""
    folder = _checkpoint_folder(policy)
    if folder is None or not (folder / "train_config.json").is_file():
        return None
    try:
        root = (json.loads((folder / "train_config.json").read_text()).get("dataset") or {}).get("root")
    except (json.JSONDecodeError, OSError):
        return None
    return Path(root) if root and (Path(root) / "meta" / "info.json").is_file() else None


def _step_bound(config: ServingConfig, policy: Any, action_dim: int, notes: list[str]) -> np.ndarray | None:
    if config.max_boundary_jump:
        if len(config.max_boundary_jump) != action_dim or min(config.max_boundary_jump) <= 0:
            raise ConfigurationError(f"max_boundary_jump needs {action_dim} positive values (one per action "
                                     f"dimension), got {list(config.max_boundary_jump)}")
        notes.append(f"boundary-jump gate: explicit bound {list(config.max_boundary_jump)}")
        return np.asarray(config.max_boundary_jump, dtype=np.float64)
    dataset = Path(config.jump_reference_dataset) if config.jump_reference_dataset else _training_dataset(policy)
    if dataset is None:
        notes.append("boundary-jump gate OFF: no max_boundary_jump, no jump_reference_dataset, and the checkpoint's "
                     "training dataset is not on this machine")
        return None
    bound = step_bound_from_dataset(dataset, StepBoundConfig(factor=config.jump_factor))
    notes.append(f"boundary-jump gate: bound {np.round(bound, 3).tolist()} per tick from the action deltas of {dataset}")
    return bound


def _gates(config: ServingConfig, interface: RobotInterface, policy: Any, notes: list[str]) -> SafetyGates:
    names = tuple(interface.action.names)
    lower = upper = None
    if config.urdf:
        lower, upper = action_limits(interface, urdf_joint_limits(config.urdf))
        limited = [n for n, lo in zip(names, lower) if np.isfinite(lo)]
        notes.append(f"position limits from the URDF for {limited}")
    state_names = list(interface.state.names)
    state_index = np.array([state_names.index(n) if n in state_names else -1 for n in names])
    if config.max_first_row_deviation > 0 and not (state_index >= 0).any():
        notes.append("first-row gate OFF: no action name is also a state name")
    return SafetyGates(GateConfig(
        names=names, lower=lower, upper=upper, limit_action=config.limit_action,
        max_first_row_deviation=config.max_first_row_deviation, state_index=state_index,
        max_step=_step_bound(config, policy, len(names), notes), jump_action=config.jump_action))


def _compile(policy: Any) -> None:
    """torch.compile every submodule of the policy's model (the observation encoder, the velocity head, ...): the
    sampling loop around them stays Python, so RTC's autograd step and the processors are untouched."""
    import torch

    model = getattr(getattr(policy, "policy", None), "model", None)
    if not isinstance(model, torch.nn.Module):
        raise ConfigurationError("use_torch_compile: this policy exposes no `policy.model` module to compile")
    for child in model.children():
        child.forward = torch.compile(child.forward)


def _rows_per_chunk(config: ServingConfig, policy: Any) -> int:
    if config.actions_per_chunk or config.mode != "sync":
        return config.actions_per_chunk
    return int(getattr(getattr(policy, "config", None), "n_action_steps", 0) or 0)


def default_loader(path: str, device: str, revision: str | None) -> Any:
    from lerobot_train import load_policy

    return load_policy(path, device=device, revision=revision)


def build_served_policy(config: ServingConfig, clock_ns: Callable[[], int],
                        load: Callable[[str, str, str | None], Any] = default_loader) -> ServedPolicy:
    """Everything configure does; raises ConfigurationError (one clear message) for any setup problem."""
    interface = _load_interface(config.interface)
    if not config.policy_path:
        raise ConfigurationError("no policy given: set `policy_path` to a pretrained_model folder or a Hub repo id")
    try:
        policy = load(config.policy_path, config.device, config.policy_revision or None)
    except ConfigurationError:
        raise
    except Exception as error:  # missing folder, bad config.json, Hub errors, ...: one line naming the checkpoint
        raise ConfigurationError(f"cannot load policy {config.policy_path!r}: {error}") from None
    policy_id = config.policy_path + (f"@{config.policy_revision}" if config.policy_revision else "")
    compatibility = check_compatible(interface, policy.input_features, policy.output_features,
                                     policy.robot_interface, policy_id)
    if config.mode == "rtc" and hasattr(policy, "supports_rtc") and not policy.supports_rtc():
        kind = getattr(getattr(policy, "config", None), "type", "given")
        raise ConfigurationError(f"mode rtc: the {kind} policy does not support "
                                 "real-time chunking (flow policies do); use mode sync or async")
    notes = [f"not checked (the checkpoint does not say): {', '.join(compatibility.unchecked)}"] \
        if compatibility.unchecked else []
    try:
        runtime_config = RuntimeConfig(
            mode=config.mode, aggregate_fn_name=config.aggregate_fn_name,
            chunk_size_threshold=config.chunk_size_threshold,
            execution_horizon=config.execution_horizon, retry_delay_s=config.retry_delay_s,
            max_consecutive_errors=config.max_consecutive_errors)
        monitor = ExecutionMonitor(ExecutionMonitorConfig(config.executor_goals, config.executor_goal_tolerance,
                                                          config.executor_goal_timeout_s))
        gates = _gates(config, interface, policy, notes)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    if config.use_torch_compile:
        _compile(policy)
    runner = PolicyRunner(policy, interface, _rows_per_chunk(config, policy))
    runtime = PolicyRuntime(runner, ObservationAssembler(interface), runtime_config, gates, clock_ns, monitor)
    if config.warmup_inferences:
        try:
            latencies = runtime.warm_up(config.warmup_inferences)
        except Exception as error:  # the policy cannot run on this observation layout/device
            raise ConfigurationError(f"warm-up inference failed: {type(error).__name__}: {error}") from None
        notes.append(f"warm-up: {len(latencies)} inferences, " + ", ".join(f"{s * 1000:.0f}" for s in latencies) +
                     " ms (not counted in the latency statistics)")
    return ServedPolicy(runtime, interface, policy, compatibility, policy_id, notes)
