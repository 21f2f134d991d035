"""Diffusion policy behaviour that needs no oracle: config generations, observation history, execution window,
gradient checkpointing, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import flow_chunk_testlib as fl  # noqa: E402  (one_torch_thread)

from lerobot_train.configs.json_codec import ConfigError  # noqa: E402
from lerobot_train.policies.config import PreTrainedConfig  # noqa: E402
from lerobot_train.policies.diffusion.configuration_diffusion import DiffusionConfig  # noqa: E402
from lerobot_train.policies.diffusion.modeling_diffusion import DiffusionPolicy  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    with fl.one_torch_thread():
        yield

# An environment-state input instead of a camera keeps these tests free of ResNets (the oracle tests cover cameras).
FEATURES = {
    "input_features": {"observation.state": {"type": "STATE", "shape": [2]},
                       "observation.environment_state": {"type": "ENV", "shape": [3]}},
    "output_features": {"action": {"type": "ACTION", "shape": [2]}},
}
CAMERA = {"observation.images.top": {"type": "VISUAL", "shape": [3, 32, 32]}}
TINY = {"type": "diffusion", "device": "cpu", **FEATURES, "down_dims": [8, 16], "kernel_size": 3, "n_groups": 4,
        "diffusion_step_embed_dim": 8, "spatial_softmax_num_keypoints": 4, "num_inference_steps": 4}


def tiny_policy(**overrides) -> DiffusionPolicy:
    torch.manual_seed(0)
    return DiffusionPolicy(DiffusionConfig.from_dict({**TINY, **overrides}))


def test_v06_config_json_loads_with_its_own_values(tmp_path):
    """A config.json as upstream v0.6 writes it (64/32, BatchNorm, ImageNet weights named, one encoder per camera,
    gradient_checkpointing) gives those values, and the policy builds for loading without a download."""
    v06 = {**TINY, "input_features": {**FEATURES["input_features"], **CAMERA}, "horizon": 64, "n_action_steps": 32,
           "use_group_norm": False,
           "pretrained_backbone_weights": "ResNet18_Weights.IMAGENET1K_V1", "use_separate_rgb_encoder_per_camera": True,
           "gradient_checkpointing": True, "drop_n_last_frames": 7}
    (tmp_path / "config.json").write_text(json.dumps(v06))
    config = PreTrainedConfig.from_pretrained(tmp_path)
    assert isinstance(config, DiffusionConfig)
    assert (config.horizon, config.n_action_steps, config.use_group_norm) == (64, 32, False)
    assert config.pretrained_backbone_weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert config.to_dict()["gradient_checkpointing"] is True
    # Building it to receive a checkpoint's weights must not fetch ImageNet weights (offline here).
    from lerobot_train.policies.backbones.resnet import pretrained_backbone_weights_disabled

    with pretrained_backbone_weights_disabled():
        policy = DiffusionPolicy(config)
    assert isinstance(policy.diffusion.rgb_encoder[0].backbone[1], torch.nn.BatchNorm2d)
    policy.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["horizon"] == 64


def test_config_errors_name_the_field(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "unet_width": 3}))
    with pytest.raises(ConfigError, match="unknown key.*unet_width"):
        PreTrainedConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"horizon \(10\) must be a multiple of 2\*\*len\(down_dims\) = 4"):
        DiffusionConfig.from_dict({**TINY, "horizon": 10})
    with pytest.raises(ValueError, match="n_action_steps"):
        DiffusionConfig.from_dict({**TINY, "n_action_steps": 16})
    with pytest.raises(ValueError, match="use_group_norm replaces"):
        DiffusionConfig.from_dict({**TINY, "pretrained_backbone_weights": "ResNet18_Weights.IMAGENET1K_V1"})
    with pytest.raises(ValueError, match="noise_scheduler_type"):
        DiffusionConfig.from_dict({**TINY, "noise_scheduler_type": "PNDM"})
    # gradient_checkpointing (a v0.6 key) stays out of files when off: upstream 0.4.x would reject it.
    assert "gradient_checkpointing" not in DiffusionConfig.from_dict(TINY).to_dict()


def test_history_is_copy_padded_at_episode_start_and_slides():
    policy = tiny_policy(num_inference_steps=2).eval()
    seen: list[torch.Tensor] = []
    conditioning = policy.diffusion.global_conditioning

    def recording_conditioning(history):
        seen.append(history["observation.state"].clone())
        return conditioning(history)

    policy.diffusion.global_conditioning = recording_conditioning

    def obs(value: float) -> dict[str, torch.Tensor]:
        return {"observation.state": torch.full((1, 2), value), "observation.environment_state": torch.rand(1, 3)}

    for tick in range(9):
        policy.select_action(obs(float(tick)))
    # chunks are generated at ticks 0 and 8 (n_action_steps = 8)
    assert [h[0, :, 0].tolist() for h in seen] == [[0.0, 0.0], [7.0, 8.0]]
    policy.reset()
    policy.select_action(obs(5.0))
    assert seen[-1][0, :, 0].tolist() == [5.0, 5.0]


def test_chunk_is_the_executed_window_and_history_can_be_given():
    policy = tiny_policy(horizon=16, n_action_steps=6).eval()
    trajectory = torch.randn(1, 16, 2)
    policy.diffusion.conditional_sample = lambda batch_size, global_cond, noise=None: trajectory
    history = {"observation.state": torch.zeros(1, 2, 2), "observation.environment_state": torch.rand(1, 2, 3)}
    chunk = policy.predict_action_chunk(history)
    assert torch.equal(chunk, trajectory[:, 1:7])  # n_obs_steps - 1 = 1 row of the past is skipped
    with pytest.raises(ValueError, match="history has 3 steps, the policy needs n_obs_steps=2"):
        policy.predict_action_chunk({"observation.state": torch.zeros(1, 3, 2),
                                     "observation.environment_state": torch.rand(1, 3, 3)})
    with pytest.raises(KeyError, match="observation.environment_state"):
        policy.predict_action_chunk({"observation.state": torch.zeros(1, 2)})


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = {"observation.state": torch.rand(2, 2, 2), "observation.environment_state": torch.rand(2, 2, 3),
             "action": torch.rand(2, 16, 2), "action_is_pad": torch.zeros(2, 16, dtype=torch.bool)}
    grads = []
    for checkpointing in (False, True):
        policy = tiny_policy(gradient_checkpointing=checkpointing).train()
        torch.manual_seed(1)
        loss, info = policy(batch)
        loss.backward()
        assert info == {}
        grads.append(torch.cat([p.grad.flatten() for p in policy.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graph capture needs a CUDA device")
def test_cuda_graph_sampling_equals_eager_sampling():
    """DDIM is deterministic: the captured denoising loop gives the eager loop's chunk (fp32), and replays see new
    inputs (a second observation gives a different chunk)."""
    policy = tiny_policy(noise_scheduler_type="DDIM").to("cuda").eval()
    history = {"observation.state": torch.rand(1, 2, 2, device="cuda"),
               "observation.environment_state": torch.rand(1, 2, 3, device="cuda")}
    noise = torch.randn(1, 16, 2, device="cuda")
    eager = policy.predict_action_chunk(history, noise=noise)
    policy.use_cuda_graphs()
    captured = policy.predict_action_chunk(history, noise=noise)
    assert torch.allclose(captured, eager, atol=1e-5)
    other = {k: v + 0.5 for k, v in history.items()}
    reference = tiny_policy(noise_scheduler_type="DDIM").to("cuda").eval()
    assert torch.allclose(policy.predict_action_chunk(other, noise=noise),
                          reference.predict_action_chunk(other, noise=noise), atol=1e-5)
