"""How healthy is the runtime? One rule set for the diagnostics status (and the RunPolicy feedback).

Level (diagnostic_msgs levels: 0 OK, 1 WARN, 2 ERROR):
- ERROR: the runtime failed (too many inference errors in a row);
- WARN: since the last report, ticks went without an observation (stale/missing/invalid features), or a gate
  clamped or held a chunk, or an inference failed and is being retried;
- OK otherwise (also when idle).
"""
from __future__ import annotations

from dataclasses import dataclass

from lerobot_policy_node.runtime.engine import RuntimeStats

OK, WARN, ERROR = 0, 1, 2


@dataclass(frozen=True)
class HealthReport:
    level: int
    message: str
    values: dict[str, str]


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f}"


def health_report(stats: RuntimeStats, previous: RuntimeStats | None, period_s: float) -> HealthReport:
    """The status for the interval since `previous` (None: since the start)."""
    before_trips = previous.trips if previous is not None else {}
    new_trips = {k: v - before_trips.get(k, 0) for k, v in stats.trips.items() if v - before_trips.get(k, 0) > 0}
    new_chunks = stats.chunks - (previous.chunks if previous is not None and previous.chunks <= stats.chunks else 0)
    values = {
        "state": "failed" if stats.failed else ("running" if stats.running else "idle"),
        "mode": stats.mode,
        "chunks": str(stats.chunks),
        "chunk rate (Hz)": f"{new_chunks / period_s:.2f}" if period_s > 0 else "n/a",
        "inference latency p50 (ms)": _ms(stats.latency_p50_s),
        "inference latency p95 (ms)": _ms(stats.latency_p95_s),
        "last forward (ms)": _ms(stats.last_forward_s),
        "queue depth (rows)": str(stats.queue_depth),
        "observations": str(stats.observations),
        "ticks without observation": str(stats.stale_observations),
        "consecutive inference errors": str(stats.consecutive_errors),
    }
    for key, reasons in stats.misses.items():
        for reason, count in reasons.items():
            values[f"{reason}: {key}"] = str(count)
    for kind, count in sorted(stats.trips.items()):
        values[f"gate {kind}"] = str(count)
    if stats.failed:
        return HealthReport(ERROR, f"failed: {stats.failed}", values)
    if new_trips:
        return HealthReport(WARN, "since the last report: " + ", ".join(f"{k} x{v}" for k, v in sorted(new_trips.items())),
                            values)
    if not stats.running:
        return HealthReport(OK, "idle (not inferring)", values)
    return HealthReport(OK, f"running ({stats.mode}), {stats.chunks} chunks, p95 latency "
                            f"{_ms(stats.latency_p95_s)} ms", values)
