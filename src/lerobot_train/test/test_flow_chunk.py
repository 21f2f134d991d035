"""flow_chunk: the flow-matching time convention, Euler sampling, RTC guidance in the sampler, the action queue,
checkpoint I/O, and that it learns a reaching task from pixels."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import flow_chunk_testlib as fl  # noqa: E402

from lerobot_train.configs.json_codec import ConfigError  # noqa: E402
from lerobot_train.policies.config import PreTrainedConfig  # noqa: E402
from lerobot_train.policies.flow_chunk.configuration_flow_chunk import FlowChunkConfig  # noqa: E402
from lerobot_train.policies.flow_chunk.modeling_flow_chunk import FlowChunkPolicy  # noqa: E402
from lerobot_train.policies.rtc import RTCAttentionSchedule, RTCConfig, RTCGuidanceJacobian, guided_velocity  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    with fl.one_torch_thread():
        yield


def tiny_policy(**overrides) -> FlowChunkPolicy:
    torch.manual_seed(0)
    return FlowChunkPolicy(fl.tiny_flow_config(**overrides)).eval()


def observation(batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    return {k: v for k, v in fl.reaching_samples(batch, seed).batch(slice(None)).items() if k != "action"}


def test_euler_sampler_follows_lerobots_time_convention():
    """With the exact velocity of the straight path from noise (t = 1) to a chunk (t = 0), v = (x_t - a) / t,
    Euler integration lands on the chunk whatever the step count."""
    for steps in (1, 3, 10):
        policy = tiny_policy(num_steps=steps)
        target = torch.randn(2, fl.CHUNK, 2)
        times = []

        def exact_velocity(x_t, time, obs_embedding):
            times.append(float(time[0]))
            return (x_t - target) / time.view(-1, 1, 1)

        policy.model.velocity = exact_velocity
        chunk = policy.predict_action_chunk(observation())
        assert torch.allclose(chunk, target, atol=1e-5)
        assert times == pytest.approx([1 - k / steps for k in range(steps)])


def test_training_target_is_noise_minus_actions():
    policy = tiny_policy().train()
    batch = fl.reaching_samples(4, 1).batch(slice(None))
    seen = {}

    def perfect_velocity(x_t, time, obs_embedding):
        # x_t = t * noise + (1 - t) * a  =>  noise - a = (x_t - a) / t
        seen["time"] = time
        return (x_t - batch["action"]) / time.view(-1, 1, 1)

    policy.model.velocity = perfect_velocity
    loss, info = policy(batch)
    assert loss.item() < 1e-10 and info == {}
    assert seen["time"].min() >= 0.001 and seen["time"].max() <= 1.0
    # padded rows do not count: a wrong velocity only there leaves the loss at 0
    pad = torch.zeros(4, fl.CHUNK, dtype=torch.bool)
    pad[:, -3:] = True
    policy.model.velocity = lambda x_t, time, emb: perfect_velocity(x_t, time, emb) + pad.unsqueeze(-1) * 5.0
    assert policy({**batch, "action_is_pad": pad})[0].item() < 1e-10
    assert policy(batch)[0].item() > 1.0


def test_rtc_guidance_pulls_the_frozen_rows_onto_the_previous_chunk():
    policy = tiny_policy(num_steps=10)
    obs = observation(batch=1)
    noise = torch.randn(1, fl.CHUNK, 2)
    free = policy.predict_action_chunk(obs, noise=noise)
    prev = free[:, 2:] + 1.5  # a previous chunk that disagrees with what the policy would do on its own
    guided = policy.predict_action_chunk(obs, inference_delay=3, prev_chunk_left_over=prev, execution_horizon=5,
                                         noise=noise)
    frozen_before = (free[:, :3] - prev[:, :3]).abs().mean()
    frozen_after = (guided[:, :3] - prev[:, :3]).abs().mean()
    assert frozen_after < 0.5 * frozen_before, (frozen_before, frozen_after)
    # rows past the horizon are free but not untouched (the network mixes rows)
    assert not torch.allclose(guided, free)
    # without a prefix it is the plain sampler
    assert torch.equal(policy.predict_action_chunk(obs, noise=noise), free)
    assert policy.supports_rtc()
    with pytest.raises(ValueError, match="RTC needs inference_delay"):
        policy.predict_action_chunk(obs, prev_chunk_left_over=prev)
    with pytest.raises(ValueError, match="prev_chunk has no rows"):
        policy.predict_action_chunk(obs, inference_delay=1, prev_chunk_left_over=prev[:, :0])


def test_new_policies_guide_like_upstream_lerobot_and_the_sampler_uses_the_configured_jacobian():
    """Default RTC settings: upstream LeRobot's (LINEAR, beta 10, identity-Jacobian guidance; see the config's
    comment for the benchmark figures). The sampler is Euler over guided_velocity with the configured Jacobian."""
    rtc = FlowChunkConfig().rtc_config
    assert (rtc.prefix_attention_schedule, rtc.max_guidance_weight, rtc.guidance_jacobian) == (
        RTCAttentionSchedule.LINEAR, 10.0, RTCGuidanceJacobian.IDENTITY)
    obs = observation(batch=1)
    noise = torch.randn(1, fl.CHUNK, 2)
    prev = torch.randn(1, 6, 2)
    chunks = {}
    for jacobian in RTCGuidanceJacobian:
        policy = tiny_policy(num_steps=4, rtc_config=RTCConfig(guidance_jacobian=jacobian))
        chunks[jacobian] = policy.predict_action_chunk(obs, inference_delay=2, prev_chunk_left_over=prev,
                                                       execution_horizon=5, noise=noise)
        with torch.no_grad():
            embedding = policy.model.encode_observation(obs)
            x = noise
            for step in range(4):
                t = 1.0 - step / 4
                time = torch.full((1,), t)
                v = guided_velocity(lambda x_t: policy.model.velocity(x_t, time, embedding), x, t, prev, 2, 5,
                                    "LINEAR", 10.0, jacobian)
                x = x - v / 4
        assert torch.allclose(chunks[jacobian], x, atol=1e-6)
    assert not torch.allclose(chunks[RTCGuidanceJacobian.VJP], chunks[RTCGuidanceJacobian.IDENTITY], atol=1e-3)


def test_select_action_executes_n_action_steps_per_chunk():
    policy = tiny_policy(n_action_steps=3)
    chunks = []
    predict = policy.predict_action_chunk

    def recording_predict(batch, **kwargs):
        chunks.append(predict(batch, **kwargs))
        return chunks[-1]

    policy.predict_action_chunk = recording_predict
    obs = observation()
    actions = [policy.select_action(obs) for _ in range(4)]
    assert len(chunks) == 2
    assert all(torch.equal(actions[i], chunks[0][:, i]) for i in range(3))
    assert torch.equal(actions[3], chunks[1][:, 0])
    policy.reset()
    policy.select_action(obs)
    assert len(chunks) == 3


def test_checkpoint_round_trip_and_config_errors(tmp_path):
    policy = tiny_policy(rtc_config=RTCConfig(prefix_attention_schedule="ONES", max_guidance_weight=4.0,
                                              execution_horizon=3))
    policy.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["type"] == "flow_chunk"
    assert saved["rtc_config"] == {"enabled": False, "prefix_attention_schedule": "ONES", "max_guidance_weight": 4.0,
                                   "execution_horizon": 3, "guidance_jacobian": "vjp"}
    loaded = FlowChunkPolicy.from_pretrained(tmp_path / "ckpt", strict=True)
    assert loaded.config.rtc_config.prefix_attention_schedule is RTCAttentionSchedule.ONES
    # A checkpoint written before guidance_jacobian existed keeps the guidance it was made with (the paper's VJP).
    older = {**saved, "rtc_config": {k: v for k, v in saved["rtc_config"].items() if k != "guidance_jacobian"}}
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert PreTrainedConfig.from_pretrained(tmp_path / "older.json").rtc_config.guidance_jacobian is RTCGuidanceJacobian.VJP
    obs = observation()
    noise = torch.randn(2, fl.CHUNK, 2)
    assert torch.equal(loaded.predict_action_chunk(obs, noise=noise), policy.predict_action_chunk(obs, noise=noise))

    saved["rtc_config"]["prefix_attention_schedule"] = "COSINE"
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match="rtc_config.prefix_attention_schedule must be one of"):
        PreTrainedConfig.from_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="n_obs_steps must be 1"):
        FlowChunkConfig(n_obs_steps=2)
    with pytest.raises(KeyError, match="flow_chunk observation lacks"):
        policy.predict_action_chunk({"observation.state": torch.zeros(1, 2)})


def test_internal_resize_makes_a_big_camera_cost_what_a_small_one_does():
    big = tiny_policy(image_shape=(3, 480, 640), image_resize_shape=(fl.IMAGE_HEIGHT, fl.IMAGE_WIDTH))
    small = tiny_policy()
    assert sum(p.numel() for p in big.parameters()) == sum(p.numel() for p in small.parameters())
    chunk = big.predict_action_chunk({fl.CAMERA: torch.rand(1, 3, 480, 640), "observation.state": torch.zeros(1, 2)})
    assert chunk.shape == (1, fl.CHUNK, 2)


@pytest.mark.slow
def test_flow_chunk_learns_to_reach_the_square_it_sees():
    """A few hundred steps on the synthetic reaching task: the loss drops and the predicted chunk ends at the
    square, which only the image shows (state alone leaves it at chance)."""
    train = fl.reaching_samples(1024, seed=1)
    held_out = fl.reaching_samples(64, seed=2)
    torch.manual_seed(0)
    policy = FlowChunkPolicy(fl.tiny_flow_config()).train()
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=2e-3, weight_decay=1e-4)
    losses = []
    generator = torch.Generator().manual_seed(3)
    for _ in range(300):
        loss, _ = policy(train.batch(torch.randint(0, 1024, (32,), generator=generator)))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-30:]) < 0.2 * np.mean(losses[:10]), (losses[:10], losses[-30:])

    policy.eval()
    chunk = policy.predict_action_chunk({k: v for k, v in held_out.batch(slice(None)).items() if k != "action"})
    reach_error = (chunk[:, -1] - held_out.target).abs().mean().item()
    chance_error = (held_out.target - held_out.target.mean(0)).abs().mean().item()
    assert reach_error < 0.3 * chance_error, (reach_error, chance_error)
    for axis in range(2):
        assert np.corrcoef(chunk[:, -1, axis].numpy(), held_out.target[:, axis].numpy())[0, 1] > 0.9
    # the chunk starts near the current state (the first row is 1/CHUNK of the way)
    assert (chunk[:, 0] - held_out.actions[:, 0]).abs().mean().item() < 0.3 * chance_error


def test_load_policy_runs_a_saved_checkpoint_in_dataset_units_with_rtc(tmp_path):
    """Saved with its processors (MEAN_STD state/actions in degrees), loaded through load_policy: chunks come back in
    dataset units, and an RTC prefix given in dataset units is honoured (normalised on the way in)."""
    from lerobot_train import load_policy
    from lerobot_train.policies.factory import make_pre_post_processors

    policy = tiny_policy()
    stats = {"observation.state": {"mean": np.array([20.0, -10.0], np.float32), "std": np.array([30.0, 5.0], np.float32)},
             "action": {"mean": np.array([45.0, 5.0], np.float32), "std": np.array([10.0, 2.0], np.float32)}}
    pre, post = make_pre_post_processors(policy.config, dataset_stats=stats)
    folder = tmp_path / "pretrained_model"
    policy.save_pretrained(folder)
    pre.save_pretrained(folder)
    post.save_pretrained(folder)

    loaded = load_policy(folder)
    assert loaded.supports_rtc() and loaded.config.type == "flow_chunk"
    obs = {k: v.numpy() for k, v in observation(batch=1).items()}
    obs["observation.state"] = obs["observation.state"] * 30.0 + 20.0
    torch.manual_seed(4)
    free = loaded.predict_action_chunk(obs)
    assert free.shape == (1, fl.CHUNK, 2) and free.dtype == np.float32
    assert abs(free[..., 0].mean() - 45.0) < 40.0  # dataset units, not normalised
    prev = free[:, 2:] + np.array([25.0, 5.0], np.float32)  # a previous chunk 2.5 std away
    torch.manual_seed(4)  # same initial noise
    guided = loaded.predict_action_chunk(obs, inference_delay=3, prev_chunk_left_over=prev, execution_horizon=5)
    before = np.abs(free[:, :3] - prev[:, :3]).mean()
    after = np.abs(guided[:, :3] - prev[:, :3]).mean()
    assert after < 0.5 * before, (before, after)
    assert loaded.select_action(obs).shape == (1, 2)
