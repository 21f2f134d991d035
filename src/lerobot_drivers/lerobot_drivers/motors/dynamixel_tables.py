"""Dynamixel X-series control table (protocol 2.0), from the ROBOTIS e-manual as used by LeRobot.

Units of the live registers: position in ticks (4096 per turn), Present_Velocity in 0.229 rev/min,
Present_Current in mA on XL330/XC330 (on XL430/XC430 the same address holds Present_Load in 0.1 %),
Present_Input_Voltage in 0.1 V, Present_Temperature in deg C.
"""
from __future__ import annotations

ControlTable = dict[str, tuple[int, int]]

X_SERIES_CONTROL_TABLE: ControlTable = {
    "Model_Number": (0, 2),
    "Model_Information": (2, 4),
    "Firmware_Version": (6, 1),
    "ID": (7, 1),
    "Baud_Rate": (8, 1),
    "Return_Delay_Time": (9, 1),
    "Drive_Mode": (10, 1),
    "Operating_Mode": (11, 1),
    "Secondary_ID": (12, 1),
    "Protocol_Type": (13, 1),
    "Homing_Offset": (20, 4),
    "Moving_Threshold": (24, 4),
    "Temperature_Limit": (31, 1),
    "Max_Voltage_Limit": (32, 2),
    "Min_Voltage_Limit": (34, 2),
    "PWM_Limit": (36, 2),
    "Current_Limit": (38, 2),
    "Acceleration_Limit": (40, 4),
    "Velocity_Limit": (44, 4),
    "Max_Position_Limit": (48, 4),
    "Min_Position_Limit": (52, 4),
    "Shutdown": (63, 1),
    "Torque_Enable": (64, 1),
    "LED": (65, 1),
    "Status_Return_Level": (68, 1),
    "Registered_Instruction": (69, 1),
    "Hardware_Error_Status": (70, 1),
    "Velocity_I_Gain": (76, 2),
    "Velocity_P_Gain": (78, 2),
    "Position_D_Gain": (80, 2),
    "Position_I_Gain": (82, 2),
    "Position_P_Gain": (84, 2),
    "Feedforward_2nd_Gain": (88, 2),
    "Feedforward_1st_Gain": (90, 2),
    "Bus_Watchdog": (98, 1),
    "Goal_PWM": (100, 2),
    "Goal_Current": (102, 2),
    "Goal_Velocity": (104, 4),
    "Profile_Acceleration": (108, 4),
    "Profile_Velocity": (112, 4),
    "Goal_Position": (116, 4),
    "Realtime_Tick": (120, 2),
    "Moving": (122, 1),
    "Moving_Status": (123, 1),
    "Present_PWM": (124, 2),
    "Present_Current": (126, 2),
    "Present_Velocity": (128, 4),
    "Present_Position": (132, 4),
    "Velocity_Trajectory": (136, 4),
    "Position_Trajectory": (140, 4),
    "Present_Input_Voltage": (144, 2),
    "Present_Temperature": (146, 1),
}

# Addresses below this are EEPROM: writable only while Torque_Enable is 0 (the firmware answers Access error).
EEPROM_END_ADDRESS = 64

# Registers stored as two's complement over their width.
SIGNED_REGISTERS: frozenset[str] = frozenset({
    "Homing_Offset", "Goal_PWM", "Goal_Current", "Goal_Velocity", "Present_PWM", "Present_Current",
    "Present_Velocity", "Present_Position", "Goal_Position", "Velocity_Trajectory", "Position_Trajectory",
})

# Status packet error byte: bit 7 = hardware alert (details in Hardware_Error_Status); low 7 bits = error number.
ALERT_BIT = 0x80
STATUS_ERROR_NUMBERS: dict[int, str] = {
    1: "result_fail", 2: "instruction_error", 3: "crc_error", 4: "data_range_error",
    5: "data_length_error", 6: "data_limit_error", 7: "access_error",
}
HARDWARE_ERROR_BITS: dict[int, str] = {
    0x01: "input_voltage", 0x04: "overheat", 0x08: "motor_encoder", 0x10: "electrical_shock", 0x20: "overload",
}

MODEL_NUMBERS: dict[str, int] = {
    "xl330-m077": 1190, "xl330-m288": 1200, "xl430-w250": 1060, "xm430-w350": 1020, "xm540-w270": 1120,
    "xc430-w150": 1070, "xh540-w150": 1110, "xc330-t288": 1220, "xc330-t181": 1210,
}
MODEL_RESOLUTION: dict[str, int] = {model: 4096 for model in MODEL_NUMBERS}
MODEL_CONTROL_TABLE: dict[str, ControlTable] = {model: X_SERIES_CONTROL_TABLE for model in MODEL_NUMBERS}
# What the register at 126 means per model (for the driver's effort output).
MODEL_EFFORT_UNIT: dict[str, str] = {
    model: ("load_0.1_percent" if model in ("xl430-w250", "xc430-w150") else "current_mA") for model in MODEL_NUMBERS
}

BAUD_RATE_CODES: dict[int, int] = {
    9_600: 0, 57_600: 1, 115_200: 2, 1_000_000: 3, 2_000_000: 4, 3_000_000: 5, 4_000_000: 6,
}

VELOCITY_UNIT_RPM = 0.229

# Operating_Mode values
CURRENT_MODE, VELOCITY_MODE, POSITION_MODE, EXTENDED_POSITION_MODE, CURRENT_POSITION_MODE, PWM_MODE = 0, 1, 3, 4, 5, 16
