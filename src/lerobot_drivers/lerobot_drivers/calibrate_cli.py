"""`lerobot-calibrate`: LeRobot's interactive arm calibration, writing a LeRobot-compatible JSON file.

    lerobot-calibrate --arm so101_follower --port /dev/ttyACM0 --id my_arm [--calibration-dir DIR]
    lerobot-calibrate --robot.type=so101_follower --robot.port=/dev/ttyACM0 --robot.id=my_arm     (LeRobot's flags)
    lerobot-calibrate --teleop.type=so101_leader --teleop.port=/dev/ttyACM1 --teleop.id=my_leader

1. Torque off, calibration operating mode. 2. Move the arm to the middle of its range, press Enter (half-turn
homing offsets). 3. Move every joint (except full-turn ones) through its whole range; min/max are shown live;
press Enter. 4. The calibration goes to the motors and to
`<calibration root>/<robots|teleoperators>/<device>/<id>.json`.
If a file already exists: Enter writes that file to the motors (nothing is recalibrated); 'c' then Enter
recalibrates. If the recorded calibration cannot be stored in the motors (the arm was not centred at step 2, or
a joint went past its encoder's wrap point), the motors get their previous calibration back and nothing is
saved: centre the arm and run it again.

With the servo simulator (`lerobot-servo-sim --control-socket PATH`), `--sim-sweep PATH` plays the operator:
it centres the simulated arm, presses Enter, sweeps every joint through a range and presses Enter again.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from lerobot_drivers.arms import ARM_DEFINITIONS, Arm, get_arm_definition
from lerobot_drivers.calibration import (
    CalibrationError, CalibrationProcedure, calibration_file_path, find_calibration_file, load_calibration,
    save_calibration,
)
from lerobot_drivers.motors.errors import MotorBusError, MotorConfigError

# Raw positions (0..4095) the simulated operator sweeps non-full-turn joints through, around the centre.
SIM_SWEEP_TICKS = (1100, 3000)
SIM_CENTRE_TICKS = 2048
SIM_HAND_SPEED = 20000.0  # ticks/s


def _live_table(stream) -> callable:
    state = {"lines": 0}

    def show(positions: dict[str, int], mins: dict[str, int], maxes: dict[str, int]) -> None:
        if state["lines"] and stream.isatty():
            stream.write(f"\x1b[{state['lines']}A")  # redraw in place
        rows = [f"{'joint':<14}{'min':>6}{'pos':>6}{'max':>6}"]
        rows += [f"{name:<14}{mins[name]:>6}{positions[name]:>6}{maxes[name]:>6}" for name in positions]
        if stream.isatty() or not state["lines"]:
            stream.write("\n".join(rows) + "\n")
            stream.flush()
        state["lines"] = len(rows)

    return show


def _enter_event(prompt: str) -> threading.Event:
    """An Event set when the operator presses Enter (input() runs in a helper thread)."""
    pressed = threading.Event()

    def wait() -> None:
        try:
            input(prompt)
        except EOFError:
            pass
        pressed.set()

    threading.Thread(target=wait, daemon=True).start()
    return pressed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lerobot-calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", choices=sorted(ARM_DEFINITIONS), help="arm type (or --robot.type / --teleop.type)")
    parser.add_argument("--port", help="serial port of the arm's bus (find it with lerobot-find-port)")
    parser.add_argument("--id", help="arm id (calibration file name)")
    parser.add_argument("--calibration-dir", type=Path, default=None,
                        help="calibration root (default $HF_LEROBOT_CALIBRATION or $HF_HOME/lerobot/calibration)")
    for role, kind in (("robot", "follower"), ("teleop", "leader")):
        choices = sorted(name for name, d in ARM_DEFINITIONS.items() if d.role == kind)
        parser.add_argument(f"--{role}.type", dest=f"{role}_type", choices=choices,
                            help=f"LeRobot's flag: the {kind} arm type")
        parser.add_argument(f"--{role}.port", dest=f"{role}_port", help=f"LeRobot's flag: the {kind}'s port")
        parser.add_argument(f"--{role}.id", dest=f"{role}_id", help=f"LeRobot's flag: the {kind}'s id")
        parser.add_argument(f"--{role}.calibration_dir", dest=f"{role}_calibration_dir", type=Path,
                            help=f"LeRobot's flag: the {kind}'s calibration root")
    parser.add_argument("--force", action="store_true", help="recalibrate even if a file exists")
    parser.add_argument("--min-packet-timeout-ms", type=float, default=0.0,
                        help="floor for the motors' reply timeout (slow adapters, simulator on a loaded machine)")
    parser.add_argument("--sim-sweep", metavar="CONTROL_SOCKET",
                        help="simulator only: play the operator through the lerobot-servo-sim control socket")
    args = parser.parse_args(argv)
    roles = [role for role in ("robot", "teleop") if getattr(args, f"{role}_type")]
    if len(roles) + bool(args.arm) != 1:
        parser.error("give the arm once: --arm ARM, --robot.type=FOLLOWER or --teleop.type=LEADER")
    if roles:
        role = roles[0]
        args.arm = getattr(args, f"{role}_type")
        args.port = args.port or getattr(args, f"{role}_port")
        args.id = args.id or getattr(args, f"{role}_id")
        args.calibration_dir = args.calibration_dir or getattr(args, f"{role}_calibration_dir")
    for name, flag in (("port", "--port (or --robot.port / --teleop.port)"), ("id", "--id (or --robot.id / "
                                                                                    "--teleop.id)")):
        if not getattr(args, name):
            parser.error(f"{flag} is required")
    return args


class SimulatedOperator:
    """The operator's hands and Enter key, on a servo simulator's control socket (`--sim-sweep`)."""

    def __init__(self, control_socket: str, motors: list[str], full_turn: tuple[str, ...]) -> None:
        from lerobot_drivers.sim.servo_bus_simulator import send_command

        self._send = lambda request: send_command(control_socket, request)
        self.moving = [m for m in motors if m not in full_turn]
        reply = self._send({"cmd": "ping"})
        if not reply.get("ok"):
            raise CalibrationError(f"simulator control socket {control_socket}: {reply.get('error', reply)}")

    def _move_and_wait(self, positions: dict[str, float]) -> None:
        self._send({"cmd": "move", "positions": positions, "frame": "actual", "speed": SIM_HAND_SPEED})
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            state = self._send({"cmd": "state"})["motors"]
            if all(abs(state[m]["actual"] - p) < 1.0 for m, p in positions.items()):
                return
            time.sleep(0.02)
        raise CalibrationError("the simulated arm did not reach its sweep position within 10 s")

    def centre(self) -> None:
        print("(simulator) centring the arm", flush=True)
        self._move_and_wait({m: SIM_CENTRE_TICKS for m in self.moving})

    def sweep(self) -> None:
        print("(simulator) sweeping every joint through its range", flush=True)
        for target in SIM_SWEEP_TICKS:
            self._move_and_wait({m: target for m in self.moving})
            time.sleep(0.1)  # a few recording polls at the end of the range
        self._move_and_wait({m: SIM_CENTRE_TICKS for m in self.moving})


def _restore(arm: Arm, original) -> str:
    """Put the calibration read at start back on the motors; a sentence for the operator."""
    try:
        arm.bus.disable_torque()
        arm.bus.write_calibration(original)
    except Exception as exc:  # noqa: BLE001 - the bus itself failed: say so, keep the first error
        return f"restoring the motors' previous calibration failed too ({exc}); run lerobot-calibrate again"
    return "the motors have their previous calibration back and nothing was saved"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    definition = get_arm_definition(args.arm)
    target = calibration_file_path(definition, args.id, args.calibration_dir)
    existing = find_calibration_file(definition, args.id, args.calibration_dir)
    arm = Arm(definition, args.port, min_packet_timeout_ms=args.min_packet_timeout_ms)
    original = None
    try:
        arm.connect(configure=False)
        if existing is not None and not args.force:
            answer = input(f"Found {existing}. Press ENTER to write it to the motors (no new calibration), or type "
                           "'c' and ENTER to recalibrate: ")
            if answer.strip().lower() != "c":
                calibration = load_calibration(existing, arm.motor_names)
                arm.bus.disable_torque()
                arm.bus.write_calibration(calibration)
                print(f"Wrote {existing} to the motors.")
                return 0
        original = arm.bus.read_calibration()
        operator = (SimulatedOperator(args.sim_sweep, arm.motor_names, definition.full_turn_motors)
                    if args.sim_sweep else None)
        procedure = CalibrationProcedure(arm, on_update=_live_table(sys.stdout))
        print(f"Then move every joint except {list(definition.full_turn_motors)} through its entire range.")
        procedure.prepare()
        if operator is not None:
            operator.centre()
        else:
            input(f"Move {args.arm} to the middle of its range of motion and press ENTER...")
        procedure.set_homing()
        if operator is not None:
            sweeping = threading.Thread(target=operator.sweep, daemon=True)
            sweeping.start()
            procedure.record_ranges(lambda: not sweeping.is_alive())
        else:
            stop = _enter_event("Recording ranges of motion. Press ENTER to stop...\n")
            procedure.record_ranges(stop.is_set)
        calibration = procedure.finish()
        save_calibration(target, calibration)
        print(f"Calibration saved to {target}")
        return 0
    except (MotorConfigError, CalibrationError) as exc:
        restored = _restore(arm, original) if original is not None and arm.is_connected else "nothing was saved"
        print(f"lerobot-calibrate: the calibration cannot be stored in the motors: {exc}.\n"
              f"  {restored[0].upper() + restored[1:]}. Move the arm to the middle of its range of motion (every "
              f"joint, not at an end stop), run lerobot-calibrate again, and sweep each joint only through its "
              f"physical range.", file=sys.stderr)
        return 1
    except MotorBusError as exc:
        print(f"lerobot-calibrate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if original is not None and arm.is_connected:
            print(f"\nlerobot-calibrate: interrupted; {_restore(arm, original)}", file=sys.stderr)
        return 130
    finally:
        if arm.is_connected:
            arm.disconnect(disable_torque=False)


if __name__ == "__main__":
    sys.exit(main())
