"""Observations for the policy, assembled through the robot interface exactly as the recorder builds frames.

The recorder turns messages into dataset frames with `RobotInterface.decode` (message -> dataset-unit samples),
a `FrameAssembler` (newest value stamped at or before the tick, rejected when stale, missing or invalid) and
`RobotInterface.frame_values` (frame -> dataset feature values). The policy node uses those three calls, with the
action streams left out, so what a policy is served is what its dataset recorded, feature for feature and unit for
unit. A tick where a required feature is stale, missing or invalid gives no observation (counted per feature and
reason): inference never runs on it.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lerobot_recorder.alignment import FrameAssembler, SkippedTick
from lerobot_recorder.interface import RobotInterface, TopicSubscription


@dataclass(frozen=True)
class Observation:
    """Dataset-unit feature values at one control tick, each with the age of the message it came from."""

    time_ns: int  # the tick: every value is stamped at or before it
    values: dict[str, Any]  # "observation.state" (float32), "observation.images.<cam>" (uint8 HWC RGB)
    task: str | None
    ages_s: dict[str, float]  # per stream key (as in the interface: "observation.state", "observation.images.front")

    @property
    def state(self) -> np.ndarray:
        return self.values["observation.state"]


@dataclass(frozen=True)
class MissedObservation:
    """A tick without an observation: why each rejected stream was rejected."""

    time_ns: int
    reasons: dict[str, str]  # stream key -> "stale" | "missing" | "invalid"
    details: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return "; ".join(f"{key} {reason}" + (f" ({self.details[key]})" if key in self.details else "")
                         for key, reason in self.reasons.items())


class ObservationAssembler:
    """Thread-safe: messages arrive from subscription callbacks, observations are taken by the inference thread."""

    def __init__(self, interface: RobotInterface, buffer_capacity: int = 64) -> None:
        self.interface = interface
        self._capacity = buffer_capacity
        self._lock = threading.Lock()
        self._assembler = self._new_assembler()
        # Only required streams stop inference; an optional one (the task topic, by default) may be absent.
        self._required = {spec.key for spec in self._assembler.streams if spec.required}
        self.misses: Counter = Counter()  # (stream key, reason) -> ticks of this run, kept across forget()
        self.observations = 0  # observations made in this run
        self.invalid_messages = 0

    def _new_assembler(self) -> FrameAssembler:
        return self.interface.make_assembler(include_action=False, buffer_capacity=self._capacity)

    def subscriptions(self) -> list[TopicSubscription]:
        """The topics to subscribe (state, cameras, task), with the QoS and stamp source the interface declares."""
        return self.interface.subscriptions(include_action=False)

    def add_message(self, topic: str, msg: Any, receive_ns: int) -> None:
        samples = self.interface.decode(topic, msg, receive_ns, include_action=False)
        with self._lock:
            for sample in samples:
                if not sample.is_valid:
                    self.invalid_messages += 1
                self._assembler.add(sample)

    def observe(self, t_ns: int) -> Observation | MissedObservation:
        """The observation at tick time t (ticks must increase from call to call, as in the recorder)."""
        with self._lock:
            result = self._assembler.evaluate(t_ns)
        if isinstance(result, SkippedTick):
            reasons = {k: r.value for k, r in result.reasons.items() if k in self._required}
            for key, reason in reasons.items():
                self.misses[(key, reason)] += 1
            return MissedObservation(t_ns, reasons, {k: v for k, v in result.details.items() if k in reasons})
        try:
            values = self.interface.frame_values(result, include_action=False)
        except ValueError as error:  # an optional stream this interface still needs for a whole frame
            for key, reason in result.missing.items():
                self.misses[(key, reason.value)] += 1
            return MissedObservation(t_ns, {k: r.value for k, r in result.missing.items()}, {"frame": str(error)})
        task = values.pop("task", None)
        self.observations += 1
        return Observation(t_ns, values, task, {k: v.age_s for k, v in result.values.items()})

    def forget(self) -> None:
        """Drop every buffered message (a reset: nothing from before it may feed a later observation)."""
        with self._lock:
            self._assembler = self._new_assembler()

    def clear_counts(self) -> None:
        """Count ticks from here (a run starts); message counts are kept."""
        with self._lock:
            self.misses.clear()
            self.observations = 0

    def miss_counts(self) -> dict[str, dict[str, int]]:
        """{stream key: {reason: ticks}} for diagnostics."""
        counts: dict[str, dict[str, int]] = {}
        for (key, reason), count in sorted(self.misses.items()):
            counts.setdefault(key, {})[reason] = count
        return counts
