"""Make and run UPSTREAM lerobot 0.4.4 ACT policies (run with the .venv-oracle python).

    python tests/oracle/act_upstream.py JOBS.json

JOBS.json is a list of jobs, run in order by one process (importing torch + lerobot is the main cost):
- {"op": "make", "out": DIR, "config": {ACTConfig kwargs, features as {"type", "shape"}}, "seed": S,
   "stats": STATS.npz}
  Build `ACTPolicy(ACTConfig(**config))` with torch seeded by S; give its FrozenBatchNorm2d layers random
  statistics and affine terms (identity ones would hide a wrong formula); save the policy and the pre/post-processors
  `make_pre_post_processors(config, dataset_stats)` builds, STATS.npz holding "<feature>|<stat>" arrays.
- {"op": "predict", "ckpt": DIR, "obs": OBS.npz, "out": OUT.npz, "select_steps": N}
  Load DIR with `ACTPolicy.from_pretrained` + `make_pre_post_processors(config, pretrained_path=DIR)` (the way
  lerobot-eval/record load a policy). OBS.npz holds a batched observation (feature keys) and, for i < N, the
  observation of tick i under "tick<i>|<key>". OUT.npz: "chunk" = post(predict_action_chunk(pre(obs))) and
  "select" (N, B, A) = post(select_action(pre(tick i))) after reset().
- {"op": "loss", "ckpt": DIR, "batch": BATCH.npz, "seed": S, "out": OUT.safetensors}
  Train-mode `forward` on the (already normalized) batch after torch.manual_seed(S), then backward. OUT holds
  "loss", "l1_loss", "kld_loss" and "grad|<param name>" for every parameter with a gradient.
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
from lerobot.policies.act.configuration_act import ACTConfig  # noqa: E402
from lerobot.policies.act.modeling_act import ACTPolicy  # noqa: E402
from lerobot.policies.factory import make_pre_post_processors  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402


def _features(spec: dict) -> dict:
    return {k: PolicyFeature(FeatureType(v["type"]), tuple(v["shape"])) for k, v in spec.items()}


def _stats(path: str) -> dict:
    data = np.load(path)
    stats: dict = {}
    for name in data.files:
        key, stat = name.split("|")
        stats.setdefault(key, {})[stat] = torch.from_numpy(data[name])
    return stats


def make(job: dict) -> None:
    spec = dict(job["config"])
    spec["input_features"] = _features(spec["input_features"])
    spec["output_features"] = _features(spec["output_features"])
    if "normalization_mapping" in spec:
        spec["normalization_mapping"] = {k: NormalizationMode(v) for k, v in spec["normalization_mapping"].items()}
    torch.manual_seed(int(job["seed"]))
    config = ACTConfig(**spec)
    policy = ACTPolicy(config)
    with torch.no_grad():
        for module in policy.modules():
            if isinstance(module, FrozenBatchNorm2d):
                module.weight.copy_(torch.rand_like(module.weight) * 0.5 + 0.75)
                module.bias.copy_(torch.rand_like(module.bias) * 0.2 - 0.1)
                module.running_mean.copy_(torch.randn_like(module.running_mean) * 0.1)
                module.running_var.copy_(torch.rand_like(module.running_var) * 0.5 + 0.75)
    pre, post = make_pre_post_processors(config, dataset_stats=_stats(job["stats"]))
    out = Path(job["out"])
    policy.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)


def _load(ckpt: str):
    policy = ACTPolicy.from_pretrained(ckpt)
    pre, post = make_pre_post_processors(
        policy.config, pretrained_path=ckpt, preprocessor_overrides={"device_processor": {"device": "cpu"}}
    )
    return policy, pre, post


def predict(job: dict) -> None:
    policy, pre, post = _load(job["ckpt"])
    data = np.load(job["obs"])
    obs = {k: torch.from_numpy(data[k]) for k in data.files if "|" not in k}
    with torch.no_grad():
        chunk = post(policy.predict_action_chunk(pre(obs)))
        policy.reset()
        select = []
        for i in range(int(job.get("select_steps", 0))):
            tick = {k.split("|", 1)[1]: torch.from_numpy(data[k]) for k in data.files if k.startswith(f"tick{i}|")}
            select.append(post(policy.select_action(pre(tick))).numpy())
    out = {"chunk": chunk.numpy()}
    if select:
        out["select"] = np.stack(select)
    np.savez(job["out"], **out)


def loss(job: dict) -> None:
    policy = ACTPolicy.from_pretrained(job["ckpt"])
    data = np.load(job["batch"])
    batch = {k: torch.from_numpy(data[k]) for k in data.files}
    policy.train()
    torch.manual_seed(int(job["seed"]))
    value, info = policy.forward(batch)
    value.backward()
    out = {"loss": value.detach().reshape(1), "l1_loss": torch.tensor([info["l1_loss"]]),
           "kld_loss": torch.tensor([info.get("kld_loss", float("nan"))])}
    out.update({f"grad|{n}": p.grad.contiguous() for n, p in policy.named_parameters() if p.grad is not None})
    save_file(out, job["out"])


def main() -> None:
    ops = {"make": make, "predict": predict, "loss": loss}
    for job in json.loads(Path(sys.argv[1]).read_text()):
        ops[job["op"]](job)
        print(json.dumps({"done": job["op"]}))


if __name__ == "__main__":
    main()
