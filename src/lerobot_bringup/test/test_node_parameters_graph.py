"""Parameters are declared once per node, with descriptions, ranges and read-only flags that the ROS graph shows
(what `ros2 param describe` and rqt_reconfigure read: rcl_interfaces/srv/DescribeParameters), and that rclpy
enforces: a read-only or out-of-range value is refused over the graph, and at start-up it ends the node with a
one-line error and exit code 2."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.graph

# ROS's own parameters, declared by rclpy, not by the node's table.
ROS_PARAMETERS = {"use_sim_time", "start_type_description_service"}


def node_command(module: str, name: str, *params: str) -> list[str]:
    return [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={name}",
            *[a for p in params for a in ("-p", p)]]


class ParameterClient:
    def __init__(self, context):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.node = rclpy.create_node("parameter_test_client", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def call(self, service_type, name: str, request, timeout: float = 60.0):
        client = self.node.create_client(service_type, name)
        deadline = time.monotonic() + timeout
        while not client.wait_for_service(timeout_sec=0.2):
            assert time.monotonic() < deadline, f"no service {name}"
        future = client.call_async(request)
        while not future.done():
            assert time.monotonic() < deadline, f"no answer from {name}"
            self.executor.spin_once(timeout_sec=0.05)
        self.node.destroy_client(client)
        return future.result()

    def describe(self, node: str) -> dict:
        from rcl_interfaces.srv import DescribeParameters, ListParameters

        names = self.call(ListParameters, f"/{node}/list_parameters", ListParameters.Request()).result.names
        descriptors = self.call(DescribeParameters, f"/{node}/describe_parameters",
                                DescribeParameters.Request(names=list(names))).descriptors
        return {d.name: d for d in descriptors}

    def set(self, node: str, name: str, value: float):
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        parameter = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))
        return self.call(SetParameters, f"/{node}/set_parameters",
                         SetParameters.Request(parameters=[parameter])).results[0]


def test_descriptors_over_the_graph_and_their_enforcement(spawn, rclpy_context, tmp_path):
    from lerobot_drivers.nodes import arm_driver_node, camera_node, keyboard_teleop_node, sim_camera_node
    from lerobot_recorder.nodes import recorder_node

    nodes = {
        "recorder_under_test": (recorder_node, node_command("lerobot_recorder.nodes.recorder_node",
                                                            "recorder_under_test", "autostart:=false")),
        "arm_under_test": (arm_driver_node, node_command("lerobot_drivers.nodes.arm_driver_node", "arm_under_test",
                                                         "autostart:=false")),
        "camera_under_test": (camera_node, node_command("lerobot_drivers.nodes.camera_node", "camera_under_test",
                                                        "autostart:=false")),
        "scene_under_test": (sim_camera_node, node_command("lerobot_drivers.nodes.sim_camera_node",
                                                           "scene_under_test", "width:=64", "height:=48",
                                                           "fps:=2.0", "camera_name:=parameters_test")),
        "keys_under_test": (keyboard_teleop_node, node_command("lerobot_drivers.nodes.keyboard_teleop_node",
                                                               "keys_under_test", "input:=topic")),
    }
    for name, (_, command) in nodes.items():
        spawn(command, name)
    client = ParameterClient(rclpy_context)
    try:
        for name, (module, _) in nodes.items():
            described = client.describe(name)
            table = {spec.name: spec for spec in module.PARAMETERS}
            assert set(described) - ROS_PARAMETERS == set(table), name
            for parameter, spec in table.items():
                descriptor = described[parameter]
                assert descriptor.description == spec.description and descriptor.description, (name, parameter)
                assert descriptor.read_only == spec.read_only, (name, parameter)
                if spec.bounds is not None:
                    ranges = list(descriptor.floating_point_range) + list(descriptor.integer_range)
                    assert [(r.from_value, r.to_value) for r in ranges] == [spec.bounds], (name, parameter)

        arm = client.describe("arm_under_test")
        assert arm["autostart"].read_only and arm["rate_hz"].read_only
        assert (arm["rate_hz"].floating_point_range[0].from_value, arm["rate_hz"].floating_point_range[0].to_value) \
            == (1.0, 1000.0)
        assert "one of" in arm["arm"].additional_constraints and "koch_leader" in arm["arm"].additional_constraints
        # Read-only: refused over the graph (changing a port on a running driver would do nothing).
        refused = client.set("arm_under_test", "rate_hz", 50.0)
        assert not refused.successful and "read-only" in refused.reason
        # A dynamic parameter with a range: out of range refused, in range applied.
        assert not client.set("recorder_under_test", "min_free_disk_mb", -5.0).successful
        assert client.set("recorder_under_test", "min_free_disk_mb", 100.0).successful
    finally:
        client.node.destroy_node()


def test_bad_start_up_value_is_one_line_and_exit_code_2():
    result = subprocess.run(node_command("lerobot_drivers.nodes.arm_driver_node", "bad_rate", "rate_hz:=5000.0"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("arm_driver: ")
    assert "rate_hz" in result.stderr


def test_a_lifecycle_node_started_by_hand_configures_and_activates_itself(spawn, tmp_path):
    """Issue: `arm_driver` run by hand sat unconfigured and silent (autostart defaulted to false, and the pip
    environment has no `ros2 lifecycle`). One meaning of autostart for every lifecycle node, default on."""
    sim = spawn(["lerobot-servo-sim", "--arm", "so101_leader", "--link", str(tmp_path / "leader.port")], "sim")
    sim.wait_for_output("control_socket=", timeout=60)
    driver = spawn(node_command("lerobot_drivers.nodes.arm_driver_node", "by_hand", "arm:=so101_leader",
                                f"port:={tmp_path / 'leader.port'}", "sim_default_calibration:=true"), "driver")
    driver.wait_for_output("arm_driver ready", timeout=90)
    assert "active: publishing joint_states" in driver.output()

