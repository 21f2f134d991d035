"""Step diffusers' DDPMScheduler / DDIMScheduler (as upstream lerobot builds them) through given model outputs.

    python tests/oracle/diffusers_schedulers.py JOBS.json INPUTS.npz OUT.npz   (run with the .venv-oracle python)

JOBS.json: a list of {"name", "type": "DDPM"|"DDIM", "kwargs": {scheduler kwargs upstream passes},
"num_inference_steps", "seed"}. INPUTS.npz per job: `<name>|sample` (the initial sample), `<name>|outputs` (one model
output per inference step, stacked), `<name>|clean`, `<name>|noise`, `<name>|train_t` (for add_noise).
The global torch RNG is seeded with `seed` right before the reverse loop, so DDPM's per-step noise is reproducible.
OUT.npz per job: `<name>|timesteps`, `<name>|alphas_cumprod`, `<name>|samples` (the sample after each step),
`<name>|noisy` (add_noise).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler


def main() -> None:
    jobs = json.loads(open(sys.argv[1]).read())
    inputs = np.load(sys.argv[2])
    out: dict[str, np.ndarray] = {}
    for job in jobs:
        name = job["name"]
        cls = DDPMScheduler if job["type"] == "DDPM" else DDIMScheduler
        scheduler = cls(**job["kwargs"])
        scheduler.set_timesteps(job["num_inference_steps"])
        sample = torch.from_numpy(inputs[f"{name}|sample"])
        outputs = torch.from_numpy(inputs[f"{name}|outputs"])
        torch.manual_seed(job["seed"])
        samples = []
        for t, model_output in zip(scheduler.timesteps, outputs, strict=True):
            sample = scheduler.step(model_output, t, sample).prev_sample
            samples.append(sample)
        out[f"{name}|timesteps"] = scheduler.timesteps.numpy()
        out[f"{name}|alphas_cumprod"] = scheduler.alphas_cumprod.numpy()
        out[f"{name}|samples"] = torch.stack(samples).numpy()
        out[f"{name}|noisy"] = scheduler.add_noise(
            torch.from_numpy(inputs[f"{name}|clean"]), torch.from_numpy(inputs[f"{name}|noise"]),
            torch.from_numpy(inputs[f"{name}|train_t"]),
        ).numpy()
    np.savez(sys.argv[3], **out)


if __name__ == "__main__":
    main()
