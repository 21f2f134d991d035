"""Processor steps and pipelines: upstream's formulas and eps for every normalization mode, relative actions,
saving/loading in upstream's file layout, and clear errors for files that cannot be used."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
import policy_testlib as tl  # noqa: E402

from lerobot_train.configs.types import FeatureType, NormalizationMode, PolicyFeature  # noqa: E402
from lerobot_train.policies.act import ACTConfig  # noqa: E402
from lerobot_train.processors import (  # noqa: E402
    AbsoluteActionsStep,
    AddBatchDimensionStep,
    DeviceStep,
    NormalizerStep,
    PolicyProcessorPipeline,
    ProcessorConfigError,
    RelativeActionsSettings,
    RelativeActionsStep,
    RenameObservationsStep,
    Transition,
    UnnormalizerStep,
    make_default_processors,
)

EPS = 1e-8
STATE = "observation.state"


def _step(mode: NormalizationMode, stats: dict, cls=NormalizerStep):
    features = {STATE: PolicyFeature(FeatureType.STATE, (3,)), "action": PolicyFeature(FeatureType.ACTION, (3,))}
    return cls(features=features, norm_map={FeatureType.STATE: mode, FeatureType.ACTION: mode}, stats=stats)


STATS = {
    "mean": np.array([1.0, -2.0, 3.0]), "std": np.array([2.0, 0.5, 4.0]),
    "min": np.array([-1.0, 5.0, 0.0]), "max": np.array([3.0, 5.0, 10.0]),  # zero range in dim 1
    "q01": np.array([-0.5, 0.0, 1.0]), "q99": np.array([2.5, 2.0, 9.0]),
    "q10": np.array([0.0, 0.5, 2.0]), "q90": np.array([2.0, 1.5, 8.0]),
}


def _expected(mode: NormalizationMode, x: np.ndarray) -> np.ndarray:
    if mode is NormalizationMode.MEAN_STD:
        return (x - STATS["mean"]) / (STATS["std"] + EPS)
    low, high = {NormalizationMode.MIN_MAX: ("min", "max"), NormalizationMode.QUANTILES: ("q01", "q99"),
                 NormalizationMode.QUANTILE10: ("q10", "q90")}[mode]
    span = STATS[high] - STATS[low]
    span = np.where(span == 0, EPS, span)
    return 2 * (x - STATS[low]) / span - 1


@pytest.mark.parametrize("mode", [NormalizationMode.MEAN_STD, NormalizationMode.MIN_MAX, NormalizationMode.QUANTILES,
                                  NormalizationMode.QUANTILE10])
def test_normalization_formulas_and_inverse(mode):
    stats = {STATE: STATS, "action": STATS}
    x = np.array([[0.5, 5.0, 7.0], [2.0, 5.0, -1.0]])
    out = _step(mode, stats)(Transition(observation={STATE: torch.tensor(x, dtype=torch.float32)},
                                        action=torch.tensor(x, dtype=torch.float32)))
    np.testing.assert_allclose(out.observation[STATE].numpy(), _expected(mode, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.action.numpy(), _expected(mode, x), rtol=1e-5, atol=1e-5)
    back = _step(mode, stats, UnnormalizerStep)(Transition(action=out.action))
    np.testing.assert_allclose(back.action.numpy(), x, rtol=1e-5, atol=1e-5)


def test_identity_and_unknown_keys_pass_unchanged():
    step = NormalizerStep(features={STATE: PolicyFeature(FeatureType.STATE, (3,))},
                          norm_map={FeatureType.STATE: NormalizationMode.IDENTITY}, stats={})
    x = torch.randn(2, 3)
    out = step(Transition(observation={STATE: x, "observation.other": x + 1}))
    assert torch.equal(out.observation[STATE], x) and torch.equal(out.observation["observation.other"], x + 1)


def test_missing_statistics_is_a_clear_error():
    step = _step(NormalizationMode.MIN_MAX, {STATE: {"mean": STATS["mean"], "std": STATS["std"]}})
    with pytest.raises(ValueError, match=r"MIN_MAX for 'observation.state' needs statistics 'min' and 'max'"):
        step(Transition(observation={STATE: torch.zeros(1, 3)}))


def test_to_batch_rename_and_device():
    t = Transition(observation={STATE: torch.zeros(3), "observation.images.top": torch.zeros(3, 4, 5)},
                   action=torch.zeros(3), complementary_data={"task": "pick"})
    t = RenameObservationsStep(rename_map={"observation.images.top": "observation.images.front"})(t)
    t = AddBatchDimensionStep()(t)
    assert t.observation[STATE].shape == (1, 3) and t.observation["observation.images.front"].shape == (1, 3, 4, 5)
    assert t.action.shape == (1, 3) and t.complementary_data["task"] == ["pick"]
    t = DeviceStep(device="cpu", float_dtype="float64")(t)
    assert t.observation[STATE].dtype == torch.float64
    with pytest.raises(ValueError, match="float_dtype"):
        DeviceStep(float_dtype="float8")


def test_relative_and_absolute_actions_with_excluded_gripper():
    relative = RelativeActionsStep(enabled=True, exclude_joints=["gripper"], action_names=tl.ACTION_NAMES)
    absolute = AbsoluteActionsStep(enabled=True)
    absolute.relative_step = relative
    state = torch.tensor([[10.0, 20.0, 30.0, 40.0, 50.0, 60.0]])
    chunk = state.unsqueeze(1) + torch.arange(3.0).reshape(1, 3, 1)  # (1, 3, 6)
    out = relative(Transition(observation={STATE: state}, action=chunk))
    expected = chunk.clone()
    expected[..., :5] -= state[:, None, :5]
    assert torch.equal(out.action, expected)  # gripper (last) stays absolute
    assert torch.equal(absolute(Transition(action=out.action)).action, chunk)
    with pytest.raises(ValueError, match="observation.state"):
        relative(Transition(observation={}, action=chunk))


def test_unlinked_absolute_step_fails_clearly():
    with pytest.raises(RuntimeError, match="not linked"):
        AbsoluteActionsStep(enabled=True)(Transition(action=torch.zeros(1, 6)))


def test_default_processors_save_and_load_as_upstream(tmp_path):
    config = ACTConfig(**tl.act_config_kwargs())
    stats = tl.dataset_stats(seed=1)
    stats["timestamp"] = {"mean": np.array([1.5]), "std": np.array([0.5])}  # unused keys are kept, as upstream
    pre, post = make_default_processors(config, stats)
    pre.save_pretrained(tmp_path)
    post.save_pretrained(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["policy_postprocessor.json", "policy_postprocessor_step_0_unnormalizer_processor.safetensors",
                     "policy_preprocessor.json", "policy_preprocessor_step_3_normalizer_processor.safetensors"]
    saved = json.loads((tmp_path / "policy_preprocessor.json").read_text())
    assert [s["registry_name"] for s in saved["steps"]] == ["rename_observations_processor", "to_batch_processor",
                                                            "device_processor", "normalizer_processor"]
    assert saved["steps"][3]["config"]["eps"] == 1e-8
    tensors = load_file(str(tmp_path / "policy_preprocessor_step_3_normalizer_processor.safetensors"))
    assert tensors["observation.images.front.mean"].shape == (3, 1, 1) and "timestamp.mean" in tensors

    loaded_pre = PolicyProcessorPipeline.from_pretrained(tmp_path, "policy_preprocessor.json")
    loaded_post = PolicyProcessorPipeline.from_pretrained(tmp_path, "policy_postprocessor.json")
    obs = {k: torch.from_numpy(v) for k, v in tl.observation(2, seed=4).items()}
    obs["action"] = torch.randn(2, 6, 6) * 10
    a, b = pre(dict(obs)), loaded_pre(dict(obs))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert torch.allclose(loaded_post(a["action"]), obs["action"], atol=1e-4)


def test_relative_pipeline_round_trip_after_reload(tmp_path):
    config = ACTConfig(**tl.act_config_kwargs())
    settings = RelativeActionsSettings(enabled=True, exclude_joints=["gripper"], action_names=tl.ACTION_NAMES)
    pre, post = make_default_processors(config, tl.dataset_stats(seed=2), settings)
    pre.save_pretrained(tmp_path)
    post.save_pretrained(tmp_path)
    from lerobot_train.policies.factory import make_pre_post_processors

    pre2, post2 = make_pre_post_processors(config, pretrained_path=tmp_path)
    assert [s.registry_name for s in pre2][3] == "relative_actions_processor"
    obs = {k: torch.from_numpy(v) for k, v in tl.observation(2, seed=5).items()}
    actions = torch.randn(2, 6, 6) * 10
    normalized = pre2({**obs, "action": actions})["action"]
    assert torch.allclose(post2(normalized), actions, atol=1e-3)


def test_unusable_files_are_refused_with_the_reason(tmp_path):
    def write(steps):
        (tmp_path / "p.json").write_text(json.dumps({"name": "policy_preprocessor", "steps": steps}))

    write([{"registry_name": "tokenizer_processor", "config": {}}])
    with pytest.raises(ProcessorConfigError, match="'tokenizer_processor' is not supported"):
        PolicyProcessorPipeline.from_pretrained(tmp_path, "p.json")
    write([{"class": "os.system", "config": {}}])
    with pytest.raises(ProcessorConfigError, match="importing the class 'os.system' is not supported"):
        PolicyProcessorPipeline.from_pretrained(tmp_path, "p.json")
    write([{"registry_name": "device_processor", "config": {"device": "cpu", "colour": "red"}}])
    with pytest.raises(ProcessorConfigError, match=r"unknown config key\(s\) \['colour'\]"):
        PolicyProcessorPipeline.from_pretrained(tmp_path, "p.json")
    write([{"registry_name": "device_processor", "config": {"device": "cpu"}}])
    with pytest.raises(ProcessorConfigError, match="match no step"):
        PolicyProcessorPipeline.from_pretrained(tmp_path, "p.json", overrides={"normalizer_processor": {"eps": 1.0}})
    pipeline = PolicyProcessorPipeline.from_pretrained(tmp_path, "p.json", overrides={"device_processor": {"float_dtype": "float64"}})
    assert pipeline[0].float_dtype == "float64"
    write([{"registry_name": "normalizer_processor", "config": {"features": {}, "norm_map": {}},
            "state_file": "gone.safetensors"}])
    with pytest.raises(FileNotFoundError, match="gone.safetensors"):
        PolicyProcessorPipeline.from_pretrained(tmp_path, "p.json")
