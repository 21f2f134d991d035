"""Wire formats of the two servo protocols, from the motor's side (parse instructions, build status packets).

Feetech (protocol 0 STS/SMS and protocol 1 SCS share the framing):
    instruction  FF FF id len instr params... checksum        len = len(params) + 2
    status       FF FF id len error params... checksum        checksum = ~(id + len + ... ) & 0xFF
Dynamixel Protocol 2.0:
    instruction  FF FF FD 00 id len_l len_h instr params... crc_l crc_h     len = len(stuffed body) + 2
    status       FF FF FD 00 id len_l len_h 55 error params... crc_l crc_h
    CRC-16 (poly 0x8005, init 0) over the whole stuffed packet; inside the body, FF FF FD is sent as FF FF FD FD.
"""
from __future__ import annotations

from dataclasses import dataclass

INST_PING, INST_READ, INST_WRITE, INST_REG_WRITE, INST_ACTION = 0x01, 0x02, 0x03, 0x04, 0x05
INST_SYNC_READ, INST_SYNC_WRITE = 0x82, 0x83
BROADCAST_ID = 0xFE
DXL_STATUS = 0x55


@dataclass(frozen=True)
class Instruction:
    motor_id: int
    instruction: int
    params: bytes


# ---------------------------------------------------------------------- Feetech
def feetech_checksum(body: bytes) -> int:
    return ~sum(body) & 0xFF


class FeetechParser:
    """Byte stream -> instruction packets. Garbage and bad checksums are skipped one byte at a time."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_packets = 0

    def feed(self, data: bytes) -> list[Instruction]:
        self._buf.extend(data)
        out = []
        buf = self._buf
        while True:
            start = buf.find(b"\xff\xff")
            if start < 0:
                del buf[:max(0, len(buf) - 1)]
                return out
            del buf[:start]
            if len(buf) < 4:
                return out
            motor_id, length = buf[2], buf[3]
            if motor_id == 0xFF or length < 2:
                del buf[0]
                continue
            total = length + 4
            if len(buf) < total:
                return out
            if buf[total - 1] != feetech_checksum(buf[2:total - 1]):
                self.bad_packets += 1
                del buf[0]
                continue
            out.append(Instruction(motor_id, buf[4], bytes(buf[5:total - 1])))
            del buf[:total]


def feetech_status(motor_id: int, error: int, params: bytes = b"", corrupt: bool = False) -> bytes:
    body = bytes([motor_id, len(params) + 2, error]) + params
    checksum = feetech_checksum(body)
    if corrupt:
        checksum ^= 0xFF
    return b"\xff\xff" + body + bytes([checksum])


# ---------------------------------------------------------------------- Dynamixel 2.0
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def dynamixel_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    out = bytearray()
    for byte in body:
        out.append(byte)
        if byte == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if body[i] == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF \
                and i + 1 < len(body) and body[i + 1] == 0xFD:
            i += 1  # skip the stuffing byte
        i += 1
    return bytes(out)


_DXL_HEADER = b"\xff\xff\xfd\x00"


class DynamixelParser:
    """Byte stream -> Protocol 2.0 instruction packets (CRC-checked, unstuffed)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_packets = 0

    def feed(self, data: bytes) -> list[Instruction]:
        self._buf.extend(data)
        out = []
        buf = self._buf
        while True:
            start = buf.find(_DXL_HEADER)
            if start < 0:
                del buf[:max(0, len(buf) - 3)]
                return out
            del buf[:start]
            if len(buf) < 7:
                return out
            length = buf[5] | (buf[6] << 8)
            if length < 3 or length > 1024:
                del buf[0]
                continue
            total = 7 + length
            if len(buf) < total:
                return out
            crc = buf[total - 2] | (buf[total - 1] << 8)
            if crc != dynamixel_crc(bytes(buf[:total - 2])):
                self.bad_packets += 1
                del buf[0]
                continue
            body = unstuff(bytes(buf[7:total - 2]))
            out.append(Instruction(buf[4], body[0], body[1:]))
            del buf[:total]


def dynamixel_status(motor_id: int, error: int, params: bytes = b"", corrupt: bool = False) -> bytes:
    body = stuff(bytes([DXL_STATUS, error]) + params)
    length = len(body) + 2
    packet = _DXL_HEADER + bytes([motor_id, length & 0xFF, length >> 8]) + body
    crc = dynamixel_crc(packet)
    if corrupt:
        crc ^= 0xFFFF
    return packet + bytes([crc & 0xFF, crc >> 8])


def dynamixel_instruction(motor_id: int, instruction: int, params: bytes = b"") -> bytes:
    """Build an instruction packet (used by tests of the parser; the SDK builds its own)."""
    body = stuff(bytes([instruction]) + params)
    length = len(body) + 2
    packet = _DXL_HEADER + bytes([motor_id, length & 0xFF, length >> 8]) + body
    crc = dynamixel_crc(packet)
    return packet + bytes([crc & 0xFF, crc >> 8])


def feetech_instruction(motor_id: int, instruction: int, params: bytes = b"") -> bytes:
    body = bytes([motor_id, len(params) + 2, instruction]) + params
    return b"\xff\xff" + body + bytes([feetech_checksum(body)])
