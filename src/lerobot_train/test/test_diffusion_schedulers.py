"""Our DDPM / DDIM schedulers against diffusers' (in the oracle venv), step for step, with the arguments upstream
LeRobot's Diffusion policy passes; and their own invariants."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lerobot_train.policies.diffusion.schedulers import DDIMScheduler, DDPMScheduler, make_noise_scheduler

UPSTREAM_DEFAULTS = dict(num_train_timesteps=100, beta_start=0.0001, beta_end=0.02, beta_schedule="squaredcos_cap_v2",
                         clip_sample=True, clip_sample_range=1.0, prediction_type="epsilon")

JOBS = [
    ("ddpm_default", "DDPM", UPSTREAM_DEFAULTS, 100),
    ("ddpm_10_steps", "DDPM", UPSTREAM_DEFAULTS, 10),
    ("ddpm_sample_linear", "DDPM", {**UPSTREAM_DEFAULTS, "prediction_type": "sample", "beta_schedule": "linear",
                                    "clip_sample_range": 0.5}, 25),
    ("ddim_10_steps", "DDIM", UPSTREAM_DEFAULTS, 10),
    ("ddim_sample_scaled", "DDIM", {**UPSTREAM_DEFAULTS, "prediction_type": "sample",
                                    "beta_schedule": "scaled_linear", "clip_sample": False}, 7),
    ("ddim_all_steps", "DDIM", {**UPSTREAM_DEFAULTS, "num_train_timesteps": 50}, 50),
]


def run_ours(kind, kwargs, steps, sample, outputs, seed):
    scheduler = make_noise_scheduler(kind, **kwargs)
    scheduler.set_timesteps(steps)
    torch.manual_seed(seed)
    samples = []
    for t, model_output in zip(scheduler.timesteps, outputs, strict=True):
        sample = scheduler.step(model_output, t, sample)
        samples.append(sample)
    return scheduler, torch.stack(samples)


@pytest.mark.oracle
def test_schedulers_equal_diffusers_step_for_step(tmp_path):
    from oracle import oracle_env

    rng = np.random.default_rng(0)
    inputs: dict[str, np.ndarray] = {}
    jobs = []
    for seed, (name, kind, kwargs, steps) in enumerate(JOBS):
        inputs[f"{name}|sample"] = rng.standard_normal((2, 16, 3)).astype(np.float32)
        # Model outputs big enough that clipping the predicted sample matters.
        inputs[f"{name}|outputs"] = (2 * rng.standard_normal((steps, 2, 16, 3))).astype(np.float32)
        inputs[f"{name}|clean"] = rng.standard_normal((4, 16, 3)).astype(np.float32)
        inputs[f"{name}|noise"] = rng.standard_normal((4, 16, 3)).astype(np.float32)
        inputs[f"{name}|train_t"] = rng.integers(0, kwargs["num_train_timesteps"], size=4).astype(np.int64)
        jobs.append({"name": name, "type": kind, "kwargs": kwargs, "num_inference_steps": steps, "seed": seed})
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    np.savez(tmp_path / "inputs.npz", **inputs)
    oracle_env.run_oracle("diffusers_schedulers.py", str(tmp_path / "jobs.json"), str(tmp_path / "inputs.npz"),
                          str(tmp_path / "out.npz"))
    upstream = np.load(tmp_path / "out.npz")
    for seed, (name, kind, kwargs, steps) in enumerate(JOBS):
        scheduler, samples = run_ours(kind, kwargs, steps, torch.from_numpy(inputs[f"{name}|sample"]),
                                      torch.from_numpy(inputs[f"{name}|outputs"]), seed)
        np.testing.assert_array_equal(scheduler.timesteps.numpy(), upstream[f"{name}|timesteps"], err_msg=name)
        np.testing.assert_array_equal(scheduler.alphas_cumprod.numpy(), upstream[f"{name}|alphas_cumprod"],
                                      err_msg=name)
        np.testing.assert_allclose(samples.numpy(), upstream[f"{name}|samples"], rtol=0, atol=0, err_msg=name)
        noisy = scheduler.add_noise(torch.from_numpy(inputs[f"{name}|clean"]), torch.from_numpy(inputs[f"{name}|noise"]),
                                    torch.from_numpy(inputs[f"{name}|train_t"]))
        np.testing.assert_allclose(noisy.numpy(), upstream[f"{name}|noisy"], rtol=0, atol=0, err_msg=name)


def test_ddpm_with_perfect_noise_prediction_recovers_the_clean_sample():
    """If the model predicts exactly the noise that was added, DDIM lands on the clean sample in one step and DDPM's
    predicted x0 is exact at every step."""
    torch.manual_seed(0)
    clean = torch.rand(3, 8, 2) * 1.8 - 0.9
    noise = torch.randn(3, 8, 2)
    ddim = DDIMScheduler(**UPSTREAM_DEFAULTS)
    ddim.set_timesteps(1)
    t = int(ddim.timesteps[0])
    noisy = ddim.add_noise(clean, noise, torch.full((3,), t))
    assert torch.allclose(ddim.step(noise, t, noisy), clean, atol=1e-4)
    ddpm = DDPMScheduler(**UPSTREAM_DEFAULTS)
    ddpm.set_timesteps(100)
    step = ddpm.steps[0]
    noisy = ddpm.add_noise(clean, noise, torch.full((3,), step.timestep))
    assert torch.allclose(ddpm.predict_original_sample(step, noise, noisy), clean, atol=1e-3)


def test_scheduler_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="unknown beta_schedule 'cosine'"):
        DDPMScheduler(beta_schedule="cosine")
    with pytest.raises(ValueError, match="unknown prediction_type 'v'"):
        DDIMScheduler(prediction_type="v")
    with pytest.raises(ValueError, match="unknown noise_scheduler_type 'PNDM'"):
        make_noise_scheduler("PNDM")
    scheduler = DDPMScheduler(num_train_timesteps=10)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        scheduler.step(torch.zeros(1), 3, torch.zeros(1))
    with pytest.raises(ValueError, match=r"num_inference_steps must be in \[1, 10\]"):
        scheduler.set_timesteps(11)
    scheduler.set_timesteps(5)
    with pytest.raises(ValueError, match="timestep 3 is not one of"):
        scheduler.step(torch.zeros(1), 3, torch.zeros(1))
