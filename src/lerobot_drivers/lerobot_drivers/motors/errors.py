"""Exceptions raised by the motor buses.

Every bus error names the serial port, the motor (name and id) and the register involved, so a log line alone
tells the operator which cable, which servo and which operation failed.
"""
from __future__ import annotations


class MotorBusError(Exception):
    """Base class: something went wrong talking to a motor on a bus."""

    def __init__(self, port: str, motor: str | None, register: str | None, detail: str,
                 motor_id: int | None = None) -> None:
        self.port = port
        self.motor = motor
        self.motor_id = motor_id
        self.register = register
        self.detail = detail
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts = [f"port {self.port}"]
        if self.motor is not None:
            parts.append(f"motor '{self.motor}'" + (f" (id {self.motor_id})" if self.motor_id is not None else ""))
        elif self.motor_id is not None:
            parts.append(f"motor id {self.motor_id}")
        if self.register is not None:
            parts.append(f"register {self.register}")
        return ", ".join(parts) + f": {self.detail}"


class MotorPortError(MotorBusError, ConnectionError):
    """The serial port could not be opened (wrong path, permissions, unplugged adapter), or the serial layer
    failed in the middle of a transaction (termios.error / OSError / SerialException: the device vanished).
    The bus stays usable after disconnect() + connect() once the device is back."""


class MotorCommError(MotorBusError, ConnectionError):
    """No status packet, or a corrupted one (bad checksum/CRC), after all retries."""


class MotorStatusError(MotorBusError, RuntimeError):
    """The motor answered, but its status packet carries an error byte (overheat, voltage, overload, ...)."""

    def __init__(self, port: str, motor: str | None, register: str | None, detail: str,
                 motor_id: int | None = None, error_byte: int = 0, flags: tuple[str, ...] = ()) -> None:
        self.error_byte = error_byte
        self.flags = flags
        super().__init__(port, motor, register, detail, motor_id)


class MotorHandshakeError(MotorBusError, ConnectionError):
    """connect(handshake=True) found missing motors, unexpected model numbers or mixed firmware."""


class MotorNotConnectedError(MotorBusError, ConnectionError):
    """A bus operation was attempted before connect() or after disconnect()."""


class MotorTorqueOffError(MotorBusError, ConnectionError):
    """disable_torque tried every motor but could not switch some of them off.

    `failures` holds one error per motor that failed (its port, motor name and id, register and cause);
    `motors` their names. With a single failure, `motor`/`motor_id`/`register` are that motor's.
    `port_failed` is True when the serial device itself failed (some failure is a MotorPortError): retrying
    on this port cannot help, reconnect instead.
    """

    def __init__(self, port: str, failures: list[MotorBusError]) -> None:
        if not failures:
            raise ValueError("MotorTorqueOffError needs at least one failure")
        self.failures = list(failures)
        self.motors = [f.motor for f in self.failures]
        self.port_failed = any(isinstance(f, MotorPortError) for f in self.failures)
        each = "; ".join(_describe_failure(f) for f in self.failures)
        detail = f"torque off failed on {len(self.failures)} motor(s) (every motor was attempted): {each}"
        only = self.failures[0] if len(self.failures) == 1 else None
        super().__init__(port, only.motor if only else None, only.register if only else "Torque_Enable",
                         detail, only.motor_id if only else None)


def _describe_failure(error: MotorBusError) -> str:
    who = f"motor '{error.motor}'" + (f" (id {error.motor_id})" if error.motor_id is not None else "")
    return f"{who} register {error.register}: {error.detail}"


class MotorConfigError(ValueError):
    """Bad input from the caller: unknown motor/register name, value out of range, missing calibration."""
