"""Driver health -> diagnostic statuses (ROS-free; the node turns them into diagnostic_msgs).

One status for the driver (connection, loop rate, comm errors, command source) and one per motor (temperature,
voltage, effort, error flags reported by the servo). Levels follow diagnostic_msgs: OK=0, WARN=1, ERROR=2, STALE=3.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

OK, WARN, ERROR, STALE = 0, 1, 2, 3


@dataclass(frozen=True)
class HealthLimits:
    temperature_warn_c: float = 60.0
    temperature_error_c: float = 70.0   # the servos' own default Max_Temperature_Limit
    min_voltage_v: float = 0.0          # below: WARN (0 disables; the servo's input_voltage flag is an ERROR)
    rate_warn_fraction: float = 0.8     # achieved rate below this fraction of rate_hz: WARN


@dataclass
class MotorReading:
    temperature_c: float
    voltage_v: float
    effort: float
    effort_unit: str
    error_flags: tuple[str, ...] = ()


@dataclass
class DriverHealth:
    """Snapshot the bus thread keeps up to date; everything the 1 Hz diagnostics need."""

    arm: str
    port: str
    mode: str                       # follower | leader
    lifecycle: str = "unconfigured"  # unconfigured | inactive | active
    connected: bool = False
    rate_target_hz: float = 0.0
    rate_achieved_hz: float = 0.0
    tick_p99_ms: float = 0.0
    comm_errors: int = 0
    consecutive_failures: int = 0
    reconnects: int = 0
    last_error: str = ""
    command_source: str = ""
    clamped_ticks: int = 0          # max_relative_target changed the goal
    velocity_limited_ticks: int = 0  # the velocity limit slowed the goal
    position_limited_ticks: int = 0  # the goal was kept inside the calibrated range
    rejected_commands: int = 0
    command_latency_p50_ms: float | None = None  # command source stamp -> goal written (direct commands)
    command_latency_p99_ms: float | None = None
    motors: dict[str, MotorReading] = field(default_factory=dict)
    motors_age_s: float | None = None


@dataclass(frozen=True)
class Status:
    name: str
    level: int
    message: str
    values: dict[str, str]


def assess(health: DriverHealth, limits: HealthLimits, prefix: str) -> list[Status]:
    statuses = [_driver_status(health, limits, prefix)]
    stale = not health.connected or health.motors_age_s is None or health.motors_age_s > 3.0
    for name, reading in health.motors.items():
        statuses.append(_motor_status(f"{prefix}/{name}", reading, limits, stale))
    return statuses


def _driver_status(h: DriverHealth, limits: HealthLimits, prefix: str) -> Status:
    values = {
        "arm": h.arm, "port": h.port, "mode": h.mode, "lifecycle": h.lifecycle, "connected": str(h.connected),
        "loop rate target (Hz)": f"{h.rate_target_hz:.1f}", "loop rate achieved (Hz)": f"{h.rate_achieved_hz:.1f}",
        "tick duration p99 (ms)": f"{h.tick_p99_ms:.2f}", "comm errors": str(h.comm_errors),
        "consecutive failures": str(h.consecutive_failures), "reconnects": str(h.reconnects),
        "command source": h.command_source, "clamped ticks": str(h.clamped_ticks),
        "velocity limited ticks": str(h.velocity_limited_ticks),
        "position limited ticks": str(h.position_limited_ticks),
        "rejected commands": str(h.rejected_commands), "last error": h.last_error,
    }
    if h.command_latency_p50_ms is not None:
        values["command latency p50 (ms)"] = f"{h.command_latency_p50_ms:.2f}"
        values["command latency p99 (ms)"] = f"{h.command_latency_p99_ms:.2f}"
    if h.lifecycle == "unconfigured":
        return Status(prefix, STALE, "not configured", values)
    if not h.connected:
        return Status(prefix, ERROR, f"bus disconnected, reconnecting: {h.last_error}", values)
    if h.consecutive_failures:
        return Status(prefix, ERROR, f"communication failing: {h.last_error}", values)
    if h.lifecycle == "active" and h.rate_achieved_hz < limits.rate_warn_fraction * h.rate_target_hz:
        return Status(prefix, WARN, f"loop rate {h.rate_achieved_hz:.1f} Hz below target "
                                    f"{h.rate_target_hz:.1f} Hz", values)
    return Status(prefix, OK, f"{h.lifecycle}, {h.rate_achieved_hz:.1f} Hz", values)


def _motor_status(name: str, r: MotorReading, limits: HealthLimits, stale: bool) -> Status:
    values = {"temperature (C)": f"{r.temperature_c:.1f}", "voltage (V)": f"{r.voltage_v:.1f}",
              f"effort ({r.effort_unit})": f"{r.effort:.1f}",
              "hardware error flags": ",".join(r.error_flags) or "none"}
    problems: list[tuple[int, str]] = []
    if r.error_flags:
        problems.append((ERROR, "hardware error: " + ", ".join(r.error_flags)))
    if r.temperature_c >= limits.temperature_error_c:
        problems.append((ERROR, f"overheating: {r.temperature_c:.0f} C >= {limits.temperature_error_c:.0f} C"))
    elif r.temperature_c >= limits.temperature_warn_c:
        problems.append((WARN, f"hot: {r.temperature_c:.0f} C >= {limits.temperature_warn_c:.0f} C"))
    if limits.min_voltage_v > 0 and r.voltage_v < limits.min_voltage_v:
        problems.append((WARN, f"low voltage: {r.voltage_v:.1f} V < {limits.min_voltage_v:.1f} V"))
    if stale:
        return Status(name, STALE, "no recent reading (bus disconnected?)", values)
    if not problems:
        return Status(name, OK, "ok", values)
    return Status(name, max(level for level, _ in problems), "; ".join(msg for _, msg in problems), values)


def readings_from_state(temperatures: Mapping[str, float], voltages: Mapping[str, float],
                        efforts: Mapping[str, float], effort_units: Mapping[str, str],
                        error_flags: Mapping[str, tuple[str, ...]]) -> dict[str, MotorReading]:
    return {name: MotorReading(float(temperatures[name]), float(voltages[name]), float(efforts[name]),
                               effort_units[name], tuple(error_flags.get(name, ())))
            for name in temperatures}
