"""One inference: observation (dataset units) -> batch -> policy -> the chunk (rows, action_dim) in dataset units.

The policy is anything with `lerobot_train`'s LoadedPolicy interface (`predict_action_chunk`, `reset`,
`input_features`, `output_features`, `robot_interface`): its saved pre-processor (normalisation, relative actions)
and post-processor run inside it, so everything here is in dataset units. For RTC the runner passes the old
plan's rows from the observation tick on as `prev_chunk_left_over`, padded to `execution_horizon` rows by repeating
the last real row (upstream PR #4454: zero padding decodes to the dataset mean and pulls the chunk there).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import numpy as np

from lerobot_recorder.interface import RobotInterface
from lerobot_policy_node.runtime.errors import ConfigurationError


class ChunkPolicy(Protocol):
    input_features: Mapping[str, Any]
    output_features: Mapping[str, Any]
    robot_interface: Mapping[str, Any] | None

    def predict_action_chunk(self, observation: Mapping[str, Any], **rtc: Any) -> Any: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class RtcRequest:
    """The RTC arguments of one inference."""

    prefix: np.ndarray  # (L >= 1, A) the old plan's rows from the observation tick on, dataset units
    inference_delay: int  # rows expected to run from the old plan while this chunk is computed (frozen)
    execution_horizon: int  # end row of the soft mask


def pad_prefix_rows(prefix: np.ndarray, rows: int) -> np.ndarray:
    """`prefix` cut or padded to `rows` rows by repeating its last real row (never zeros)."""
    import torch

    from lerobot_train.policies.rtc import pad_prefix

    return pad_prefix(torch.from_numpy(np.asarray(prefix, dtype=np.float32))[None], rows)[0].numpy()


class PolicyRunner:
    def __init__(self, policy: ChunkPolicy, interface: RobotInterface, actions_per_chunk: int = 0) -> None:
        if actions_per_chunk < 0:
            raise ConfigurationError(f"actions_per_chunk must be >= 0 (0 = the whole chunk), got {actions_per_chunk}")
        self.policy = policy
        self.interface = interface
        self.actions_per_chunk = actions_per_chunk
        self.action_dim = len(interface.action.names)
        self.chunk_rows: int | None = None  # known after the first inference (warm-up)
        self.last_forward_s = 0.0  # time inside predict_action_chunk (model + processors) of the last call

    def batch(self, values: Mapping[str, Any], task: str | None) -> dict[str, Any]:
        """Batched policy inputs: state (1, D) float32, images (1, C, H, W) float32 in [0, 1], task [str]."""
        batch: dict[str, Any] = {"observation.state": np.asarray(values["observation.state"], np.float32)[None]}
        for camera in self.interface.images.values():
            image = np.asarray(values[camera.key])
            batch[camera.key] = (np.moveaxis(image, -1, 0)[None].astype(np.float32) / 255.0)
        batch["task"] = [task or ""]
        return batch

    def predict(self, values: Mapping[str, Any], task: str | None, rtc: RtcRequest | None = None) -> np.ndarray:
        """The executed part of the policy's chunk: (rows, action_dim) float64, dataset units."""
        kwargs: dict[str, Any] = {}
        if rtc is not None:
            prefix = pad_prefix_rows(rtc.prefix, rtc.execution_horizon)
            kwargs = {"inference_delay": int(rtc.inference_delay), "prev_chunk_left_over": prefix[None],
                      "execution_horizon": int(rtc.execution_horizon)}
        batch = self.batch(values, task)
        started = time.perf_counter()
        output = self.policy.predict_action_chunk(batch, **kwargs)
        self.last_forward_s = time.perf_counter() - started
        if hasattr(output, "detach"):  # a torch tensor
            output = output.detach().cpu().numpy()
        chunk = np.asarray(output, dtype=np.float64)
        if chunk.ndim != 3 or chunk.shape[0] != 1 or chunk.shape[2] != self.action_dim or chunk.shape[1] == 0:
            raise ValueError(f"the policy returned a chunk of shape {chunk.shape}; expected (1, rows, "
                             f"{self.action_dim})")
        chunk = chunk[0]
        if self.actions_per_chunk:
            chunk = chunk[: self.actions_per_chunk]
        self.chunk_rows = len(chunk)
        return chunk

    def example_values(self) -> dict[str, Any]:
        """A neutral observation of the right shapes (zero state, mid-grey images) for warm-up inferences."""
        values: dict[str, Any] = {"observation.state": np.zeros(len(self.interface.state.names), np.float32)}
        for camera in self.interface.images.values():
            values[camera.key] = np.full((camera.height, camera.width, camera.channels), 128, np.uint8)
        return values

    def warm_up(self, count: int, rtc_execution_horizon: int | None = None) -> list[float]:
        """`count` inferences on a neutral observation (results dropped): the first calls pay for allocation,
        kernel selection and compilation. With an RTC horizon every call after the first is a guided one, so the
        guided path is warm too (and a policy without RTC support fails here, at configure); 0 guides over the whole
        previous chunk."""
        latencies = []
        values = self.example_values()
        previous: np.ndarray | None = None
        for _ in range(count):
            started = time.perf_counter()
            rtc = None
            if rtc_execution_horizon is not None and previous is not None:
                rtc = RtcRequest(previous, 1, rtc_execution_horizon or len(previous))
            previous = self.predict(values, self.interface.task.text, rtc)
            latencies.append(time.perf_counter() - started)
        self.policy.reset()
        return latencies

    def reset(self) -> None:
        self.policy.reset()
