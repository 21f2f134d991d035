"""Make and run UPSTREAM lerobot 0.4.4 Diffusion policies (run with the .venv-oracle python).

    python tests/oracle/diffusion_upstream.py make CONFIG.json SEED OUT_DIR [STATS.npz]
        Build `DiffusionPolicy(DiffusionConfig(**CONFIG))` with torch seeded by SEED and save_pretrained it; with
        STATS.npz ("<feature>|<stat>" arrays) also the processors `make_pre_post_processors(config, stats)` builds.
    python tests/oracle/diffusion_upstream.py run CKPT_DIR INPUTS.npz OUT.npz
        Load CKPT_DIR with `DiffusionPolicy.from_pretrained` and compute, on normalised inputs:
        - `chunk`: `diffusion.generate_actions(history, noise)` after torch.manual_seed(inputs["seed"]), history =
          `state` (B, S, D) and `images` (B, S, N, C, H, W) (absent without cameras);
        - `select_actions`: `select_action` over the ticks `tick_state` (T, B, D) / `tick_images` (T, B, N, C, H, W)
          after reset() and torch.manual_seed(seed + 1);
        - `dataset_chunk` (when INPUTS has `raw_state` (B, D) / `raw_images` (B, N, C, H, W) in dataset units and
          the checkpoint has processors): pre-processor -> history (copy-padded, as select_action fills it) ->
          `predict_action_chunk` after torch.manual_seed(seed + 3) -> post-processor;
        - `missing_keys` / `unexpected_keys`: state-dict keys the file lacks / the model lacks ([""] if none);
        - `loss` and `grad|<param name>`: train-mode `forward` on `state`, the per-camera images, `action`,
          `action_is_pad`, after torch.manual_seed(seed + 2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature  # noqa: E402
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig  # noqa: E402
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy  # noqa: E402
from lerobot.policies.factory import make_pre_post_processors  # noqa: E402
from lerobot.policies.utils import populate_queues  # noqa: E402

# Tiny models: one thread is far faster than two on a busy shared machine (and the test process does the same).
torch.set_num_threads(1)


def make(config_file: str, seed: str, out_dir: str, stats_file: str | None = None) -> None:
    spec = json.loads(Path(config_file).read_text())
    spec["input_features"] = {k: PolicyFeature(FeatureType(v["type"]), tuple(v["shape"]))
                              for k, v in spec["input_features"].items()}
    spec["output_features"] = {k: PolicyFeature(FeatureType(v["type"]), tuple(v["shape"]))
                               for k, v in spec["output_features"].items()}
    if "normalization_mapping" in spec:
        spec["normalization_mapping"] = {k: NormalizationMode(v) for k, v in spec["normalization_mapping"].items()}
    for key in ("down_dims", "crop_shape", "resize_shape", "optimizer_betas"):
        if spec.get(key) is not None:
            spec[key] = tuple(spec[key])
    torch.manual_seed(int(seed))
    policy = DiffusionPolicy(DiffusionConfig(**spec))
    # Non-trivial norm parameters and statistics, so loading them wrong cannot go unnoticed.
    with torch.no_grad():
        for module in policy.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                module.weight.copy_(torch.rand_like(module.weight) * 0.5 + 0.75)
                module.bias.copy_(torch.rand_like(module.bias) * 0.2 - 0.1)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn_like(module.running_mean) * 0.1)
                module.running_var.copy_(torch.rand_like(module.running_var) * 0.5 + 0.75)
    policy.save_pretrained(Path(out_dir))
    if stats_file:
        data = np.load(stats_file)
        stats: dict = {}
        for name in data.files:
            key, stat = name.split("|")
            stats.setdefault(key, {})[stat] = torch.from_numpy(data[name])
        pre, post = make_pre_post_processors(policy.config, dataset_stats=stats)
        pre.save_pretrained(Path(out_dir))
        post.save_pretrained(Path(out_dir))


def run(ckpt_dir: str, inputs_file: str, out_file: str) -> None:
    inputs = np.load(inputs_file)
    policy = DiffusionPolicy.from_pretrained(ckpt_dir)
    policy.eval()
    config = policy.config
    camera_keys = list(config.image_features)
    seed = int(inputs["seed"])
    out: dict[str, np.ndarray] = {}
    from safetensors import safe_open

    with safe_open(str(Path(ckpt_dir) / "model.safetensors"), "pt") as f:
        file_keys = set(f.keys())
    model_keys = set(policy.state_dict())
    out["missing_keys"] = np.array(sorted(model_keys - file_keys) or [""])
    out["unexpected_keys"] = np.array(sorted(file_keys - model_keys) or [""])

    history = {"observation.state": torch.from_numpy(inputs["state"])}
    if camera_keys:
        history["observation.images"] = torch.from_numpy(inputs["images"])
    torch.manual_seed(seed)
    with torch.no_grad():
        out["chunk"] = policy.diffusion.generate_actions(history, noise=torch.from_numpy(inputs["noise"])).numpy()

    if "raw_state" in inputs.files and (Path(ckpt_dir) / "policy_preprocessor.json").exists():
        pre, post = make_pre_post_processors(config, pretrained_path=ckpt_dir,
                                             preprocessor_overrides={"device_processor": {"device": "cpu"}})
        observation = {"observation.state": torch.from_numpy(inputs["raw_state"])}
        for i, key in enumerate(camera_keys):
            observation[key] = torch.from_numpy(inputs["raw_images"][:, i])
        with torch.no_grad():
            batch = dict(pre(observation))
            batch.pop("action", None)  # the pipeline's empty action slot (select_action pops it too)
            if camera_keys:
                batch["observation.images"] = torch.stack([batch[k] for k in camera_keys], dim=-4)
            policy.reset()
            populate_queues(policy._queues, batch)
            torch.manual_seed(seed + 3)
            out["dataset_chunk"] = post(policy.predict_action_chunk(batch)).numpy()

    policy.reset()
    torch.manual_seed(seed + 1)
    actions = []
    for tick in range(inputs["tick_state"].shape[0]):
        batch = {"observation.state": torch.from_numpy(inputs["tick_state"][tick])}
        for i, key in enumerate(camera_keys):
            batch[key] = torch.from_numpy(inputs["tick_images"][tick][:, i])
        actions.append(policy.select_action(batch))
    out["select_actions"] = torch.stack(actions).numpy()

    policy.train()
    batch = {"observation.state": torch.from_numpy(inputs["state"]), "action": torch.from_numpy(inputs["action"]),
             "action_is_pad": torch.from_numpy(inputs["action_is_pad"])}
    for i, key in enumerate(camera_keys):
        batch[key] = torch.from_numpy(inputs["images"][:, :, i])
    torch.manual_seed(seed + 2)
    loss, _ = policy.forward(batch)
    loss.backward()
    out["loss"] = loss.detach().numpy()
    for name, param in policy.named_parameters():
        if param.grad is not None:
            out[f"grad|{name}"] = param.grad.numpy()
    np.savez(out_file, **out)


if __name__ == "__main__":
    {"make": make, "run": run}[sys.argv[1]](*sys.argv[2:])
