"""RTC guidance: prefix weights, the guidance weight, prefix padding, and the guided velocity.

The guided velocity is checked three ways: against upstream lerobot 0.4.4's `RTCProcessor.denoise_step` (oracle venv)
for x-independent velocities, where 0.4.4's identity-Jacobian shortcut is exact, and, with `jacobian="identity"`,
for x-dependent ones too; against an independent reference that builds the full Jacobian of a small random network
with `torch.autograd.functional.jacobian`; and by its padding behaviour.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lerobot_train.policies.rtc import (
    RTCAttentionSchedule,
    RTCConfig,
    RTCGuidanceJacobian,
    guidance_weight,
    guided_velocity,
    pad_prefix,
    prefix_weights,
)

SCHEDULES = list(RTCAttentionSchedule)


def test_prefix_weights_match_the_documented_examples():
    assert prefix_weights("LINEAR", 2, 6, 10).tolist() == pytest.approx([1, 1, .8, .6, .4, .2, 0, 0, 0, 0])
    assert prefix_weights("ZEROS", 2, 6, 10).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert prefix_weights("ONES", 2, 6, 10).tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    ramp = np.array([.8, .6, .4, .2])
    expected = [1, 1, *(ramp * np.expm1(ramp) / (math.e - 1)), 0, 0, 0, 0]
    assert prefix_weights(RTCAttentionSchedule.EXP, 2, 6, 10).tolist() == pytest.approx(expected)
    # The delay is clipped to the horizon; a horizon past the chunk lays the ramp over the rows that exist (as upstream).
    assert prefix_weights("linear", 8, 4, 6).tolist() == [1, 1, 1, 1, 0, 0]
    assert prefix_weights("LINEAR", 0, 9, 4).tolist() == pytest.approx([.8, .6, .4, .2])
    with pytest.raises(ValueError, match="unknown RTC prefix_attention_schedule 'cosine'"):
        prefix_weights("cosine", 0, 1, 2)


def test_guidance_weight_is_clipped_and_vanishes_at_the_clean_end():
    weights = guidance_weight(torch.tensor([1.0, 0.9, 0.5, 0.1, 0.0]), max_guidance_weight=5.0)
    tau = 1 - torch.tensor([0.9, 0.5, 0.1])
    unclipped = (1 - tau) / tau * ((1 - tau) ** 2 + tau**2) / (1 - tau) ** 2
    assert weights[0] == 5.0  # pure noise: the clip
    assert torch.allclose(weights[1:4], torch.minimum(unclipped, torch.tensor(5.0)))
    assert weights[4] == 0.0


def test_guidance_weight_is_strongest_at_both_ends_of_the_euler_steps():
    """The weight is symmetric in tau: it is NOT small at the last Euler steps (t -> 0) but about num_steps - 1
    there, and smallest (2) halfway. Only t = 0 exactly, never evaluated by an Euler sampler, gives 0."""
    steps = 10
    times = torch.tensor([1 - k / steps for k in range(steps)], dtype=torch.float64)
    weights = guidance_weight(times, 1e9, torch.float64)
    assert weights[-1] == pytest.approx(9.1111, abs=1e-4) and weights[1] == pytest.approx(weights[-1])
    assert weights.min() == pytest.approx(2.0) and int(weights.argmin()) == steps // 2
    assert torch.allclose(weights[1:], weights[1:].flip(0))


def test_pad_prefix_repeats_the_last_real_row_and_rejects_an_empty_prefix():
    prev = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    padded = pad_prefix(prev, 5)
    assert torch.equal(padded[:, :3], prev)
    assert torch.equal(padded[:, 3], prev[:, 2]) and torch.equal(padded[:, 4], prev[:, 2])
    assert torch.equal(pad_prefix(prev, 2), prev[:, :2])
    with pytest.raises(ValueError, match="prev_chunk has no rows"):
        pad_prefix(prev[:, :0], 4)
    with pytest.raises(ValueError, match="prev_chunk has no rows"):
        guided_velocity(lambda x: x, torch.zeros(1, 4, 2), 0.5, prev[:, :0], 0, 4)


class TinyDenoiser(nn.Module):
    """A random non-linear velocity field over a whole chunk (rows mix, so the Jacobian is dense)."""

    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(rows * dim, 32), nn.Tanh(), nn.Linear(32, rows * dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).view_as(x) + 0.3 * x**2


def reference_guided_velocity(net, x_t, time, prev, delay, horizon, schedule, beta):
    """The paper's formula with the Jacobian built explicitly, one sample at a time."""
    rows, dim = x_t.shape[1:]
    target = torch.cat([prev, prev[:, -1:].expand(-1, rows - prev.shape[1], -1)], dim=1)
    weights = prefix_weights(schedule, delay, min(horizon, prev.shape[1]), rows).view(rows, 1)
    tau = 1.0 - time
    c = (1 - tau) / tau if tau > 0 else math.inf
    w = min(beta, c * ((1 - tau) ** 2 + tau**2) / (1 - tau) ** 2) if tau < 1 else 0.0
    out = []
    for b in range(x_t.shape[0]):
        def denoised(x):
            return x - time * net(x.unsqueeze(0))[0]

        jac = torch.autograd.functional.jacobian(denoised, x_t[b]).reshape(rows * dim, rows * dim)
        v = net(x_t[b : b + 1])[0]
        err = ((target[b] - denoised(x_t[b])) * weights).reshape(rows * dim)
        out.append(v - w * (jac.T @ err).reshape(rows, dim))
    return torch.stack(out)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("time", [1.0, 0.7, 0.2])
def test_guided_velocity_equals_the_formula_through_a_network(schedule, time):
    torch.manual_seed(0)
    rows, dim = 8, 3
    net = TinyDenoiser(rows, dim).double()
    x_t = torch.randn(2, rows, dim, dtype=torch.float64)
    prev = torch.randn(2, 5, dim, dtype=torch.float64)
    expected = reference_guided_velocity(net, x_t, time, prev, delay=2, horizon=6, schedule=schedule, beta=5.0)
    with torch.no_grad():  # how a policy calls it: no graph outside, grad only inside the step
        got = guided_velocity(net, x_t, time, prev, inference_delay=2, execution_horizon=6, schedule=schedule,
                              max_guidance_weight=5.0)
    assert not got.requires_grad
    assert torch.allclose(got, expected, atol=1e-10), (got - expected).abs().max()
    # The Jacobian matters: an identity-Jacobian shortcut (upstream 0.4.4) gives a different answer here.
    v = net(x_t).detach()
    shortcut_target = pad_prefix(prev, rows)
    weights = prefix_weights(schedule, 2, 5, rows).view(1, rows, 1).double()
    shortcut = v - guidance_weight(time, 5.0, torch.float64) * (shortcut_target - (x_t - time * v)) * weights
    if guidance_weight(time, 5.0) > 0:
        assert not torch.allclose(got, shortcut, atol=1e-4)


@pytest.mark.parametrize("time", [1.0, 0.7, 0.2])
def test_identity_jacobian_guidance_is_the_weighted_error_itself(time):
    """jacobian="identity" (upstream LeRobot's RTCProcessor): v - w * (y - (x_t - t v)) * W, no autograd."""
    torch.manual_seed(5)
    rows, dim = 8, 3
    net = TinyDenoiser(rows, dim).double()
    x_t = torch.randn(2, rows, dim, dtype=torch.float64)
    prev = torch.randn(2, 5, dim, dtype=torch.float64)
    with torch.no_grad():
        got = guided_velocity(net, x_t, time, prev, 2, 6, "LINEAR", 5.0, jacobian="identity")
        paper = guided_velocity(net, x_t, time, prev, 2, 6, "LINEAR", 5.0, jacobian=RTCGuidanceJacobian.VJP)
        v = net(x_t)
    weights = prefix_weights("LINEAR", 2, 5, rows).view(1, rows, 1).double()
    expected = v - guidance_weight(time, 5.0, torch.float64) * (pad_prefix(prev, rows) - (x_t - time * v)) * weights
    assert torch.allclose(got, expected, atol=1e-12)
    assert not torch.allclose(got, paper, atol=1e-4)  # the network depends on x_t: the Jacobian is not I
    with torch.inference_mode():  # no autograd needed
        assert torch.allclose(guided_velocity(net, x_t, time, prev, 2, 6, "LINEAR", 5.0, jacobian="IDENTITY"), got)


def test_identity_jacobian_pins_the_frozen_rows_where_a_flat_denoiser_gives_the_vjp_little_to_pass_back():
    """A denoiser whose clean-chunk prediction hardly depends on x_t (a confident policy: x1_hat = a + eps x_t)
    has a Jacobian of eps: sampled with the paper's VJP the frozen rows barely move towards the prefix, with the
    identity form they land on it. Euler sampling, 10 steps, LeRobot time."""
    torch.manual_seed(6)
    rows, dim, eps, steps = 8, 2, 0.05, 10
    own = torch.randn(1, rows, dim)  # what the policy would do on its own
    prev = own[:, :6] + 1.0  # the previous chunk disagrees by 1 everywhere

    def velocity(x):  # x1_hat = x - t v = own + eps * x  =>  v = (x - own - eps * x) / t
        return (x - own - eps * x) / time

    frozen_miss = {}
    for jacobian in RTCGuidanceJacobian:
        x = torch.randn(1, rows, dim, generator=torch.Generator().manual_seed(0))
        for k in range(steps):
            time = 1.0 - k / steps
            with torch.no_grad():
                x = x - guided_velocity(velocity, x, time, prev, 3, 6, "LINEAR", 10.0, jacobian) / steps
        frozen_miss[jacobian] = float((x[:, :3] - prev[:, :3]).abs().mean())
    # The previous chunk disagreed by 1.0: identity leaves < 15 % of it on the frozen rows, the VJP > 50 %.
    assert frozen_miss[RTCGuidanceJacobian.IDENTITY] < 0.15, frozen_miss
    assert frozen_miss[RTCGuidanceJacobian.VJP] > 0.5, frozen_miss


def test_guided_velocity_without_a_prefix_is_the_plain_velocity_and_leaves_parameters_alone():
    torch.manual_seed(1)
    net = TinyDenoiser(6, 2)
    x_t = torch.randn(3, 6, 2)
    with torch.no_grad():
        assert torch.equal(guided_velocity(net, x_t, 0.5, None, 1, 4), net(x_t))
        guided_velocity(net, x_t, 0.5, torch.randn(3, 4, 2), 1, 4)
    assert all(p.grad is None for p in net.parameters())


def test_guided_velocity_pads_a_short_prefix_with_its_last_row():
    """A short prefix behaves exactly as the same prefix padded by repeating its last row, with the soft mask
    ending where the real rows end; zero padding (what upstream 0.4.4's runtime fed in) would differ."""
    torch.manual_seed(2)
    net = TinyDenoiser(10, 2)
    x_t = torch.randn(1, 10, 2)
    prev = torch.randn(1, 4, 2) + 3.0
    with torch.no_grad():
        short = guided_velocity(net, x_t, 0.6, prev, 1, 8, "ONES", 10.0)
        repeated = guided_velocity(net, x_t, 0.6, pad_prefix(prev, 10), 1, 4, "ONES", 10.0)
        assert torch.allclose(short, repeated, atol=1e-6)
        # Padding the prefix to the execution horizon by repetition pulls rows 4..7 towards the last action ...
        to_horizon = guided_velocity(net, x_t, 0.6, pad_prefix(prev, 8), 1, 8, "ONES", 10.0)
        zeros = torch.cat([prev, torch.zeros(1, 4, 2)], dim=1)
        zero_padded = guided_velocity(net, x_t, 0.6, zeros, 1, 8, "ONES", 10.0)
    # ... and zero padding pulls them towards 0 instead.
    v = net(x_t).detach()
    last = prev[:, -1:]
    assert ((to_horizon - v)[:, 4:8] * (x_t[:, 4:8] - 0.6 * v[:, 4:8] - last)).sum() > 0
    assert not torch.allclose(to_horizon, zero_padded)


def test_guided_velocity_accepts_unbatched_inputs_and_per_sample_times():
    torch.manual_seed(3)
    net = TinyDenoiser(6, 2)
    x_t = torch.randn(2, 6, 2)
    prev = torch.randn(4, 2)
    with torch.no_grad():
        batched = guided_velocity(net, x_t, torch.tensor([0.3, 0.8]), prev, 1, 5, "EXP", 5.0)
        first = guided_velocity(lambda x: net(x.unsqueeze(0))[0], x_t[0], 0.3, prev, 1, 5, "EXP", 5.0)
        second = guided_velocity(net, x_t[1:], 0.8, prev.unsqueeze(0), 1, 5, "EXP", 5.0)
    assert torch.allclose(batched[0], first, atol=1e-6) and torch.allclose(batched[1], second[0], atol=1e-6)


def test_guided_velocity_rejects_bad_inputs_with_clear_errors():
    x_t = torch.zeros(1, 6, 2)
    with pytest.raises(ValueError, match="prev_chunk has action_dim 3, the chunk being sampled has 2"):
        guided_velocity(lambda x: x, x_t, 0.5, torch.zeros(1, 4, 3), 0, 4)
    with pytest.raises(ValueError, match="inference_delay must be >= 0"):
        guided_velocity(lambda x: x, x_t, 0.5, torch.zeros(1, 4, 2), -1, 4)
    with pytest.raises(ValueError, match="max_guidance_weight must be > 0"):
        guided_velocity(lambda x: x, x_t, 0.5, torch.zeros(1, 4, 2), 0, 4, "EXP", 0.0)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="not torch.inference_mode"):
        guided_velocity(lambda x: x, x_t, 0.5, torch.zeros(1, 4, 2), 0, 4)
    with pytest.raises(ValueError, match="max_guidance_weight must be > 0"):
        RTCConfig(max_guidance_weight=0)
    assert RTCConfig(prefix_attention_schedule="exp").prefix_attention_schedule is RTCAttentionSchedule.EXP
    with pytest.raises(ValueError, match="unknown RTC guidance_jacobian 'transpose'; expected one of vjp, identity"):
        guided_velocity(lambda x: x, x_t, 0.5, torch.zeros(1, 4, 2), 0, 4, jacobian="transpose")
    with pytest.raises(ValueError, match="unknown RTC guidance_jacobian 'exact'"):
        RTCConfig(guidance_jacobian="exact")
    assert RTCConfig(guidance_jacobian="Identity").guidance_jacobian is RTCGuidanceJacobian.IDENTITY
    assert RTCConfig().guidance_jacobian is RTCGuidanceJacobian.VJP  # what configs without the field were made with


@pytest.mark.oracle
def test_guided_velocity_and_prefix_weights_equal_upstream_for_x_independent_velocities(tmp_path):
    from oracle import oracle_env

    rng = np.random.default_rng(4)
    cases: dict[str, np.ndarray] = {}
    expected_weights: dict[str, torch.Tensor] = {}
    for schedule in SCHEDULES:
        for start, end, total in [(0, 0, 5), (2, 6, 10), (3, 3, 8), (5, 2, 8), (1, 12, 10), (0, 10, 10), (4, 9, 12)]:
            name = f"weights|{schedule.value}|{start}|{end}|{total}"
            cases[name] = np.zeros(0)
            expected_weights[name] = prefix_weights(schedule, start, end, total)
    ours: dict[str, torch.Tensor] = {}
    i = 0
    for schedule_index, schedule in enumerate(SCHEDULES):
        for time, delay, horizon, prefix_rows, beta in [(1.0, 2, 6, 8, 10.0), (0.55, 1, 10, 5, 5.0),
                                                        (0.1, 3, 4, 10, 10.0), (0.0, 0, 8, 10, 1.0), (0.8, 2, 3, 7, 2.0)]:
            x_t = rng.standard_normal((2, 10, 3)).astype(np.float32)
            velocity = rng.standard_normal((2, 10, 3)).astype(np.float32)
            prev = rng.standard_normal((2, prefix_rows, 3)).astype(np.float32)
            cases.update({f"{i}|x_t": x_t, f"{i}|velocity": velocity, f"{i}|prev": prev,
                          f"{i}|meta": np.array([time, delay, horizon, beta, schedule_index], dtype=np.float64)})
            with torch.no_grad():
                ours[f"{i}|guided"] = guided_velocity(lambda x, v=torch.from_numpy(velocity): v, torch.from_numpy(x_t),
                                                      time, torch.from_numpy(prev), delay, horizon, schedule, beta)
            i += 1
    # A denoiser that depends on x_t: upstream's shortcut is our jacobian="identity", not the paper's VJP.
    for time, delay, horizon, prefix_rows, beta, schedule in [(0.9, 2, 6, 8, 10.0, "LINEAR"), (0.3, 3, 8, 6, 10.0, "EXP"),
                                                              (0.1, 1, 10, 10, 5.0, "ONES")]:
        x_t, velocity = (rng.standard_normal((2, 10, 3)).astype(np.float32) for _ in range(2))
        matrix = rng.standard_normal((3, 3)).astype(np.float32)
        prev = rng.standard_normal((2, prefix_rows, 3)).astype(np.float32)
        cases.update({f"{i}|x_t": x_t, f"{i}|velocity": velocity, f"{i}|prev": prev, f"{i}|velocity_matrix": matrix,
                      f"{i}|meta": np.array([time, delay, horizon, beta, SCHEDULES.index(RTCAttentionSchedule(schedule))],
                                            dtype=np.float64)})

        def denoiser(x, v=torch.from_numpy(velocity), m=torch.from_numpy(matrix)):
            return v + x @ m

        with torch.no_grad():
            ours[f"{i}|guided"] = guided_velocity(denoiser, torch.from_numpy(x_t), time, torch.from_numpy(prev), delay,
                                                  horizon, schedule, beta, jacobian="identity")
            paper = guided_velocity(denoiser, torch.from_numpy(x_t), time, torch.from_numpy(prev), delay, horizon,
                                    schedule, beta, jacobian="vjp")
        assert not torch.allclose(paper, ours[f"{i}|guided"], atol=1e-3)
        i += 1
    np.savez(tmp_path / "cases.npz", **cases)
    oracle_env.run_oracle("rtc_upstream.py", str(tmp_path / "cases.npz"), str(tmp_path / "out.npz"))
    upstream = np.load(tmp_path / "out.npz")
    for name, weights in expected_weights.items():
        np.testing.assert_allclose(weights.numpy(), upstream[name], atol=1e-7, err_msg=name)
    for name, guided in ours.items():
        np.testing.assert_allclose(guided.numpy(), upstream[name], atol=1e-5, err_msg=name)
