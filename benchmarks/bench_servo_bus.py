"""Control-loop rate of the servo buses against the servo-bus simulator (target >= 200 loops/s).

One loop = sync_read Present_Position of 6 motors + sync_write Goal_Position of 6 motors, exactly what the
arm driver does each tick. For each bus (Feetech STS via scservo_sdk, Dynamixel 2.0 via dynamixel_sdk) it
measures, against a simulator running in its own process (`lerobot-servo-sim`, as in the demo):
- our bus (`FeetechBus` / `DynamixelBus`, normalized values, error checking);
- the bare SDK group calls (GroupSyncRead/GroupSyncWrite, raw values) as a same-run reference,
and prints loops/s (successful loops), median and p95 loop times, failed reads (reply timeouts: the
bare SDK uses its ~34 ms timeout) and the ratio ours / bare SDK. Also the bus with the simulator
in-process (a thread), which shares the GIL with the loop.

    python benchmarks/bench_servo_bus.py [--seconds 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import dynamixel_sdk as dxl
import scservo_sdk as scs

from lerobot_drivers.arms import Arm, get_arm_definition
from lerobot_drivers.motors import MotorCalibration, MotorCommError
from lerobot_drivers.sim.servo_bus_simulator import ServoBusSimulator

IDS = [1, 2, 3, 4, 5, 6]


def run_loop(step, seconds: float) -> dict:
    """Run `step` (returns False on a failed read) for `seconds`; failed loops count in time but not in rate."""
    times, failures = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        if step() is False:
            failures += 1
        times.append(time.perf_counter() - t0)
    times.sort()
    total = sum(times)
    return {"loops_per_s": (len(times) - failures) / total, "failures": failures, "median_ms": 1e3 * statistics.median(times),
            "p95_ms": 1e3 * times[int(0.95 * (len(times) - 1))], "loops": len(times)}


def bare_sdk_step(kind: str, port_path: str):
    if kind == "feetech":
        port, ph = scs.PortHandler(port_path), scs.PacketHandler(0)
        reader, writer = scs.GroupSyncRead(port, ph, 56, 2), scs.GroupSyncWrite(port, ph, 42, 2)
        ok = scs.COMM_SUCCESS
    else:
        port, ph = dxl.PortHandler(port_path), dxl.PacketHandler(2.0)
        reader, writer = dxl.GroupSyncRead(port, ph, 132, 4), dxl.GroupSyncWrite(port, ph, 116, 4)
        ok = dxl.COMM_SUCCESS
    assert port.openPort()
    width = 2 if kind == "feetech" else 4
    for motor_id in IDS:
        reader.addParam(motor_id)
        writer.addParam(motor_id, list((2048).to_bytes(width, "little")))

    def step():
        if reader.txRxPacket() != ok:
            return False
        values = [reader.getData(i, reader.start_address, width) for i in IDS]
        for motor_id, value in zip(IDS, values):
            writer.changeParam(motor_id, list(int(value).to_bytes(width, "little")))
        writer.txPacket()

    return step, port.closePort


def arm_step(arm_name: str, port_path: str):
    definition = get_arm_definition(arm_name)
    full_turn = {name: MotorCalibration(m.id, 0, 0, 0, 4095) for name, m in definition.motors.items()}
    arm = Arm(definition, port_path, full_turn)
    arm.connect(configure=False)

    def step():
        try:
            present = arm.bus.sync_read("Present_Position")
        except MotorCommError:
            return False
        arm.bus.sync_write("Goal_Position", present)

    return step, lambda: arm.disconnect(disable_torque=False)


def start_sim_process(arm_name: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "lerobot_drivers.sim.servo_bus_simulator", "--arm", arm_name],
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement time per case")
    args = parser.parse_args()
    rows = []
    for kind, arm_name in (("feetech", "so101_follower"), ("dynamixel", "koch_follower")):
        proc, port = start_sim_process(arm_name)
        try:
            step, close = bare_sdk_step(kind, port)
            reference = run_loop(step, args.seconds)
            close()
            step, close = arm_step(arm_name, port)
            ours = run_loop(step, args.seconds)
            close()
        finally:
            proc.terminate()
            proc.wait(10)
        with ServoBusSimulator(arm_name) as sim:
            step, close = arm_step(arm_name, sim.port)
            in_process = run_loop(step, args.seconds)
            close()
        rows.append((kind, "bare SDK (reference), sim process", reference, 1.0))
        rows.append((kind, "our bus, sim process", ours, ours["loops_per_s"] / reference["loops_per_s"]))
        rows.append((kind, "our bus, sim in-process thread", in_process,
                     in_process["loops_per_s"] / reference["loops_per_s"]))
    print(f"{'bus':<10} {'case':<34} {'loops/s':>8} {'median ms':>10} {'p95 ms':>8} {'failed':>7} {'vs bare SDK':>12}")
    for kind, case, r, ratio in rows:
        print(f"{kind:<10} {case:<34} {r['loops_per_s']:>8.0f} {r['median_ms']:>10.3f} {r['p95_ms']:>8.3f} "
              f"{r['failures']:>7} {ratio:>11.2f}x")
    worst = min(r["loops_per_s"] for kind, case, r, _ in rows if case.startswith("our bus, sim process"))
    print(f"slowest of our buses against the simulator process: {worst:.0f} loops/s (target >= 200)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
