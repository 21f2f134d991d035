#!/usr/bin/env python3
"""Arm driver benchmark: control loop rate and leader -> follower command latency over DDS. Prints figures.

    source env.bash && python benchmarks/bench_driver_latency.py [--rate-hz 250] [--seconds 10]

Setup (all separate processes, real Feetech wire protocol on ptys, real DDS):
  lerobot-servo-sim so101_leader -> arm_driver /leader (rate_hz)
  lerobot-servo-sim so101_follower -> arm_driver /follower (rate_hz, joint_commands := /leader/joint_states)
The leader is moved back and forth through its simulator's control socket for the whole measurement.

Figures:
- loop rate: /follower/joint_states messages per second of their own stamps (one per control tick: one Sync Read
  of position..temperature of 6 motors + one Sync Write of 6 goals), and the follower's own "loop rate achieved";
- tick duration p50/p99 (read + write, from the follower's diagnostics);
- command latency p50/p99: leader joint_states header stamp -> the follower's Sync Write of the goal computed from
  that message (measured inside the follower on the shared node clock, reported on /diagnostics);
- tracking error: |follower - leader| of shoulder_pan, the leader's joint_states interpolated at each follower
  joint_states stamp (latency x speed + the servo's own lag);
- references measured in the same run: the bare bus cost of the same tick (Arm.read_state + write_goal_positions
  in a tight loop in this process, no ROS) and the control period; figures are printed as ratios of those.
Targets: loop >= 200 Hz, command latency p99 <= 15 ms.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src" / "lerobot_drivers" / "test"))

from arm_graph_support import Probe, start_driver, start_sim, wait_for  # noqa: E402


def bare_bus_rate(port: str, seconds: float) -> tuple[float, list[float]]:
    """Ticks/s of read_state + write_goal_positions with no ROS, against the (already running) follower sim.
    Run while the follower driver is inactive, so the two do not share the bus."""
    from lerobot_drivers.arms import Arm, get_arm_definition
    from lerobot_drivers.control.calibration_source import simulator_default_calibration

    definition = get_arm_definition("so101_follower")
    arm = Arm(definition, port, simulator_default_calibration(definition))
    arm.connect()
    durations = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.monotonic()
            state = arm.read_state()
            arm.write_goal_positions(state.positions)
            durations.append(time.monotonic() - start)
    finally:
        arm.disconnect(disable_torque=True)
    # Rate from the median tick: one stall of the (shared) host must not define the reference.
    return 1.0 / statistics.median(durations), durations


def wiggle_leader(sim, stop: threading.Event) -> None:
    k = 0
    while not stop.is_set():
        angle = 20.0 * math.sin(k * 0.3)
        sim.command(cmd="move", positions={"shoulder_pan": angle, "elbow_flex": 30.0 + angle}, frame="normalized",
                    speed=800.0)
        k += 1
        stop.wait(0.1)


def tracking_errors(leader_msgs, follower_msgs, joint: str) -> list[float]:
    """|follower - leader| of one joint, the leader interpolated at each follower joint_states stamp."""
    import numpy as np

    def series(msgs):
        stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in msgs])
        values = np.array([m.position[list(m.name).index(joint)] for _, m in msgs])
        return stamps, values

    if len(leader_msgs) < 2 or not follower_msgs:
        return []
    lead_t, lead_p = series(leader_msgs)
    follow_t, follow_p = series(follower_msgs)
    inside = (follow_t >= lead_t[0]) & (follow_t <= lead_t[-1])
    return np.abs(follow_p[inside] - np.interp(follow_t[inside], lead_t, lead_p)).tolist()


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate-hz", type=float, default=250.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    import rclpy
    from rclpy.context import Context

    tmp = Path(tempfile.mkdtemp(prefix="bench_driver_"))
    processes = []
    context = Context()
    rclpy.init(context=context)
    probe = None
    stop = threading.Event()
    try:
        leader_sim = start_sim(processes, tmp, "so101_leader", "leader_sim")
        follower_sim = start_sim(processes, tmp, "so101_follower", "follower_sim")

        bus_rate, bus_durations = bare_bus_rate(follower_sim.port, min(5.0, args.seconds))

        params = {"rate_hz": args.rate_hz, "command_timeout_s": 0.5}
        start_driver(processes, tmp, "leader_driver", "leader", leader_sim.port, "so101_leader", params)
        start_driver(processes, tmp, "follower_driver", "follower", follower_sim.port, "so101_follower", params,
                     remappings={"joint_commands": "/leader/joint_states"})
        probe = Probe(context).start(["leader", "follower"])
        assert wait_for(lambda: len(probe.joint_states["follower"]) > 50, 30), "no follower joint_states"

        wiggler = threading.Thread(target=wiggle_leader, args=(leader_sim, stop), daemon=True)
        wiggler.start()
        time.sleep(2.0)  # warm-up: latency deque fills with steady-state values
        probe.joint_states["follower"].clear()
        probe.joint_states["leader"].clear()
        time.sleep(args.seconds)
        follower_msgs = list(probe.joint_states["follower"])
        leader_msgs = list(probe.joint_states["leader"])
        since = probe.now_s()
        wait_for(lambda: probe.status_value("/follower/arm_driver", "command latency p99 (ms)", since), 5)
        status = {kv.key: kv.value for kv in probe.latest_status("/follower/arm_driver").values}
        stop.set()
        wiggler.join()

        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in follower_msgs]
        topic_rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        periods_ms = [1000 * (b - a) for a, b in zip(stamps, stamps[1:])]
        p50 = float(status["command latency p50 (ms)"])
        p99 = float(status["command latency p99 (ms)"])
        period_ms = 1000.0 / args.rate_hz
        bus_tick_ms = 1000 * statistics.median(bus_durations)

        print(f"== arm driver benchmark: SO-101 sims, rate_hz={args.rate_hz:.0f}, {args.seconds:.0f} s ==")
        print(f"reference: bare bus tick (read_state + write 6 goals, no ROS): median {bus_tick_ms:.2f} ms, "
              f"p99 {1000 * percentile(bus_durations, 99):.2f} ms, max rate (1 / median) {bus_rate:.0f} Hz")
        print(f"loop rate (joint_states stamps): {topic_rate:.1f} Hz = {topic_rate / args.rate_hz:.2f} x target, "
              f"{topic_rate / bus_rate:.2f} x bare-bus max; driver reports {status['loop rate achieved (Hz)']} Hz")
        print(f"tick period p50/p99: {percentile(periods_ms, 50):.2f} / {percentile(periods_ms, 99):.2f} ms "
              f"(target {period_ms:.2f} ms); tick duration p99 {status['tick duration p99 (ms)']} ms")
        print(f"leader -> follower command latency (leader stamp -> follower goal write): p50 {p50:.2f} ms, "
              f"p99 {p99:.2f} ms = {p50 / period_ms:.2f} / {p99 / period_ms:.2f} control periods")
        tracking = tracking_errors(leader_msgs, follower_msgs, "shoulder_pan")
        if tracking:
            print("tracking error (follower vs leader at the same stamp, shoulder_pan moving up to ~1.2 rad/s): "
                  f"median {percentile(tracking, 50):.4f} rad, p99 {percentile(tracking, 99):.4f} rad")
        print(f"comm errors: {status['comm errors']}, reconnects: {status['reconnects']}")
        print(f"targets: loop >= 200 Hz: {'MET' if topic_rate >= 200 else 'MISSED'}; "
              f"p99 <= 15 ms: {'MET' if p99 <= 15 else 'MISSED'}")
    finally:
        stop.set()
        if probe is not None:
            probe.stop()
        for proc in reversed(processes):
            proc.stop()
        context.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
