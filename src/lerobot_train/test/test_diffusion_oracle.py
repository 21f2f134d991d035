"""Diffusion checkpoints cross with upstream lerobot 0.4.4 both ways, with equal chunks, select_action sequences,
training losses and gradients (same parameters, inputs, initial noise and torch RNG state).

Two tiny configurations cover both generations of upstream defaults: GroupNorm backbone, one shared encoder, DDPM,
epsilon prediction, random crop (0.4.x) and BatchNorm, one encoder per camera, DDIM, sample prediction, resize
+ crop ratio (v0.6 style, without downloading ImageNet weights).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import flow_chunk_testlib as fl  # noqa: E402  (one_torch_thread)

from lerobot_train.policies.diffusion.configuration_diffusion import DiffusionConfig  # noqa: E402
from lerobot_train.policies.diffusion.modeling_diffusion import DiffusionPolicy  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _one_thread():
    with fl.one_torch_thread():
        yield

CAMERAS = ["observation.images.front", "observation.images.wrist"]
STATE_DIM, ACTION_DIM, IMAGE = 4, 3, (3, 40, 48)

COMMON = {
    "device": "cpu",
    "input_features": {"observation.state": {"type": "STATE", "shape": [STATE_DIM]},
                       **{k: {"type": "VISUAL", "shape": list(IMAGE)} for k in CAMERAS}},
    "output_features": {"action": {"type": "ACTION", "shape": [ACTION_DIM]}},
    "n_obs_steps": 2, "down_dims": [16, 32], "kernel_size": 3, "n_groups": 4, "diffusion_step_embed_dim": 16,
    "spatial_softmax_num_keypoints": 8, "num_inference_steps": 10,
}
GROUP_NORM_GENERATION = {**COMMON, "horizon": 16, "n_action_steps": 8, "crop_shape": [32, 40], "crop_is_random": True,
                         "use_group_norm": True, "use_separate_rgb_encoder_per_camera": False,
                         "noise_scheduler_type": "DDPM", "prediction_type": "epsilon"}
BATCH_NORM_GENERATION = {**COMMON, "horizon": 32, "n_action_steps": 16, "resize_shape": [36, 44], "crop_ratio": 0.9,
                         "use_group_norm": False, "use_separate_rgb_encoder_per_camera": True,
                         "noise_scheduler_type": "DDIM", "prediction_type": "sample", "do_mask_loss_for_padding": True}


def make_inputs(config: DiffusionConfig, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch, steps, ticks = 2, config.n_obs_steps, config.n_action_steps + 3  # crosses one chunk boundary
    pad = np.zeros((batch, config.horizon), dtype=bool)
    pad[0, -5:] = True
    return {
        "seed": np.array(seed),
        "state": rng.uniform(-1, 1, (batch, steps, STATE_DIM)).astype(np.float32),
        "images": rng.normal(0, 1, (batch, steps, len(CAMERAS), *IMAGE)).astype(np.float32),
        "noise": rng.normal(0, 1, (batch, config.horizon, ACTION_DIM)).astype(np.float32),
        "tick_state": rng.uniform(-1, 1, (ticks, batch, STATE_DIM)).astype(np.float32),
        "tick_images": rng.normal(0, 1, (ticks, batch, len(CAMERAS), *IMAGE)).astype(np.float32),
        "action": rng.uniform(-1, 1, (batch, config.horizon, ACTION_DIM)).astype(np.float32),
        "action_is_pad": pad,
        # dataset units: joint state in degrees, images in [0, 1]
        "raw_state": rng.normal(10.0, 25.0, (batch, STATE_DIM)).astype(np.float32),
        "raw_images": rng.uniform(0, 1, (batch, len(CAMERAS), *IMAGE)).astype(np.float32),
    }


def dataset_stats(seed: int) -> dict[str, dict[str, np.ndarray]]:
    """MIN_MAX state/action statistics in degrees and MEAN_STD camera statistics (upstream's Diffusion defaults)."""
    rng = np.random.default_rng(seed)
    stats = {}
    for key, dim in (("observation.state", STATE_DIM), ("action", ACTION_DIM)):
        low = rng.uniform(-90, -10, dim).astype(np.float32)
        stats[key] = {"min": low, "max": low + rng.uniform(40, 150, dim).astype(np.float32),
                      "mean": np.zeros(dim, np.float32), "std": np.ones(dim, np.float32)}
    for cam in CAMERAS:
        stats[cam] = {"mean": rng.uniform(0.3, 0.6, (3, 1, 1)).astype(np.float32),
                      "std": rng.uniform(0.1, 0.3, (3, 1, 1)).astype(np.float32),
                      "min": np.zeros((3, 1, 1), np.float32), "max": np.ones((3, 1, 1), np.float32)}
    return stats


def run_ours(policy: DiffusionPolicy, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What tests/oracle/diffusion_upstream.py `run` computes, with our policy."""
    seed = int(inputs["seed"])
    out = {}
    policy.eval()
    history = {"observation.state": torch.from_numpy(inputs["state"])}
    history.update({k: torch.from_numpy(inputs["images"][:, :, i]) for i, k in enumerate(CAMERAS)})
    torch.manual_seed(seed)
    out["chunk"] = policy.predict_action_chunk(history, noise=torch.from_numpy(inputs["noise"])).numpy()

    policy.reset()
    torch.manual_seed(seed + 1)
    actions = []
    for tick in range(inputs["tick_state"].shape[0]):
        batch = {"observation.state": torch.from_numpy(inputs["tick_state"][tick])}
        batch.update({k: torch.from_numpy(inputs["tick_images"][tick][:, i]) for i, k in enumerate(CAMERAS)})
        actions.append(policy.select_action(batch))
    out["select_actions"] = torch.stack(actions).numpy()

    policy.train()
    policy.zero_grad()
    batch = {**history, "action": torch.from_numpy(inputs["action"]),
             "action_is_pad": torch.from_numpy(inputs["action_is_pad"])}
    torch.manual_seed(seed + 2)
    loss, _ = policy.forward(batch)
    loss.backward()
    out["loss"] = loss.detach().numpy()
    out.update({f"grad|{n}": p.grad.numpy() for n, p in policy.named_parameters() if p.grad is not None})
    policy.eval()
    return out


def assert_same_results(ours: dict[str, np.ndarray], upstream: dict[str, np.ndarray]) -> None:
    assert upstream["missing_keys"].tolist() == [""] and upstream["unexpected_keys"].tolist() == [""]
    np.testing.assert_allclose(ours["chunk"], upstream["chunk"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours["select_actions"], upstream["select_actions"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours["loss"], upstream["loss"], rtol=1e-5)
    grads = sorted(k for k in upstream.files if k.startswith("grad|"))
    assert sorted(k for k in ours if k.startswith("grad|")) == grads
    for key in grads:
        scale = max(float(np.abs(upstream[key]).max()), 1e-3)
        np.testing.assert_allclose(ours[key], upstream[key], atol=1e-4 * scale, rtol=0, err_msg=key)


def test_upstream_checkpoint_loads_here_with_equal_outputs(tmp_path):
    from oracle import oracle_env

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(GROUP_NORM_GENERATION))
    checkpoint = tmp_path / "upstream_ckpt"
    stats_file = tmp_path / "stats.npz"
    np.savez(stats_file, **{f"{k}|{s}": v for k, per in dataset_stats(7).items() for s, v in per.items()})
    oracle_env.run_oracle("diffusion_upstream.py", "make", str(spec), "3", str(checkpoint), str(stats_file))

    policy = DiffusionPolicy.from_pretrained(checkpoint, strict=True)
    assert policy.load_report.missing_keys == [] and policy.load_report.unexpected_keys == []
    assert any(k.startswith("diffusion.rgb_encoder.backbone.4.0.conv1") for k in policy.state_dict())
    inputs = make_inputs(policy.config, seed=11)
    np.savez(tmp_path / "inputs.npz", **inputs)
    oracle_env.run_oracle("diffusion_upstream.py", "run", str(checkpoint), str(tmp_path / "inputs.npz"),
                          str(tmp_path / "out.npz"))
    upstream = np.load(tmp_path / "out.npz")
    assert_same_results(run_ours(policy, inputs), upstream)

    # Through the public API with the checkpoint's own processors, in dataset units.
    from lerobot_train import load_policy

    loaded = load_policy(checkpoint)
    observation = {"observation.state": inputs["raw_state"]}
    observation.update({k: inputs["raw_images"][:, i] for i, k in enumerate(CAMERAS)})
    torch.manual_seed(int(inputs["seed"]) + 3)
    chunk = loaded.predict_action_chunk(observation)
    assert chunk.shape == upstream["dataset_chunk"].shape == (2, 8, ACTION_DIM)
    np.testing.assert_allclose(chunk, upstream["dataset_chunk"], atol=1e-4, rtol=0)


def test_checkpoint_saved_here_loads_in_upstream_with_equal_outputs(tmp_path):
    from oracle import oracle_env

    torch.manual_seed(5)
    config = DiffusionConfig.from_dict({"type": "diffusion", **BATCH_NORM_GENERATION})
    policy = DiffusionPolicy(config)
    assert config.crop_shape == (32, 39)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a wrong mapping shows
        for module in policy.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.75, 1.25)
    policy.save_pretrained(tmp_path / "ours")
    assert any(k.startswith("diffusion.rgb_encoder.1.backbone.1.running_var") for k in policy.state_dict())

    inputs = make_inputs(config, seed=12)
    np.savez(tmp_path / "inputs.npz", **inputs)
    oracle_env.run_oracle("diffusion_upstream.py", "run", str(tmp_path / "ours"), str(tmp_path / "inputs.npz"),
                          str(tmp_path / "out.npz"))
    reloaded = DiffusionPolicy.from_pretrained(tmp_path / "ours", strict=True)
    assert_same_results(run_ours(reloaded, inputs), np.load(tmp_path / "out.npz"))
