"""ArmDriver: the bus thread of the arm driver node (ROS-free).

It owns one `Arm` (a fresh one from `arm_factory` for every connection) and runs the control loop in its own thread:
  read the full state (one Sync Read) -> publish callback -> [active follower] controller goal -> Sync Write.
While inactive it still reads the arm once per `inactive_poll_s` so diagnostics stay current.

Faults never escape the thread: a failed transaction counts as a comm error; after
`failures_before_reconnect` consecutive failures (or at once if the port itself fails) the bus is closed and
re-opened with exponential backoff (handshake + configure), and the controller restarts by holding the measured
position, so the arm never resumes a stale goal. Lifecycle transitions (activate: torque on; deactivate: hold, then
torque off; close: torque off and disconnect) run under the same lock as the ticks.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import numpy as np

from lerobot_drivers.control.commands import JointPositionCommand, JointTrajectoryCommand
from lerobot_drivers.control.controller import GoalController
from lerobot_drivers.control.health import DriverHealth, readings_from_state
from lerobot_drivers.control.loop_stats import Backoff, LoopStats
from lerobot_drivers.control.safety import PositionLimit
from lerobot_drivers.control.units import UnitMap
from lerobot_drivers.motors.errors import MotorBusError, MotorPortError, MotorTorqueOffError


class ArmLike(Protocol):
    """What the driver needs from `lerobot_drivers.arms.Arm`."""

    name: str
    port: str
    is_connected: bool
    bus: object  # the MotorBus; used directly only to reopen the port for a last torque-off at shutdown

    def connect(self, configure: bool = True, handshake: bool = True) -> None: ...
    def disconnect(self, disable_torque: bool | None = None) -> None: ...
    def enable_torque(self, motors: list[str] | None = None) -> None: ...
    def disable_torque(self, motors: list[str] | None = None) -> None: ...
    def read_positions(self) -> dict[str, float]: ...
    def read_state(self): ...
    def write_goal_positions(self, goals, max_relative_target=None) -> dict[str, float]: ...
    def goal_limits(self) -> dict[str, tuple[float, float]]: ...


@dataclass(frozen=True)
class DriverSettings:
    rate_hz: float = 100.0
    follower: bool = True
    failures_before_reconnect: int = 3
    reconnect_initial_s: float = 0.1
    reconnect_max_s: float = 2.0
    inactive_poll_s: float = 1.0
    connect_attempts: int = 5
    # Leader mode on an arm whose configuration leaves torque on (a follower arm used as a leader): go limp.
    release_torque_after_configure: bool = True


@dataclass(frozen=True)
class JointSample:
    """One tick's reading in ROS units (arm joint order), stamped at the middle of the bus read; goal is what was
    written this tick, computed for that same stamp (None when nothing was written)."""

    stamp: float
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray
    goal: np.ndarray | None


class ArmDriver:
    def __init__(self, arm_factory: Callable[[], ArmLike], units: UnitMap, settings: DriverSettings,
                 controller: GoalController | None,
                 clock: Callable[[], float], on_sample: Callable[[JointSample], None] | None = None,
                 logger: logging.Logger | None = None) -> None:
        if settings.rate_hz <= 0:
            raise ValueError(f"rate_hz = {settings.rate_hz}, expected > 0")
        if settings.follower and controller is None:
            raise ValueError("a follower driver needs a GoalController")
        # A fresh Arm per connection: an SDK port handler interrupted mid-transaction (cable pulled) can stay
        # "busy" forever, so a reconnect must not reuse it.
        self._arm_factory = arm_factory
        self.arm = arm_factory()
        self.units = units
        self.settings = settings
        self.controller = controller
        self.clock = clock
        self.on_sample = on_sample or (lambda sample: None)
        self.log = logger or logging.getLogger(__name__)
        self.health = DriverHealth(arm=self.arm.name, port=self.arm.port,
                                   mode="follower" if settings.follower else "leader",
                                   rate_target_hz=settings.rate_hz)
        self.stats = LoopStats()
        self._backoff = Backoff(settings.reconnect_initial_s, settings.reconnect_max_s)
        self._io_lock = threading.RLock()      # bus transactions + lifecycle transitions
        self._command_lock = threading.Lock()  # controller state shared with the ROS callbacks
        self._wake = threading.Event()
        self._stop = False
        self._active = False
        self._connected = False
        self._thread: threading.Thread | None = None
        self._command_stamp: float | None = None   # source stamp of the newest direct command not yet written
        self.command_latencies: deque[float] = deque(maxlen=2000)
        self._last_motor_update = -1e9
        self._motors_read_at: float | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def active(self) -> bool:
        return self._active

    def configure(self) -> None:
        """Open the bus (handshake, calibration, configuration writes) and start the bus thread (inactive).
        A follower is left limp until activate. Raises the bus error if the arm cannot be reached."""
        with self._io_lock:
            self._connect_with_retries()
            self._apply_calibrated_range()
            if self.settings.follower or self.settings.release_torque_after_configure:
                try:
                    self._retry(self.arm.disable_torque, "torque off", 3)
                except MotorBusError:
                    self.arm.disconnect(disable_torque=False)
                    raise
            self._connected = True
            self.health.connected = True
            self.health.lifecycle = "inactive"
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"arm-driver-{self.arm.name}", daemon=True)
        self._thread.start()

    def _connect_with_retries(self) -> None:
        # A busy host can miss one status packet during the handshake; a dead port fails all attempts.
        for attempt in range(1, self.settings.connect_attempts + 1):
            try:
                self.arm.connect()
                return
            except MotorBusError as exc:
                if attempt == self.settings.connect_attempts:
                    raise
                self.log.warning(f"connect attempt {attempt} failed, retrying: {exc}")
                try:
                    self.arm.disconnect(disable_torque=False)
                except Exception:  # noqa: BLE001
                    pass
                time.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)))

    def _apply_calibrated_range(self) -> None:
        """The follower's goals stay inside the connected arm's calibrated range (plus its margin)."""
        if self.controller is None:
            return
        limits = self.arm.goal_limits()
        lower = self.units.to_ros([limits[name][0] for name in self.units.names])
        upper = self.units.to_ros([limits[name][1] for name in self.units.names])
        with self._command_lock:
            self.controller.position_limit = PositionLimit(lower, upper)

    def _retry(self, action: Callable[[], None], what: str, attempts: int) -> None:
        """Torque writes wait for a status packet; a busy host can miss one, so they are retried."""
        for attempt in range(1, attempts + 1):
            try:
                action()
                return
            except MotorBusError as exc:
                if attempt == attempts:
                    raise
                self.log.warning(f"{what} attempt {attempt} failed, retrying: {exc}")

    def _drop_connection(self) -> None:
        try:
            self.arm.disconnect(disable_torque=False)
        except Exception:  # noqa: BLE001 - the port may already be gone
            pass
        self._connected = False
        self.health.connected = False
        self._backoff.reset()

    def activate(self) -> None:
        with self._io_lock:
            if self.settings.follower:
                with self._command_lock:
                    self.controller.reset(None)
                if self._connected:
                    try:
                        self._retry(self.arm.enable_torque, "torque on", 3)
                    except MotorBusError as exc:
                        # Treated like a lost bus: the reconnect path turns torque on once the arm answers again.
                        self.log.error(f"activate: torque on failed ({exc}); reconnecting")
                        self.health.last_error = f"torque on failed: {exc}"
                        self._drop_connection()
            self._active = True
            self.health.lifecycle = "active"
        self._wake.set()

    def deactivate(self) -> None:
        """Stop acting: hold where the arm is, then torque off (follower)."""
        with self._io_lock:
            self._active = False
            self.health.lifecycle = "inactive"
            if self.settings.follower and self._connected:
                try:
                    present = self.arm.read_positions()
                    self.arm.write_goal_positions(present)
                except MotorBusError as exc:
                    self.log.warning(f"deactivate: could not hold position before torque off: {exc}")
                self._torque_off("deactivate")
        self._wake.set()

    def close(self) -> bool:
        """Stop the thread, torque off and disconnect. Never raises; safe to call twice.
        Returns True when every motor acknowledged torque off (False: the bus was unreachable)."""
        self._stop = True
        self._active = False
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None
        with self._io_lock:
            if not self.arm.is_connected and self.health.lifecycle != "unconfigured":
                # Closing while reconnecting: one last try to reach the motors, only to switch torque off.
                try:
                    self.arm.bus.connect(handshake=False)  # no calibration check: only torque off is wanted
                except Exception:  # noqa: BLE001 - nothing else can be done without a bus
                    pass
            all_off = False
            if self.arm.is_connected:
                all_off = self._torque_off("shutdown")
                try:
                    # If a motor did not acknowledge, the bus makes one more attempt while disconnecting.
                    self.arm.disconnect(disable_torque=not all_off)
                except Exception as exc:  # noqa: BLE001 - shutdown must go on
                    self.log.error(f"disconnect failed (torque may still be on): {exc}")
            was_configured = self.health.lifecycle != "unconfigured"
            self._connected = False
            self.health.connected = False
            self.health.lifecycle = "unconfigured"
        return all_off or not was_configured

    def _torque_off(self, why: str, budget_s: float = 3.0) -> bool:
        """Torque off, retried until every motor acknowledged or the time budget is spent.

        Safety-critical, so more persistent than one bus call: the bus tries every motor on each call and names the
        ones that did not acknowledge; those are retried here. A failed port (device gone) ends the attempts, since
        retrying on it cannot help. Returns True when every motor acknowledged."""
        pending = list(self.units.names)
        deadline = time.monotonic() + budget_s
        last_error: Exception | None = None
        while pending and time.monotonic() < deadline:
            try:
                self.arm.disable_torque(pending)
                pending = []
            except MotorTorqueOffError as exc:  # some motors did not answer: retry just those
                last_error = exc
                pending = [name for name in pending if name in exc.motors]
                if exc.port_failed:
                    break
            except MotorPortError as exc:
                last_error = exc
                break
            except MotorBusError as exc:
                last_error = exc
        if pending:
            self.log.error(f"{why}: torque off not acknowledged by {pending}: {last_error}")
        return not pending

    # ------------------------------------------------------------------ commands (called from ROS callbacks)
    def submit_positions(self, command: JointPositionCommand, source_stamp: float | None = None) -> None:
        with self._command_lock:
            self.controller.accept_positions(command)
            self._command_stamp = source_stamp

    def submit_trajectory(self, command: JointTrajectoryCommand) -> None:
        """Queue a trajectory or chunk. Raises CommandRejected if it is too late to execute now (ends in the past,
        or starts later than the controller's max_late_start_s); the arm then keeps doing what it did."""
        with self._command_lock:
            self.controller.accept_trajectory(command, self.clock())

    # ------------------------------------------------------------------ the bus thread
    def _run(self) -> None:
        # The bus thread must outlive any bug or surprise below it: a dead thread would leave the arm holding its
        # last goal with nobody watching. Log, pause briefly, go on.
        while not self._stop:
            try:
                self._loop()
            except Exception as exc:  # noqa: BLE001
                try:
                    self.log.error(f"bus thread: unexpected {type(exc).__name__}: {exc}; continuing")
                except Exception:  # noqa: BLE001 - not even logging works: still keep the loop alive
                    pass
                time.sleep(0.1)

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop:
            if not self._connected:
                self._reconnect_once()
                next_tick = time.monotonic()
                continue
            period = 1.0 / self.settings.rate_hz if self._active else self.settings.inactive_poll_s
            start = time.monotonic()
            with self._io_lock:
                if self._stop:
                    break
                if self._connected:
                    self._tick()
            end = time.monotonic()
            if self._active:
                self.stats.record(start, end - start)
            self.health.rate_achieved_hz = self.stats.rate_hz(end)
            self.health.tick_p99_ms = self.stats.duration_percentile_ms(99)
            next_tick += period
            if next_tick < end - period:  # more than a tick behind (slow bus, stall): no burst of catch-up ticks
                next_tick = end
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            if self._wake.is_set():
                self._wake.clear()
                next_tick = time.monotonic()

    def _tick(self) -> None:
        try:
            before = self.clock()
            state = self.arm.read_state()
            # The reading is from inside the transaction: stamp it at the middle, not at its (possibly late) end.
            now = 0.5 * (before + self.clock())
            positions = self.units.dict_to_ros(state.positions)
            velocities = self.units.dict_to_ros(state.velocities)
            efforts = np.array([state.efforts[name] for name in self.units.names], dtype=float)
            goal = None
            if self._active and self.settings.follower:
                with self._command_lock:
                    tick = self.controller.step(now, positions)
                    command_stamp, self._command_stamp = self._command_stamp, None
                    self.health.command_source = tick.source.value
                if tick.became_stale:
                    self.log.warning(f"joint_commands stale (> {self.controller.command_timeout_s} s): "
                                     "holding the measured position")
                self.arm.write_goal_positions(self.units.ros_to_dict(tick.goal))
                goal = tick.goal
                if tick.clamped.any():
                    self.health.clamped_ticks += 1
                if tick.velocity_limited.any():
                    self.health.velocity_limited_ticks += 1
                if tick.position_limited.any():
                    self.health.position_limited_ticks += 1
                if command_stamp is not None:
                    latency = self.clock() - command_stamp
                    with self._command_lock:  # snapshot() copies the deque from another thread
                        self.command_latencies.append(latency)
        except MotorPortError as exc:  # the serial device itself failed: reconnect at once
            self._on_failure(exc, port_failed=True)
            return
        except MotorBusError as exc:
            self._on_failure(exc, port_failed=False)
            return
        except Exception as exc:  # noqa: BLE001 - serial layer gone (OSError, termios.error...) or garbage reading
            self._on_failure(exc, port_failed=not isinstance(exc, (ValueError, KeyError)))
            return
        self.health.consecutive_failures = 0
        if now - self._last_motor_update >= 0.2:
            self._last_motor_update = now
            self.health.motors = readings_from_state(state.temperatures, state.voltages, state.efforts,
                                                     state.effort_units, state.error_flags)
        self._motors_read_at = time.monotonic()
        try:
            self.on_sample(JointSample(now, positions, velocities, efforts, goal))
        except Exception as exc:  # noqa: BLE001 - e.g. publishing while ROS shuts down: the bus loop goes on
            if not self._stop:
                self.log.warning(f"publishing a sample failed: {exc}")

    def snapshot(self) -> DriverHealth:
        """A copy of the health record with the age of the last motor reading filled in."""
        read_at = self._motors_read_at
        with self._command_lock:
            latencies = np.array(self.command_latencies) * 1000.0
        p50, p99 = (np.percentile(latencies, [50, 99]).tolist() if latencies.size else (None, None))
        return replace(self.health, motors=dict(self.health.motors),
                       motors_age_s=None if read_at is None else time.monotonic() - read_at,
                       command_latency_p50_ms=p50, command_latency_p99_ms=p99)

    def _on_failure(self, exc: Exception, port_failed: bool) -> None:
        h = self.health
        h.comm_errors += 1
        h.consecutive_failures += 1
        h.last_error = f"{type(exc).__name__}: {exc}"
        if h.consecutive_failures == 1 or h.consecutive_failures % 50 == 0:
            self.log.warning(f"bus error ({h.consecutive_failures} in a row): {h.last_error}")
        if port_failed or h.consecutive_failures >= self.settings.failures_before_reconnect:
            self.log.error(f"{self.arm.name} on {self.arm.port}: lost the bus ({h.last_error}); reconnecting")
            self._drop_connection()

    def _reconnect_once(self) -> None:
        delay = self._backoff.next_delay()
        self._wake.wait(delay)
        self._wake.clear()
        if self._stop:
            return
        with self._io_lock:
            if self._stop:
                return
            try:
                self.arm = self._arm_factory()
                self.arm.connect()
                self._apply_calibrated_range()
            except Exception as exc:  # noqa: BLE001 - keep retrying whatever the cause
                self.health.last_error = f"reconnect attempt {self._backoff.attempts}: {type(exc).__name__}: {exc}"
                if self._backoff.attempts == 1 or self._backoff.attempts % 10 == 0:
                    self.log.warning(self.health.last_error)
                try:
                    self.arm.disconnect(disable_torque=False)
                except Exception:  # noqa: BLE001
                    pass
                return
            try:
                if self.settings.follower:
                    with self._command_lock:
                        self.controller.reset(None)   # hold what the arm measures now
                    if self._active:
                        self._retry(self.arm.enable_torque, "torque on", 3)
                    else:
                        self._retry(self.arm.disable_torque, "torque off", 3)
                elif self.settings.release_torque_after_configure:
                    self._retry(self.arm.disable_torque, "torque off", 3)
            except MotorBusError as exc:
                self.health.last_error = f"after reconnect: {exc}"
                self.arm.disconnect(disable_torque=False)
                return
            self._connected = True
            self.health.connected = True
            self.health.consecutive_failures = 0
            self.health.reconnects += 1
            self.log.info(f"{self.arm.name} on {self.arm.port}: reconnected after {self._backoff.attempts} attempt(s)")
