"""`lerobot-calibrate`: LeRobot's interactive arm calibration, writing a LeRobot-compatible JSON file.

    lerobot-calibrate --arm so101_follower --port /dev/ttyACM0 --id my_arm [--calibration-dir DIR]

1. Torque off, calibration operating mode. 2. Move the arm to the middle of its range, press Enter (half-turn
homing offsets). 3. Move every joint (except full-turn ones) through its whole range; min/max are shown live;
press Enter. 4. The calibration goes to the motors and to
`<calibration root>/<robots|teleoperators>/<device>/<id>.json`.
If a file already exists you may write it to the motors instead (Enter) or recalibrate ('c').
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from lerobot_drivers.arms import ARM_DEFINITIONS, Arm, get_arm_definition
from lerobot_drivers.calibration import (
    CalibrationError, CalibrationProcedure, calibration_file_path, find_calibration_file, load_calibration,
    save_calibration,
)
from lerobot_drivers.motors.errors import MotorBusError


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lerobot-calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", required=True, choices=sorted(ARM_DEFINITIONS))
    parser.add_argument("--port", required=True, help="serial port of the arm's bus")
    parser.add_argument("--id", required=True, help="arm id (calibration file name)")
    parser.add_argument("--calibration-dir", type=Path, default=None,
                        help="calibration root (default $HF_LEROBOT_CALIBRATION or "
                             "$HF_HOME/lerobot/calibration)")
    parser.add_argument("--force", action="store_true", help="recalibrate even if a file exists")
    parser.add_argument("--min-packet-timeout-ms", type=float, default=0.0,
                        help="floor for the motors' reply timeout (slow adapters, simulator on a loaded machine)")
    args = parser.parse_args(argv)

    definition = get_arm_definition(args.arm)
    target = calibration_file_path(definition, args.id, args.calibration_dir)
    existing = find_calibration_file(definition, args.id, args.calibration_dir)
    arm = Arm(definition, args.port, min_packet_timeout_ms=args.min_packet_timeout_ms)
    try:
        arm.connect(configure=False)
        if existing is not None and not args.force:
            answer = input(f"Found {existing}. Press ENTER to write it to the motors, or type 'c' and ENTER "
                           "to recalibrate: ")
            if answer.strip().lower() != "c":
                calibration = load_calibration(existing, arm.motor_names)
                arm.bus.disable_torque()
                arm.bus.write_calibration(calibration)
                print(f"Wrote {existing} to the motors.")
                return 0
        procedure = CalibrationProcedure(arm, on_update=_live_table(sys.stdout))

        def wait_for_middle() -> None:
            input(f"Move {args.arm} to the middle of its range of motion and press ENTER...")

        print(f"Then move every joint except {list(definition.full_turn_motors)} through its entire range.")
        procedure.prepare()
        wait_for_middle()
        procedure.set_homing()
        stop = _enter_event("Recording ranges of motion. Press ENTER to stop...\n")
        procedure.record_ranges(stop.is_set)
        calibration = procedure.finish()
        save_calibration(target, calibration)
        print(f"Calibration saved to {target}")
        return 0
    except (MotorBusError, CalibrationError) as exc:
        print(f"lerobot-calibrate: {exc}", file=sys.stderr)
        return 1
    finally:
        if arm.is_connected:
            arm.disconnect(disable_torque=False)


if __name__ == "__main__":
    sys.exit(main())
