"""Processor pipelines: the explicit steps between dataset units and the model's normalized space.

A pipeline is a list of steps, each a function of a `Transition` (observation dict, action tensor, everything
else) with a JSON config and, when it has one, a tensor state. It is saved exactly as upstream LeRobot saves it:

    <name>.json                                   {"name": ..., "steps": [{"registry_name", "config", "state_file"?}]}
    <name>_step_<i>_<registry_name>.safetensors   the step's state (e.g. normalization statistics)

so upstream's `PolicyProcessorPipeline.from_pretrained` reads what we write and we read what it writes. Steps are
resolved by registry name only: a file naming a Python class to import is refused (nothing downloaded runs code).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch
from safetensors.torch import load_file, save_file

from lerobot_train.configs.constants import ACTION, OBS_PREFIX
from lerobot_train.policies.checkpoint_files import resolve_pretrained_dir


class ProcessorConfigError(ValueError):
    """A processor JSON file (or its state file) cannot be used: the message names the file, step and key."""


@dataclass
class Transition:
    """What flows through a pipeline. `observation` holds the `observation.*` keys, `action` the action tensor;
    everything else of a batch (task, *_is_pad, indices, ...) rides along in `complementary_data` untouched."""

    observation: dict[str, Any] | None = None
    action: torch.Tensor | None = None
    complementary_data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_batch(cls, batch: dict[str, Any]) -> Transition:
        if not isinstance(batch, dict):
            raise TypeError(f"a processor pipeline takes a dict batch (or an action tensor), got {type(batch).__name__}")
        observation = {k: v for k, v in batch.items() if k.startswith(OBS_PREFIX)}
        rest = {k: v for k, v in batch.items() if not k.startswith(OBS_PREFIX) and k != ACTION}
        action = batch.get(ACTION)
        if action is not None and not isinstance(action, torch.Tensor):
            raise TypeError(f"batch['action'] must be a torch.Tensor, got {type(action).__name__}")
        return cls(observation=observation or None, action=action, complementary_data=rest)

    def to_batch(self) -> dict[str, Any]:
        batch: dict[str, Any] = dict(self.complementary_data)
        if self.observation:
            batch.update(self.observation)
        if self.action is not None:
            batch[ACTION] = self.action
        return batch


class ProcessorStepRegistry:
    """registry_name <-> step class (the names upstream writes in its processor JSON files)."""

    _steps: ClassVar[dict[str, type[ProcessorStep]]] = {}

    @classmethod
    def register(cls, name: str):
        def decorator(step_cls: type[ProcessorStep]) -> type[ProcessorStep]:
            if name in cls._steps and cls._steps[name] is not step_cls:
                raise ValueError(f"processor step {name!r} is already registered by {cls._steps[name].__name__}")
            cls._steps[name] = step_cls
            step_cls.registry_name = name
            return step_cls

        return decorator

    @classmethod
    def get(cls, name: str) -> type[ProcessorStep]:
        if name not in cls._steps:
            raise KeyError(name)
        return cls._steps[name]

    @classmethod
    def names(cls) -> list[str]:
        return sorted(cls._steps)


class ProcessorStep:
    """One step. Subclasses are dataclasses whose init fields are exactly their JSON config."""

    registry_name: ClassVar[str] = ""

    def __call__(self, transition: Transition) -> Transition:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state, got keys {sorted(state)[:5]}")

    def reset(self) -> None:
        """Forget per-episode caches (called by the pipeline's reset at episode start)."""

    @classmethod
    def from_config(cls, config: dict[str, Any], source: str) -> ProcessorStep:
        """The step built from its saved JSON config; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls) if f.init} if hasattr(cls, "__dataclass_fields__") else set()
        unknown = sorted(set(config) - known)
        if unknown:
            raise ProcessorConfigError(f"{source}: step {cls.registry_name!r}: unknown config key(s) {unknown} (known: {sorted(known)})")
        try:
            return cls(**config)
        except (TypeError, ValueError) as exc:
            raise ProcessorConfigError(f"{source}: step {cls.registry_name!r}: {exc}") from exc


def _sanitized(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name.lower())


class PolicyProcessorPipeline:
    """An ordered list of steps with a name (`policy_preprocessor` / `policy_postprocessor`).

    `pipeline(batch_dict) -> batch_dict` runs a batch (observation keys, optional action, anything else);
    `pipeline(action_tensor) -> action_tensor` runs an action alone (the post-processor's use).
    """

    def __init__(self, steps: list[ProcessorStep] | None = None, name: str = "DataProcessorPipeline") -> None:
        self.steps: list[ProcessorStep] = list(steps or [])
        self.name = name

    def __call__(self, data: dict[str, Any] | torch.Tensor) -> dict[str, Any] | torch.Tensor:
        if isinstance(data, torch.Tensor):
            return self.process_transition(Transition(action=data)).action
        return self.process_transition(Transition.from_batch(data)).to_batch()

    def process_transition(self, transition: Transition) -> Transition:
        for step in self.steps:
            transition = step(transition)
        return transition

    def reset(self) -> None:
        for step in self.steps:
            step.reset()

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: int) -> ProcessorStep:
        return self.steps[index]

    def __iter__(self) -> Iterator[ProcessorStep]:
        return iter(self.steps)

    def find(self, step_type: type) -> list[ProcessorStep]:
        return [s for s in self.steps if isinstance(s, step_type)]

    def __repr__(self) -> str:
        return f"PolicyProcessorPipeline(name={self.name!r}, steps={[s.registry_name for s in self.steps]})"

    # ------------------------------------------------------------------------------------------ save / load
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `<name>.json` and one safetensors file per stateful step into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        base = _sanitized(self.name)
        entries = []
        for index, step in enumerate(self.steps):
            if not step.registry_name:
                raise ValueError(f"{type(step).__name__} is not registered: only registered steps can be saved")
            entry: dict[str, Any] = {"registry_name": step.registry_name, "config": step.get_config()}
            state = step.state_dict()
            if state:
                state_file = f"{base}_step_{index}_{step.registry_name}.safetensors"
                save_file({k: v.detach().cpu().contiguous().clone() for k, v in state.items()}, str(directory / state_file))
                entry["state_file"] = state_file
            entries.append(entry)
        path = directory / f"{base}.json"
        path.write_text(json.dumps({"name": self.name, "steps": entries}, indent=2), encoding="utf-8")
        return path

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | Path,
        config_filename: str,
        *,
        overrides: dict[str, dict[str, Any]] | None = None,
        revision: str | None = None,
    ) -> PolicyProcessorPipeline:
        """Load `config_filename` (e.g. "policy_preprocessor.json") from a folder, a file, or a Hub repo id.

        `overrides` maps a registry name to config values that replace the saved ones for every step of that
        name (e.g. `{"device_processor": {"device": "cuda"}}`); an override that matches no step is an error.
        """
        path = Path(path_or_repo_id)
        config_file = path if path.is_file() else resolve_pretrained_dir(path_or_repo_id, revision) / config_filename
        if not config_file.exists():
            raise FileNotFoundError(f"processor file {config_file.name} not found in {config_file.parent}")
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ProcessorConfigError(f"{config_file}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise ProcessorConfigError(f"{config_file}: expected {{\"name\": ..., \"steps\": [...]}}")
        overrides = dict(overrides or {})
        unused = set(overrides)
        steps = []
        for index, entry in enumerate(data["steps"]):
            where = f"{config_file} step {index}"
            if not isinstance(entry, dict) or "registry_name" not in entry:
                named = entry.get("class") if isinstance(entry, dict) else None
                raise ProcessorConfigError(
                    f"{where}: steps must name a registered step ('registry_name')"
                    + (f"; importing the class {named!r} is not supported" if named else "")
                )
            name = entry["registry_name"]
            try:
                step_cls = ProcessorStepRegistry.get(name)
            except KeyError:
                raise ProcessorConfigError(
                    f"{where}: processor step {name!r} is not supported here (supported: {ProcessorStepRegistry.names()})"
                ) from None
            config = {**entry.get("config", {}), **overrides.get(name, {})}
            unused.discard(name)
            step = step_cls.from_config(config, where)
            if "state_file" in entry:
                state_path = config_file.parent / entry["state_file"]
                if not state_path.exists():
                    raise FileNotFoundError(f"{where}: state file {entry['state_file']} not found in {config_file.parent}")
                step.load_state_dict(load_file(str(state_path)))
            steps.append(step)
        if unused:
            raise ProcessorConfigError(
                f"{config_file}: override(s) for {sorted(unused)} match no step (steps: {[s.registry_name for s in steps]})"
            )
        return cls(steps=steps, name=data.get("name", Path(config_filename).stem))


def with_action(transition: Transition, action: torch.Tensor | None) -> Transition:
    return replace(transition, action=action)


def with_observation(transition: Transition, observation: dict[str, Any] | None) -> Transition:
    return replace(transition, observation=observation)
