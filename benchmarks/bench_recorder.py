#!/usr/bin/env python3
"""Recorder and bag-conversion throughput on this machine.

Live: a publisher process streams 3 cameras (640x480 rgb8 @ 30 Hz) and two arms' joint states (follower and
leader of a left and a right arm, 100 Hz) over DDS into the recorder node (another process) for --duration
seconds; one RecordEpisode goal covers the stream. Printed: frames written vs ticks, dropped ticks per stream and
reason, CPU of both processes (psutil, % of one core), frame delay (tick instant -> frame handed to the writer),
encoder backlog, save time.

Bag: the same streams for --bag-seconds are written into an MCAP bag (rosbags), converted with
lerobot-bag-convert's code, and compared with a reference measured in the same run: reading + decoding the bag's
images and encoding them with the same encoder (the writer's per-camera encoder threads), without alignment or
dataset writing. The ratio conversion fps / reference fps is the figure of merit (target >= 0.8).

    source env.bash && python benchmarks/bench_recorder.py --duration 20 --bag-seconds 10
    python benchmarks/bench_recorder.py --skip-bag --image-best-effort   # best-effort camera subscription

Camera topics are reliable (the interface default). On a busy 2-core machine a best-effort camera subscription
loses most 640x480 samples in DDS before the recorder can read them (compare published_per_camera with
received_since_start); --image-best-effort measures that case.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

NS = 1_000_000_000
ARMS = ("left", "right")
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


# ------------------------------------------------------------------------------------------------ setup
def interface_yaml(cameras: int, width: int, height: int, fps: int, image_depth: int = 0,
                   image_best_effort: bool = False) -> str:
    def sources(role: str) -> str:
        lines = []
        for arm in ARMS:
            names = [f"{arm}_{j}.pos" for j in JOINTS]
            lines.append(f"""      - topic: /bench/{arm}/{role}/joint_states
        joints: {JOINTS}
        names: {names}
        transforms: {{default: rad2deg, gripper: {{scale: 100}}}}""")
        return "\n".join(lines)

    qos_items = ([f"depth: {image_depth}"] if image_depth else []) + (["reliability: best_effort"] if image_best_effort else [])
    qos = f"\n      qos: {{{', '.join(qos_items)}}}" if qos_items else ""
    images = "\n".join(f"""    cam{i}:
      topic: /bench/cameras/cam{i}/image_raw
      height: {height}
      width: {width}{qos}""" for i in range(cameras))
    return f"""robot_type: bench_bimanual
fps: {fps}
observation:
  state:
    sources:
{sources("follower")}
  images:
{images}
action:
  sources:
{sources("leader")}
  command:
    topic: /bench/command
    type: sensor_msgs/msg/JointState
"""


def camera_frames(count: int, width: int, height: int, seed: int) -> list[np.ndarray]:
    """A moving scene (gradients, moving box, mild noise): encoder cost close to a real camera's."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))], -1).astype(np.int16)
    frames = []
    for i in range(count):
        img = base + rng.integers(-6, 7, size=base.shape, dtype=np.int16)
        cx, cy = (i * 9) % (width - 80), (i * 5) % (height - 80)
        img[cy:cy + 80, cx:cx + 80] = (220, 40, 40)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def dds_env() -> dict:
    env = os.environ.copy()
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "DEFAULT?sockets_size=4MB")
    env.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="bench-ros-log-"))
    return env


# -------------------------------------------------------------------------------------------- publisher
def run_publisher(args) -> None:
    """(subprocess) Publish the streams in real time with header stamps = now, for args.duration seconds."""
    import rclpy
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image, JointState

    rclpy.init()
    node = rclpy.create_node("bench_publisher")
    cams = [node.create_publisher(Image, f"/bench/cameras/cam{i}/image_raw", 5) for i in range(args.cameras)]
    joints = {(arm, role): node.create_publisher(JointState, f"/bench/{arm}/{role}/joint_states", 10)
              for arm in ARMS for role in ("follower", "leader")}
    frames = [camera_frames(30, args.width, args.height, seed) for seed in range(args.cameras)]
    payloads = [[f.tobytes() for f in fs] for fs in frames]
    deadline = time.monotonic() + 60
    while any(p.get_subscription_count() == 0 for p in cams + list(joints.values())):
        if time.monotonic() > deadline:
            sys.exit("bench publisher: no subscribers")
        time.sleep(0.05)
    time.sleep(0.5)
    print("publishing", flush=True)
    start = time.monotonic()
    cam_period, joint_period = 1.0 / args.camera_hz, 1.0 / args.joint_hz
    next_cam, next_joint = start, start
    cam_count = joint_count = 0
    while time.monotonic() - start < args.duration:
        now = time.monotonic()
        if now >= next_joint:
            stamp_ns = time.time_ns()
            for (arm, role), pub in joints.items():
                msg = JointState()
                msg.header.stamp = Time(sec=stamp_ns // NS, nanosec=stamp_ns % NS)
                msg.name = JOINTS
                msg.position = [0.3 * np.sin(joint_count * 0.01 + k) for k in range(5)] + [0.5]
                pub.publish(msg)
            joint_count += 1
            next_joint += joint_period
        if now >= next_cam:
            stamp_ns = time.time_ns()
            for i, pub in enumerate(cams):
                msg = Image()
                msg.header.stamp = Time(sec=stamp_ns // NS, nanosec=stamp_ns % NS)
                msg.height, msg.width, msg.encoding, msg.step = args.height, args.width, "rgb8", args.width * 3
                msg.data = payloads[i][cam_count % len(payloads[i])]
                pub.publish(msg)
            cam_count += 1
            next_cam += cam_period
        time.sleep(max(0.0, min(next_cam, next_joint) - time.monotonic()))
    print(f"published cameras={cam_count} joints={joint_count}", flush=True)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.try_shutdown()


# ----------------------------------------------------------------------------------------------- live
def bench_live(args, work: Path, interface_path: Path) -> dict:
    import psutil
    import rclpy
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor

    from lerobot_msgs.action import RecordEpisode
    from lerobot_msgs.msg import RecorderStatus

    env = dds_env()
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                            "FASTDDS_BUILTIN_TRANSPORTS", "ROS_LOG_DIR")})
    root = work / "live_ds"
    rec_log = open(work / "recorder.log", "w")
    recorder = subprocess.Popen(
        [sys.executable, "-m", "lerobot_recorder.nodes.recorder_node", "--ros-args",
         "-p", f"interface:={interface_path}", "-p", f"dataset_root:={root}", "-p", "autostart:=true",
         "-p", f"vcodec:={args.vcodec}", "-p", "reset_time_s:=0.0", "-p", f"latency_s:={args.latency}"],
        stdout=rec_log, stderr=subprocess.STDOUT, env=env)
    publisher = None
    rclpy.init()
    node = rclpy.create_node("bench_client")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    backlog = []
    node.create_subscription(RecorderStatus, "/recorder/status", lambda m: backlog.append(m.encoder_backlog), 10)
    try:
        client = ActionClient(node, RecordEpisode, "/recorder/record_episode")
        if not client.wait_for_server(timeout_sec=60):
            raise RuntimeError("recorder did not come up; see " + str(work / "recorder.log"))
        pub_log = open(work / "publisher.log", "w")
        publisher = subprocess.Popen(
            [sys.executable, __file__, "--publisher", "--duration", str(args.duration + 3), "--cameras",
             str(args.cameras), "--width", str(args.width), "--height", str(args.height)],
            stdout=pub_log, stderr=subprocess.STDOUT, env=env)
        while "publishing" not in (work / "publisher.log").read_text():
            executor.spin_once(timeout_sec=0.1)
            if publisher.poll() is not None:
                raise RuntimeError((work / "publisher.log").read_text())
        executor.spin_once(timeout_sec=1.5)  # streams settle
        procs = {"recorder": psutil.Process(recorder.pid), "publisher": psutil.Process(publisher.pid)}
        cpu0 = {k: p.cpu_times() for k, p in procs.items()}
        wall0 = time.monotonic()
        goal = client.send_goal_async(RecordEpisode.Goal(task="bench", duration=float(args.duration)))
        while not goal.done():
            executor.spin_once(timeout_sec=0.05)
        result_future = goal.result().get_result_async()
        end_of_episode = None
        while not result_future.done():
            executor.spin_once(timeout_sec=0.05)
            if end_of_episode is None and time.monotonic() - wall0 >= args.duration:
                end_of_episode = time.monotonic()
                cpu1 = {k: p.cpu_times() for k, p in procs.items()}
        wall1 = time.monotonic()
        if end_of_episode is None:
            end_of_episode, cpu1 = wall1, {k: p.cpu_times() for k, p in procs.items()}
        result = result_future.result().result
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        if publisher is not None:
            try:  # let it finish its stream and print what it published
                publisher.wait(20)
            except subprocess.TimeoutExpired:
                pass
        for proc in (publisher, recorder):
            if proc is not None and proc.poll() is None:
                proc.send_signal(2)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    span = end_of_episode - wall0
    cpu = {k: 100.0 * ((cpu1[k].user + cpu1[k].system) - (cpu0[k].user + cpu0[k].system)) / span for k in cpu0}
    log = (work / "recorder.log").read_text(errors="replace")
    match = re.search(r"episode \d+ saved .*", log)
    summary = match.group(0) if match else log[-2000:]
    delay = re.search(r"frame delay mean (\d+) ms max (\d+) ms", summary)
    drops = re.search(r"\[(.*?)\]; validation", summary)
    streams = re.search(r"streams since start: (.*)", log)
    published = re.search(r"published cameras=(\d+) joints=(\d+)", (work / "publisher.log").read_text())
    return {
        "frames": int(result.frames), "ticks": int(args.duration * args.fps), "saved": bool(result.saved),
        "dropped_ticks": int(args.duration * args.fps) - int(result.frames),
        "drops": drops.group(1) if drops else "none",
        "cpu_recorder_pct": round(cpu["recorder"], 1), "cpu_publisher_pct": round(cpu["publisher"], 1),
        "frame_delay_mean_ms": int(delay.group(1)) if delay else None,
        "frame_delay_max_ms": int(delay.group(2)) if delay else None,
        "encoder_backlog_max": max(backlog) if backlog else 0,
        "save_s": round(wall1 - end_of_episode, 2),
        "validation": "ok" if "validation ok" in summary else "FAILED",
        "published_per_camera": int(published.group(1)) if published else None,
        "published_per_joint_topic": int(published.group(2)) if published else None,
        "received_since_start": streams.group(1) if streams else None,
    }


# ------------------------------------------------------------------------------------------------- bag
def write_bench_bag(path: Path, args) -> int:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    T = store.types
    frames = [camera_frames(30, args.width, args.height, seed) for seed in range(args.cameras)]
    t0 = 1_800_000_000 * NS
    count = 0
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        cams = [writer.add_connection(f"/bench/cameras/cam{i}/image_raw", "sensor_msgs/msg/Image", typestore=store)
                for i in range(args.cameras)]
        joints = {(arm, role): writer.add_connection(f"/bench/{arm}/{role}/joint_states", "sensor_msgs/msg/JointState",
                                                     typestore=store)
                  for arm in ARMS for role in ("follower", "leader")}
        events = [(t0 + k * NS // args.joint_hz, "j", k) for k in range(args.bag_seconds * args.joint_hz)]
        events += [(t0 + 2_000_000 + k * NS // args.camera_hz, "c", k) for k in range(args.bag_seconds * args.camera_hz)]
        for stamp, kind, k in sorted(events):
            header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=stamp // NS, nanosec=stamp % NS),
                                              frame_id="")
            if kind == "j":
                for conn in joints.values():
                    msg = T["sensor_msgs/msg/JointState"](
                        header=header, name=JOINTS, position=np.array([0.3 * np.sin(k * 0.01 + j) for j in range(5)] + [0.5]),
                        velocity=np.zeros(0), effort=np.zeros(0))
                    writer.write(conn, stamp, store.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
            else:
                for i, conn in enumerate(cams):
                    img = frames[i][k % 30]
                    msg = T["sensor_msgs/msg/Image"](header=header, height=args.height, width=args.width, encoding="rgb8",
                                                     is_bigendian=0, step=args.width * 3, data=img.reshape(-1))
                    writer.write(conn, stamp, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))
                    count += 1
    return count


def reference_decode_encode(bag: Path, interface, vcodec: str, work: Path) -> tuple[float, int]:
    """Read + decode every image of the bag and encode it with the writer's per-camera encoder threads."""
    from rosbags.highlevel import AnyReader

    from lerobot_recorder.bag_convert import lerobot_typestore
    from lerobot_dataset.video import VideoEncoderConfig, VideoSegmentWorker

    config = VideoEncoderConfig(vcodec=vcodec)
    cameras = {c.topic: c for c in interface.images.values()}
    workers = {t: VideoSegmentWorker(c.name, interface.fps, c.width, c.height, config) for t, c in cameras.items()}
    start = time.monotonic()
    for topic, worker in workers.items():
        worker.begin(work / f"ref_{cameras[topic].name}.mp4")
    frames = 0
    with AnyReader([bag], default_typestore=lerobot_typestore()) as reader:
        connections = [c for c in reader.connections if c.topic in cameras]
        for connection, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            workers[connection.topic].put_frame(cameras[connection.topic].values_from_msg(msg))
            frames += 1
    for worker in workers.values():
        worker.end()
        worker.stop()
    return time.monotonic() - start, frames


def bench_bag(args, work: Path, interface_path: Path) -> dict:
    from lerobot_recorder.bag_convert import convert_bags
    from lerobot_recorder.interface import load_interface

    import lerobot_dataset.writer  # noqa: F401  (import time is not conversion throughput)

    interface = load_interface(interface_path)
    bag = work / "bench_bag"
    t = time.monotonic()
    images = write_bench_bag(bag, args)
    write_s = time.monotonic() - t
    size_mb = sum(f.stat().st_size for f in bag.rglob("*") if f.is_file()) / 1e6
    ref_s, ref_frames = reference_decode_encode(bag, interface, args.vcodec, work)
    t = time.monotonic()
    result = convert_bags([bag], interface, work / "bag_ds", task="bench", vcodec=args.vcodec, progress=False)
    conv_s = time.monotonic() - t
    frames = sum(e.frames for e in result.saved_episodes)
    camera_frames_written = frames * args.cameras
    ref_fps = ref_frames / ref_s
    conv_fps = camera_frames_written / conv_s
    return {
        "bag_images": images, "bag_mb": round(size_mb), "bag_write_s": round(write_s, 1),
        "reference_s": round(ref_s, 2), "reference_camera_fps": round(ref_fps, 1),
        "convert_s": round(conv_s, 2), "dataset_frames": frames, "convert_camera_fps": round(conv_fps, 1),
        "ratio": round(conv_fps / ref_fps, 3),
        "validation": "ok" if all(e.validation_ok for e in result.saved_episodes) else "FAILED",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="live episode length, seconds")
    parser.add_argument("--bag-seconds", type=int, default=10)
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--camera-hz", type=int, default=30)
    parser.add_argument("--joint-hz", type=int, default=100)
    parser.add_argument("--vcodec", default="libsvtav1")
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--image-depth", type=int, default=0, help="camera QoS depth in the interface (0 = default)")
    parser.add_argument("--image-best-effort", action="store_true",
                        help="best-effort camera subscription (default: reliable, as the interface files)")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-bag", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        run_publisher(args)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
    interface_path = work / "bench.yaml"
    interface_path.write_text(interface_yaml(args.cameras, args.width, args.height, args.fps, args.image_depth,
                                              args.image_best_effort))
    print(f"bench_recorder: {args.cameras} cameras {args.width}x{args.height}@{args.camera_hz}, 4 joint states "
          f"@{args.joint_hz} Hz, fps {args.fps}, codec {args.vcodec}, {os.cpu_count()} cores; work {work}")
    results = {}
    try:
        if not args.skip_live:
            results["live"] = bench_live(args, work, interface_path)
            print("live:", json.dumps(results["live"], indent=1))
        if not args.skip_bag:
            results["bag"] = bench_bag(args, work, interface_path)
            print("bag:", json.dumps(results["bag"], indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
