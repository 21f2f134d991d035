"""SO-100/SO-101 and Koch arms (follower and leader) on top of the motor buses. ROS-free.

`ArmDefinition` is the static description (motors in dataset order, ids, models, norm modes, calibration
file location, configuration writes). `Arm` is a connected arm: normalized positions in, normalized goals out.

Units (LeRobot's, shared with datasets): body joints in DEGREES (0 at the calibrated mid-range), grippers in
RANGE_0_100 (0 = closed .. 100 = open), for SO and Koch alike. `ArmState` adds velocities in those units per
second, efforts (see `effort_units`), temperature in deg C, voltage in V and decoded error flags.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lerobot_drivers.motors import dynamixel_tables, feetech_tables
from lerobot_drivers.motors.bus import MotorBus
from lerobot_drivers.motors.dynamixel import DynamixelBus
from lerobot_drivers.motors.errors import MotorBusError, MotorConfigError
from lerobot_drivers.motors.feetech import FeetechBus
from lerobot_drivers.motors.motor import Motor, MotorCalibration, MotorNormMode
from lerobot_drivers.motors.normalization import normalized_range, ticks_per_unit

logger = logging.getLogger(__name__)

MOTOR_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")

# SO follower gains and gripper protection (LeRobot SOFollowerConfig defaults).
SO_POSITION_PID = (16, 0, 32)
SO_GRIPPER_MAX_TORQUE_LIMIT = 500
SO_GRIPPER_PROTECTION_CURRENT = 250
SO_GRIPPER_OVERLOAD_TORQUE = 25
KOCH_ELBOW_PID = (1500, 0, 600)
KOCH_LEADER_GRIPPER_OPEN_POS = 50.0


# Goals may exceed the calibrated range by this much (DEGREES joints): the range is where the operator moved the
# arm during calibration, and a leader calibrated a little wider must still reach the follower's recorded ends.
GOAL_RANGE_MARGIN_DEG = 2.0


@dataclass(frozen=True)
class JointLimits:
    """A joint's limits as its robot description (URDF `<limit>`) states them.

    lower/upper: radians, zero at the calibrated mid-range (nominal; the driver clamps goals to each arm's own
    calibrated range). The gripper is a revolute joint here: `lower` is closed (opening fraction 0 on the topics),
    `upper` open (fraction 1). velocity: rad/s, the arm driver's default velocity limit. effort: N*m, the servo's
    stall torque at its rated voltage.
    """

    lower: float
    upper: float
    velocity: float
    effort: float

    def __post_init__(self) -> None:
        if not (self.lower < self.upper and self.velocity > 0 and self.effort > 0):
            raise ValueError(f"JointLimits({self}): expected lower < upper, velocity > 0 and effort > 0")


# Velocity limits: about 85 % of the servo's rated no-load speed, rounded down to 0.5 rad/s, so the servo can still
# follow a goal moving at the limit. Datasheets: STS3215 (12 V, 1/345) 0.222 s/60 deg = 4.7 rad/s, 30 kg*cm =
# 2.94 N*m; XL430-W250 (12 V) 57 rpm = 6.0 rad/s, 1.5 N*m; XL330-M288 (5 V) 103 rpm = 10.8 rad/s, 0.52 N*m.
# Positions: SO-101 as the simulator's kinematics (`sim/kinematics.py`, from TheRobotStudio's SO-101 limits);
# Koch v1.1 from its public description's joint spans centred on mid-range, pan and roll full turn. The SO-100
# uses SO-101's (same servos; its slightly different ranges are not described here).
STS3215_SPEED, STS3215_STALL = 4.0, 2.94
SO_JOINT_LIMITS = {
    "shoulder_pan": JointLimits(-1.92, 1.92, STS3215_SPEED, STS3215_STALL),
    "shoulder_lift": JointLimits(-1.75, 1.75, STS3215_SPEED, STS3215_STALL),
    "elbow_flex": JointLimits(-1.6, 1.75, STS3215_SPEED, STS3215_STALL),
    "wrist_flex": JointLimits(-1.75, 1.75, STS3215_SPEED, STS3215_STALL),
    "wrist_roll": JointLimits(-2.8, 2.8, STS3215_SPEED, STS3215_STALL),
    "gripper": JointLimits(0.0, 1.75, STS3215_SPEED, STS3215_STALL),
}
XL430_SPEED, XL430_STALL = 5.0, 1.5
XL330_M288_SPEED, XL330_M288_STALL = 9.0, 0.52
KOCH_JOINT_LIMITS = {
    "shoulder_pan": JointLimits(-math.pi, math.pi, XL430_SPEED, XL430_STALL),
    "shoulder_lift": JointLimits(-1.25, 1.25, XL430_SPEED, XL430_STALL),
    "elbow_flex": JointLimits(-1.52, 1.52, XL330_M288_SPEED, XL330_M288_STALL),
    "wrist_flex": JointLimits(-1.57, 1.57, XL330_M288_SPEED, XL330_M288_STALL),
    "wrist_roll": JointLimits(-math.pi, math.pi, XL330_M288_SPEED, XL330_M288_STALL),
    "gripper": JointLimits(0.0, 1.75, XL330_M288_SPEED, XL330_M288_STALL),
}


def _so_motors() -> dict[str, Motor]:
    body = MotorNormMode.DEGREES
    motors = {name: Motor(i + 1, "sts3215", body) for i, name in enumerate(MOTOR_NAMES[:-1])}
    motors["gripper"] = Motor(6, "sts3215", MotorNormMode.RANGE_0_100)
    return motors


def _koch_follower_motors() -> dict[str, Motor]:
    body = MotorNormMode.DEGREES
    models = ["xl430-w250", "xl430-w250", "xl330-m288", "xl330-m288", "xl330-m288"]
    motors = {name: Motor(i + 1, model, body) for i, (name, model) in enumerate(zip(MOTOR_NAMES[:-1], models))}
    motors["gripper"] = Motor(6, "xl330-m288", MotorNormMode.RANGE_0_100)
    return motors


def _koch_leader_motors() -> dict[str, Motor]:
    motors = {name: Motor(i + 1, "xl330-m077", MotorNormMode.DEGREES) for i, name in enumerate(MOTOR_NAMES[:-1])}
    motors["gripper"] = Motor(6, "xl330-m077", MotorNormMode.RANGE_0_100)
    return motors


# ---------------------------------------------------------------------- configuration writes
def configure_so_follower(bus: MotorBus, calibrated: bool) -> None:
    """Torque off; bus defaults; position mode, P/I/D 16/0/32; gripper torque/current protection; torque on."""
    with bus.torque_disabled():
        bus.configure_motors()
        p, i, d = SO_POSITION_PID
        for name in bus.motors:
            bus.write("Operating_Mode", name, feetech_tables.POSITION_MODE)
            bus.write("P_Coefficient", name, p)
            bus.write("I_Coefficient", name, i)
            bus.write("D_Coefficient", name, d)
            if name == "gripper":
                bus.write("Max_Torque_Limit", name, SO_GRIPPER_MAX_TORQUE_LIMIT)
                bus.write("Protection_Current", name, SO_GRIPPER_PROTECTION_CURRENT)
                bus.write("Overload_Torque", name, SO_GRIPPER_OVERLOAD_TORQUE)


def configure_so_leader(bus: MotorBus, calibrated: bool) -> None:
    """The leader stays limp: torque off, bus defaults, position mode."""
    bus.disable_torque()
    bus.configure_motors()
    for name in bus.motors:
        bus.write("Operating_Mode", name, feetech_tables.POSITION_MODE)


def configure_koch_follower(bus: MotorBus, calibrated: bool) -> None:
    """Extended position on body joints, current-based position on the gripper, stiffer elbow; torque on."""
    with bus.torque_disabled():
        bus.configure_motors()
        for name in bus.motors:
            if name != "gripper":
                bus.write("Operating_Mode", name, dynamixel_tables.EXTENDED_POSITION_MODE)
        bus.write("Operating_Mode", "gripper", dynamixel_tables.CURRENT_POSITION_MODE)
        p, i, d = KOCH_ELBOW_PID
        bus.write("Position_P_Gain", "elbow_flex", p)
        bus.write("Position_I_Gain", "elbow_flex", i)
        bus.write("Position_D_Gain", "elbow_flex", d)


def configure_koch_leader(bus: MotorBus, calibrated: bool) -> None:
    """Limp body; the gripper is torqued in current-based position mode at 50 % open so it acts as a trigger."""
    bus.disable_torque()
    bus.configure_motors()
    for name in bus.motors:
        if name != "gripper":
            bus.write("Operating_Mode", name, dynamixel_tables.EXTENDED_POSITION_MODE)
    bus.write("Operating_Mode", "gripper", dynamixel_tables.CURRENT_POSITION_MODE)
    bus.enable_torque("gripper")
    if calibrated:
        bus.write("Goal_Position", "gripper", KOCH_LEADER_GRIPPER_OPEN_POS)


# ---------------------------------------------------------------------- definitions
@dataclass(frozen=True)
class ArmDefinition:
    """Static description of one arm type.

    `calibration_kind`/`device_name` give LeRobot's calibration path
    `<root>/<calibration_kind>/<device_name>/<id>.json`; `legacy_device_names` are older directory names that
    are also searched. `calibration_operating_mode` is written before homing; `calibration_drive_modes` are
    written before homing and saved in the file (Koch leader's inverted elbow).
    """

    name: str
    role: str  # "follower" or "leader"
    bus_type: str  # "feetech" or "dynamixel"
    motors: Mapping[str, Motor]
    calibration_kind: str  # "robots" or "teleoperators"
    device_name: str
    legacy_device_names: tuple[str, ...]
    full_turn_motors: tuple[str, ...]
    calibration_operating_mode: int
    configure: Callable[[MotorBus, bool], None]
    calibration_drive_modes: Mapping[str, int] = field(default_factory=dict)
    num_read_retries: int = 0
    nominal_voltage: float = 12.0  # what the simulator supplies
    # The follower arm's description limits (the URDF's); a leader shares its family's, used only if it is run
    # as a follower.
    joint_limits: Mapping[str, JointLimits] = field(default_factory=dict)

    @property
    def motor_names(self) -> list[str]:
        return list(self.motors)

    @property
    def norm_modes(self) -> dict[str, str]:
        return {name: m.norm_mode.value for name, m in self.motors.items()}

    def ros_velocity_limits(self) -> list[float]:
        """The default velocity limit per joint in arm order, in ROS units per second: rad/s for DEGREES joints,
        opening fraction per second for range joints (the gripper: its rad/s over the description's closed..open
        span; a -1..1 joint spans 2). Empty when the definition has no joint limits."""
        if not self.joint_limits:
            return []
        limits = []
        for name, motor in self.motors.items():
            joint = self.joint_limits[name]
            if motor.norm_mode is MotorNormMode.DEGREES:
                limits.append(joint.velocity)
            else:
                span = 2.0 if motor.norm_mode is MotorNormMode.RANGE_M100_100 else 1.0
                limits.append(joint.velocity * span / (joint.upper - joint.lower))
        return limits

    def make_bus(self, port: str, calibration: Mapping[str, MotorCalibration] | None = None,
                 min_packet_timeout_ms: float = 0.0) -> MotorBus:
        bus_class = FeetechBus if self.bus_type == "feetech" else DynamixelBus
        return bus_class(port, dict(self.motors), calibration, min_packet_timeout_ms=min_packet_timeout_ms)


def _so(name: str, role: str) -> ArmDefinition:
    follower = role == "follower"
    generation = name.split("_")[0]
    return ArmDefinition(
        name=name, role=role, bus_type="feetech", motors=_so_motors(),
        calibration_kind="robots" if follower else "teleoperators",
        device_name="so_follower" if follower else "so_leader",
        legacy_device_names=tuple(dict.fromkeys(
            [f"{generation}_{role}"] + [f"{g}_{role}" for g in ("so101", "so100") if g != generation])),
        full_turn_motors=("wrist_roll",), calibration_operating_mode=feetech_tables.POSITION_MODE,
        configure=configure_so_follower if follower else configure_so_leader,
        num_read_retries=2, nominal_voltage=12.0 if follower else 5.0, joint_limits=SO_JOINT_LIMITS,
    )


ARM_DEFINITIONS: dict[str, ArmDefinition] = {
    "so100_follower": _so("so100_follower", "follower"),
    "so101_follower": _so("so101_follower", "follower"),
    "so100_leader": _so("so100_leader", "leader"),
    "so101_leader": _so("so101_leader", "leader"),
    "koch_follower": ArmDefinition(
        name="koch_follower", role="follower", bus_type="dynamixel", motors=_koch_follower_motors(),
        calibration_kind="robots", device_name="koch_follower", legacy_device_names=(),
        full_turn_motors=("shoulder_pan", "wrist_roll"),
        calibration_operating_mode=dynamixel_tables.EXTENDED_POSITION_MODE, configure=configure_koch_follower,
        nominal_voltage=12.0, joint_limits=KOCH_JOINT_LIMITS,
    ),
    "koch_leader": ArmDefinition(
        name="koch_leader", role="leader", bus_type="dynamixel", motors=_koch_leader_motors(),
        calibration_kind="teleoperators", device_name="koch_leader", legacy_device_names=(),
        full_turn_motors=("shoulder_pan", "wrist_roll"),
        calibration_operating_mode=dynamixel_tables.EXTENDED_POSITION_MODE, configure=configure_koch_leader,
        calibration_drive_modes={"elbow_flex": 1}, nominal_voltage=5.0, joint_limits=KOCH_JOINT_LIMITS,
    ),
}


def get_arm_definition(name: str) -> ArmDefinition:
    try:
        return ARM_DEFINITIONS[name]
    except KeyError:
        raise MotorConfigError(f"unknown arm '{name}'; expected one of {sorted(ARM_DEFINITIONS)}") from None


# ---------------------------------------------------------------------- safety clamp
def ensure_safe_goal_position(goal_present: Mapping[str, tuple[float, float]],
                              max_relative_target: float | Mapping[str, float]) -> dict[str, float]:
    """LeRobot's clamp: per key, safe = present + clamp(goal - present, -cap, +cap).

    `max_relative_target` is one cap for every key or a dict whose keys must equal those of `goal_present`.
    Units are the normalized ones (degrees, 0..100). Logs a warning when a goal was changed by > 1e-4.
    """
    if isinstance(max_relative_target, Mapping):
        if set(max_relative_target) != set(goal_present):
            raise MotorConfigError(f"max_relative_target keys {sorted(max_relative_target)} must equal the goal "
                                   f"keys {sorted(goal_present)}")
        caps = {key: float(max_relative_target[key]) for key in goal_present}
    elif isinstance(max_relative_target, (int, float)) and not isinstance(max_relative_target, bool):
        caps = dict.fromkeys(goal_present, float(max_relative_target))
    else:
        raise MotorConfigError(f"max_relative_target must be a number or a dict, got {max_relative_target!r}")
    safe, clamped = {}, {}
    for key, (goal, present) in goal_present.items():
        cap = caps[key]
        safe[key] = present + max(-cap, min(cap, goal - present))
        if abs(safe[key] - goal) > 1e-4:
            clamped[key] = (goal, safe[key])
    if clamped:
        logger.warning("relative goal clamped for safety (goal -> safe): %s", clamped)
    return safe


# ---------------------------------------------------------------------- the connected arm
@dataclass
class ArmState:
    """One full read of an arm. Dicts are keyed by motor name in the arm's order.

    positions: normalized (deg / 0..100); velocities: normalized units per second; efforts: signed, in
    `effort_units[motor]` ("load_percent" = % of rated torque, "current_mA"); temperatures: deg C;
    voltages: V; error_flags: decoded fault names per motor (empty tuple = healthy); raw: raw register values.
    """

    positions: dict[str, float]
    velocities: dict[str, float]
    efforts: dict[str, float]
    effort_units: dict[str, str]
    temperatures: dict[str, float]
    voltages: dict[str, float]
    error_flags: dict[str, tuple[str, ...]]
    raw: dict[str, dict[str, int]]


class Arm:
    """A connected SO/Koch arm.

    Typical driver use::

        arm = Arm("so101_follower", port, calibration=load_calibration(path), max_relative_target=10.0)
        arm.connect()                      # handshake, write calibration if motors differ, configure
        state = arm.read_state()           # positions/velocities/efforts/temperatures/voltages/flags
        sent = arm.write_goal_positions({"shoulder_pan": 5.0, ...})   # clamped, sync-written, returned
        arm.disconnect()                   # torque off (unless disable_torque=False), close port

    Calls are thread-safe (the bus serializes transactions). `num_read_retries` (default: LeRobot's, 2 for SO
    arms, 0 for Koch) applies to position/state reads; `min_packet_timeout_ms` floors the reply timeout
    (useful against the simulator on a loaded machine; 0 keeps the SDK's ~35-50 ms).
    """

    def __init__(self, definition: ArmDefinition | str, port: str,
                 calibration: Mapping[str, MotorCalibration] | None = None, *,
                 max_relative_target: float | Mapping[str, float] | None = None,
                 num_read_retries: int | None = None, disable_torque_on_disconnect: bool = True,
                 min_packet_timeout_ms: float = 0.0) -> None:
        self.definition = get_arm_definition(definition) if isinstance(definition, str) else definition
        self.port = port
        self.bus: MotorBus = self.definition.make_bus(port, calibration, min_packet_timeout_ms)
        self.max_relative_target = max_relative_target
        self.num_read_retries = (self.definition.num_read_retries if num_read_retries is None
                                 else num_read_retries)
        self.disable_torque_on_disconnect = disable_torque_on_disconnect

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def motor_names(self) -> list[str]:
        return self.definition.motor_names

    @property
    def norm_modes(self) -> dict[str, str]:
        """{motor: "degrees" | "range_0_100" | "range_m100_100"} in motor order."""
        return self.definition.norm_modes

    @property
    def calibration(self) -> dict[str, MotorCalibration]:
        return self.bus.calibration

    @property
    def is_connected(self) -> bool:
        return self.bus.is_connected

    def goal_limits(self, margin_deg: float = GOAL_RANGE_MARGIN_DEG) -> dict[str, tuple[float, float]]:
        """(low, high) normalized goal per motor: the calibrated range, plus `margin_deg` on DEGREES joints (the
        range modes clamp to 0..100 / -100..100 in the normalisation already). The arm driver keeps every goal
        inside; nothing else does for Koch's extended-position joints."""
        limits = {}
        for name, motor in self.definition.motors.items():
            low, high = normalized_range(self.bus.calibration[name], motor.norm_mode, self.bus.resolution(name), name)
            margin = margin_deg if motor.norm_mode is MotorNormMode.DEGREES else 0.0
            limits[name] = (low - margin, high + margin)
        return limits

    @property
    def is_calibrated(self) -> bool:
        return self.bus.is_calibrated

    # ------------------------------------------------------------------ lifecycle
    def connect(self, configure: bool = True, handshake: bool = True) -> None:
        """Open the bus (ping + model check), push the calibration to the motors if they differ, configure.

        Without a calibration the arm still connects (for calibration); reads/writes of positions then raise.
        """
        self.bus.connect(handshake=handshake)
        try:
            if self.bus.calibration and not self.bus.is_calibrated:
                logger.info("%s on %s: motors differ from the calibration file; writing it", self.name, self.port)
                self.bus.disable_torque()
                self.bus.write_calibration(self.bus.calibration)
            if configure:
                self.configure()
        except Exception:
            self.bus.disconnect(disable_torque=False)
            raise

    def configure(self) -> None:
        """The arm type's configuration writes (followers end with torque on, leaders limp)."""
        self.definition.configure(self.bus, bool(self.bus.calibration))

    def disconnect(self, disable_torque: bool | None = None) -> None:
        """Close the bus; torque off first unless `disable_torque` (default: the constructor's setting) is False."""
        self.bus.disconnect(self.disable_torque_on_disconnect if disable_torque is None else disable_torque)

    def __enter__(self) -> "Arm":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def enable_torque(self, motors: list[str] | None = None) -> None:
        self.bus.enable_torque(motors)

    def disable_torque(self, motors: list[str] | None = None) -> None:
        self.bus.disable_torque(motors)

    # ------------------------------------------------------------------ reading
    def read_positions(self) -> dict[str, float]:
        """Normalized Present_Position of every motor (one Sync Read)."""
        return {k: float(v) for k, v in
                self.bus.sync_read("Present_Position", num_retry=self.num_read_retries).items()}

    def _state_registers(self) -> tuple[list[str], str]:
        """The registers of one state read and the name of the voltage register among them."""
        if self.definition.bus_type == "feetech":
            return (["Present_Position", "Present_Velocity", "Present_Load", "Present_Voltage",
                     "Present_Temperature", "Status"], "Present_Voltage")
        return (["Present_Current", "Present_Velocity", "Present_Position", "Present_Input_Voltage",
                 "Present_Temperature"], "Present_Input_Voltage")

    def read_state(self) -> ArmState:
        """Everything the driver publishes, in one Sync Read over a contiguous register span.

        On Dynamixel, motors whose reply carried the hardware-alert bit get their Hardware_Error_Status read
        as well (an extra transaction only while a fault is present).
        """
        registers, voltage_reg = self._state_registers()
        raw = self.bus.sync_read_registers(registers, num_retry=self.num_read_retries)
        positions, velocities, efforts, units, temps, volts, flags = {}, {}, {}, {}, {}, {}, {}
        for name, regs in raw.items():
            motor = self.definition.motors[name]
            positions[name] = self.bus.normalize(name, regs["Present_Position"])
            if self.definition.bus_type == "feetech":
                ticks_per_s = float(regs["Present_Velocity"])
                efforts[name], units[name] = regs["Present_Load"] * 0.1, "load_percent"
                flags[name] = self.bus.status_error_flags(regs["Status"] | self.bus.last_status_error[name])
            else:
                rpm = regs["Present_Velocity"] * dynamixel_tables.VELOCITY_UNIT_RPM
                ticks_per_s = rpm * self.bus.resolution(name) / 60.0
                if dynamixel_tables.MODEL_EFFORT_UNIT[motor.model] == "current_mA":
                    efforts[name], units[name] = float(regs["Present_Current"]), "current_mA"
                else:
                    efforts[name], units[name] = regs["Present_Current"] * 0.1, "load_percent"
                flags[name] = self._dynamixel_flags(name)
            scale = ticks_per_unit(self.bus.calibration[name], motor.norm_mode, self.bus.resolution(name),
                                   self.bus.apply_drive_mode)
            velocities[name] = ticks_per_s / scale
            temps[name] = float(regs["Present_Temperature"])
            volts[name] = regs[voltage_reg] * 0.1
        return ArmState(positions, velocities, efforts, units, temps, volts, flags, raw)

    def _dynamixel_flags(self, name: str) -> tuple[str, ...]:
        status = self.bus.last_status_error[name]
        flags = [f for f in self.bus.status_error_flags(status) if f != "hardware_alert"]
        if status & dynamixel_tables.ALERT_BIT:
            try:
                hes = int(self.bus.read("Hardware_Error_Status", name, normalize=False, check_status=False))
                flags.extend(DynamixelBus.hardware_error_flags(hes) or ("hardware_alert",))
            except MotorBusError as exc:
                logger.warning("could not read Hardware_Error_Status: %s", exc)
                flags.append("hardware_alert")
        return tuple(flags)

    # ------------------------------------------------------------------ writing
    def write_goal_positions(self, goals: Mapping[str, float],
                             max_relative_target: float | Mapping[str, float] | None = None) -> dict[str, float]:
        """Sync-write normalized goals for some or all motors; returns what was actually sent.

        Keys may be motor names or LeRobot action keys "<motor>.pos". With a `max_relative_target` (argument,
        else the arm's), the present positions are read first and each goal is clamped to within the cap of
        it (LeRobot's ensure_safe_goal_position). Non-finite goals are rejected.
        """
        clean: dict[str, float] = {}
        for key, value in goals.items():
            name = key[:-4] if key.endswith(".pos") else key
            if name not in self.definition.motors:
                raise MotorConfigError(f"{self.name}: unknown joint '{key}'; expected {self.motor_names}")
            value = float(value)
            if not math.isfinite(value):
                raise MotorConfigError(f"{self.name}: goal for '{name}' is not finite: {value}")
            clean[name] = value
        cap = self.max_relative_target if max_relative_target is None else max_relative_target
        if cap is not None:
            present = self.bus.sync_read("Present_Position", list(clean), num_retry=self.num_read_retries)
            # A per-joint cap dict may cover more joints than this command; use the commanded ones.
            caps = {k: cap[k] for k in clean if k in cap} if isinstance(cap, Mapping) else cap
            clean = ensure_safe_goal_position({k: (v, float(present[k])) for k, v in clean.items()}, caps)
        self.bus.sync_write("Goal_Position", clean)
        return clean

