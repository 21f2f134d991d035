"""Safety gates a chunk passes before anything reaches a command topic.

Each gate either passes the chunk, clamps its executed rows (and reports), or holds (the chunk is dropped, the
executor finishes what it has and then holds its last goal). Checked in this order on the rows that would be
executed (`MergeProposal.executed`):

1. non-finite values (NaN/inf) anywhere: hold;
2. position limits (the URDF's joint limits or explicit ones, in dataset units): clamp or hold (`limit_action`);
3. first row too far from the measured state (|row - state| per joint named in both): hold;
4. boundary jump: where the new rows replace rows of the old plan, the discontinuity at the switch tick
   |new[first executed] - old[same tick]| per joint must stay within `max_step` (a per-tick bound derived from the
   dataset's action deltas, see limits.py): clamp or hold (`jump_action`). Clamping keeps the first executed row
   within `max_step` of the old one and lets the remaining offset to the new chunk shrink by `max_step` per tick,
   so the executed motion never steps more than `max_step` beyond the new chunk's own motion.
Stale observations, late chunks and inference errors are gated in the engine (they stop a chunk from existing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from lerobot_policy_node.runtime.action_queue import MergeProposal

GATE_ACTIONS = ("clamp", "hold")


class TripKind(str, Enum):
    NON_FINITE = "non_finite"
    OUT_OF_LIMITS = "out_of_limits"
    FIRST_ROW = "first_row_far_from_state"
    BOUNDARY_JUMP = "boundary_jump"
    STALE_OBSERVATION = "stale_observation"
    LATE_CHUNK = "late_chunk"
    INFERENCE_ERROR = "inference_error"
    DISCARDED_AFTER_RESET = "discarded_after_reset"


@dataclass(frozen=True)
class GateTrip:
    kind: TripKind
    message: str
    clamped: bool  # True: the chunk went on clamped; False: it was held (dropped)


@dataclass
class GateReport:
    trips: list[GateTrip] = field(default_factory=list)

    @property
    def hold(self) -> bool:
        return any(not t.clamped for t in self.trips)


@dataclass(frozen=True)
class GateConfig:
    names: tuple[str, ...]  # action names (dataset), for messages
    lower: np.ndarray | None = None  # per action dimension, dataset units; None = no position limit
    upper: np.ndarray | None = None
    limit_action: str = "clamp"
    # Largest |first executed row - measured state| per joint (dataset units); <= 0 disables the gate.
    max_first_row_deviation: float = 30.0
    # For each action dimension, the index of the same-named entry of observation.state (-1: none).
    state_index: np.ndarray | None = None
    # Per-tick bound on the boundary discontinuity (dataset units, per action dimension); None disables the gate.
    max_step: np.ndarray | None = None
    jump_action: str = "clamp"

    def __post_init__(self) -> None:
        for name in ("limit_action", "jump_action"):
            if getattr(self, name) not in GATE_ACTIONS:
                raise ValueError(f"{name} must be one of {GATE_ACTIONS}, got {getattr(self, name)!r}")
        n = len(self.names)
        for name in ("lower", "upper", "state_index", "max_step"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (n,):
                raise ValueError(f"gate {name} needs one value per action dimension ({n}), got shape {np.shape(value)}")
        if (self.lower is None) != (self.upper is None):
            raise ValueError("gate limits need both lower and upper")
        if self.lower is not None and np.any(np.asarray(self.lower) > np.asarray(self.upper)):
            raise ValueError("gate limits: a lower limit is above its upper limit")
        if self.max_step is not None and not np.all(np.asarray(self.max_step) > 0):
            raise ValueError(f"gate max_step must be > 0 for every dimension, got {self.max_step}")


def _joint_list(names: tuple[str, ...], mask: np.ndarray, values: np.ndarray) -> str:
    return ", ".join(f"{names[i]} {values[i]:.3g}" for i in np.flatnonzero(mask))


class SafetyGates:
    def __init__(self, config: GateConfig) -> None:
        self.config = config

    def check(self, proposal: MergeProposal, measured_state: np.ndarray | None) -> GateReport:
        """Inspect (and, where configured, clamp in place) the rows `proposal` would execute."""
        report = GateReport()
        rows = proposal.rows[proposal.skip:]
        cfg = self.config
        finite = np.isfinite(rows)
        if not finite.all():
            bad = ~finite.all(axis=0)
            report.trips.append(GateTrip(TripKind.NON_FINITE, "non-finite actions for "
                                         + ", ".join(cfg.names[i] for i in np.flatnonzero(bad)), False))
            return report
        if cfg.lower is not None:
            self._limits(rows, report)
        if cfg.max_first_row_deviation > 0 and measured_state is not None and cfg.state_index is not None:
            self._first_row(rows[0], measured_state, report)
        if cfg.max_step is not None and len(proposal.overlap):
            self._boundary(proposal, rows, report)
        return report

    def _limits(self, rows: np.ndarray, report: GateReport) -> None:
        cfg = self.config
        below = np.maximum(cfg.lower - rows, 0).max(axis=0)
        above = np.maximum(rows - cfg.upper, 0).max(axis=0)
        excess = np.maximum(below, above)
        if not (excess > 0).any():
            return
        clamp = cfg.limit_action == "clamp"
        report.trips.append(GateTrip(TripKind.OUT_OF_LIMITS, "actions beyond the joint limits by "
                                     + _joint_list(cfg.names, excess > 0, excess), clamp))
        if clamp:
            np.clip(rows, cfg.lower, cfg.upper, out=rows)

    def _first_row(self, first: np.ndarray, state: np.ndarray, report: GateReport) -> None:
        cfg = self.config
        has_state = cfg.state_index >= 0
        deviation = np.zeros(len(first))
        deviation[has_state] = np.abs(first[has_state] - np.asarray(state, dtype=np.float64)[cfg.state_index[has_state]])
        far = deviation > cfg.max_first_row_deviation
        if far.any():
            report.trips.append(GateTrip(
                TripKind.FIRST_ROW, f"first executed row is more than {cfg.max_first_row_deviation:g} from the "
                f"measured state: " + _joint_list(cfg.names, far, deviation), False))

    def _boundary(self, proposal: MergeProposal, rows: np.ndarray, report: GateReport) -> None:
        cfg = self.config
        discontinuity = rows[0] - proposal.overlap[0]
        jump = np.abs(discontinuity)
        over = jump > cfg.max_step
        if not over.any():
            return
        clamp = cfg.jump_action == "clamp"
        report.trips.append(GateTrip(TripKind.BOUNDARY_JUMP, "jump at the chunk boundary beyond the per-tick bound: "
                                     + _joint_list(cfg.names, over, jump), clamp))
        if clamp:
            # Remaining offset from the new chunk after k+1 ticks: |D| - (k+1) * max_step, never below 0.
            steps = np.arange(1, len(rows) + 1)[:, None] * cfg.max_step[None, :]
            residual = np.sign(discontinuity) * np.maximum(jump[None, :] - steps, 0.0)
            rows -= residual
