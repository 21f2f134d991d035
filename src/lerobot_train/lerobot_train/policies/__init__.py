"""Policies of lerobot_train: configs, models, checkpoint I/O (see /work/prompts/policies_contract.md).

Refinements of the contract made while implementing it (the names in the contract are unchanged):
- `lerobot_train.configs.constants` holds the feature keys (OBS_STATE, ACTION, ...) and checkpoint file names;
  `configs.json_codec` the strict dataclass<->JSON codec every config file uses (`ConfigError` names key + file).
- Optimizer/scheduler presets live in `policies/optim.py` (AdamConfig, AdamWConfig, DiffuserSchedulerConfig,
  CosineDecayWithWarmupSchedulerConfig; `.build(params)` / `.build(optimizer, num_training_steps)`; JSON with "type").
  `OptimizerConfig.build` uses torch's fused Adam(W) kernel when every parameter allows it (same update maths).
- `policies/checkpoint_files.py`: `resolve_pretrained_dir(path_or_repo_id, revision)` (local folder, or one
  `snapshot_download` of the Hub repo's *.json/*.safetensors), `read_robot_interface(dir)`,
  `write_robot_interface(dir, fps=, robot_type=, features=, interface=)` (the trainer calls the latter).
- `PreTrainedPolicy.from_pretrained(path_or_repo_id, config=None, revision=None, device=None, strict=False)`
  builds the model inside `backbones.pretrained_backbone_weights_disabled()` (no ImageNet download when a
  checkpoint's weights follow); subclasses that load pretrained backbone weights must do it through
  `backbones.resnet.make_resnet(...)` / `load_backbone_weights(...)`, which honour that switch.
  `policy.load_report` lists missing/unexpected tensors; pre-v0.4 statistics found in model.safetensors are in
  `policy.legacy_normalization_stats` (make_pre_post_processors(..., legacy_stats=...) builds processors from them).
- `make_pre_post_processors(config, dataset_stats=None, pretrained_path=None, overrides=None, *, revision=None,
  relative_actions=None, legacy_stats=None)`. Relative actions are processor settings
  (`processors.RelativeActionsSettings(enabled, exclude_joints, action_names)`), not config.json fields, so an ACT or
  Diffusion config.json stays loadable by upstream 0.4.4 (the processor files of such a checkpoint need upstream's
  newer `relative_actions_processor`). The relative step sits before the normalizer: the action statistics given
  with it must be statistics of relative actions. With an observation history the reference state is the LAST frame.
- Processors raise a clear error when a normalized feature has no statistics (upstream silently skips it).
- `ResNet` always has torchvision's child order; `include_top=False` drops avgpool/fc (ACT's backbone);
  `ResNet.trunk()` is `list(children())[:-2]` for modules that need numeric names (Diffusion's `backbone.<n>`).
"""
