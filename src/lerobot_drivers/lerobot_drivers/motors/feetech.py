"""Feetech STS/SMS (protocol 0) and SCS (protocol 1) bus over `scservo_sdk` (PyPI feetech-servo-sdk).

These SDK quirks are handled here rather than patched globally:
- `scservo_sdk.PacketHandler(protocol_end)` sets a *module-global* byte order used by the SDK's word helpers
  (SCS_MAKEWORD, SCS_LOBYTE...). Two buses with different protocols in one process would corrupt each other.
  This bus never calls those helpers: it builds the handler class directly (no global write), moves raw
  bytes through the SDK and does its own byte order per instance.
- The PyPI SDK's `PortHandler.setPacketTimeout` uses the wrong formula (Feetech issue IBY2S6). The port
  handler here is a subclass with the corrected one: tx_time_per_byte * (len + 3) + 50 ms.
- The SDK busy-polls the port while waiting for a reply; reads here sleep in select() instead (port_io).
Also, `PortHandler.clearPort()` only flushes *output*; stale replies (e.g. after a motor timed out in the
middle of a Sync Read) would be parsed as the next answer, so this bus drops pending input before each
transaction.
"""
from __future__ import annotations

from collections.abc import Mapping

import scservo_sdk as scs
from scservo_sdk.protocol_packet_handler import protocol_packet_handler

from lerobot_drivers.motors import feetech_tables as tables
from lerobot_drivers.motors.bus import MotorBus, RawReply
from lerobot_drivers.motors.encoding import (
    bytes_to_int, decode_sign_magnitude, encode_sign_magnitude, int_to_bytes,
)
from lerobot_drivers.motors.errors import MotorConfigError, MotorHandshakeError, MotorPortError
from lerobot_drivers.motors.motor import Motor, MotorCalibration
from lerobot_drivers.motors.port_io import WaitingReadMixin

PKT_ID, PKT_LENGTH, PKT_INSTRUCTION, PKT_ERROR, PKT_PARAMETER0 = 2, 3, 4, 4, 5


class FeetechPortHandler(WaitingReadMixin, scs.PortHandler):
    """scservo_sdk PortHandler with the corrected packet timeout (ms) and non-spinning reads."""

    def packet_timeout_ms(self, packet_length: int) -> float:
        return self.tx_time_per_byte * packet_length + self.tx_time_per_byte * 3.0 + 50.0


class FeetechBus(MotorBus):
    """Feetech servo bus. `protocol_version` 0 = STS/SMS (sts3215...), 1 = SCS (scs0009; no Sync Read).

    `min_packet_timeout_ms` puts a floor under the reply timeout (default: the corrected SDK formula, ~50 ms).
    """

    protocol_label = "Feetech"
    apply_drive_mode = True
    model_numbers = tables.MODEL_NUMBERS
    model_resolution = tables.MODEL_RESOLUTION
    model_control_table = tables.MODEL_CONTROL_TABLE
    _comm_success = scs.COMM_SUCCESS
    # Torque on: Torque_Enable = 1 then Lock = 1 (EEPROM write-protected while driving); off: the reverse values
    # (EEPROM writable). enable_torque / disable_torque are MotorBus's.
    torque_on_writes = (("Torque_Enable", 1), ("Lock", 1))
    torque_off_writes = (("Torque_Enable", 0), ("Lock", 0))

    def __init__(self, port: str, motors: Mapping[str, Motor],
                 calibration: Mapping[str, MotorCalibration] | None = None, baudrate: int | None = None,
                 protocol_version: int = 0, min_packet_timeout_ms: float = 0.0) -> None:
        super().__init__(port, motors, calibration, baudrate)
        if protocol_version not in (0, 1):
            raise MotorConfigError(f"Feetech protocol_version must be 0 or 1, got {protocol_version!r}")
        wrong = {n: m.model for n, m in self.motors.items() if tables.MODEL_PROTOCOL[m.model] != protocol_version}
        if wrong:
            raise MotorConfigError(f"port {port}: motors {wrong} do not speak Feetech protocol {protocol_version}")
        self.protocol_version = protocol_version
        self.byteorder = "little" if protocol_version == 0 else "big"
        self._port_handler = FeetechPortHandler(port)
        self._port_handler.min_packet_timeout_ms = float(min_packet_timeout_ms)
        self._packet_handler = protocol_packet_handler()

    # ------------------------------------------------------------------ port
    def _open_port(self) -> None:
        self._port_handler.is_using = False  # a fresh connection starts with a free port whatever happened before
        try:
            ok = self._port_handler.openPort() and self._port_handler.setBaudRate(self.baudrate)
        except Exception as exc:  # pyserial raises SerialException (an OSError) for a bad path
            raise MotorPortError(self.port, None, None, f"could not open serial port: {exc}") from exc
        if not ok:
            raise MotorPortError(self.port, None, None, f"could not open serial port at {self.baudrate} baud "
                                 "(the Feetech SDK accepts 4800..1000000)")

    def _close_port(self) -> None:
        if self._port_handler.is_open:
            self._port_handler.closePort()

    def _release_port(self) -> None:
        self._port_handler.is_using = False

    def _drop_stale_input(self) -> None:
        ser = self._port_handler.ser
        if ser is not None and ser.is_open:
            ser.reset_input_buffer()

    _before_retry = _drop_stale_input

    # ------------------------------------------------------------------ wire transactions
    def _tx_ping(self, motor_id: int) -> tuple[int, int, int]:
        self._drop_stale_input()
        packet = [0] * 6
        packet[PKT_ID], packet[PKT_LENGTH], packet[PKT_INSTRUCTION] = motor_id, 2, scs.INST_PING
        _, comm, error = self._packet_handler.txRxPacket(self._port_handler, packet)
        if comm != scs.COMM_SUCCESS:
            return 0, comm, error
        reply = self._tx_read(motor_id, *tables.MODEL_NUMBER_REGISTER)
        model = bytes_to_int(reply.data, self.byteorder) if reply.comm == scs.COMM_SUCCESS else 0
        return model, reply.comm, reply.error

    def _rx_status(self, motor_id: int, length: int) -> RawReply:
        """Receive the status packet of `motor_id` carrying `length` data bytes.

        Unlike the SDK's readRx (which accepts any packet with the right id), packets with another length are
        skipped: they are late replies to an earlier, timed-out request and would otherwise be taken as this
        answer (e.g. a stale Present_Position read as Model_Number).
        """
        while True:
            packet, comm = self._packet_handler.rxPacket(self._port_handler)
            if comm != scs.COMM_SUCCESS:
                return RawReply(comm, 0, [])
            if packet[PKT_ID] == motor_id and packet[PKT_LENGTH] == length + 2:
                return RawReply(comm, packet[PKT_ERROR], list(packet[PKT_PARAMETER0:PKT_PARAMETER0 + length]))

    def _tx_read(self, motor_id: int, address: int, length: int) -> RawReply:
        self._drop_stale_input()
        packet = [0] * 8
        packet[PKT_ID], packet[PKT_LENGTH], packet[PKT_INSTRUCTION] = motor_id, 4, scs.INST_READ
        packet[PKT_PARAMETER0], packet[PKT_PARAMETER0 + 1] = address, length
        comm = self._packet_handler.txPacket(self._port_handler, packet)
        if comm != scs.COMM_SUCCESS:
            return RawReply(comm, 0, [])
        self._port_handler.setPacketTimeout(length + 6)
        return self._rx_status(motor_id, length)

    def _tx_write(self, motor_id: int, address: int, data: list[int]) -> RawReply:
        self._drop_stale_input()
        comm, error = self._packet_handler.writeTxRx(self._port_handler, motor_id, address, len(data), data)
        return RawReply(comm, error, [])

    def _tx_sync_read(self, ids: list[int], address: int, length: int) -> dict[int, RawReply]:
        replies: dict[int, RawReply] = {}
        if self.protocol_version == 1:
            # SCS has no Sync Read: sequential reads give the same result, slower.
            for motor_id in ids:
                replies[motor_id] = self._tx_read(motor_id, address, length)
                if replies[motor_id].comm != scs.COMM_SUCCESS:
                    break
            return replies
        self._drop_stale_input()
        comm = self._packet_handler.syncReadTx(self._port_handler, address, length, ids, len(ids))
        if comm != scs.COMM_SUCCESS:
            return {ids[0]: RawReply(comm, 0, [])}
        for motor_id in ids:
            replies[motor_id] = self._rx_status(motor_id, length)
            if replies[motor_id].comm != scs.COMM_SUCCESS:
                break
        return replies

    def _tx_sync_write(self, address: int, length: int, data_by_id: dict[int, list[int]]) -> int:
        param: list[int] = []
        for motor_id, data in data_by_id.items():
            param.append(motor_id)
            param.extend(data)
        return self._packet_handler.syncWriteTxOnly(self._port_handler, address, length, param, len(param))

    # ------------------------------------------------------------------ encodings
    def _encode_sign(self, model: str, register: str, value: int, length: int) -> int:
        sign_bit = tables.MODEL_SIGN_BITS[model].get(register)
        return encode_sign_magnitude(value, sign_bit) if sign_bit is not None else value

    def _decode_sign(self, model: str, register: str, value: int, length: int) -> int:
        sign_bit = tables.MODEL_SIGN_BITS[model].get(register)
        return decode_sign_magnitude(value, sign_bit) if sign_bit is not None else value

    def _to_bytes(self, value: int, length: int) -> list[int]:
        return int_to_bytes(value, length, self.byteorder)

    def _from_bytes(self, data: list[int]) -> int:
        return bytes_to_int(data, self.byteorder)

    def comm_result_text(self, comm: int) -> str:
        return self._packet_handler.getTxRxResult(comm) or f"comm result {comm}"

    def status_error_flags(self, error: int) -> tuple[str, ...]:
        return tuple(name for bit, name in tables.STATUS_ERROR_BITS.items() if error & bit)

    def half_turn_homing_offset(self, model: str, present_position: int) -> int:
        # Feetech: Present_Position = Actual_Position - Homing_Offset.
        return present_position - int((self.model_resolution[model] - 1) / 2)

    # ------------------------------------------------------------------ handshake / setup
    def _extra_handshake_checks(self) -> None:
        versions = {}
        for name in self.motors:
            major = self.read("Firmware_Major_Version", name, normalize=False, num_retry=1, check_status=False)
            minor = self.read("Firmware_Minor_Version", name, normalize=False, num_retry=1, check_status=False)
            versions[name] = f"{major}.{minor}"
        if len(set(versions.values())) > 1:
            raise MotorHandshakeError(self.port, None, "Firmware_Major_Version",
                                      f"motors run different firmware versions {versions}; update them with "
                                      "Feetech's software first")

    def configure_motors(self, return_delay_time: int = 0, maximum_acceleration: int = 254,
                         acceleration: int = 254) -> None:
        """Return_Delay_Time (500 us -> 2 us), Maximum_Acceleration (protocol 0), Acceleration; and on
        sts3215 clear Phase bit 4 so positions stay within one turn [0, 4095]."""
        for name, motor in self.motors.items():
            self.write("Return_Delay_Time", name, return_delay_time)
            if self.protocol_version == 0:
                self.write("Maximum_Acceleration", name, maximum_acceleration)
            self.write("Acceleration", name, acceleration)
            if motor.model == "sts3215":
                phase = int(self.read("Phase", name, normalize=False))
                if phase & 0x10:
                    self.write("Phase", name, phase & ~0x10)

    # ------------------------------------------------------------------ calibration
    def read_calibration(self) -> dict[str, MotorCalibration]:
        """Limits and (protocol 0) Homing_Offset from the motors; Feetech has no drive-mode register (0)."""
        out = {}
        for name, motor in self.motors.items():
            offset = int(self.read("Homing_Offset", name, normalize=False)) if self.protocol_version == 0 else 0
            out[name] = MotorCalibration(
                id=motor.id, drive_mode=0, homing_offset=offset,
                range_min=int(self.read("Min_Position_Limit", name, normalize=False)),
                range_max=int(self.read("Max_Position_Limit", name, normalize=False)),
            )
        return out

    def write_calibration(self, calibration: Mapping[str, MotorCalibration], cache: bool = True) -> None:
        """Homing_Offset (protocol 0) and Min/Max_Position_Limit into EEPROM (the firmware then clamps goals)."""
        for name, cal in calibration.items():
            self._motor(name)
            if self.protocol_version == 0:
                self.write("Homing_Offset", name, cal.homing_offset)
            self.write("Min_Position_Limit", name, cal.range_min)
            self.write("Max_Position_Limit", name, cal.range_max)
        if cache:
            self.calibration = dict(calibration)

    def _calibration_matches(self, in_motors: Mapping[str, MotorCalibration]) -> bool:
        for name in self.motors:
            ours, theirs = self.calibration[name], in_motors[name]
            if (ours.range_min, ours.range_max) != (theirs.range_min, theirs.range_max):
                return False
            if self.protocol_version == 0 and ours.homing_offset != theirs.homing_offset:
                return False
        return True
