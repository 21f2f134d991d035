"""Protocol-independent part of a serial servo bus (LeRobot's SerialMotorsBus semantics).

A `MotorBus` owns one serial port and a fixed set of named motors. Subclasses (`FeetechBus`, `DynamixelBus`)
supply the wire transactions; this class does names -> ids, register lookup, sign encoding, normalization,
bounded retries and error reporting. All transactions are serialized by a lock, so one bus may be shared by
a reader thread and a writer thread.

Value conventions:
- `read`/`sync_read`/`write`/`sync_write` take and return *normalized* values for Goal_Position and
  Present_Position when `normalize=True` (LeRobot units: degrees, 0..100 or -100..100); every other register
  is raw (sign-decoded integers in the register's own unit).
- `sync_write` sends no status reply (fast; meant for Goal_Position in control loops). `write` waits for the
  motor's status packet (reliable; meant for configuration).

Robustness rules (every transaction goes through `_exchange`):
- the SDK port handler's busy flag (`is_using`) is released after every wire exchange, even when the SDK
  call raised, so a bus object stays usable after a failure (and after disconnect() + connect());
- serial-layer failures (termios.error, OSError, serial.SerialException: the adapter vanished) are raised
  as MotorPortError naming the port, motor and register; they are not retried (the device is gone).
- `disable_torque` is a safety path: it attempts every motor, then raises one MotorTorqueOffError naming
  each motor it could not switch off.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from lerobot_drivers.motors.errors import (
    MotorBusError, MotorCommError, MotorConfigError, MotorHandshakeError, MotorNotConnectedError, MotorPortError,
    MotorStatusError, MotorTorqueOffError,
)
from lerobot_drivers.motors.motor import Motor, MotorCalibration
from lerobot_drivers.motors.normalization import normalize_position, unnormalize_position

try:
    import termios
    _TERMIOS_ERRORS: tuple[type[Exception], ...] = (termios.error,)
except ImportError:  # not POSIX
    _TERMIOS_ERRORS = ()

logger = logging.getLogger(__name__)

# What the serial layer raises when the device disappears mid-use: pyserial's SerialException is an OSError;
# tcflush/tcdrain (reset_input_buffer, flush) raise termios.error, which is not.
SERIAL_LAYER_ERRORS: tuple[type[Exception], ...] = (OSError, *_TERMIOS_ERRORS)

T = TypeVar("T")

NORMALIZED_REGISTERS = ("Goal_Position", "Present_Position")

MotorSelection = str | Iterable[str] | None


@dataclass
class RawReply:
    """One status packet's outcome: the SDK's comm result, the status error byte and the data bytes."""

    comm: int
    error: int
    data: list[int]


class MotorBus(ABC):
    """Abstract serial servo bus. See module docstring for units; subclasses set the class attributes below."""

    protocol_label: str = ""
    apply_drive_mode: bool = False
    default_baudrate: int = 1_000_000
    model_numbers: Mapping[str, int] = {}
    model_resolution: Mapping[str, int] = {}
    model_control_table: Mapping[str, Mapping[str, tuple[int, int]]] = {}

    def __init__(self, port: str, motors: Mapping[str, Motor],
                 calibration: Mapping[str, MotorCalibration] | None = None,
                 baudrate: int | None = None) -> None:
        self.port = port
        self.motors: dict[str, Motor] = dict(motors)
        self.calibration: dict[str, MotorCalibration] = dict(calibration or {})
        self.baudrate = baudrate or self.default_baudrate
        self._lock = threading.RLock()
        self._connected = False
        self._id_to_name: dict[int, str] = {}
        for name, motor in self.motors.items():
            if motor.model not in self.model_numbers:
                raise MotorConfigError(f"motor '{name}': unknown {self.protocol_label} model '{motor.model}'; "
                                       f"expected one of {sorted(self.model_numbers)}")
            if motor.id in self._id_to_name:
                raise MotorConfigError(f"motor '{name}': id {motor.id} already used by '{self._id_to_name[motor.id]}'")
            self._id_to_name[motor.id] = name
        # Last status error byte seen from each motor (any reply), for diagnostics.
        self.last_status_error: dict[str, int] = {name: 0 for name in self.motors}

    # ------------------------------------------------------------------ subclass hooks (wire level)
    @abstractmethod
    def _open_port(self) -> None: ...

    @abstractmethod
    def _close_port(self) -> None: ...

    @abstractmethod
    def _tx_ping(self, motor_id: int) -> tuple[int, int, int]:
        """-> (model_number, comm, error)."""

    @abstractmethod
    def _tx_read(self, motor_id: int, address: int, length: int) -> RawReply: ...

    @abstractmethod
    def _tx_write(self, motor_id: int, address: int, data: list[int]) -> RawReply: ...

    @abstractmethod
    def _tx_sync_read(self, ids: list[int], address: int, length: int) -> dict[int, RawReply]:
        """Replies in id order; stops at the first failed id (its entry carries the failure)."""

    @abstractmethod
    def _tx_sync_write(self, address: int, length: int, data_by_id: dict[int, list[int]]) -> int:
        """-> comm result of sending the packet (no reply is expected)."""

    @abstractmethod
    def _encode_sign(self, model: str, register: str, value: int, length: int) -> int: ...

    @abstractmethod
    def _decode_sign(self, model: str, register: str, value: int, length: int) -> int: ...

    @abstractmethod
    def _to_bytes(self, value: int, length: int) -> list[int]: ...

    @abstractmethod
    def _from_bytes(self, data: list[int]) -> int: ...

    @abstractmethod
    def comm_result_text(self, comm: int) -> str: ...

    @abstractmethod
    def status_error_flags(self, error: int) -> tuple[str, ...]:
        """Decode a status packet error byte into flag names (e.g. 'overheat')."""

    @abstractmethod
    def half_turn_homing_offset(self, model: str, present_position: int) -> int:
        """Homing offset that puts `present_position` (read with a zero offset) at mid-turn (2047)."""

    @abstractmethod
    def read_calibration(self) -> dict[str, MotorCalibration]: ...

    @abstractmethod
    def write_calibration(self, calibration: Mapping[str, MotorCalibration], cache: bool = True) -> None: ...

    # Register writes that switch a motor's torque on / off, in order (Feetech also toggles the EEPROM Lock).
    torque_on_writes: tuple[tuple[str, int], ...] = (("Torque_Enable", 1),)
    torque_off_writes: tuple[tuple[str, int], ...] = (("Torque_Enable", 0),)

    @abstractmethod
    def configure_motors(self) -> None:
        """LeRobot's bus-level defaults (e.g. Return_Delay_Time=0)."""

    _comm_success: int = 0

    def _extra_handshake_checks(self) -> None:
        """Hook for model-specific checks after every motor answered (Feetech: same firmware)."""

    def _before_retry(self) -> None:
        """Hook run after a failed transaction, before retrying (drop stale bytes)."""

    def _release_port(self) -> None:
        """Hook: mark the SDK port handler free again (its `is_using` flag), whatever the exchange did."""

    def _exchange(self, motor: str | None, register: str, action: str, tx: Callable[..., T], *args) -> T:
        """Run one wire-level call (`_tx_*` or `_before_retry`) with the bus lock held by the caller.

        The SDK marks its port busy at the start of a packet and clears the mark only on its normal return
        paths; an exception in between (device unplugged, SDK bug) would leave every later transaction failing
        with "port is in use". So the mark is cleared here in all cases, and serial-layer errors become
        MotorPortError naming port, motor and register.
        """
        try:
            return tx(*args)
        except SERIAL_LAYER_ERRORS as exc:
            motor_id = self.motors[motor].id if motor in self.motors else None
            raise MotorPortError(self.port, motor, register,
                                 f"{action}: serial device failed ({type(exc).__name__}: {exc}); is the adapter "
                                 "still plugged in? disconnect() and connect() once it is back", motor_id) from exc
        finally:
            self._release_port()

    # ------------------------------------------------------------------ connection
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, handshake: bool = True) -> None:
        """Open the port; with `handshake`, ping every motor and check its model number.

        Raises MotorPortError if the port cannot be opened, MotorHandshakeError listing every missing or
        mismatched motor.
        """
        with self._lock:
            if self._connected:
                raise MotorConfigError(f"port {self.port}: bus already connected")
            self._open_port()
            self._connected = True
            if handshake:
                try:
                    self._handshake()
                except Exception:
                    self._connected = False
                    self._close_port()
                    raise
        logger.debug("%s bus on %s connected", self.protocol_label, self.port)

    def _handshake(self) -> None:
        problems = []
        for name, motor in self.motors.items():
            found = self.ping(name, num_retry=1)
            expected = self.model_numbers[motor.model]
            if found is None:
                problems.append(f"motor '{name}' (id {motor.id}) did not answer ping")
            elif found != expected:
                problems.append(f"motor '{name}' (id {motor.id}): expected model '{motor.model}' "
                                f"(model number {expected}), found model number {found}")
        if problems:
            raise MotorHandshakeError(self.port, None, "Model_Number", "; ".join(problems))
        self._extra_handshake_checks()

    def disconnect(self, disable_torque: bool = True) -> None:
        """Optionally disable torque on every motor (5 retries, errors logged), then close the port.

        The bus is marked disconnected even when closing fails (device already gone), so connect() can follow.
        """
        with self._lock:
            if not self._connected:
                return
            try:
                if disable_torque:
                    try:
                        self.disable_torque(num_retry=5)
                    except MotorBusError as exc:
                        logger.warning("disconnect: could not disable torque: %s", exc)
            finally:
                self._connected = False
                try:
                    self._close_port()
                except SERIAL_LAYER_ERRORS as exc:
                    logger.warning("port %s: closing the serial port failed: %s", self.port, exc)
                finally:
                    self._release_port()

    def ping(self, motor: str | int, num_retry: int = 0) -> int | None:
        """Model number of the motor (name or id), or None if it does not answer."""
        motor_id = self.motors[motor].id if isinstance(motor, str) else int(motor)
        with self._lock:
            self._require_connected(None, "ping")
            name = self._id_to_name.get(motor_id)
            for _ in range(1 + num_retry):
                model_number, comm, _ = self._exchange(name, "Model_Number", "ping", self._tx_ping, motor_id)
                if comm == self._comm_success:
                    return model_number
                self._exchange(name, "Model_Number", "ping", self._before_retry)
        return None

    def _require_connected(self, motor: str | None, register: str | None) -> None:
        if not self._connected:
            raise MotorNotConnectedError(self.port, motor, register, "bus is not connected; call connect() first")

    # ------------------------------------------------------------------ naming helpers
    def motor_names(self, motors: MotorSelection = None) -> list[str]:
        if motors is None:
            return list(self.motors)
        names = [motors] if isinstance(motors, str) else list(motors)
        for name in names:
            self._motor(name)
        return names

    def _motor(self, name: str) -> Motor:
        try:
            return self.motors[name]
        except KeyError:
            raise MotorConfigError(f"port {self.port}: unknown motor '{name}'; this bus has "
                                   f"{list(self.motors)}") from None

    def register_address(self, motor: str, register: str) -> tuple[int, int]:
        model = self._motor(motor).model
        table = self.model_control_table[model]
        if register not in table:
            raise MotorConfigError(f"port {self.port}: motor '{motor}' (model {model}) has no register "
                                   f"'{register}'")
        return table[register]

    def _common_address(self, names: list[str], register: str) -> tuple[int, int]:
        addresses = {self.register_address(name, register) for name in names}
        if len(addresses) != 1:
            raise MotorConfigError(f"port {self.port}: register '{register}' is at different addresses for "
                                   f"motors {names}: {sorted(addresses)}; sync operations need one address")
        return addresses.pop()

    def resolution(self, motor: str) -> int:
        return self.model_resolution[self._motor(motor).model]

    # ------------------------------------------------------------------ normalization
    def _calibration_for(self, motor: str) -> MotorCalibration:
        try:
            return self.calibration[motor]
        except KeyError:
            raise MotorConfigError(f"port {self.port}: motor '{motor}' has no calibration; load a calibration "
                                   "file or pass normalize=False") from None

    def normalize(self, motor: str, raw: int) -> float:
        m = self._motor(motor)
        return normalize_position(raw, self._calibration_for(motor), m.norm_mode, self.resolution(motor),
                                  self.apply_drive_mode, motor)

    def unnormalize(self, motor: str, value: float) -> int:
        m = self._motor(motor)
        return unnormalize_position(value, self._calibration_for(motor), m.norm_mode, self.resolution(motor),
                                    self.apply_drive_mode, motor)

    def _encode_value(self, motor: str, register: str, value: float, normalize: bool, length: int) -> list[int]:
        model = self.motors[motor].model
        raw = None
        try:
            raw = self.unnormalize(motor, value) if (normalize and register in NORMALIZED_REGISTERS) else int(value)
            return self._to_bytes(self._encode_sign(model, register, raw, length), length)
        except (ValueError, OverflowError, TypeError) as exc:  # NaN/inf, out of range, not a number
            if isinstance(exc, MotorConfigError):
                raise
            raise MotorConfigError(f"port {self.port}: motor '{motor}' register {register}: cannot encode "
                                   f"value {value!r} (raw {raw}): {exc}") from None

    def _decode_value(self, motor: str, register: str, data: list[int], normalize: bool) -> int | float:
        model = self.motors[motor].model
        raw = self._decode_sign(model, register, self._from_bytes(data), len(data))
        if normalize and register in NORMALIZED_REGISTERS:
            return self.normalize(motor, raw)
        return raw

    # ------------------------------------------------------------------ errors
    def _comm_error(self, motor: str | None, register: str, comm: int, tries: int, action: str) -> MotorCommError:
        motor_id = self.motors[motor].id if motor in self.motors else None
        detail = f"{action} failed after {tries} tries: {self.comm_result_text(comm)}"
        return MotorCommError(self.port, motor, register, detail, motor_id)

    def _status_error(self, motor: str, register: str, error: int, action: str) -> MotorStatusError:
        flags = self.status_error_flags(error)
        detail = f"{action}: motor reported error byte 0x{error:02X} ({', '.join(flags) or 'unknown'})"
        return MotorStatusError(self.port, motor, register, detail, self.motors[motor].id, error, flags)

    def _note_status(self, motor: str, error: int) -> None:
        self.last_status_error[motor] = error

    # ------------------------------------------------------------------ single-motor transactions
    def read(self, register: str, motor: str, *, normalize: bool = True, num_retry: int = 0,
             check_status: bool = True) -> int | float:
        """Read one register of one motor (waits for its status packet).

        Raises MotorCommError (no/corrupt reply after 1+num_retry tries) or, when `check_status`,
        MotorStatusError if the status packet's error byte is nonzero.
        """
        address, length = self.register_address(motor, register)
        motor_id = self.motors[motor].id
        with self._lock:
            self._require_connected(motor, register)
            for _ in range(1 + num_retry):
                reply = self._exchange(motor, register, "read", self._tx_read, motor_id, address, length)
                if reply.comm == self._comm_success:
                    break
                self._exchange(motor, register, "read", self._before_retry)
            else:
                raise self._comm_error(motor, register, reply.comm, 1 + num_retry, "read")
        self._note_status(motor, reply.error)
        if check_status and reply.error:
            raise self._status_error(motor, register, reply.error, "read")
        return self._decode_value(motor, register, reply.data[:length], normalize)

    def write(self, register: str, motor: str, value: float, *, normalize: bool = True, num_retry: int = 0,
              check_status: bool = True) -> None:
        """Write one register of one motor and wait for the status packet (see `read` for errors)."""
        address, length = self.register_address(motor, register)
        data = self._encode_value(motor, register, value, normalize, length)
        motor_id = self.motors[motor].id
        with self._lock:
            self._require_connected(motor, register)
            action = f"write {value!r}"
            for _ in range(1 + num_retry):
                reply = self._exchange(motor, register, action, self._tx_write, motor_id, address, data)
                if reply.comm == self._comm_success:
                    break
                self._exchange(motor, register, action, self._before_retry)
            else:
                raise self._comm_error(motor, register, reply.comm, 1 + num_retry, action)
        self._note_status(motor, reply.error)
        if check_status and reply.error:
            raise self._status_error(motor, register, reply.error, action)

    # ------------------------------------------------------------------ group transactions
    def _sync_read_block(self, names: list[str], address: int, length: int, label: str,
                         num_retry: int) -> dict[str, list[int]]:
        ids = [self.motors[name].id for name in names]
        with self._lock:
            self._require_connected(None, label)
            for _ in range(1 + num_retry):
                replies = self._exchange(None, label, "sync_read", self._tx_sync_read, ids, address, length)
                failed = next((mid for mid, r in replies.items() if r.comm != self._comm_success), None)
                if failed is None and len(replies) == len(ids):
                    break
                self._exchange(None, label, "sync_read", self._before_retry)
            else:
                failed_id = failed if failed is not None else ids[len(replies)]
                comm = replies[failed_id].comm if failed_id in replies else -1
                raise self._comm_error(self._id_to_name[failed_id], label, comm, 1 + num_retry, "sync_read")
        out = {}
        for name, motor_id in zip(names, ids):
            self._note_status(name, replies[motor_id].error)
            out[name] = replies[motor_id].data[:length]
        return out

    def sync_read(self, register: str, motors: MotorSelection = None, *, normalize: bool = True,
                  num_retry: int = 0) -> dict[str, int | float]:
        """Read one register of several motors in one Sync Read; {motor: value} in the requested order.

        Status error bytes do not raise here (they are kept in `last_status_error`) so a control loop keeps
        running while the driver reports the fault; comm failures raise MotorCommError naming the first
        motor that did not answer.
        """
        names = self.motor_names(motors)
        address, length = self._common_address(names, register)
        block = self._sync_read_block(names, address, length, register, num_retry)
        return {name: self._decode_value(name, register, data, normalize) for name, data in block.items()}

    def sync_read_registers(self, registers: Iterable[str], motors: MotorSelection = None, *,
                            num_retry: int = 0) -> dict[str, dict[str, int]]:
        """Read several registers of several motors in ONE Sync Read over the span that covers them all.

        Returns raw sign-decoded values {motor: {register: value}} (positions are not normalized; use
        `normalize`). Useful for the driver's state read: position, velocity, load, voltage, temperature.
        """
        names = self.motor_names(motors)
        registers = list(registers)
        spans = {reg: self._common_address(names, reg) for reg in registers}
        start = min(addr for addr, _ in spans.values())
        end = max(addr + n for addr, n in spans.values())
        label = "+".join(registers)
        block = self._sync_read_block(names, start, end - start, label, num_retry)
        out: dict[str, dict[str, int]] = {}
        for name, data in block.items():
            values = {}
            for reg, (addr, n) in spans.items():
                values[reg] = int(self._decode_value(name, reg, data[addr - start: addr - start + n], False))
            out[name] = values
        return out

    def sync_write(self, register: str, values: Mapping[str, float] | float, *, normalize: bool = True,
                   num_retry: int = 0) -> None:
        """Write one register of several motors in one Sync Write (no status reply).

        `values` is {motor: value} or one value for every motor.
        """
        if not isinstance(values, Mapping):
            values = {name: values for name in self.motors}
        names = self.motor_names(values.keys())
        address, length = self._common_address(names, register)
        data_by_id = {self.motors[name].id: self._encode_value(name, register, values[name], normalize, length)
                      for name in names}
        with self._lock:
            self._require_connected(None, register)
            for _ in range(1 + num_retry):
                comm = self._exchange(None, register, "sync_write", self._tx_sync_write, address, length, data_by_id)
                if comm == self._comm_success:
                    return
                self._exchange(None, register, "sync_write", self._before_retry)
            raise self._comm_error(None, register, comm, 1 + num_retry, "sync_write")

    # ------------------------------------------------------------------ torque
    def enable_torque(self, motors: MotorSelection = None, num_retry: int = 0) -> None:
        """Switch torque on (`torque_on_writes`, waiting for each status packet), motor by motor.

        Stops at the first write that fails its retries and raises that error (it names port, motor and id,
        register); the motors before it are already on, the ones after it were not attempted (a note on the
        exception lists both).
        """
        names = self.motor_names(motors)
        with self._lock:
            self._require_connected(None, "Torque_Enable")
            for index, name in enumerate(names):
                for register, value in self.torque_on_writes:
                    try:
                        self.write(register, name, value, num_retry=num_retry)
                    except MotorBusError as exc:
                        exc.add_note(f"enable_torque: torque already on for {names[:index]}; "
                                     f"not attempted for {names[index + 1:]}")
                        raise

    def disable_torque(self, motors: MotorSelection = None, num_retry: int = 2) -> None:
        """Switch torque off on every given motor (`torque_off_writes`, status error bytes ignored).

        A safety path: a motor whose write fails (after 1 + `num_retry` tries) does not stop the others.
        Once every motor has been attempted, raises MotorTorqueOffError naming each motor (port, name, id,
        register) that could not be switched off. After a failed Torque_Enable write, that motor's later
        writes (Feetech's Lock) are skipped: they would fail the same way and only delay the next motor.
        """
        names = self.motor_names(motors)
        failures: list[MotorBusError] = []
        with self._lock:
            self._require_connected(None, "Torque_Enable")
            for name in names:
                for register, value in self.torque_off_writes:
                    try:
                        self.write(register, name, value, num_retry=num_retry, check_status=False)
                    except MotorBusError as exc:
                        failures.append(exc)
                        break
        if failures:
            raise MotorTorqueOffError(self.port, failures)

    @contextlib.contextmanager
    def torque_disabled(self, motors: MotorSelection = None) -> Iterator[None]:
        """Disable torque for the block (e.g. EEPROM writes), re-enable it afterwards."""
        self.disable_torque(motors)
        try:
            yield
        finally:
            self.enable_torque(motors)

    # ------------------------------------------------------------------ calibration helpers
    @property
    def is_calibrated(self) -> bool:
        """True when the cached calibration equals what the motors hold (see subclass for which fields)."""
        if not self.calibration or set(self.calibration) != set(self.motors):
            return False
        return self._calibration_matches(self.read_calibration())

    def _calibration_matches(self, in_motors: Mapping[str, MotorCalibration]) -> bool:
        return all(in_motors[name] == self.calibration[name] for name in self.motors)

    def reset_calibration(self, motors: MotorSelection = None) -> None:
        """Homing_Offset = 0 and limits = full turn (0 .. res-1) on the given motors; cache emptied."""
        for name in self.motor_names(motors):
            self.write("Homing_Offset", name, 0, normalize=False)
            self.write("Min_Position_Limit", name, 0, normalize=False)
            self.write("Max_Position_Limit", name, self.resolution(name) - 1, normalize=False)
        self.calibration = {}

    def set_half_turn_homings(self, motors: MotorSelection = None) -> dict[str, int]:
        """Make each motor's current position read as mid-turn (2047); returns the offsets written."""
        names = self.motor_names(motors)
        self.reset_calibration(names)
        positions = self.sync_read("Present_Position", names, normalize=False, num_retry=5)
        offsets = {name: self.half_turn_homing_offset(self.motors[name].model, int(pos))
                   for name, pos in positions.items()}
        for name, offset in offsets.items():
            self.write("Homing_Offset", name, offset, normalize=False)
        return offsets

    def record_ranges_of_motion(self, motors: MotorSelection, should_stop: Callable[[], bool],
                                poll_interval_s: float = 0.02,
                                on_update: Callable[[dict[str, int], dict[str, int], dict[str, int]], None]
                                | None = None) -> tuple[dict[str, int], dict[str, int]]:
        """Track min/max raw Present_Position (sync read every `poll_interval_s`) until `should_stop()`.

        `on_update(positions, mins, maxes)` is called after each read (for a live table). Raises
        MotorConfigError if some motor never moved (min == max).
        """
        names = self.motor_names(motors)
        start = self.sync_read("Present_Position", names, normalize=False, num_retry=5)
        mins = {n: int(v) for n, v in start.items()}
        maxes = dict(mins)
        while True:
            positions = self.sync_read("Present_Position", names, normalize=False, num_retry=5)
            for name, pos in positions.items():
                mins[name] = min(mins[name], int(pos))
                maxes[name] = max(maxes[name], int(pos))
            if on_update is not None:
                on_update({n: int(v) for n, v in positions.items()}, mins, maxes)
            if should_stop():
                break
            time.sleep(poll_interval_s)
        same = [name for name in names if mins[name] == maxes[name]]
        if same:
            raise MotorConfigError(f"port {self.port}: motors {same} did not move during range recording "
                                   f"(min == max: {[mins[n] for n in same]}); move every joint through its "
                                   "full range before stopping")
        return mins, maxes
