"""Pure unit tests of the motor layer: encodings, LeRobot normalization formulas, control-table facts."""
import pytest

from lerobot_drivers.motors import dynamixel_tables, feetech_tables
from lerobot_drivers.motors.encoding import (
    bytes_to_int, decode_sign_magnitude, decode_twos_complement, encode_sign_magnitude, encode_twos_complement,
    int_to_bytes,
)
from lerobot_drivers.motors.motor import MotorCalibration, MotorNormMode
from lerobot_drivers.motors.normalization import normalize_position, unnormalize_position

CAL = MotorCalibration(id=1, drive_mode=0, homing_offset=0, range_min=1000, range_max=3000)
CAL_INV = MotorCalibration(id=1, drive_mode=1, homing_offset=0, range_min=1000, range_max=3000)
DEG, M100, P100 = MotorNormMode.DEGREES, MotorNormMode.RANGE_M100_100, MotorNormMode.RANGE_0_100


def test_sign_magnitude_hand_values():
    assert encode_sign_magnitude(-5, 11) == 0x805
    assert encode_sign_magnitude(5, 11) == 5
    assert encode_sign_magnitude(-2047, 11) == 0xFFF
    assert decode_sign_magnitude(0x805, 11) == -5
    assert decode_sign_magnitude(0x8000 | 300, 15) == -300
    assert decode_sign_magnitude(0x400 | 17, 10) == -17
    with pytest.raises(ValueError, match="sign bit 11"):
        encode_sign_magnitude(2048, 11)


def test_twos_complement_hand_values():
    assert encode_twos_complement(-1, 4) == 0xFFFFFFFF
    assert encode_twos_complement(-100, 2) == 65436
    assert decode_twos_complement(65436, 2) == -100
    assert decode_twos_complement(0x7FFFFFFF, 4) == 2**31 - 1
    with pytest.raises(ValueError):
        encode_twos_complement(40000, 2)


def test_byte_orders():
    assert int_to_bytes(0x1234, 2, "little") == [0x34, 0x12]
    assert int_to_bytes(0x1234, 2, "big") == [0x12, 0x34]
    assert bytes_to_int([0x34, 0x12]) == 0x1234
    with pytest.raises(ValueError):
        int_to_bytes(256, 1)


def test_degrees_formula_and_truncation():
    # mid = 2000, (2500 - 2000) * 360 / 4095
    assert normalize_position(2500, CAL, DEG, 4096, True) == pytest.approx(500 * 360 / 4095)
    # drive mode is ignored in DEGREES; no clamping outside the range
    assert normalize_position(2500, CAL_INV, DEG, 4096, True) == pytest.approx(500 * 360 / 4095)
    assert normalize_position(4000, CAL, DEG, 4096, True) == pytest.approx(2000 * 360 / 4095)
    assert unnormalize_position(10.0, CAL, DEG, 4096, True) == 2113  # 2113.75 truncated
    # int() truncates toward zero: -63.75 -> -63 (floor would give -64)
    small = MotorCalibration(1, 0, 0, 0, 100)
    assert unnormalize_position(-10.0, small, DEG, 4096, True) == -63


def test_range_m100_100_formula_with_drive_mode():
    assert normalize_position(2500, CAL, M100, 4096, True) == pytest.approx(50.0)
    assert normalize_position(2500, CAL_INV, M100, 4096, True) == pytest.approx(-50.0)
    assert normalize_position(500, CAL, M100, 4096, True) == pytest.approx(-100.0)  # clamped to min
    assert unnormalize_position(50.0, CAL, M100, 4096, True) == 2500
    assert unnormalize_position(50.0, CAL_INV, M100, 4096, True) == 1500
    assert unnormalize_position(12.34, CAL, M100, 4096, True) == 2123  # 2123.4 truncated
    assert unnormalize_position(250.0, CAL, M100, 4096, True) == 3000  # clamped to 100
    # Dynamixel never applies drive mode in software
    assert normalize_position(2500, CAL_INV, M100, 4096, False) == pytest.approx(50.0)


def test_range_0_100_formula_with_drive_mode():
    assert normalize_position(2500, CAL, P100, 4096, True) == pytest.approx(75.0)
    assert normalize_position(2500, CAL_INV, P100, 4096, True) == pytest.approx(25.0)
    assert unnormalize_position(42.42, CAL, P100, 4096, True) == 1848  # 1848.4
    assert unnormalize_position(42.42, CAL_INV, P100, 4096, True) == 2151  # 100-42.42 -> 2151.6
    assert unnormalize_position(150.0, CAL, P100, 4096, True) == 3000
    assert unnormalize_position(-5.0, CAL, P100, 4096, True) == 1000


def test_equal_min_max_is_an_error():
    bad = MotorCalibration(1, 0, 0, 2000, 2000)
    with pytest.raises(ValueError, match="gripper"):
        normalize_position(2000, bad, P100, 4096, True, motor="gripper")


def test_control_table_addresses_match_spec():
    sts = feetech_tables.STS_SMS_CONTROL_TABLE
    assert sts["Model_Number"] == (3, 2)
    assert sts["Homing_Offset"] == (31, 2) and sts["Operating_Mode"] == (33, 1)
    assert sts["Torque_Enable"] == (40, 1) and sts["Acceleration"] == (41, 1)
    assert sts["Goal_Position"] == (42, 2) and sts["Lock"] == (55, 1)
    assert sts["Present_Position"] == (56, 2) and sts["Present_Load"] == (60, 2)
    assert sts["P_Coefficient"] == (21, 1) and sts["D_Coefficient"] == (22, 1) and sts["I_Coefficient"] == (23, 1)
    assert sts["Maximum_Acceleration"] == (85, 1)
    assert feetech_tables.SCS_CONTROL_TABLE["Lock"] == (48, 1)
    assert feetech_tables.MODEL_NUMBERS["sts3215"] == 777
    assert feetech_tables.STS_SMS_SIGN_BITS["Homing_Offset"] == 11
    assert feetech_tables.STS_SMS_SIGN_BITS["Present_Load"] == 10
    x = dynamixel_tables.X_SERIES_CONTROL_TABLE
    assert x["Drive_Mode"] == (10, 1) and x["Operating_Mode"] == (11, 1) and x["Homing_Offset"] == (20, 4)
    assert x["Max_Position_Limit"] == (48, 4) and x["Min_Position_Limit"] == (52, 4)
    assert x["Torque_Enable"] == (64, 1) and x["Goal_Position"] == (116, 4) and x["Present_Position"] == (132, 4)
    assert dynamixel_tables.MODEL_NUMBERS["xl330-m288"] == 1200
    assert dynamixel_tables.MODEL_NUMBERS["xl430-w250"] == 1060
