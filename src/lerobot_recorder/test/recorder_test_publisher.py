"""Test publisher process: publishes a `recorder_streams` schedule in real time with explicit header stamps.

    python recorder_test_publisher.py --duration 4 [--prefix /rt] [--faults '[["follower", 20, "nan"]]']

Waits until every topic has a subscriber, picks t0 = now + 0.5 s on the system clock (the recorder's node clock),
prints `t0=<ns>`, publishes every message at its arrival time, prints `published <n>` and exits.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import recorder_streams as rs  # noqa: E402

import rclpy  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--prefix", default="/rt")
    parser.add_argument("--faults", default="[]")
    parser.add_argument("--joint-hz", type=int, default=50)
    parser.add_argument("--camera-hz", type=int, default=30)
    parser.add_argument("--height", type=int, default=rs.HEIGHT)
    parser.add_argument("--width", type=int, default=rs.WIDTH)
    parser.add_argument("--sim-clock", action="store_true",
                        help="publish /clock (sim time starting at 1000 s, advancing with the wall clock) and stamp "
                             "messages in sim time")
    args = parser.parse_args()
    rs.HEIGHT, rs.WIDTH = args.height, args.width
    faults = {(kind, int(i)): fault for kind, i, fault in json.loads(args.faults)}

    rclpy.init()
    node = rclpy.create_node("recorder_test_publisher")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    kinds = ("follower", "leader", "camera")
    probe = {k: rs.ScheduledMessage(k, 0, 0, 0) for k in kinds}
    pubs = {k: node.create_publisher(Image if k == "camera" else JointState, probe[k].topic(args.prefix), qos)
            for k in kinds}
    now_ns = time.time_ns
    if args.sim_clock:
        import threading

        from rosgraph_msgs.msg import Clock

        clock_pub = node.create_publisher(Clock, "/clock", 10)
        wall_base = time.time_ns()

        def now_ns() -> int:  # sim time: 1000 s at start, real-time rate
            return 1000 * rs.NS + (time.time_ns() - wall_base)

        def tick_clock() -> None:
            while rclpy.ok():
                t = now_ns()
                msg = Clock()
                msg.clock.sec, msg.clock.nanosec = t // rs.NS, t % rs.NS
                clock_pub.publish(msg)
                time.sleep(0.005)

        threading.Thread(target=tick_clock, daemon=True).start()
        pubs_to_match = list(pubs.values()) + [clock_pub]
    else:
        pubs_to_match = list(pubs.values())
    deadline = time.monotonic() + 60
    while any(p.get_subscription_count() == 0 for p in pubs_to_match):
        if time.monotonic() > deadline:
            print("no subscribers", flush=True)
            sys.exit(1)
        time.sleep(0.05)
    time.sleep(0.5)  # let the reliable endpoints finish matching
    t0 = now_ns() + 500_000_000
    schedule = rs.make_schedule(t0, args.duration, args.joint_hz, args.camera_hz, faults)
    print(f"t0={t0}", flush=True)
    late = 0
    for m in schedule.messages:
        msg = rs.rclpy_message(m)  # built just in time: building thousands upfront delays the stream
        delay = (m.arrival_ns - now_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.1:
            late += 1
        pubs[m.kind].publish(msg)
    time.sleep(0.5)  # reliable delivery of the tail before the process goes away
    print(f"published {len(schedule.messages)} ({late} more than 100 ms late)", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
