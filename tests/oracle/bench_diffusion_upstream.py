"""UPSTREAM lerobot 0.4.4's side of benchmarks/bench_policies_generative.py (run with the .venv-oracle python).

    python tests/oracle/bench_diffusion_upstream.py JOB.json

JOB: {"ckpt", "inputs" (npz), "device", "repeats", "train_repeats", "threads", "modes": [[name, autocast dtype
name or null], ...]}. Does exactly what the benchmark's own worker does for our policy (see there), with upstream's
DiffusionPolicy.from_pretrained, its observation queues and its Adam preset (torch.optim.Adam), and prints one line
"BENCH_RESULT <json>".
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy  # noqa: E402
from lerobot.policies.utils import populate_queues  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def autocast(device: str, dtype_name: str | None):
    if dtype_name is None:
        return torch.autocast(device.split(":")[0], enabled=False)
    return torch.autocast(device.split(":")[0], dtype=getattr(torch, dtype_name))


def predict(policy, observation: dict) -> torch.Tensor:
    """One chunk from a single-step observation, as select_action does it (history copy-padded)."""
    policy.reset()
    batch = dict(observation)
    batch["observation.images"] = torch.stack([batch[k] for k in policy.config.image_features], dim=-4)
    populate_queues(policy._queues, batch)
    return policy.predict_action_chunk(batch)


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    device = job["device"]
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    data = np.load(job["inputs"])
    policy = DiffusionPolicy.from_pretrained(job["ckpt"]).to(device).eval()
    camera = next(iter(policy.config.image_features))
    observation = {"observation.state": torch.from_numpy(data["obs_state"]).to(device),
                   camera: torch.from_numpy(data["obs_image"]).to(device)}
    train_batch = {"observation.state": torch.from_numpy(data["train_state"]).to(device),
                   camera: torch.from_numpy(data["train_images"]).to(device),
                   "action": torch.from_numpy(data["train_action"]).to(device),
                   "action_is_pad": torch.from_numpy(data["train_action_is_pad"]).to(device)}
    result = {"memory_after_load_mb": peak_memory_mb(device), "modes": {}}

    with torch.no_grad():
        torch.manual_seed(0)
        result["check_chunk"] = predict(policy, observation).float().cpu().numpy().tolist()

    for name, dtype_name in job["modes"]:
        times = []
        with torch.no_grad(), autocast(device, dtype_name):
            for _ in range(job["repeats"] + 1):  # the first run warms up (allocator, kernel choice)
                sync(device)
                start = time.perf_counter()
                predict(policy, observation)
                sync(device)
                times.append(time.perf_counter() - start)
        result["modes"][name] = {"predict_s": times[1:]}
    result["memory_after_predict_mb"] = peak_memory_mb(device)

    policy.train()
    config = policy.config
    optimizer = torch.optim.Adam(policy.get_optim_params(), lr=config.optimizer_lr, betas=config.optimizer_betas,
                                 eps=config.optimizer_eps, weight_decay=config.optimizer_weight_decay)
    for name, dtype_name in job["modes"]:
        times = []
        for _ in range(job["train_repeats"] + 1):
            sync(device)
            start = time.perf_counter()
            optimizer.zero_grad()
            with autocast(device, dtype_name):
                loss, _ = policy.forward(train_batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
            optimizer.step()
            sync(device)
            times.append(time.perf_counter() - start)
        result["modes"][name]["train_step_s"] = times[1:]
    result["memory_after_train_mb"] = peak_memory_mb(device)
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
