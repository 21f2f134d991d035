"""ACT's behaviour on its own: parameter names, chunk queue, temporal ensembling, loss masking, training steps,
and the LoadedPolicy wrapper around it (dataset units, input checks, relative actions)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import policy_testlib as tl  # noqa: E402

from lerobot_train import LoadedPolicy, load_policy  # noqa: E402
from lerobot_train.configs.types import FeatureType, PolicyFeature  # noqa: E402
from lerobot_train.inference import ObservationError  # noqa: E402
from lerobot_train.policies.act import ACTConfig, ACTPolicy  # noqa: E402
from lerobot_train.policies.act.modeling_act import ACTTemporalEnsembler  # noqa: E402
from lerobot_train.policies.factory import make_pre_post_processors  # noqa: E402
from lerobot_train.processors import RelativeActionsSettings  # noqa: E402


@pytest.fixture(scope="module")
def policy() -> ACTPolicy:
    torch.manual_seed(0)
    p = ACTPolicy(ACTConfig(**tl.act_config_kwargs()))
    tl.randomize_frozen_batchnorm(p, 0)
    return p


def _batch(batch_size: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {k: torch.from_numpy(v) / 10 if "state" in k else torch.from_numpy(v)
             for k, v in tl.observation(batch_size, seed).items()}
    batch["action"] = torch.randn(batch_size, 6, 6, generator=g)
    batch["action_is_pad"] = torch.zeros(batch_size, 6, dtype=torch.bool)
    return batch


def test_parameter_names_are_upstreams(policy):
    keys = set(policy.state_dict())
    assert {"model.backbone.conv1.weight", "model.backbone.layer4.1.bn2.running_var", "model.vae_encoder_pos_enc",
            "model.encoder.layers.1.self_attn.in_proj_weight", "model.decoder.layers.0.multihead_attn.out_proj.bias",
            "model.decoder.norm.weight", "model.encoder_img_feat_input_proj.weight", "model.decoder_pos_embed.weight",
            "model.vae_encoder_robot_state_input_proj.weight", "model.encoder_1d_feature_pos_embed.weight",
            "model.action_head.weight"} <= keys
    assert not any(k.startswith("model.backbone.fc") or "num_batches_tracked" in k for k in keys)
    assert policy.model.encoder_1d_feature_pos_embed.weight.shape == (2, 32)  # latent + state
    groups = policy.get_optim_params()
    backbone = {id(p) for p in policy.model.backbone.parameters()}
    assert {id(p) for p in groups[1]["params"]} == backbone and groups[1]["lr"] == 1e-5
    assert not backbone & {id(p) for p in groups[0]["params"]}


def test_cameras_share_one_backbone_pass(policy):
    batch = _batch()
    tokens, positions = policy.model._image_tokens(batch)
    for i, cam in enumerate(tl.CAMERAS):
        fmap = policy.model.backbone.forward_features(batch[cam])
        single = policy.model.encoder_img_feat_input_proj(fmap).flatten(2).transpose(1, 2)
        n = single.shape[1]
        assert torch.allclose(tokens[:, i * n:(i + 1) * n], single, atol=1e-5)
    assert positions.shape == (1, tokens.shape[1], 32)


def test_chunk_queue_refills_every_n_action_steps(policy):
    calls = []
    original = policy.predict_action_chunk

    def counting(batch, **kwargs):
        calls.append(1)
        return original(batch, **kwargs)

    policy.predict_action_chunk = counting
    try:
        policy.reset()
        batch = _batch()
        chunk = original(batch)
        actions = [policy.select_action(batch) for _ in range(9)]
    finally:
        del policy.predict_action_chunk
    assert len(calls) == 3  # ticks 0, 4, 8 with n_action_steps = 4
    for k in range(4):
        assert torch.allclose(actions[k], chunk[:, k])
    assert torch.allclose(actions[4], chunk[:, 0])


def test_temporal_ensembler_is_the_weighted_average_of_all_predictions():
    coeff, chunk = 0.3, 5
    ensembler = ACTTemporalEnsembler(coeff, chunk)
    predictions = [torch.randn(2, chunk, 3) for _ in range(8)]
    for t, pred in enumerate(predictions):
        got = ensembler.update(pred)
        # every chunk made at step s <= t predicted step t at index t - s (oldest first gets w_0)
        made = [(s, predictions[s][:, t - s]) for s in range(max(0, t - chunk + 1), t + 1)]
        weights = torch.exp(-coeff * torch.arange(len(made), dtype=torch.float32))
        expected = sum(w * p for w, (_, p) in zip(weights, made)) / weights.sum()
        assert torch.allclose(got, expected, atol=1e-5), t


def test_loss_ignores_padded_actions_and_matches_the_formula():
    torch.manual_seed(1)
    policy = ACTPolicy(ACTConfig(**tl.act_config_kwargs(use_vae=False)))
    policy.train()
    batch = _batch()
    batch["action_is_pad"][0, -3:] = True
    loss, info = policy.forward(batch)
    assert set(info) == {"l1_loss"}
    changed = dict(batch, action=batch["action"].clone())
    changed["action"][0, -3:] += 100.0  # only padded targets change
    assert torch.allclose(policy.forward(changed)[0], loss)
    with torch.no_grad():
        predicted = policy.model(batch)[0]
    manual = ((batch["action"] - predicted).abs() * (~batch["action_is_pad"]).unsqueeze(-1)).mean()
    assert torch.allclose(loss, manual, atol=1e-6)
    with pytest.raises(ValueError, match="action_is_pad"):
        policy.forward({k: v for k, v in batch.items() if k != "action_is_pad"})


@pytest.mark.slow
def test_a_few_training_steps_fit_a_batch():
    torch.manual_seed(2)
    features = {"observation.state": PolicyFeature(FeatureType.STATE, (6,)),
                "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 32, 32))}
    config = ACTConfig(**tl.act_config_kwargs(input_features=features, optimizer_lr=1e-3, optimizer_lr_backbone=1e-4))
    policy = ACTPolicy(config)
    # A frozen backbone keeps this test cheap on a loaded CI machine; everything else trains for real.
    policy.model.backbone.requires_grad_(False)
    optimizer = config.get_optimizer_preset().build(policy.get_optim_params())
    g = torch.Generator().manual_seed(3)
    batch = {"observation.state": torch.randn(4, 6, generator=g), "observation.images.front": torch.rand(4, 3, 32, 32, generator=g),
             "action": torch.randn(4, 6, 6, generator=g), "action_is_pad": torch.zeros(4, 6, dtype=torch.bool)}
    policy.train()
    losses = []
    for _ in range(10):
        torch.manual_seed(0)  # same VAE noise each step: a deterministic objective
        loss, _ = policy.forward(batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def _loaded(policy: ACTPolicy, tmp_path: Path, relative: RelativeActionsSettings | None = None) -> LoadedPolicy:
    policy.save_pretrained(tmp_path)
    pre, post = make_pre_post_processors(policy.config, dataset_stats=tl.dataset_stats(4), relative_actions=relative)
    pre.save_pretrained(tmp_path)
    post.save_pretrained(tmp_path)
    return load_policy(tmp_path)


def test_loaded_policy_checks_observations(policy, tmp_path):
    loaded = _loaded(policy, tmp_path)
    obs = tl.observation(2, seed=3)
    with pytest.raises(ObservationError, match=r"lacks \['observation.images.wrist'\]"):
        loaded.predict_action_chunk({k: v for k, v in obs.items() if k != "observation.images.wrist"})
    with pytest.raises(ObservationError, match="float32 in \\[0, 1\\].*uint8"):
        loaded.predict_action_chunk({**obs, "observation.images.front": (obs["observation.images.front"] * 255).astype(np.uint8)})
    with pytest.raises(ObservationError, match=r"'observation.state' must be batched \(B, 6\), got \(6,\)"):
        loaded.predict_action_chunk({**obs, "observation.state": obs["observation.state"][0]})
    with pytest.raises(ObservationError, match="batch size"):
        loaded.predict_action_chunk({**obs, "observation.state": obs["observation.state"][:1]})
    with pytest.raises(ValueError, match="does not support real-time chunking"):
        loaded.predict_action_chunk(obs, inference_delay=2, prev_chunk_left_over=np.zeros((2, 3, 6), np.float32))
    chunk = loaded.predict_action_chunk({**obs, "task": ["pick", "place"]})
    assert chunk.dtype == np.float32 and chunk.shape == (2, 6, 6)


def test_relative_actions_are_anchored_at_the_state_of_their_chunk(policy, tmp_path):
    settings = RelativeActionsSettings(enabled=True, exclude_joints=["gripper"], action_names=tl.ACTION_NAMES)
    loaded = _loaded(policy, tmp_path / "rel", settings)
    absolute = _loaded(policy, tmp_path / "abs")
    obs = tl.observation(1, seed=8)
    rel_chunk, abs_chunk = loaded.predict_action_chunk(obs), absolute.predict_action_chunk(obs)
    # same network output, read as offsets from the state for the five body joints, absolute for the gripper
    stats = tl.dataset_stats(4)
    raw = (abs_chunk - stats["action"]["mean"]) / stats["action"]["std"]
    expected = raw * stats["action"]["std"] + stats["action"]["mean"]
    expected[..., :5] += obs["observation.state"][:, None, :5]
    np.testing.assert_allclose(rel_chunk, expected, rtol=1e-5, atol=1e-3)
    # queued actions keep the anchor of the observation their chunk was predicted from
    loaded.reset()
    first = loaded.select_action(obs)
    moved = dict(obs, **{"observation.state": obs["observation.state"] + 50.0})
    second = loaded.select_action(moved)
    np.testing.assert_allclose(first, rel_chunk[:, 0], atol=1e-3)
    np.testing.assert_allclose(second, rel_chunk[:, 1], atol=1e-3)
