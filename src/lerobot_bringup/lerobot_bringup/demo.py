"""`make demo`: record a LeRobotDataset on the built-in simulated SO-101, then validate it.

Starts config/bringup/sim_so101_record.yaml (servo-bus simulators for follower and leader, their arm drivers,
leader -> follower teleop, the simulated camera and reaching scene, the scripted operator and the recorder),
waits until the robot's topics flow, sends one RecordEpisode goal per episode (the recorder's reset period runs
between them while the operator brings the arm home and the scene moves the target), stops everything
(the recorder closes the dataset), then prints where the dataset is and its validation summary.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_BRINGUP = "sim_so101_record.yaml"
TASK = "Reach the cube with the gripper."


def find_bringup(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    here = Path.cwd() / "config" / "bringup" / name
    if here.is_file():
        return here
    raise FileNotFoundError(f"bringup file {name!r} not found (run from the workspace root or pass a path)")


class DemoClient:
    """The operator's console: waits for the robot, sends RecordEpisode goals, shows their progress."""

    def __init__(self):
        import rclpy
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState

        from lerobot_drivers.qos import IMAGE_QOS
        from lerobot_msgs.action import RecordEpisode
        from lerobot_msgs.msg import RecorderStatus

        rclpy.init()
        self.node = Node("lerobot_demo")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.counts = {"/follower/joint_states": 0, "/leader/joint_states": 0, "/cameras/front/image_raw": 0}
        # Images reliably, as the recorder reads them: best-effort delivery of ~1 MB samples can lose most of them.
        for topic, msg_type, qos in (("/follower/joint_states", JointState, qos_profile_sensor_data),
                                     ("/leader/joint_states", JointState, qos_profile_sensor_data),
                                     ("/cameras/front/image_raw", Image, IMAGE_QOS)):
            self.node.create_subscription(msg_type, topic, lambda _m, t=topic: self._count(t), qos)
        self.status: RecorderStatus | None = None
        self.node.create_subscription(RecorderStatus, "/recorder/status", self._on_status, 10)
        self.client = ActionClient(self.node, RecordEpisode, "/recorder/record_episode")
        self.RecordEpisode = RecordEpisode

    def _count(self, topic: str) -> None:
        self.counts[topic] += 1

    def _on_status(self, msg) -> None:
        self.status = msg

    def spin_until(self, predicate, timeout_s: float, alive) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            alive()
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def record_episode(self, duration_s: float, alive):
        goal = self.RecordEpisode.Goal(task=TASK, duration=float(duration_s))
        last_print = [0.0]

        def on_feedback(feedback_msg):
            fb = feedback_msg.feedback
            if time.monotonic() - last_print[0] > 1.0:
                last_print[0] = time.monotonic()
                print(f"    {fb.elapsed:5.1f} s  {fb.frames:4d} frames  {fb.dropped} dropped", flush=True)

        send = self.client.send_goal_async(goal, feedback_callback=on_feedback)
        if not self.spin_until(send.done, 30.0, alive) or not send.result().accepted:
            raise RuntimeError("the recorder did not accept the RecordEpisode goal")
        result = send.result().get_result_async()
        # The goal may first wait for the reset period of the previous episode.
        if not self.spin_until(result.done, duration_s + 120.0, alive):
            raise RuntimeError("the episode did not finish in time")
        return result.result().result

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def run(output: Path, episodes: int, episode_time_s: float, reset_time_s: float, bringup_name: str) -> int:
    from lerobot_bringup.cli import BringupRunner
    from lerobot_dataset.validate import validate_dataset

    output = output.resolve()
    if output.exists():
        print(f"removing the previous demo dataset at {output}")
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    log_path = output.parent / f"{output.name}_processes.log"
    sim_dir = tempfile.mkdtemp(prefix="lerobot_sim_")
    overrides = {"sim_dir": sim_dir, "dataset_root": str(output), "reset_time_s": str(reset_time_s)}
    runner = BringupRunner(find_bringup(bringup_name), overrides, log_path=log_path)
    print(f"starting {len(runner.bringup.processes)} processes of {runner.bringup.path.name} "
          f"(their output: {log_path})", flush=True)

    def alive():
        ended = runner.exited()
        if ended:
            raise RuntimeError(f"process {ended[0]} exited with code {ended[1]}; see {log_path}")

    client = None
    results = []
    try:
        runner.start()
        client = DemoClient()
        print("waiting for the simulated robot (arm drivers, camera, recorder) ...", flush=True)
        if not client.spin_until(lambda: all(c > 10 for c in client.counts.values()), 120.0, alive):
            raise RuntimeError(f"robot topics did not start flowing: message counts {client.counts}; see {log_path}")
        if not client.client.wait_for_server(timeout_sec=120.0):
            raise RuntimeError(f"the recorder's /recorder/record_episode action is not available; see {log_path}")
        for index in range(episodes):
            print(f"episode {index + 1}/{episodes}: recording {episode_time_s:g} s "
                  f"(task: {TASK!r}; the scripted operator reaches for the cube)", flush=True)
            result = client.record_episode(episode_time_s, alive)
            results.append(result)
            print(f"  -> episode {result.episode_index}: {result.frames} frames, "
                  f"{'saved' if result.saved else 'discarded'} ({result.reason})", flush=True)
    except RuntimeError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
        print("stopping the processes (the recorder closes the dataset, drivers switch torque off) ...", flush=True)
        runner.stop()
        shutil.rmtree(sim_dir, ignore_errors=True)

    report = validate_dataset(output)
    info = json.loads((output / "meta" / "info.json").read_text())
    print()
    print(f"dataset: {output}")
    print(f"  {info['total_episodes']} episodes, {info['total_frames']} frames at {info['fps']} fps, "
          f"robot_type {info['robot_type']}")
    print(f"  features: {', '.join(k for k in info['features'])}")
    print(f"validation: {'OK' if report.ok else 'FAILED'}")
    print(report.format())
    saved = sum(1 for r in results if r.saved)
    if not report.ok or saved != episodes or info["total_episodes"] != episodes:
        print(f"demo failed: {saved}/{episodes} episodes saved, validation {'ok' if report.ok else 'failed'}",
              file=sys.stderr)
        return 1
    print(f"inspect it with: lerobot-dataset info {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lerobot-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("demo_output/sim_so101"),
                        help="dataset root to write (replaced if it exists)")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--episode-time", type=float, default=8.0, help="seconds per episode")
    parser.add_argument("--reset-time", type=float, default=3.0, help="seconds of reset between episodes")
    parser.add_argument("--bringup", default=DEFAULT_BRINGUP, help="bringup file (name in config/bringup or path)")
    args = parser.parse_args(argv)
    return run(args.output, args.episodes, args.episode_time, args.reset_time, args.bringup)


if __name__ == "__main__":
    sys.exit(main())
