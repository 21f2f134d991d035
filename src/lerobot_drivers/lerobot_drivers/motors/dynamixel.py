"""Dynamixel X-series bus over `dynamixel_sdk`, Protocol 2.0.

Signed registers are two's complement over their width. Inversion is done by the motor (Drive_Mode bit 0),
so normalization ignores the calibration's drive_mode (LeRobot's apply_drive_mode = False). EEPROM registers
(address < 64) can only be written with torque off; the firmware answers an Access error otherwise.
"""
from __future__ import annotations

from collections.abc import Mapping

import dynamixel_sdk as dxl

from lerobot_drivers.motors import dynamixel_tables as tables
from lerobot_drivers.motors.bus import MotorBus, RawReply
from lerobot_drivers.motors.encoding import (
    bytes_to_int, decode_twos_complement, encode_twos_complement, int_to_bytes,
)
from lerobot_drivers.motors.errors import MotorPortError
from lerobot_drivers.motors.motor import Motor, MotorCalibration
from lerobot_drivers.motors.port_io import WaitingReadMixin

# Protocol 2.0 packet layout (indices into the SDK's packet lists)
PKT_ID, PKT_LENGTH_L, PKT_LENGTH_H, PKT_INSTRUCTION, PKT_ERROR = 4, 5, 6, 7, 8


class DynamixelPortHandler(WaitingReadMixin, dxl.PortHandler):
    """dynamixel_sdk PortHandler whose reads wait in select() instead of spinning (see port_io)."""


class DynamixelBus(MotorBus):
    """Dynamixel Protocol 2.0 bus (XL330, XL430, XM430, ... all 4096 ticks per turn).

    `min_packet_timeout_ms` puts a floor under the reply timeout (default: the SDK formula, ~34 ms).
    """

    protocol_label = "Dynamixel"
    apply_drive_mode = False
    model_numbers = tables.MODEL_NUMBERS
    model_resolution = tables.MODEL_RESOLUTION
    model_control_table = tables.MODEL_CONTROL_TABLE
    _comm_success = dxl.COMM_SUCCESS

    def __init__(self, port: str, motors: Mapping[str, Motor],
                 calibration: Mapping[str, MotorCalibration] | None = None, baudrate: int | None = None,
                 min_packet_timeout_ms: float = 0.0) -> None:
        super().__init__(port, motors, calibration, baudrate)
        self._port_handler = DynamixelPortHandler(port)
        self._port_handler.min_packet_timeout_ms = float(min_packet_timeout_ms)
        self._packet_handler = dxl.PacketHandler(2.0)

    # ------------------------------------------------------------------ port
    def _open_port(self) -> None:
        self._port_handler.is_using = False  # a fresh connection starts with a free port whatever happened before
        try:
            ok = self._port_handler.openPort() and self._port_handler.setBaudRate(self.baudrate)
        except Exception as exc:
            raise MotorPortError(self.port, None, None, f"could not open serial port: {exc}") from exc
        if not ok:
            raise MotorPortError(self.port, None, None, f"could not open serial port at {self.baudrate} baud")

    def _close_port(self) -> None:
        if self._port_handler.is_open:
            self._port_handler.closePort()

    def _release_port(self) -> None:
        self._port_handler.is_using = False

    # dynamixel_sdk's clearPort() already resets the input buffer before every transmission.

    # ------------------------------------------------------------------ wire transactions
    def _tx_ping(self, motor_id: int) -> tuple[int, int, int]:
        packet = [0] * 10
        packet[PKT_ID], packet[PKT_LENGTH_L], packet[PKT_LENGTH_H] = motor_id, 3, 0
        packet[PKT_INSTRUCTION] = dxl.INST_PING
        comm = self._packet_handler.txPacket(self._port_handler, packet)
        if comm != dxl.COMM_SUCCESS:
            return 0, comm, 0
        self._port_handler.setPacketTimeout(11)
        reply = self._rx_status(motor_id, 3)  # model number (2 bytes) + firmware version
        model = reply.data[0] | (reply.data[1] << 8) if reply.comm == dxl.COMM_SUCCESS else 0
        return model, reply.comm, reply.error

    def _rx_status(self, motor_id: int, length: int) -> RawReply:
        """Receive `motor_id`'s status packet with `length` data bytes, skipping late replies of other lengths
        (the SDK's readRx only checks the id)."""
        while True:
            packet, comm = self._packet_handler.rxPacket(self._port_handler, False)
            if comm != dxl.COMM_SUCCESS:
                return RawReply(comm, 0, [])
            packet_length = packet[PKT_LENGTH_L] | (packet[PKT_LENGTH_H] << 8)
            if packet[PKT_ID] == motor_id and packet_length == length + 4:
                return RawReply(comm, packet[PKT_ERROR], list(packet[PKT_ERROR + 1:PKT_ERROR + 1 + length]))

    def _tx_read(self, motor_id: int, address: int, length: int) -> RawReply:
        packet = [0] * 14
        packet[PKT_ID], packet[PKT_LENGTH_L], packet[PKT_LENGTH_H] = motor_id, 7, 0
        packet[PKT_INSTRUCTION] = dxl.INST_READ
        packet[PKT_INSTRUCTION + 1:PKT_INSTRUCTION + 5] = [address & 0xFF, address >> 8, length & 0xFF, length >> 8]
        comm = self._packet_handler.txPacket(self._port_handler, packet)
        if comm != dxl.COMM_SUCCESS:
            return RawReply(comm, 0, [])
        self._port_handler.setPacketTimeout(length + 11)
        return self._rx_status(motor_id, length)

    def _tx_write(self, motor_id: int, address: int, data: list[int]) -> RawReply:
        comm, error = self._packet_handler.writeTxRx(self._port_handler, motor_id, address, len(data), data)
        return RawReply(comm, error, [])

    def _tx_sync_read(self, ids: list[int], address: int, length: int) -> dict[int, RawReply]:
        comm = self._packet_handler.syncReadTx(self._port_handler, address, length, list(ids), len(ids), False)
        if comm != dxl.COMM_SUCCESS:
            return {ids[0]: RawReply(comm, 0, [])}
        replies: dict[int, RawReply] = {}
        for motor_id in ids:
            replies[motor_id] = self._rx_status(motor_id, length)
            if replies[motor_id].comm != dxl.COMM_SUCCESS:
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
        return encode_twos_complement(value, length) if register in tables.SIGNED_REGISTERS else value

    def _decode_sign(self, model: str, register: str, value: int, length: int) -> int:
        return decode_twos_complement(value, length) if register in tables.SIGNED_REGISTERS else value

    def _to_bytes(self, value: int, length: int) -> list[int]:
        return int_to_bytes(value, length, "little")

    def _from_bytes(self, data: list[int]) -> int:
        return bytes_to_int(data, "little")

    def comm_result_text(self, comm: int) -> str:
        return self._packet_handler.getTxRxResult(comm) or f"comm result {comm}"

    def status_error_flags(self, error: int) -> tuple[str, ...]:
        flags = []
        if error & tables.ALERT_BIT:
            flags.append("hardware_alert")
        number = error & ~tables.ALERT_BIT
        if number:
            flags.append(tables.STATUS_ERROR_NUMBERS.get(number, f"error_{number}"))
        return tuple(flags)

    @staticmethod
    def hardware_error_flags(hardware_error_status: int) -> tuple[str, ...]:
        """Decode the Hardware_Error_Status register (read it when a reply carries the alert bit)."""
        return tuple(name for bit, name in tables.HARDWARE_ERROR_BITS.items() if hardware_error_status & bit)

    def half_turn_homing_offset(self, model: str, present_position: int) -> int:
        # Dynamixel: Present_Position = Actual_Position + Homing_Offset.
        return int((self.model_resolution[model] - 1) / 2) - present_position

    # ------------------------------------------------------------------ setup
    def configure_motors(self, return_delay_time: int = 0) -> None:
        """Return_Delay_Time = 0 (default 250 = 500 us)."""
        for name in self.motors:
            self.write("Return_Delay_Time", name, return_delay_time)

    # ------------------------------------------------------------------ calibration
    def read_calibration(self) -> dict[str, MotorCalibration]:
        offsets = self.sync_read("Homing_Offset", normalize=False)
        mins = self.sync_read("Min_Position_Limit", normalize=False)
        maxes = self.sync_read("Max_Position_Limit", normalize=False)
        drive_modes = self.sync_read("Drive_Mode", normalize=False)
        return {
            name: MotorCalibration(id=motor.id, drive_mode=int(drive_modes[name]) & 1,
                                   homing_offset=int(offsets[name]), range_min=int(mins[name]),
                                   range_max=int(maxes[name]))
            for name, motor in self.motors.items()
        }

    def write_calibration(self, calibration: Mapping[str, MotorCalibration], cache: bool = True) -> None:
        """Drive_Mode, Homing_Offset, Min/Max_Position_Limit (EEPROM: torque must be off)."""
        for name, cal in calibration.items():
            self._motor(name)
            self.write("Drive_Mode", name, cal.drive_mode)
            self.write("Homing_Offset", name, cal.homing_offset)
            self.write("Min_Position_Limit", name, cal.range_min)
            self.write("Max_Position_Limit", name, cal.range_max)
        if cache:
            self.calibration = dict(calibration)
