"""Integer <-> register byte encodings used by the servo buses.

Feetech stores signed registers as sign-magnitude (one bit, whose position depends on the register, carries the
sign). Dynamixel stores them as two's complement over the register width. Feetech protocol 0 (STS/SMS) and
Dynamixel are little-endian; Feetech protocol 1 (SCS) is big-endian.
"""
from __future__ import annotations

from typing import Literal

ByteOrder = Literal["little", "big"]


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Signed int -> sign-magnitude word with the sign at `sign_bit` (magnitude must fit below it)."""
    max_magnitude = (1 << sign_bit) - 1
    magnitude = abs(value)
    if magnitude > max_magnitude:
        raise ValueError(f"magnitude {magnitude} of {value} does not fit below sign bit {sign_bit} "
                         f"(max {max_magnitude})")
    return (1 << sign_bit) | magnitude if value < 0 else magnitude


def decode_sign_magnitude(encoded: int, sign_bit: int) -> int:
    """Sign-magnitude word -> signed int. Bits above the sign bit are ignored, as the firmware does."""
    magnitude = encoded & ((1 << sign_bit) - 1)
    return -magnitude if encoded & (1 << sign_bit) else magnitude


def encode_twos_complement(value: int, n_bytes: int) -> int:
    """Signed int -> unsigned two's complement word of `n_bytes` bytes."""
    bits = 8 * n_bytes
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not low <= value <= high:
        raise ValueError(f"{value} does not fit in a signed {bits}-bit register [{low}, {high}]")
    return value & ((1 << bits) - 1)


def decode_twos_complement(encoded: int, n_bytes: int) -> int:
    bits = 8 * n_bytes
    encoded &= (1 << bits) - 1
    return encoded - (1 << bits) if encoded & (1 << (bits - 1)) else encoded


def int_to_bytes(value: int, n_bytes: int, byteorder: ByteOrder = "little") -> list[int]:
    """Unsigned register value -> list of `n_bytes` bytes; rejects values that do not fit."""
    if not 0 <= value < (1 << (8 * n_bytes)):
        raise ValueError(f"{value} does not fit in an unsigned {n_bytes}-byte register")
    return list(value.to_bytes(n_bytes, byteorder))


def bytes_to_int(data: bytes | list[int], byteorder: ByteOrder = "little") -> int:
    return int.from_bytes(bytes(data), byteorder)
