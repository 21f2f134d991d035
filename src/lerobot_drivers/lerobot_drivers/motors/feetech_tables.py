"""Feetech STS/SMS (protocol 0) and SCS (protocol 1) control tables, from Feetech's manuals as used by LeRobot.

Register: (address, size in bytes). Sign bits: registers stored sign-magnitude, with the sign at that bit.
Units of the live registers (STS3215): position/velocity in encoder ticks (4096 per turn) and ticks/s,
Present_Load in 0.1 % of rated torque, Present_Voltage in 0.1 V, Present_Temperature in deg C,
Present_Current in 6.5 mA.
"""
from __future__ import annotations

ControlTable = dict[str, tuple[int, int]]

MODEL_NUMBER_REGISTER = (3, 2)
FIRMWARE_MAJOR_REGISTER = (0, 1)
FIRMWARE_MINOR_REGISTER = (1, 1)

STS_SMS_CONTROL_TABLE: ControlTable = {
    # EEPROM
    "Firmware_Major_Version": FIRMWARE_MAJOR_REGISTER,
    "Firmware_Minor_Version": FIRMWARE_MINOR_REGISTER,
    "Model_Number": MODEL_NUMBER_REGISTER,
    "ID": (5, 1),
    "Baud_Rate": (6, 1),
    "Return_Delay_Time": (7, 1),
    "Response_Status_Level": (8, 1),
    "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2),
    "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1),
    "Min_Voltage_Limit": (15, 1),
    "Max_Torque_Limit": (16, 2),
    "Phase": (18, 1),
    "Unloading_Condition": (19, 1),
    "LED_Alarm_Condition": (20, 1),
    "P_Coefficient": (21, 1),
    "D_Coefficient": (22, 1),
    "I_Coefficient": (23, 1),
    "Minimum_Startup_Force": (24, 2),
    "CW_Dead_Zone": (26, 1),
    "CCW_Dead_Zone": (27, 1),
    "Protection_Current": (28, 2),
    "Angular_Resolution": (30, 1),
    "Homing_Offset": (31, 2),
    "Operating_Mode": (33, 1),
    "Protective_Torque": (34, 1),
    "Protection_Time": (35, 1),
    "Overload_Torque": (36, 1),
    # SRAM
    "Torque_Enable": (40, 1),
    "Acceleration": (41, 1),
    "Goal_Position": (42, 2),
    "Goal_Time": (44, 2),
    "Goal_Velocity": (46, 2),
    "Torque_Limit": (48, 2),
    "Lock": (55, 1),
    "Present_Position": (56, 2),
    "Present_Velocity": (58, 2),
    "Present_Load": (60, 2),
    "Present_Voltage": (62, 1),
    "Present_Temperature": (63, 1),
    "Status": (65, 1),
    "Moving": (66, 1),
    "Present_Current": (69, 2),
    # Factory
    "Maximum_Velocity_Limit": (84, 1),
    "Maximum_Acceleration": (85, 1),
}

SCS_CONTROL_TABLE: ControlTable = {
    "Firmware_Major_Version": FIRMWARE_MAJOR_REGISTER,
    "Firmware_Minor_Version": FIRMWARE_MINOR_REGISTER,
    "Model_Number": MODEL_NUMBER_REGISTER,
    "ID": (5, 1),
    "Baud_Rate": (6, 1),
    "Return_Delay_Time": (7, 1),
    "Response_Status_Level": (8, 1),
    "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2),
    "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1),
    "Min_Voltage_Limit": (15, 1),
    "Max_Torque_Limit": (16, 2),
    "Phase": (18, 1),
    "P_Coefficient": (21, 1),
    "D_Coefficient": (22, 1),
    "I_Coefficient": (23, 1),
    "Torque_Enable": (40, 1),
    "Acceleration": (41, 1),
    "Goal_Position": (42, 2),
    "Goal_Velocity": (46, 2),
    "Lock": (48, 1),
    "Present_Position": (56, 2),
    "Present_Velocity": (58, 2),
    "Present_Load": (60, 2),
    "Present_Voltage": (62, 1),
    "Present_Temperature": (63, 1),
    "Status": (65, 1),
    "Moving": (66, 1),
}

# Registers that are EEPROM (persisted; the sim keeps them across "power cycles" of its control table).
EEPROM_END_ADDRESS = 40

STS_SMS_SIGN_BITS: dict[str, int] = {
    "Homing_Offset": 11,
    "Goal_Position": 15,
    "Present_Position": 15,
    "Goal_Velocity": 15,
    "Present_Velocity": 15,
    "Present_Load": 10,
}

# The status packet's error byte (and the Status register) bits.
STATUS_ERROR_BITS: dict[int, str] = {
    0x01: "input_voltage",
    0x02: "angle_sensor",
    0x04: "overheat",
    0x08: "over_current",
    0x20: "overload",
}

MODEL_NUMBERS: dict[str, int] = {"sts3215": 777, "sts3250": 2825, "sm8512bl": 11272, "scs0009": 1284}
MODEL_RESOLUTION: dict[str, int] = {"sts3215": 4096, "sts3250": 4096, "sm8512bl": 4096, "scs0009": 1024}
MODEL_PROTOCOL: dict[str, int] = {"sts3215": 0, "sts3250": 0, "sm8512bl": 0, "scs0009": 1}
MODEL_CONTROL_TABLE: dict[str, ControlTable] = {
    "sts3215": STS_SMS_CONTROL_TABLE,
    "sts3250": STS_SMS_CONTROL_TABLE,
    "sm8512bl": STS_SMS_CONTROL_TABLE,
    "scs0009": SCS_CONTROL_TABLE,
}
MODEL_SIGN_BITS: dict[str, dict[str, int]] = {
    "sts3215": STS_SMS_SIGN_BITS,
    "sts3250": STS_SMS_SIGN_BITS,
    "sm8512bl": STS_SMS_SIGN_BITS,
    "scs0009": {},
}

BAUD_RATE_CODES: dict[int, int] = {
    1_000_000: 0, 500_000: 1, 250_000: 2, 128_000: 3, 115_200: 4, 57_600: 5, 38_400: 6, 19_200: 7,
}

# OperatingMode values
POSITION_MODE, VELOCITY_MODE, PWM_MODE, STEP_MODE = 0, 1, 2, 3
