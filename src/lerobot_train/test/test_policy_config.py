"""Policy configs: config.json written and read as upstream's draccus does, strict errors, presets, devices."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import policy_testlib as tl  # noqa: E402

from lerobot_train.configs.json_codec import ConfigError  # noqa: E402
from lerobot_train.configs.types import FeatureType, NormalizationMode, PolicyFeature  # noqa: E402
from lerobot_train.policies.act import ACTConfig  # noqa: E402
from lerobot_train.policies.config import PreTrainedConfig  # noqa: E402
from lerobot_train.policies.optim import (  # noqa: E402
    AdamWConfig,
    CosineDecayWithWarmupSchedulerConfig,
    DiffuserSchedulerConfig,
    LRSchedulerConfig,
    OptimizerConfig,
)


def _write(tmp_path: Path, data: dict) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(data))
    return tmp_path


def test_round_trip_keeps_every_value(tmp_path):
    config = ACTConfig(**tl.act_config_kwargs(chunk_size=7, n_action_steps=3, temporal_ensemble_coeff=None,
                                              kl_weight=3.5, pre_norm=True))
    config.save(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert list(data)[0] == "type" and data["type"] == "act"
    assert data["input_features"]["observation.images.front"] == {"type": "VISUAL", "shape": [3, 48, 64]}
    assert data["normalization_mapping"] == {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}
    loaded = PreTrainedConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ACTConfig)
    assert loaded == config
    assert loaded.input_features["observation.state"] == PolicyFeature(FeatureType.STATE, (6,))


def test_values_come_from_the_file_not_from_code_defaults(tmp_path):
    data = ACTConfig(**tl.act_config_kwargs()).to_dict()
    data.update(chunk_size=9, n_action_steps=9, dim_model=48, normalization_mapping={"STATE": "MIN_MAX"})
    loaded = PreTrainedConfig.from_pretrained(_write(tmp_path, data))
    assert (loaded.chunk_size, loaded.dim_model) == (9, 48)
    assert loaded.normalization_mapping == {"STATE": NormalizationMode.MIN_MAX}
    # a key the file lacks keeps the default (older files have fewer fields)
    del data["use_peft"], data["kl_weight"]
    assert PreTrainedConfig.from_pretrained(_write(tmp_path, data)).kl_weight == 10.0


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"chunk_sise": 5}, ["chunk_sise", "unknown"]),
        ({"chunk_size": "big"}, ["chunk_size", "integer"]),
        ({"use_vae": 1}, ["use_vae", "true or false"]),
        ({"normalization_mapping": {"STATE": "ZSCORE"}}, ["normalization_mapping", "ZSCORE"]),
        ({"input_features": {"observation.state": {"type": "STATE"}}}, ["input_features", "shape"]),
        ({"n_action_steps": 50, "chunk_size": 10}, ["n_action_steps"]),
        ({"type": "transformer_xl"}, ["transformer_xl", "unknown policy type"]),
    ],
)
def test_bad_files_name_the_key_and_the_file(tmp_path, change, words):
    data = ACTConfig(**tl.act_config_kwargs()).to_dict()
    data.update(change)
    folder = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        PreTrainedConfig.from_pretrained(folder)
    message = str(info.value)
    for word in words:
        assert word in message
    if "type" not in change:
        assert str(folder / "config.json") in message


def test_missing_type_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="'type'"):
        PreTrainedConfig.from_pretrained(_write(tmp_path, {"chunk_size": 3}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        PreTrainedConfig.from_pretrained(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="checkpoint folder not found"):
        PreTrainedConfig.from_pretrained(tmp_path / "nowhere_local")


def test_feature_properties():
    config = ACTConfig(**tl.act_config_kwargs())
    assert list(config.image_features) == list(tl.CAMERAS)
    assert config.robot_state_feature.shape == (6,)
    assert config.action_feature.shape == (6,)
    assert config.env_state_feature is None
    assert config.observation_delta_indices is None and config.action_delta_indices == list(range(6))


def test_act_checks_like_upstream():
    with pytest.raises(NotImplementedError, match="n_action_steps == 1"):
        ACTConfig(**tl.act_config_kwargs(temporal_ensemble_coeff=0.01, n_action_steps=2))
    with pytest.raises(ValueError, match="n_obs_steps"):
        ACTConfig(**tl.act_config_kwargs(n_obs_steps=2))
    with pytest.raises(ValueError, match="camera"):
        ACTConfig(**tl.act_config_kwargs(input_features={"observation.state": PolicyFeature(FeatureType.STATE, (6,))})).validate_features()


def test_unavailable_device_falls_back():
    config = ACTConfig(**tl.act_config_kwargs(device="cuda:7" if not torch.cuda.is_available() else "mps"))
    assert config.device in ("cpu", "cuda", "mps")


def test_optimizer_presets_and_json():
    act = ACTConfig(**tl.act_config_kwargs())
    preset = act.get_optimizer_preset()
    assert isinstance(preset, AdamWConfig)
    assert (preset.lr, preset.weight_decay, preset.betas, preset.eps, preset.grad_clip_norm) == (1e-5, 1e-4, (0.9, 0.999), 1e-8, 10.0)
    assert act.get_scheduler_preset() is None
    data = preset.to_dict()
    assert data["type"] == "adamw" and data["betas"] == [0.9, 0.999]
    assert OptimizerConfig.from_dict(data) == preset
    with pytest.raises(ConfigError, match="momentum"):
        OptimizerConfig.from_dict({**data, "momentum": 0.9})
    params = [torch.nn.Parameter(torch.ones(3))]
    optimizer = preset.build(params)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["lr"] == 1e-5


def test_scheduler_formulas():
    cosine = DiffuserSchedulerConfig(name="cosine", num_warmup_steps=10).lr_lambda(110)
    assert cosine(0) == 0.0 and cosine(5) == 0.5 and cosine(10) == 1.0
    assert cosine(60) == pytest.approx(0.5) and cosine(110) == pytest.approx(0.0, abs=1e-12)
    assert LRSchedulerConfig.from_dict({"type": "diffuser", "name": "cosine", "num_warmup_steps": 500}).num_warmup_steps == 500
    decay = CosineDecayWithWarmupSchedulerConfig(num_warmup_steps=10, num_decay_steps=100, peak_lr=1.0, decay_lr=0.1)
    f = decay.lr_lambda(1000)
    # warm-up from 1/(w+1) towards 1; the cosine then counts from step 0, as upstream's does
    assert f(0) == pytest.approx(1 / 11) and f(5) == pytest.approx((1 / 11 - 1) * 0.5 + 1)
    assert f(10) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.1)))
    assert f(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.55)))
    assert f(500) == pytest.approx(0.1)


def test_features_come_from_the_dataset_when_unset():
    from types import SimpleNamespace

    from lerobot_train.policies.factory import dataset_to_policy_features, make_policy

    info_features = {  # as info.json spells them
        "observation.state": {"dtype": "float32", "shape": [6], "names": tl.ACTION_NAMES},
        "observation.images.front": {"dtype": "video", "shape": [48, 64, 3], "names": ["height", "width", "channels"]},
        "action": {"dtype": "float32", "shape": [6], "names": tl.ACTION_NAMES},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    features = dataset_to_policy_features(info_features)
    assert features == {"observation.state": PolicyFeature(FeatureType.STATE, (6,)),
                        "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 48, 64)),
                        "action": PolicyFeature(FeatureType.ACTION, (6,))}
    config = ACTConfig(**{k: v for k, v in tl.TINY_ACT.items()})
    policy = make_policy(config, SimpleNamespace(features=info_features))
    assert list(policy.config.input_features) == ["observation.state", "observation.images.front"]
    assert policy.model.action_head.out_features == 6
    with pytest.raises(ValueError, match="3 dimensions"):
        dataset_to_policy_features({"observation.images.x": {"dtype": "image", "shape": [48, 64], "names": None}})
