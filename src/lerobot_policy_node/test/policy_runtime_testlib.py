"""Shared pieces of the policy runtime's unit tests (not a test module).

- `SimClock`: the runtime's clock in unit tests; "inference" advances it, so latencies are exact and nothing sleeps.
- `RampPolicy`: a policy whose chunk continues the measured state along a fixed velocity (row k = state + (k+1) v),
  taking a set time per inference. Its rows are known exactly, so queue/merge/delay accounting can be checked row by
  row. It records the RTC arguments it was given.
- `TinyFlowPolicy`: a real (tiny) torch flow-matching chunk policy sampled with Euler steps whose velocity goes
  through `lerobot_train.policies.rtc.guided_velocity` when the runtime passes a prefix, like the flow_chunk policy.
These stand in for `lerobot_train.load_policy(...)` objects: same call signature, dataset units in and out.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from lerobot_recorder.interface import parse_interface

INTERFACE_YAML = """
robot_type: test_arm
fps: {fps}
observation:
  state:
    topic: /arm/joint_states
    joints: [a, b]
    names: [a.pos, b.pos]
    transforms: rad2deg
{images}
action:
  topic: /arm/leader
  joints: [a, b]
  names: [a.pos, b.pos]
  transforms: rad2deg
  command:
    topic: /arm/joint_commands
    type: sensor_msgs/msg/JointState
task:
  text: test task
"""

CAMERA_YAML = """  images:
    wrist:
      topic: /arm/wrist/image_raw
      height: 8
      width: 12
"""


def make_interface(fps: int = 10, camera: bool = False, path: str = "test_arm.yaml"):
    return parse_interface(INTERFACE_YAML.format(fps=fps, images=CAMERA_YAML if camera else ""), path)


class SimClock:
    def __init__(self, start_s: float = 100.0) -> None:
        self.now_ns = int(start_s * 1e9)

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(round(seconds * 1e9))


def joint_state(positions_rad, stamp_ns: int, names=("a", "b")):
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 10**9)
    msg.name = list(names)
    msg.position = [float(v) for v in positions_rad]
    return msg


def image(stamp_ns: int, height: int = 8, width: int = 12, value: int = 100):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 10**9)
    msg.height, msg.width, msg.encoding, msg.step = height, width, "rgb8", width * 3
    msg.data = bytes([value]) * (height * width * 3)
    return msg


@dataclass
class RampPolicy:
    """row k = state + (k + 1) * velocity (dataset units), computed in `latency_s` of simulated time."""

    clock: SimClock
    rows: int = 10
    velocity: tuple = (1.0, -0.5)
    latency_s: float = 0.0
    fail_next: int = 0  # raise on this many next calls
    calls: list = field(default_factory=list)  # RTC kwargs of each call
    input_features: dict = field(default_factory=dict)
    output_features: dict = field(default_factory=dict)
    robot_interface: dict | None = None
    resets: int = 0

    def predict_action_chunk(self, observation, **rtc):
        self.calls.append(rtc)
        self.clock.advance(self.latency_s)
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("simulated CUDA error")
        state = np.asarray(observation["observation.state"], dtype=np.float64)[0]
        steps = np.arange(1, self.rows + 1)[:, None]
        return (state[None, :] + steps * np.asarray(self.velocity)[None, :])[None].astype(np.float32)

    def reset(self) -> None:
        self.resets += 1


@contextmanager
def one_torch_thread():
    """Tiny models run far faster on one thread on a busy 2-core machine (17 s -> 0.8 s measured for training)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class TinyFlowPolicy:
    """A tiny flow-matching chunk policy (LeRobot's convention: t = 1 noise -> t = 0 actions, v ~ noise - actions).

    The velocity field is an MLP over (x_t, t, state). Trained here for a few hundred steps to output chunks that
    continue the state along a ramp, which is enough for the sampler to produce smooth, state-dependent chunks;
    with a prefix it samples through `guided_velocity` (RTC)."""

    def __init__(self, rows: int = 10, action_dim: int = 2, steps: int = 5, seed: int = 0, train_steps: int = 300):
        import torch

        from lerobot_train.policies.rtc import RTCAttentionSchedule

        torch.manual_seed(seed)
        self.torch = torch
        self.rows, self.action_dim, self.steps = rows, action_dim, steps
        self.schedule = RTCAttentionSchedule.LINEAR
        self.net = torch.nn.Sequential(torch.nn.Linear(rows * action_dim + 1 + action_dim, 128), torch.nn.GELU(),
                                       torch.nn.Linear(128, rows * action_dim))
        self.generator = torch.Generator().manual_seed(seed)
        self.input_features, self.output_features, self.robot_interface = {}, {}, None
        with one_torch_thread():
            self._train(train_steps)

    def _velocity(self, x_t, t, state):
        torch = self.torch
        flat = torch.cat([x_t.flatten(1), t.expand(x_t.shape[0], 1), state], dim=1)
        return self.net(flat).view_as(x_t)

    def _targets(self, state):
        ramp = self.torch.arange(1, self.rows + 1, dtype=self.torch.float32)[None, :, None] * 0.05
        return state[:, None, :] + ramp

    def _train(self, steps: int) -> None:
        torch = self.torch
        optimizer = torch.optim.Adam(self.net.parameters(), lr=3e-3)
        for _ in range(steps):
            state = torch.rand(64, self.action_dim) * 2 - 1
            actions = self._targets(state)
            noise = torch.randn_like(actions)
            t = torch.rand(64, 1, 1)
            x_t = t * noise + (1 - t) * actions
            loss = ((self._velocity(x_t, t.view(64, 1), state) - (noise - actions)) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def predict_action_chunk(self, observation, inference_delay=None, prev_chunk_left_over=None,
                             execution_horizon=None):
        torch = self.torch
        from lerobot_train.policies.rtc import guided_velocity

        state = torch.as_tensor(np.asarray(observation["observation.state"]), dtype=torch.float32)
        prev = None if prev_chunk_left_over is None else torch.as_tensor(np.asarray(prev_chunk_left_over),
                                                                          dtype=torch.float32)
        x = torch.randn(1, self.rows, self.action_dim, generator=self.generator)
        dt = -1.0 / self.steps
        with torch.no_grad(), one_torch_thread():
            for i in range(self.steps):
                t = torch.tensor([[1.0 + i * dt]])
                v = guided_velocity(lambda x_t: self._velocity(x_t, t, state), x, t[0, 0], prev,
                                    inference_delay or 0, execution_horizon or self.rows, self.schedule, 5.0)
                x = x + dt * v
        return x.numpy()

    def reset(self) -> None:
        pass
