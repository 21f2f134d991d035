"""Shared pieces of the arm-driver graph tests: simulator and driver processes, and an rclpy probe in the test.

Not a test module (pytest does not collect it); the graph test files import it from this directory.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lerobot_testing.processes import ManagedProcess

from lerobot_drivers.sim.servo_bus_simulator import send_command


def wait_for(predicate, timeout=15.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class Sim:
    process: ManagedProcess
    port: str
    socket: str

    def command(self, **request) -> dict:
        reply = send_command(self.socket, request)
        assert reply.get("ok"), f"simulator refused {request}: {reply}"
        return reply

    def state(self) -> dict:
        return self.command(cmd="state")["motors"]

    def torque(self) -> dict[str, bool]:
        return {name: m["torque_enabled"] for name, m in self.state().items()}

    def rad(self, motor: str) -> float:
        """True position in ROS units (rad; gripper fraction), from the simulator's own state."""
        value = self.state()[motor]["normalized"]
        return value / 100.0 if motor == "gripper" else math.radians(value)


def start_sim(processes: list, tmp: Path, arm: str, name: str) -> Sim:
    socket_path = str(tmp / f"{name}.sock")
    proc = ManagedProcess([sys.executable, "-m", "lerobot_drivers.sim.servo_bus_simulator", "--arm", arm,
                           "--control-socket", socket_path], tmp / f"{name}.log")
    processes.append(proc)
    proc.wait_for_output("control_socket=", timeout=30)
    port = proc.output().splitlines()[0].strip()
    return Sim(proc, port, socket_path)


def start_driver(processes: list, tmp: Path, name: str, namespace: str, port: str, arm: str,
                 parameters: dict | None = None, remappings: dict | None = None,
                 params_file: Path | None = None) -> ManagedProcess:
    args = [sys.executable, "-m", "lerobot_drivers.nodes.arm_driver_node", "--ros-args",
            "-r", f"__ns:=/{namespace}"]
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    args += ["-p", f"arm:={arm}", "-p", f"port:={port}",
            "-p", "sim_default_calibration:=true", "-p", "autostart:=true"]
    # A reply-timeout floor: this shared host's load average reaches 30, when a simulator process can miss the
    # SDK's ~50 ms reply window without any fault being injected.
    for key, value in {"min_packet_timeout_ms": 100.0, **(parameters or {})}.items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (list, tuple)):
            value = "[" + ",".join(str(v) for v in value) + "]"

        args += ["-p", f"{key}:={value}"]
    for source, target in (remappings or {}).items():
        args += ["-r", f"{source}:={target}"]
    proc = ManagedProcess(args, tmp / f"{name}.log")
    processes.append(proc)
    proc.wait_for_output("active: publishing joint_states", timeout=60)
    return proc


@dataclass
class Probe:
    """An rclpy node in the test process, spun in a background thread; messages are appended to lists."""

    context: object
    node: object = None
    joint_states: dict[str, list] = field(default_factory=dict)
    joint_goals: dict[str, list] = field(default_factory=dict)
    diagnostics: list = field(default_factory=list)
    _publishers: dict = field(default_factory=dict)

    def start(self, namespaces: list[str]) -> "Probe":
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import JointState

        self.node = Node("arm_graph_probe", context=self.context)
        for ns in namespaces:
            received = self.joint_states.setdefault(ns, [])
            self.node.create_subscription(JointState, f"/{ns}/joint_states",
                                          lambda msg, r=received: r.append((time.monotonic(), msg)), 100)
            goals = self.joint_goals.setdefault(ns, [])
            self.node.create_subscription(JointState, f"/{ns}/joint_goals",
                                          lambda msg, r=goals: r.append((time.monotonic(), msg)), 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 50)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = False
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        return self

    def _spin(self) -> None:
        while not self._stop:
            self.executor.spin_once(timeout_sec=0.05)

    def stop(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()

    def now_s(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def publisher(self, msg_type, topic: str, qos=10):
        if topic not in self._publishers:
            self._publishers[topic] = self.node.create_publisher(msg_type, topic, qos)
        return self._publishers[topic]

    def wait_for_subscriber(self, topic: str, timeout: float = 20.0) -> None:
        pub = self._publishers[topic]
        assert wait_for(lambda: pub.get_subscription_count() > 0, timeout), f"nobody subscribes to {topic}"

    def change_state(self, node_fqn: str, transition_label: str, timeout: float = 20.0) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP}
        client = self.node.create_client(ChangeState, f"{node_fqn}/change_state")
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"{node_fqn}/change_state not available"
            request = ChangeState.Request()
            request.transition.id = ids[transition_label]
            future = client.call_async(request)
            assert wait_for(future.done, timeout), f"{node_fqn}: {transition_label} did not answer"
            return future.result().success
        finally:
            self.node.destroy_client(client)

    def latest_status(self, name: str, since: float = 0.0):
        """Newest DiagnosticStatus with this exact name, from arrays stamped after `since` (node clock s)."""
        for array in reversed(list(self.diagnostics)):
            stamp = array.header.stamp.sec + array.header.stamp.nanosec * 1e-9
            if stamp < since:
                return None
            for status in array.status:
                if status.name == name:
                    return status
        return None

    def status_value(self, name: str, key: str, since: float = 0.0) -> str | None:
        status = self.latest_status(name, since)
        if status is None:
            return None
        return {kv.key: kv.value for kv in status.values}.get(key)


def level(status) -> int:
    return status.level[0] if isinstance(status.level, (bytes, bytearray)) else int(status.level)
