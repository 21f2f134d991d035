"""Configure-time assembly with a real flow_chunk checkpoint (trained here with lerobot_train's loop), and the real
LoadedPolicy running through the runtime: RTC guidance makes the new chunk agree with the rows it replaces."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import policy_checkpoint_testlib as ck  # noqa: E402
from policy_runtime_testlib import RampPolicy, SimClock, make_interface  # noqa: E402

from lerobot_policy_node.runtime.errors import ConfigurationError, IncompatibleCheckpointError  # noqa: E402
from lerobot_policy_node.runtime.serving import ServingConfig, build_served_policy  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained():
    return ck.cached_checkpoint()


def test_configure_builds_the_runtime_with_the_checkpoints_settings(trained):
    interface, checkpoint = trained
    served = build_served_policy(ServingConfig(str(checkpoint), str(interface), mode="rtc", warmup_inferences=2),
                                 SimClock())
    runtime = served.runtime
    assert served.compatibility.ok and served.compatibility.unchecked == []
    assert runtime.config.execution_horizon == 0  # the overlap with the old chunk
    assert runtime.runner.chunk_rows == 16  # rtc executes whole chunks
    assert runtime.latency.warmup == 2 and len(runtime.latency) == 0  # warm-up not in the statistics
    bound = runtime.gates.config.max_step
    assert bound is not None and bound.shape == (6,) and (bound > 0).all()
    assert any("from the action deltas of" in note for note in served.notes)  # from train_config.json's dataset
    sync = build_served_policy(ServingConfig(str(checkpoint), str(interface), mode="sync", warmup_inferences=1),
                               SimClock())
    assert sync.runtime.runner.chunk_rows == 8  # sync executes n_action_steps, as upstream's select_action


def test_configure_refuses_a_mismatched_interface_and_names_bad_inputs(trained, tmp_path):
    interface, checkpoint = trained
    other = ck.sim_interface(tmp_path, width=80, height=60)
    with pytest.raises(IncompatibleCheckpointError, match=r"\(3, 48, 64\) in the checkpoint, \(3, 60, 80\)"):
        build_served_policy(ServingConfig(str(checkpoint), str(other), warmup_inferences=0), SimClock())
    with pytest.raises(ConfigurationError, match="cannot load policy"):
        build_served_policy(ServingConfig(str(tmp_path / "nothing"), str(interface)), SimClock())
    with pytest.raises(ConfigurationError, match="not found"):
        build_served_policy(ServingConfig(str(checkpoint), "no_such_robot"), SimClock())
    with pytest.raises(ConfigurationError, match="max_boundary_jump needs 6 positive values"):
        build_served_policy(ServingConfig(str(checkpoint), str(interface), max_boundary_jump=(1.0,),
                                          warmup_inferences=0), SimClock())


def test_rtc_mode_needs_a_policy_that_supports_it(tmp_path):
    class NoRtc(RampPolicy):
        def supports_rtc(self) -> bool:
            return False

    clock = SimClock()
    policy = NoRtc(clock, input_features={"observation.state": {"type": "STATE", "shape": [2]}},
                   output_features={"action": {"type": "ACTION", "shape": [2]}})
    path = tmp_path / "arm.yaml"
    path.write_text(make_interface().source_text)
    with pytest.raises(ConfigurationError, match="does not support real-time chunking"):
        build_served_policy(ServingConfig("ramp", str(path), mode="rtc"), clock, load=lambda *a: policy)
    served = build_served_policy(ServingConfig("ramp", str(path), mode="async", warmup_inferences=1), clock,
                                 load=lambda *a: policy)
    assert served.runtime.config.mode == "async" and served.runtime.latency.warmup == 1


def test_rtc_with_the_real_policy_agrees_with_the_rows_it_replaces(trained):
    """The loaded flow_chunk policy through the runtime: consecutive chunks differ far less at the switch with RTC
    (guided_velocity inside the sampler, prefix from the runtime) than with naive async switching."""
    import torch

    from lerobot_train import load_policy

    sys.path.insert(0, str(Path(__file__).parent))
    from test_runtime_engine import chunks, drive, prime  # the simulated clock's drive loop of the engine tests

    from lerobot_policy_node.runtime.engine import PolicyRuntime, RuntimeConfig
    from lerobot_policy_node.runtime.gates import GateConfig, SafetyGates
    from lerobot_policy_node.runtime.observation import ObservationAssembler
    from lerobot_policy_node.runtime.policy_runner import PolicyRunner
    from lerobot_recorder.interface import load_interface

    interface_path, checkpoint = trained
    interface = load_interface(interface_path)
    policy = load_policy(checkpoint)
    gaps = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for mode in ("rtc", "async"):
            torch.manual_seed(0)
            clock = SimClock()
            runtime = PolicyRuntime(PolicyRunner(policy, interface), ObservationAssembler(interface),
                                    RuntimeConfig(mode=mode, aggregate_fn_name="latest_only", execution_horizon=8),
                                    SafetyGates(GateConfig(tuple(interface.action.names), max_first_row_deviation=0)),
                                    clock)
            robot = CameraRobot(runtime, clock, interface)
            prime(runtime, clock, robot)
            made = chunks(drive(runtime, clock, robot, 5.0, until=lambda r: len(chunks(r)) >= 6))
            differences = []
            for old, new in zip(made, made[1:]):
                k_old = list(old.row_times_ns).index(new.row_times_ns[0])
                n = min(len(old.rows) - k_old, 3)
                differences.append(np.abs(new.rows[:n] - old.rows[k_old:k_old + n]).mean())
            gaps[mode] = float(np.mean(differences))
    finally:
        torch.set_num_threads(threads)
    assert gaps["rtc"] < 0.6 * gaps["async"], gaps


class CameraRobot:
    """The engine tests' simulated robot, for the 6-joint sim interface with its camera (grey picture)."""

    def __init__(self, runtime, clock, interface) -> None:
        self.runtime, self.clock, self.interface = runtime, clock, interface
        self.position = np.radians(np.array(ck.SIM_START))
        self.position[5] = ck.SIM_START[5] / 100.0
        self.camera = next(iter(interface.images.values()))
        self._last = None

    def publish(self) -> None:
        from lerobot_drivers.image_conversion import numpy_to_image_msg
        from lerobot_recorder import ros_conversion as rc

        now = self.clock.now_ns
        if self._last is not None and now - self._last < 10_000_000:
            return
        self._last = now
        command = self.runtime.command_at(now)
        if command is not None:
            self.position = self.interface.action_to_ros(command)
        self.runtime.add_message(self.interface.state.sources[0].topic,
                                 rc.joint_state_msg(list(self.interface.state.joints), self.position, now), now)
        from builtin_interfaces.msg import Time

        picture = np.full((self.camera.height, self.camera.width, 3), 120, np.uint8)
        self.runtime.add_message(self.camera.topic, numpy_to_image_msg(
            picture, stamp=Time(sec=now // 10**9, nanosec=now % 10**9)), now)
