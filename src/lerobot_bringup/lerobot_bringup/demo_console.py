"""The demo's console on the robot graph: what an operator does by hand, done by one rclpy node.

It watches the simulated robot (joint states, camera, the scene's cube and its "reached" flag), sends the
recorder's RecordEpisode goals, moves the cube (`/scene/set_target`), sends the follower home with a
JointTrajectory, and starts, resets and stops the policy node (its RunPolicy action and `~/reset` service).
Nothing here decides anything about the task: the stages in `demo_record` / `demo_evaluate` do.

All waiting goes through `spin_until(predicate, timeout_s)`, which also calls `alive()` (the bringup's watchdog:
it raises when a required process has exited), so a crashed node ends the demo with its name, not a timeout.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

FOLLOWER_STATES = "/follower/joint_states"
LEADER_STATES = "/leader/joint_states"
FOLLOWER_TRAJECTORY = "/follower/joint_trajectory"
SCENE_TARGET = "/scene/target"
SCENE_SET_TARGET = "/scene/set_target"
SCENE_REACHED = "/scene/reached"
RECORDER = "/recorder"
POLICY = "/policy"


class ConsoleError(RuntimeError):
    """Something on the robot graph did not happen in time; the message says what and where to look."""


@dataclass
class Reached:
    """The first time the scene said "reached" after `since_ns` (node clock), if it did."""

    since_ns: int
    at_ns: int | None = None
    joints: dict[str, float] | None = None  # the follower's joint state when it was reached (suite units)


class DemoConsole:
    """One rclpy node with the subscriptions, publishers and clients the demo stages need.

    alive: called while waiting; raises when the robot graph broke (e.g. a required process exited).
    with_recorder / with_policy: create the recorder's and the policy node's clients.
    camera_topic: the camera to watch while waiting for the robot.
    """

    def __init__(self, alive: Callable[[], None], camera_topic: str = "/cameras/front/image_raw",
                 with_leader: bool = False, with_recorder: bool = True, with_policy: bool = False):
        import rclpy
        from geometry_msgs.msg import PointStamped
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Bool
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        from lerobot_drivers.qos import CAMERA_IMAGE_QOS, LATEST_JOINT_STATE_QOS, TRAJECTORY_QOS

        self._alive = alive
        rclpy.init()
        self.node = Node("lerobot_demo")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.counts: dict[str, int] = {FOLLOWER_STATES: 0, camera_topic: 0}
        self.follower: dict[str, float] = {}
        # Images reliably, as the recorder and the policy node read them (best effort loses ~1 MB samples). Only
        # until the robot is up: afterwards the console has no use for pictures and the CPU has better ones.
        self._camera_subscription = self.node.create_subscription(
            Image, camera_topic, lambda _m: self._count(camera_topic), CAMERA_IMAGE_QOS.profile())
        self.node.create_subscription(JointState, FOLLOWER_STATES, self._on_follower, LATEST_JOINT_STATE_QOS.profile())
        if with_leader:
            self.counts[LEADER_STATES] = 0
            self.node.create_subscription(JointState, LEADER_STATES, lambda _m: self._count(LEADER_STATES),
                                          LATEST_JOINT_STATE_QOS.profile())
        self.target: np.ndarray | None = None
        self.node.create_subscription(PointStamped, SCENE_TARGET, self._on_target, 10)
        self.reached_now = False
        self._reached: Reached | None = None
        self.node.create_subscription(Bool, SCENE_REACHED, self._on_reached, 10)
        self._set_target_pub = self.node.create_publisher(PointStamped, SCENE_SET_TARGET, 10)
        self._trajectory_pub = self.node.create_publisher(JointTrajectory, FOLLOWER_TRAJECTORY,
                                                          TRAJECTORY_QOS.profile())
        self._Trigger = Trigger
        self._PointStamped = PointStamped
        self._JointTrajectory = JointTrajectory
        self.record_client = None
        if with_recorder:
            from lerobot_msgs.action import RecordEpisode

            self.RecordEpisode = RecordEpisode
            self.record_client = ActionClient(self.node, RecordEpisode, f"{RECORDER}/record_episode")
            self.recorder_stop = self.node.create_client(Trigger, f"{RECORDER}/stop")
        self.policy_client = None
        if with_policy:
            from lerobot_msgs.action import RunPolicy

            self.RunPolicy = RunPolicy
            self.policy_client = ActionClient(self.node, RunPolicy, f"{POLICY}/run_policy")
            self.policy_reset = self.node.create_client(Trigger, f"{POLICY}/reset")

    # ------------------------------------------------------------------------------------------ plumbing
    def _count(self, topic: str) -> None:
        self.counts[topic] += 1

    def _on_follower(self, msg) -> None:
        self.counts[FOLLOWER_STATES] += 1
        self.follower.update({name: float(value) for name, value in zip(msg.name, msg.position)})

    def _on_target(self, msg) -> None:
        self.target = np.array([msg.point.x, msg.point.y, msg.point.z])

    def _on_reached(self, msg) -> None:
        self.reached_now = bool(msg.data)
        if msg.data and self._reached is not None and self._reached.at_ns is None:
            self._reached.at_ns = self.now_ns()
            self._reached.joints = dict(self.follower)

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            self._alive()
            self.executor.spin_once(timeout_sec=0.02)
        return predicate()

    def sleep(self, seconds: float) -> None:
        """Keep the callbacks running for `seconds`."""
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() >= end, seconds + 1.0)

    def _call(self, client, request, what: str, timeout_s: float = 30.0):
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise ConsoleError(f"{what}: service {client.srv_name} is not available")
        future = client.call_async(request)
        if not self.spin_until(future.done, timeout_s):
            raise ConsoleError(f"{what}: {client.srv_name} did not answer within {timeout_s:g} s")
        return future.result()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()

    # ------------------------------------------------------------------------------------------ the robot
    def wait_for_robot(self, timeout_s: float, log_hint: str) -> None:
        """Until every watched topic has delivered a few messages and the scene has announced its cube."""
        if not self.spin_until(lambda: all(c > 10 for c in self.counts.values()) and self.target is not None,
                               timeout_s):
            raise ConsoleError(f"the robot's topics did not start flowing within {timeout_s:g} s: message counts "
                               f"{self.counts}, cube position {'known' if self.target is not None else 'unknown'}; "
                               f"see {log_hint}")
        self.node.destroy_subscription(self._camera_subscription)

    def follower_joints(self, names) -> np.ndarray:
        return np.array([self.follower[name] for name in names])

    def set_target(self, x: float, y: float, timeout_s: float = 10.0) -> None:
        """Put the cube at (x, y) and wait until the scene reports it there."""
        msg = self._PointStamped()
        msg.header.frame_id = "base"
        msg.point.x, msg.point.y = float(x), float(y)
        wanted = np.array([x, y])

        def there() -> bool:
            return self.target is not None and bool(np.allclose(self.target[:2], wanted, atol=1e-6))

        self._set_target_pub.publish(msg)
        # Published again while waiting: the first message can go out before the scene's subscription matched.
        deadline = time.monotonic() + timeout_s
        while not self.spin_until(there, 0.5):
            if time.monotonic() > deadline:
                raise ConsoleError(f"the scene did not move the cube to ({x:.3f}, {y:.3f}) within {timeout_s:g} s")
            self._set_target_pub.publish(msg)

    def send_trajectory(self, joint_names, times_s, positions) -> None:
        """A JointTrajectory to the follower starting now (points at `times_s` from now, suite units)."""
        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectoryPoint

        msg = self._JointTrajectory()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.joint_names = list(joint_names)
        for t, row in zip(times_s, positions):
            point = JointTrajectoryPoint()
            point.positions = [float(v) for v in row]
            point.time_from_start = Duration(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
            msg.points.append(point)
        self._trajectory_pub.publish(msg)

    def wait_until_at(self, joint_names, goal, tolerance: float, timeout_s: float) -> bool:
        """Until every named follower joint is within `tolerance` of `goal` (suite units)."""
        goal = np.asarray(goal, float)
        return self.spin_until(lambda: bool(self.follower) and all(n in self.follower for n in joint_names) and
                               float(np.max(np.abs(self.follower_joints(joint_names) - goal))) <= tolerance, timeout_s)

    # ------------------------------------------------------------------------------------------ reaching
    def watch_reached(self) -> Reached:
        """Start watching /scene/reached from now on (the flag must turn true after this call)."""
        self._reached = Reached(since_ns=self.now_ns())
        return self._reached

    def stop_watching_reached(self) -> None:
        """The episode is over: a reach from now on does not count (the arm may still be moving)."""
        self._reached = None

    # ------------------------------------------------------------------------------------------ recorder
    def wait_for_recorder(self, timeout_s: float, log_hint: str) -> None:
        if not self.record_client.wait_for_server(timeout_sec=timeout_s):
            raise ConsoleError(f"the recorder's {RECORDER}/record_episode action is not available; see {log_hint}")

    def start_episode(self, task: str, duration_s: float, on_feedback=None, timeout_s: float = 60.0):
        """Send a RecordEpisode goal; returns the future of its result once the recorder accepted it."""
        goal = self.RecordEpisode.Goal(task=task, duration=float(duration_s))
        send = self.record_client.send_goal_async(goal, feedback_callback=on_feedback)
        if not self.spin_until(send.done, timeout_s) or not send.result().accepted:
            raise ConsoleError("the recorder did not accept the RecordEpisode goal")
        return send.result().get_result_async()

    def wait_recording(self, timeout_s: float = 60.0) -> None:
        """Until the recorder's status says it writes frames (a goal may first wait for the reset period)."""
        from lerobot_msgs.msg import RecorderStatus

        status: list = []
        sub = self.node.create_subscription(RecorderStatus, f"{RECORDER}/status", status.append, 10)
        try:
            if not self.spin_until(lambda: any(s.state == RecorderStatus.STATE_RECORDING for s in status), timeout_s):
                raise ConsoleError(f"the recorder did not start recording within {timeout_s:g} s")
        finally:
            self.node.destroy_subscription(sub)

    def stop_episode(self) -> None:
        """Finish and save the episode being recorded now (the recorder's ~/stop)."""
        response = self._call(self.recorder_stop, self._Trigger.Request(), "stopping the episode")
        if not response.success:
            raise ConsoleError(f"the recorder refused to stop the episode: {response.message}")

    def episode_result(self, future, timeout_s: float):
        if not self.spin_until(future.done, timeout_s):
            raise ConsoleError(f"the recorder did not finish the episode within {timeout_s:g} s")
        return future.result().result

    # ------------------------------------------------------------------------------------------ policy node
    def wait_for_policy(self, timeout_s: float, log_hint: str) -> None:
        if not self.policy_client.wait_for_server(timeout_sec=timeout_s):
            raise ConsoleError(f"the policy node's {POLICY}/run_policy action is not available within "
                               f"{timeout_s:g} s (still loading the checkpoint, or it failed); see {log_hint}")

    def reset_policy(self) -> None:
        response = self._call(self.policy_reset, self._Trigger.Request(), "resetting the policy")
        if not response.success:
            raise ConsoleError(f"the policy node refused ~/reset: {response.message}")

    def start_policy(self, task: str, duration_s: float, timeout_s: float = 30.0):
        """Send a RunPolicy goal; returns the goal handle once the policy node accepted it."""
        send = self.policy_client.send_goal_async(self.RunPolicy.Goal(task=task, duration=float(duration_s)))
        if not self.spin_until(send.done, timeout_s) or not send.result().accepted:
            raise ConsoleError("the policy node did not accept the RunPolicy goal (is it active?)")
        return send.result()

    def stop_policy(self, handle, timeout_s: float = 30.0):
        """Cancel a RunPolicy goal (the arm then holds) and return its result."""
        result = handle.get_result_async()
        if not result.done():
            cancel = handle.cancel_goal_async()
            self.spin_until(cancel.done, timeout_s)
        if not self.spin_until(result.done, timeout_s):
            raise ConsoleError(f"the policy node did not end the run within {timeout_s:g} s of the cancel")
        return result.result().result
