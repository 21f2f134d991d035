"""Wire-level servo bus simulator on a pseudo-terminal: the real scservo_sdk / dynamixel_sdk talk to it unmodified.

`ServoBusSimulator(arm="so101_follower")` creates a pty (os.openpty + tty.setraw), serves Feetech protocol 0
(SO arms) or Dynamixel Protocol 2.0 (Koch arms) on it from one background thread, and exposes `.port`
(the slave path to open with the SDK). Each simulated motor has its model's control table (EEPROM + RAM,
model number, firmware version), and:
- homing offset semantics: Feetech Present = Actual - Homing_Offset (wrapped to one turn while Phase bit 4
  is clear); Dynamixel Present = dir * Actual + Homing_Offset with dir = -1 when Drive_Mode bit 0 is set;
- EEPROM position limits clamp goals (Feetech position mode; Dynamixel position mode 3);
- first-order position dynamics (time constant 30 ms) with velocity and acceleration limits (Feetech
  Acceleration register; Dynamixel Profile_Velocity / Profile_Acceleration), integrated lazily on the wall
  clock whenever the bus or the control channel looks at the motor (no ticking thread, no busy loop);
- enabling torque holds the present position (Goal_Position := Present_Position);
- with torque off, a "hand" can move the motor (external target, limited speed); a Koch gripper in
  current-based position mode can be pushed by the hand even with torque on (the leader's trigger);
- present load/current, temperature and voltage;
- injectable faults per motor: no_reply, missing, corrupt_reply (bad checksum/CRC), stale_reply (an extra
  status packet with 5 junk data bytes precedes every reply, like a late answer to an old request), hardware_error
  (overload), low_voltage, overheat; bus-wide silence (stop answering entirely) and resume.
  Overheat/overload switch torque off, as the firmware's unloading/shutdown conditions do.

Control: the Python API below, or a Unix socket of JSON lines (`control_socket=PATH`, see `send_command`).
Each request line is a JSON object with "cmd"; each gets one reply line {"ok": true, ...} or
{"ok": false, "error": "..."}. Motors are named by motor name or id.
    {"cmd": "ping"}                                   -> {"ok", "port", "motors": [names], "protocol"}
    {"cmd": "move", "positions": {"shoulder_pan": 10.0, "gripper": 80.0},
     "frame": "normalized"|"present"|"actual", "speed": ticks_per_s}   hand-move (default frame "present")
        normalized = LeRobot units (degrees / 0..100) over the motor's Min/Max_Position_Limit registers
        (i.e. the calibration written to the motors); present = raw Present_Position; actual = raw encoder.
    {"cmd": "release", "motors": [names] (optional, default all)}       the hand lets go
    {"cmd": "fault", "motor": "elbow_flex", "fault": one of FAULTS, "active": true|false}
    {"cmd": "clear_faults", "motor": name (optional)}
    {"cmd": "silence", "active": true|false}          stop answering the bus entirely / resume
    {"cmd": "state"}                                  -> {"ok", "motors": {name: {id, model, actual, present,
        goal, velocity, torque_enabled, homing_offset, hand_target, temperature, faults, min_limit,
        max_limit, operating_mode, normalized}}}
    {"cmd": "register", "motor": name, "register": "Goal_Position"}     -> {"ok", "value": int}
    {"cmd": "set_register", "motor": name, "register": name, "value": int}   poke (test setup)

CLI: `lerobot-servo-sim --arm so101_follower [--control-socket PATH]` prints the port path alone on the first
line, then `control_socket=PATH` and a summary, and serves until SIGINT/SIGTERM.
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import math
import os
import selectors
import signal
import socket
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lerobot_drivers.arms import ArmDefinition, get_arm_definition
from lerobot_drivers.motors import dynamixel_tables, feetech_tables
from lerobot_drivers.motors.encoding import (
    decode_sign_magnitude, decode_twos_complement, encode_sign_magnitude, encode_twos_complement,
)
from lerobot_drivers.motors.motor import MotorCalibration, MotorNormMode
from lerobot_drivers.motors.normalization import normalize_position, unnormalize_position
from lerobot_drivers.sim import servo_protocols as wire

logger = logging.getLogger(__name__)

FAULTS = ("no_reply", "missing", "corrupt_reply", "stale_reply", "hardware_error", "low_voltage", "overheat")
STALE_PAYLOAD = b"\x11\x22\x33\x44\x55"  # 5 data bytes: a length no driver request uses
SILENT_FAULTS = frozenset({"no_reply", "missing"})
FRAMES = ("actual", "present", "normalized")

TIME_CONSTANT_S = 0.03
SUBSTEP_S = 0.002
MAX_INTEGRATED_S = 2.0  # after a long idle, only the last 2 s are integrated (motion has settled by then)
HAND_SPEED_TICKS_S = 1500.0
HAND_ACCEL_TICKS_S2 = 20000.0
AMBIENT_TEMPERATURE_C = 28.0

# Model speed limits (ticks/s) and unloaded defaults.
MODEL_MAX_SPEED = {"sts3215": 3000.0, "sts3250": 3000.0, "sm8512bl": 2500.0, "scs0009": 800.0,
                   "xl330-m077": 12000.0, "xl330-m288": 7000.0, "xl430-w250": 3900.0, "xm430-w350": 3100.0,
                   "xm540-w270": 2100.0, "xc430-w150": 4500.0, "xh540-w150": 4400.0, "xc330-t288": 5100.0,
                   "xc330-t181": 8000.0}
FEETECH_FIRMWARE = (3, 10)
DYNAMIXEL_FIRMWARE = 52


@dataclass
class SimMotorSpec:
    name: str
    id: int
    model: str
    norm_mode: MotorNormMode = MotorNormMode.DEGREES
    initial_actual: float = 2048.0


class SimulatedMotor:
    """One servo: control table bytes + continuous mechanical state (actual position, velocity)."""

    def __init__(self, spec: SimMotorSpec, protocol: str, supply_voltage: float, now: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.model = spec.model
        self.protocol = protocol
        if protocol == "feetech":
            self.table = feetech_tables.MODEL_CONTROL_TABLE[spec.model]
            self.resolution = feetech_tables.MODEL_RESOLUTION[spec.model]
            self.byteorder = "little" if feetech_tables.MODEL_PROTOCOL[spec.model] == 0 else "big"
        else:
            self.table = dynamixel_tables.MODEL_CONTROL_TABLE[spec.model]
            self.resolution = dynamixel_tables.MODEL_RESOLUTION[spec.model]
            self.byteorder = "little"
        self.mem = bytearray(256)
        self.actual = float(spec.initial_actual)
        self.velocity = 0.0
        self.hand_target: float | None = None
        self.hand_speed = HAND_SPEED_TICKS_S
        self.faults: set[str] = set()
        self.supply_voltage = supply_voltage
        self.last_time = now
        self._factory_defaults()
        self.refresh_live_registers()

    # ------------------------------------------------------------------ registers
    def _factory_defaults(self) -> None:
        s = self.set_reg
        if self.protocol == "feetech":
            s("Firmware_Major_Version", FEETECH_FIRMWARE[0])
            s("Firmware_Minor_Version", FEETECH_FIRMWARE[1])
            s("Model_Number", feetech_tables.MODEL_NUMBERS[self.model])
            s("ID", self.spec.id)
            s("Baud_Rate", 0)
            s("Return_Delay_Time", 250)
            s("Min_Position_Limit", 0)
            s("Max_Position_Limit", self.resolution - 1)
            s("Max_Temperature_Limit", 70)
            s("Max_Voltage_Limit", 140)
            s("Min_Voltage_Limit", 40)
            s("Max_Torque_Limit", 1000)
            s("P_Coefficient", 32)
            s("D_Coefficient", 32)
            if "Phase" in self.table:
                # Bit 4 set (multi-turn style signed positions) so LeRobot's configure step that clears it is
                # observable.
                s("Phase", 0x1C)
            for name, value in (("Unloading_Condition", 0x2C), ("Protection_Current", 310),
                                ("Overload_Torque", 80), ("Maximum_Acceleration", 100), ("Acceleration", 0),
                                ("Lock", 1), ("Torque_Limit", 1000)):
                if name in self.table:
                    s(name, value)
        else:
            s("Model_Number", dynamixel_tables.MODEL_NUMBERS[self.model])
            s("Firmware_Version", DYNAMIXEL_FIRMWARE)
            s("ID", self.spec.id)
            s("Baud_Rate", 1)
            s("Return_Delay_Time", 250)
            s("Operating_Mode", dynamixel_tables.POSITION_MODE)
            s("Protocol_Type", 2)
            s("Temperature_Limit", 70)
            s("Max_Voltage_Limit", 140 if self.model.startswith("xl430") else 70)
            s("Min_Voltage_Limit", 60 if self.model.startswith("xl430") else 35)
            s("Current_Limit", 1750)
            s("Velocity_Limit", 445)
            s("Max_Position_Limit", self.resolution - 1)
            s("Min_Position_Limit", 0)
            s("Shutdown", 0x34)
            s("Status_Return_Level", 2)
            s("Position_P_Gain", 400 if self.model.startswith("xl330") else 640)
        goal = self.present_position()
        s("Goal_Position", goal)

    def reg_address(self, register: str) -> tuple[int, int]:
        try:
            return self.table[register]
        except KeyError:
            raise KeyError(f"motor '{self.name}' ({self.model}) has no register '{register}'") from None

    def _signed_kind(self, register: str) -> int | None:
        """Feetech: sign bit; Dynamixel: -1 for two's complement; None: unsigned."""
        if self.protocol == "feetech":
            return feetech_tables.MODEL_SIGN_BITS[self.model].get(register)
        return -1 if register in dynamixel_tables.SIGNED_REGISTERS else None

    def get_reg(self, register: str) -> int:
        address, length = self.reg_address(register)
        raw = int.from_bytes(self.mem[address:address + length], self.byteorder)
        kind = self._signed_kind(register)
        if kind is None:
            return raw
        return decode_twos_complement(raw, length) if kind == -1 else decode_sign_magnitude(raw, kind)

    def set_reg(self, register: str, value: int) -> None:
        address, length = self.reg_address(register)
        value = int(value)
        kind = self._signed_kind(register)
        if kind == -1:
            value = encode_twos_complement(value, length)
        elif kind is not None:
            limit = (1 << kind) - 1
            value = encode_sign_magnitude(max(-limit, min(limit, value)), kind)
        value &= (1 << (8 * length)) - 1
        self.mem[address:address + length] = value.to_bytes(length, self.byteorder)

    # ------------------------------------------------------------------ position frames
    def _wraps(self) -> bool:
        return self.protocol == "feetech" and not (self.table.get("Phase") and self.get_reg("Phase") & 0x10)

    def _offset(self) -> int:
        return self.get_reg("Homing_Offset") if "Homing_Offset" in self.table else 0

    def _direction(self) -> int:
        return -1 if (self.protocol == "dynamixel" and self.get_reg("Drive_Mode") & 1) else 1

    def present_continuous(self, actual: float | None = None) -> float:
        actual = self.actual if actual is None else actual
        if self.protocol == "feetech":
            return actual - self._offset()
        return self._direction() * actual + self._offset()

    def present_position(self) -> int:
        value = int(round(self.present_continuous()))
        if self._wraps():
            value %= self.resolution
        return value

    def present_to_actual(self, present: float) -> float:
        """Actual position that reads as `present`, staying within the current turn when positions wrap."""
        if self.protocol == "feetech":
            if self._wraps():
                turn = math.floor(self.present_continuous() / self.resolution)
                present = present + turn * self.resolution
            return present + self._offset()
        return self._direction() * (present - self._offset())

    # ------------------------------------------------------------------ faults
    def fault_bits(self) -> int:
        """Feetech status bits / Dynamixel Hardware_Error_Status bits for the active faults."""
        bits = 0
        if "low_voltage" in self.faults:
            bits |= 0x01
        if "overheat" in self.faults:
            bits |= 0x04
        if "hardware_error" in self.faults:
            bits |= 0x20
        return bits

    def shutdown_active(self) -> bool:
        mask_register = "Unloading_Condition" if self.protocol == "feetech" else "Shutdown"
        mask = self.get_reg(mask_register) if mask_register in self.table else 0x24
        return bool(self.fault_bits() & mask & ~0x01)

    def status_error(self) -> int:
        bits = self.fault_bits()
        if self.protocol == "feetech":
            return bits
        return dynamixel_tables.ALERT_BIT if bits else 0

    # ------------------------------------------------------------------ dynamics
    def _torque_on(self) -> bool:
        return bool(self.get_reg("Torque_Enable"))

    def _target_and_limits(self) -> tuple[float | None, float, float]:
        """(target actual position or None to stop, max speed ticks/s, max accel ticks/s^2)."""
        vmax = MODEL_MAX_SPEED.get(self.model, 3000.0)
        if self.protocol == "feetech":
            accel_reg = self.get_reg("Acceleration") if "Acceleration" in self.table else 0
            amax = accel_reg * 100.0 if accel_reg else 50000.0
        else:
            profile_v, profile_a = self.get_reg("Profile_Velocity"), self.get_reg("Profile_Acceleration")
            if profile_v:
                vmax = min(vmax, profile_v * dynamixel_tables.VELOCITY_UNIT_RPM * self.resolution / 60.0)
            amax = profile_a * 214.577 * self.resolution / 3600.0 if profile_a else 60000.0
        hand = (self.hand_target, self.hand_speed, HAND_ACCEL_TICKS_S2)
        if not self._torque_on():
            return hand if self.hand_target is not None else (None, vmax, amax)
        mode = self.get_reg("Operating_Mode")
        if (self.protocol == "dynamixel" and mode == dynamixel_tables.CURRENT_POSITION_MODE
                and self.hand_target is not None):
            return hand  # a current-limited motor gives way to the hand (Koch leader trigger)
        goal = self.get_reg("Goal_Position")
        low, high = self.get_reg("Min_Position_Limit"), self.get_reg("Max_Position_Limit")
        clamps = (self.protocol == "feetech" and mode == feetech_tables.POSITION_MODE) or (
            self.protocol == "dynamixel" and mode == dynamixel_tables.POSITION_MODE)
        if clamps and high > low:
            goal = max(low, min(high, goal))
        return self.present_to_actual(goal), vmax, amax

    def advance(self, now: float) -> None:
        elapsed = now - self.last_time
        if elapsed <= 0:
            return
        self.last_time = now
        if self.shutdown_active() and self._torque_on():
            self.set_reg("Torque_Enable", 0)
        target, vmax, amax = self._target_and_limits()
        if target is None:
            self.velocity = 0.0
            return
        elapsed = min(elapsed, MAX_INTEGRATED_S)
        steps = max(1, math.ceil(elapsed / SUBSTEP_S))
        dt = elapsed / steps
        x, v = self.actual, self.velocity
        for _ in range(steps):
            error = target - x
            if abs(error) < 0.05 and abs(v) < 1.0:
                x, v = target, 0.0
                break
            # First-order approach, capped by the speed limit and by the speed from which the acceleration
            # limit can still stop at the target (no overshoot).
            speed = min(abs(error) / TIME_CONSTANT_S, vmax, math.sqrt(2.0 * amax * abs(error)))
            desired = math.copysign(speed, error)
            dv = max(-amax * dt, min(amax * dt, desired - v))
            v += dv
            if (target - (x + v * dt)) * error <= 0:  # this substep reaches the target: stop there
                x, v = target, 0.0
                break
            x += v * dt
        self.actual, self.velocity = x, v

    def refresh_live_registers(self) -> None:
        """Write Present_* registers from the mechanical state (called before every read)."""
        s = self.set_reg
        torque = self._torque_on()
        target, _, _ = self._target_and_limits() if torque else (None, 0, 0)
        error = (target - self.actual) if target is not None else 0.0
        direction = self._direction()
        velocity_present = direction * self.velocity
        effort = 0.0 if not torque else max(-1.0, min(1.0, (error * 6.0 + velocity_present * 0.02) / 1000.0))
        temperature = AMBIENT_TEMPERATURE_C + 8.0 * abs(effort)
        if "overheat" in self.faults:
            temperature = 80.0
        voltage = self.supply_voltage
        s("Present_Position", self.present_position())
        s("Present_Temperature", int(temperature))
        if self.protocol == "feetech":
            min_voltage = self.get_reg("Min_Voltage_Limit") / 10.0
            if "low_voltage" in self.faults:
                voltage = max(0.0, min_voltage - 0.5)
            s("Present_Velocity", int(round(velocity_present)))
            s("Present_Load", int(round(effort * 1000)))
            s("Present_Voltage", int(round(voltage * 10)))
            s("Status", self.fault_bits())
            s("Moving", 1 if abs(self.velocity) > 5 else 0)
            if "Present_Current" in self.table:
                s("Present_Current", int(abs(effort) * 150))
        else:
            min_voltage = self.get_reg("Min_Voltage_Limit") / 10.0
            if "low_voltage" in self.faults:
                voltage = max(0.0, min_voltage - 0.5)
            rpm_units = velocity_present * 60.0 / self.resolution / dynamixel_tables.VELOCITY_UNIT_RPM
            s("Present_Velocity", int(round(rpm_units)))
            s("Present_Current", int(round(effort * self.get_reg("Current_Limit"))))
            s("Present_Input_Voltage", int(round(voltage * 10)))
            s("Hardware_Error_Status", self.fault_bits())
            s("Moving", 1 if abs(self.velocity) > 5 else 0)

    # ------------------------------------------------------------------ instruction handling
    def read_bytes(self, address: int, length: int) -> tuple[int, bytes]:
        """(error byte, data). Out-of-table reads return zeros (Dynamixel: data-range error)."""
        self.refresh_live_registers()
        if address + length > len(self.mem):
            return (4 if self.protocol == "dynamixel" else 0), bytes(length)
        return self.status_error(), bytes(self.mem[address:address + length])

    def write_bytes(self, address: int, data: bytes) -> int:
        """Apply a write; returns the status error byte."""
        if address + len(data) > len(self.mem):
            return 4 if self.protocol == "dynamixel" else 0
        if self.protocol == "dynamixel":
            eeprom = address < dynamixel_tables.EEPROM_END_ADDRESS
            read_only = address < 7 or address >= 120 or address == 70
            if read_only or (eeprom and self._torque_on()):
                return dynamixel_tables.ALERT_BIT * bool(self.fault_bits()) | 7  # access error
        torque_addr = self.reg_address("Torque_Enable")[0]
        torque_before = self._torque_on()
        self.mem[address:address + len(data)] = data
        if address <= torque_addr < address + len(data):
            if self._torque_on() and self.shutdown_active():
                self.set_reg("Torque_Enable", 0)  # firmware refuses torque while an unloading fault is active
            elif self._torque_on() and not torque_before:
                # Enabling torque holds the present position instead of jumping to a stale goal.
                self.set_reg("Goal_Position", self.present_position())
                self.velocity = 0.0
        return self.status_error()

    def state(self) -> dict:
        self.refresh_live_registers()
        return {
            "id": self.get_reg("ID"), "model": self.model, "actual": self.actual,
            "present": self.present_position(), "goal": self.get_reg("Goal_Position"),
            "velocity": self.velocity, "torque_enabled": self._torque_on(),
            "homing_offset": self._offset(), "hand_target": self.hand_target,
            "temperature": self.get_reg("Present_Temperature"),
            "faults": sorted(self.faults), "min_limit": self.get_reg("Min_Position_Limit"),
            "max_limit": self.get_reg("Max_Position_Limit"), "operating_mode": self.get_reg("Operating_Mode"),
        }


def arm_motor_specs(definition: ArmDefinition, initial_positions: Mapping[str, float] | None = None
                    ) -> list[SimMotorSpec]:
    """Motors of an arm, at plausible resting positions (actual ticks) unless given."""
    default = {"shoulder_pan": 2048, "shoulder_lift": 1300, "elbow_flex": 2900, "wrist_flex": 2300,
               "wrist_roll": 2048, "gripper": 2100}
    positions = dict(default)
    positions.update(initial_positions or {})
    return [SimMotorSpec(name, m.id, m.model, m.norm_mode, float(positions.get(name, 2048)))
            for name, m in definition.motors.items()]


class ServoBusSimulator:
    """A simulated servo bus on a pty. Use as a context manager or start()/stop(); `.port` is the device path.

    Either `arm` (an arm name or ArmDefinition) or explicit `motors` + `protocol` ("feetech"/"dynamixel").
    """

    def __init__(self, arm: str | ArmDefinition | None = None, *, motors: Iterable[SimMotorSpec] | None = None,
                 protocol: str | None = None, initial_positions: Mapping[str, float] | None = None,
                 control_socket: str | None = None, supply_voltage: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.definition = (get_arm_definition(arm) if isinstance(arm, str) else arm) if arm is not None else None
        if self.definition is not None:
            specs = arm_motor_specs(self.definition, initial_positions)
            protocol = self.definition.bus_type
            supply_voltage = supply_voltage or self.definition.nominal_voltage
        else:
            if motors is None or protocol is None:
                raise ValueError("ServoBusSimulator needs `arm` or both `motors` and `protocol`")
            specs = list(motors)
        if protocol not in ("feetech", "dynamixel"):
            raise ValueError(f"protocol must be 'feetech' or 'dynamixel', got {protocol!r}")
        self.protocol = protocol
        self._clock = clock
        now = clock()
        voltage = supply_voltage or 12.0
        self.motors: dict[str, SimulatedMotor] = {
            spec.name: SimulatedMotor(spec, protocol, voltage, now) for spec in specs}
        self._by_id = {m.spec.id: m for m in self.motors.values()}
        self._parser = wire.FeetechParser() if protocol == "feetech" else wire.DynamixelParser()
        self._lock = threading.RLock()
        self._silent = False
        self.packets_received = 0
        self.control_socket_path = control_socket
        self._master_fd = self._slave_fd = -1
        self._port = ""
        self._thread: threading.Thread | None = None
        self._stop_r = self._stop_w = -1
        self._server: socket.socket | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> str:
        """Path of the pty slave (e.g. /dev/pts/3) to open with the SDK; exists between start() and stop()."""
        if not self._port:
            raise RuntimeError("ServoBusSimulator not started: call start() or use it as a context manager")
        return self._port

    def start(self) -> "ServoBusSimulator":
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master_fd, self._slave_fd = master, slave
        self._port = os.ttyname(slave)
        self._stop_r, self._stop_w = os.pipe()
        if self.control_socket_path is not None:
            if os.path.exists(self.control_socket_path):
                os.unlink(self.control_socket_path)
            self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._server.bind(self.control_socket_path)
            self._server.listen(8)
            self._server.setblocking(False)
        self._thread = threading.Thread(target=self._serve, name=f"servo-sim-{self.protocol}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        self._thread = None
        for fd in (self._master_fd, self._slave_fd, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._server is not None:
            self._server.close()
            try:
                os.unlink(self.control_socket_path)
            except OSError:
                pass
            self._server = None

    def __enter__(self) -> "ServoBusSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving loop
    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._master_fd, selectors.EVENT_READ, "serial")
        selector.register(self._stop_r, selectors.EVENT_READ, "stop")
        if self._server is not None:
            selector.register(self._server, selectors.EVENT_READ, "accept")
        clients: dict[socket.socket, bytearray] = {}
        try:
            while True:
                for key, _ in selector.select():
                    if key.data == "stop":
                        return
                    if key.data == "serial":
                        self._on_serial()
                    elif key.data == "accept":
                        conn, _ = self._server.accept()
                        conn.setblocking(True)
                        clients[conn] = bytearray()
                        selector.register(conn, selectors.EVENT_READ, "client")
                    else:
                        self._on_client(key.fileobj, clients, selector)
        except Exception:  # keep the failure visible in logs; the bus then stops answering
            logger.exception("servo bus simulator loop crashed")
        finally:
            for conn in clients:
                conn.close()
            selector.close()

    def _on_serial(self) -> None:
        try:
            data = os.read(self._master_fd, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO):
                return
            raise
        with self._lock:
            if self._silent:
                return
            replies = b"".join(self._handle_safely(instr) for instr in self._parser.feed(data))
        if replies:
            self._send(replies)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master_fd, view)
            except BlockingIOError:
                return  # nobody is reading; a real bus would lose these bytes too
            view = view[written:]

    def _on_client(self, conn: socket.socket, clients: dict, selector: selectors.BaseSelector) -> None:
        chunk = conn.recv(65536)
        if not chunk:
            selector.unregister(conn)
            clients.pop(conn, None)
            conn.close()
            return
        buf = clients[conn]
        buf.extend(chunk)
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            if line.strip():
                reply = self.handle_command_line(line.decode("utf-8", "replace"))
                conn.sendall((json.dumps(reply) + "\n").encode())

    # ------------------------------------------------------------------ protocol dispatch
    def _advance_all(self) -> None:
        now = self._clock()
        for motor in self.motors.values():
            motor.advance(now)

    def _status(self, motor: SimulatedMotor, error: int, params: bytes = b"") -> bytes:
        corrupt = "corrupt_reply" in motor.faults
        build = wire.feetech_status if self.protocol == "feetech" else wire.dynamixel_status
        packet = build(motor.spec.id, error, params, corrupt)
        if "stale_reply" in motor.faults:
            # A late answer to some earlier request arrives just before the real one.
            packet = build(motor.spec.id, 0, STALE_PAYLOAD) + packet
        return packet

    def _answering(self, motor_id: int) -> SimulatedMotor | None:
        motor = self._by_id.get(motor_id)
        if motor is None or motor.faults & SILENT_FAULTS:
            return None
        return motor

    def _handle_safely(self, instr: wire.Instruction) -> bytes:
        """A malformed instruction (e.g. truncated parameters) gets no reply, like on a real bus."""
        try:
            return self._handle(instr)
        except (IndexError, ValueError, KeyError) as exc:
            logger.warning("servo sim: ignoring malformed instruction %s: %s", instr, exc)
            return b""

    def _handle(self, instr: wire.Instruction) -> bytes:
        self.packets_received += 1
        self._advance_all()
        feetech = self.protocol == "feetech"
        addr_len = 1 if feetech else 2
        p = instr.params
        if instr.instruction == wire.INST_SYNC_WRITE:
            address, length = self._addr(p, 0, addr_len), self._addr(p, addr_len, addr_len)
            body = p[2 * addr_len:]
            for i in range(0, len(body) - length + 1, length + 1):
                motor = self._answering(body[i])
                if motor is not None:
                    motor.write_bytes(address, body[i + 1:i + 1 + length])
            return b""
        if instr.instruction == wire.INST_SYNC_READ:
            address, length = self._addr(p, 0, addr_len), self._addr(p, addr_len, addr_len)
            out = []
            for motor_id in p[2 * addr_len:]:
                motor = self._answering(motor_id)
                if motor is not None:
                    error, data = motor.read_bytes(address, length)
                    out.append(self._status(motor, error, data))
            return b"".join(out)
        if instr.motor_id == wire.BROADCAST_ID:
            if instr.instruction == wire.INST_PING:
                return b"".join(self._ping_reply(m) for m in sorted(self._by_id.values(), key=lambda m: m.spec.id)
                                if self._answering(m.spec.id) is not None)
            if instr.instruction == wire.INST_WRITE:
                address = self._addr(p, 0, addr_len)
                for motor in self._by_id.values():
                    if self._answering(motor.spec.id) is not None:
                        motor.write_bytes(address, p[addr_len:])
            return b""
        motor = self._answering(instr.motor_id)
        if motor is None:
            return b""
        if instr.instruction == wire.INST_PING:
            return self._ping_reply(motor)
        if instr.instruction == wire.INST_READ:
            address, length = self._addr(p, 0, addr_len), self._addr(p, addr_len, addr_len)
            error, data = motor.read_bytes(address, length)
            return self._status(motor, error, data)
        if instr.instruction == wire.INST_WRITE:
            address = self._addr(p, 0, addr_len)
            old_id = motor.spec.id
            error = motor.write_bytes(address, p[addr_len:])
            self._reindex(motor, old_id)
            return self._status(motor, error)
        # Unsupported instruction: Dynamixel answers "instruction error"; Feetech stays silent.
        return b"" if feetech else self._status(motor, 2)

    def _ping_reply(self, motor: SimulatedMotor) -> bytes:
        if self.protocol == "feetech":
            return self._status(motor, motor.status_error())
        params = bytes([motor.get_reg("Model_Number") & 0xFF, motor.get_reg("Model_Number") >> 8,
                        motor.get_reg("Firmware_Version")])
        return self._status(motor, motor.status_error(), params)

    def _addr(self, params: bytes, offset: int, width: int) -> int:
        return params[offset] if width == 1 else params[offset] | (params[offset + 1] << 8)

    def _reindex(self, motor: SimulatedMotor, old_id: int) -> None:
        new_id = motor.get_reg("ID")
        if new_id != old_id:
            self._by_id.pop(old_id, None)
            motor.spec.id = new_id
            self._by_id[new_id] = motor

    # ------------------------------------------------------------------ Python control API
    def _motor(self, key: str | int) -> SimulatedMotor:
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            motor = self._by_id.get(int(key))
        else:
            motor = self.motors.get(key)
        if motor is None:
            raise KeyError(f"no simulated motor {key!r}; motors: {list(self.motors)}")
        return motor

    @property
    def motor_names(self) -> list[str]:
        return list(self.motors)

    def _to_actual(self, motor: SimulatedMotor, value: float, frame: str) -> float:
        if frame == "actual":
            return float(value)
        if frame == "present":
            return motor.present_to_actual(float(value))
        if frame == "normalized":
            calibration = MotorCalibration(motor.spec.id, 0, 0, motor.get_reg("Min_Position_Limit"),
                                           motor.get_reg("Max_Position_Limit"))
            present = unnormalize_position(float(value), calibration, motor.spec.norm_mode, motor.resolution,
                                           False, motor.name)
            return motor.present_to_actual(present)
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")

    def move(self, positions: Mapping[str | int, float], frame: str = "present",
             speed: float | None = None) -> None:
        """Hand-move motors: each follows its target at `speed` ticks/s while torque is off (see module doc).

        frame: "actual" (raw encoder), "present" (what Present_Position reads) or "normalized" (LeRobot units,
        using the motor's Min/Max_Position_Limit registers as the calibrated range).
        """
        with self._lock:
            self._advance_all()
            for key, value in positions.items():
                motor = self._motor(key)
                motor.hand_target = self._to_actual(motor, value, frame)
                motor.hand_speed = float(speed) if speed else HAND_SPEED_TICKS_S

    def release(self, motors: Iterable[str | int] | None = None) -> None:
        """The hand lets go: motors stop where they are (torque off) or return to their goal (torque on)."""
        with self._lock:
            self._advance_all()
            for motor in (self.motors.values() if motors is None else [self._motor(k) for k in motors]):
                motor.hand_target = None

    def set_fault(self, motor: str | int, fault: str, active: bool = True) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        with self._lock:
            self._advance_all()
            target = self._motor(motor)
            if active:
                target.faults.add(fault)
            else:
                target.faults.discard(fault)

    def clear_faults(self, motor: str | int | None = None) -> None:
        with self._lock:
            for m in (self.motors.values() if motor is None else [self._motor(motor)]):
                m.faults.clear()

    def set_silent(self, silent: bool) -> None:
        """Stop answering anything at all (cable pulled) / resume."""
        with self._lock:
            self._silent = bool(silent)

    def state(self) -> dict[str, dict]:
        """True state of every motor (mechanical position in several frames, registers of interest, faults)."""
        with self._lock:
            self._advance_all()
            out = {name: m.state() for name, m in self.motors.items()}
            for name, m in self.motors.items():
                if m.get_reg("Max_Position_Limit") != m.get_reg("Min_Position_Limit"):
                    cal = MotorCalibration(m.spec.id, 0, 0, m.get_reg("Min_Position_Limit"),
                                           m.get_reg("Max_Position_Limit"))
                    out[name]["normalized"] = normalize_position(m.present_position(), cal, m.spec.norm_mode,
                                                                 m.resolution, False, name)
            return out

    def register(self, motor: str | int, register: str) -> int:
        """Current (sign-decoded) value of one control-table register."""
        with self._lock:
            self._advance_all()
            m = self._motor(motor)
            m.refresh_live_registers()
            return m.get_reg(register)

    def set_register(self, motor: str | int, register: str, value: int) -> None:
        """Poke a register directly (test setup), bypassing the bus and its access rules."""
        with self._lock:
            self._advance_all()
            self._motor(motor).set_reg(register, value)

    # ------------------------------------------------------------------ JSON control channel
    def handle_command_line(self, line: str) -> dict:
        """Execute one JSON command; always returns a JSON-able reply with "ok"."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or "cmd" not in request:
                raise ValueError("expected a JSON object with a 'cmd' field")
            return {"ok": True, **(self._dispatch(request) or {})}
        except Exception as exc:  # reply with the error instead of killing the channel
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def _dispatch(self, request: dict) -> dict | None:
        cmd = request["cmd"]
        if cmd == "ping":
            return {"port": self.port, "motors": self.motor_names, "protocol": self.protocol}
        if cmd == "move":
            self.move(request["positions"], request.get("frame", "present"), request.get("speed"))
            return None
        if cmd == "release":
            self.release(request.get("motors"))
            return None
        if cmd == "fault":
            self.set_fault(request["motor"], request["fault"], bool(request.get("active", True)))
            return None
        if cmd == "clear_faults":
            self.clear_faults(request.get("motor"))
            return None
        if cmd == "silence":
            self.set_silent(bool(request.get("active", True)))
            return None
        if cmd == "state":
            return {"motors": self.state()}
        if cmd == "register":
            return {"value": self.register(request["motor"], request["register"])}
        if cmd == "set_register":
            self.set_register(request["motor"], request["register"], int(request["value"]))
            return None
        raise ValueError(f"unknown cmd {cmd!r}; expected ping, move, release, fault, clear_faults, silence, "
                         "state, register, set_register")


def send_command(socket_path: str, request: dict, timeout_s: float = 5.0) -> dict:
    """Client helper for the control socket: send one JSON request, return the JSON reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(socket_path)
        sock.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lerobot-servo-sim",
                                     description="Simulated SO-101/Koch servo bus on a pseudo-terminal.")
    parser.add_argument("--arm", required=True,
                        choices=["so100_follower", "so101_follower", "so100_leader", "so101_leader",
                                 "koch_follower", "koch_leader"])
    parser.add_argument("--control-socket", default=None,
                        help="Unix socket path for JSON-line control (default: a fresh temp path)")
    parser.add_argument("--link", default=None,
                        help="also make this path a symlink to the port (a stable name for drivers, like udev's "
                             "/dev/serial/by-id links); removed on exit")
    args = parser.parse_args(argv)
    socket_path = args.control_socket
    tmp_dir = None
    if socket_path is None:
        tmp_dir = tempfile.mkdtemp(prefix="lerobot-servo-sim-")
        socket_path = os.path.join(tmp_dir, "control.sock")
    os.makedirs(os.path.dirname(os.path.abspath(socket_path)), exist_ok=True)
    sim = ServoBusSimulator(args.arm, control_socket=socket_path).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.link:
        os.makedirs(os.path.dirname(os.path.abspath(args.link)), exist_ok=True)
        if os.path.islink(args.link):
            os.unlink(args.link)
        os.symlink(sim.port, args.link)
    print(sim.port, flush=True)
    print(f"control_socket={socket_path}", flush=True)
    print(f"arm={args.arm} protocol={sim.protocol} motors=" +
          ",".join(f"{n}:{m.spec.id}:{m.model}" for n, m in sim.motors.items()), flush=True)
    try:
        while not stop.wait(3600):
            pass
    finally:
        sim.stop()
        if args.link and os.path.islink(args.link):
            os.unlink(args.link)
        if tmp_dir is not None:
            try:
                os.rmdir(tmp_dir)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
