#!/usr/bin/env python3
"""Generative-policy benchmark: Diffusion (ours vs UPSTREAM lerobot 0.4.4 on the same checkpoint and inputs, in
the same run) and our flow_chunk policy. Prints figures.

    python benchmarks/bench_policies_generative.py [--device cpu|cuda] [--policies diffusion flow_chunk]
        [--rounds 2] [--repeats 2] [--train-repeats 3] [--inference-steps N] [--threads N] [--skip-upstream]
        [--keep DIR]

Diffusion: upstream's default config (the 0.4.x generation: horizon 16, 8 executed actions, GroupNorm ResNet-18,
U-Net 512/1024/2048, DDPM with 100 steps; ~263 M parameters) on a PushT-like input (one 96x96 camera cropped to
84x84, 2-D state and action), random weights saved once by us; upstream loads the same file. Per side, in its own
process (ours under this interpreter, upstream's under .venv-oracle/bin/python), alternating ours/upstream for
--rounds rounds so both see the same machine load; every figure is the BEST (minimum) time over all timed runs of
that side, the estimate least disturbed by other jobs on a shared machine:
  - batch-1 `predict_action_chunk` latency from a single-step observation (history copy-padded, as select_action
    fills it), --repeats runs per round after one warm-up run;
  - batch-8 training step (forward + backward + grad-norm clip 10 + Adam preset step) on a (2-step history,
    16-action) batch, --train-repeats steps per round after one warm-up step; ours uses torch's fused Adam kernel
    (same update maths), upstream its plain torch.optim.Adam;
  - peak memory: the process's peak RSS on CPU (includes torch itself), torch.cuda.max_memory_allocated on CUDA;
  - a check that both sides produce the same chunk for the same seed (max abs difference printed).
On CUDA each side runs fp32 and bf16 autocast; ours also replays the whole denoising loop as one captured CUDA
graph (`DiffusionPolicy.use_cuda_graphs()`: same kernels, scheduler and step count), compared against upstream's
eager run of the same dtype.

flow_chunk (ours only; upstream has no such policy): the default config on a 480x640 camera (resized inside the
model to 96x128) + 6-D state, chunk of 16 actions, 10 Euler steps: batch-1 chunk latency without and with RTC
guidance (8 left-over rows, delay 2), training step time at batch 8 and 32 (AdamW preset, fused), peak memory
(best of the timed runs, as above).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

WS = Path(__file__).resolve().parents[1]
ORACLE_PYTHON = WS / ".venv-oracle" / "bin" / "python"
UPSTREAM_WORKER = WS / "tests" / "oracle" / "bench_diffusion_upstream.py"
RESULT_PREFIX = "BENCH_RESULT "
DIFFUSION_CAMERA = "observation.image"
FLOW_CAMERA = "observation.images.front"


# ============================================================================================ shared helpers
def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def autocast(device: str, dtype_name: str | None):
    import torch

    if dtype_name is None:
        return torch.autocast(device.split(":")[0], enabled=False)
    return torch.autocast(device.split(":")[0], dtype=getattr(torch, dtype_name))


def timed(device: str, runs: int, fn) -> list[float]:
    """Seconds per call of fn(), `runs` calls after one warm-up call."""
    times = []
    for _ in range(runs + 1):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times[1:]


def cuda_modes(device: str) -> list[tuple[str, str | None]]:
    return [("fp32", None), ("bf16", "bfloat16")] if device.startswith("cuda") else [("fp32", None)]


def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_worker(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"benchmark worker failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


# ============================================================================================ Diffusion
def diffusion_config(inference_steps: int | None):
    from lerobot_train.configs.types import FeatureType, PolicyFeature
    from lerobot_train.policies.diffusion.configuration_diffusion import DiffusionConfig

    return DiffusionConfig(
        device="cpu", crop_shape=(84, 84), num_inference_steps=inference_steps,
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (2,)),
                        DIFFUSION_CAMERA: PolicyFeature(FeatureType.VISUAL, (3, 96, 96))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
    )


def prepare_diffusion(workdir: Path, inference_steps: int | None) -> tuple[Path, Path]:
    """A randomly initialised default Diffusion checkpoint and the benchmark inputs (normalised space)."""
    import torch

    from lerobot_train.policies.diffusion.modeling_diffusion import DiffusionPolicy

    torch.manual_seed(0)
    config = diffusion_config(inference_steps)
    DiffusionPolicy(config).save_pretrained(workdir / "diffusion_ckpt")
    rng = np.random.default_rng(0)
    batch = 8
    np.savez(workdir / "diffusion_inputs.npz",
             obs_state=rng.uniform(-1, 1, (1, 2)).astype(np.float32),
             obs_image=rng.normal(0, 1, (1, 3, 96, 96)).astype(np.float32),
             train_state=rng.uniform(-1, 1, (batch, config.n_obs_steps, 2)).astype(np.float32),
             train_images=rng.normal(0, 1, (batch, config.n_obs_steps, 3, 96, 96)).astype(np.float32),
             train_action=rng.uniform(-1, 1, (batch, config.horizon, 2)).astype(np.float32),
             train_action_is_pad=np.zeros((batch, config.horizon), dtype=bool))
    return workdir / "diffusion_ckpt", workdir / "diffusion_inputs.npz"


def diffusion_worker(job: dict[str, Any]) -> None:
    """Our side of the Diffusion measurements (the same protocol as tests/oracle/bench_diffusion_upstream.py)."""
    import torch

    from lerobot_train.policies.diffusion.modeling_diffusion import DiffusionPolicy

    device = job["device"]
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    data = np.load(job["inputs"])
    policy = DiffusionPolicy.from_pretrained(job["ckpt"], device=device)
    observation = {"observation.state": torch.from_numpy(data["obs_state"]).to(device),
                   DIFFUSION_CAMERA: torch.from_numpy(data["obs_image"]).to(device)}
    train_batch = {"observation.state": torch.from_numpy(data["train_state"]).to(device),
                   DIFFUSION_CAMERA: torch.from_numpy(data["train_images"]).to(device),
                   "action": torch.from_numpy(data["train_action"]).to(device),
                   "action_is_pad": torch.from_numpy(data["train_action_is_pad"]).to(device)}
    result: dict[str, Any] = {"memory_after_load_mb": peak_memory_mb(device), "modes": {}}

    def predict() -> torch.Tensor:
        policy.reset()
        return policy.predict_action_chunk(observation)

    torch.manual_seed(0)
    result["check_chunk"] = predict().float().cpu().numpy().tolist()
    predict_modes = list(job["modes"])
    if device.startswith("cuda"):
        predict_modes += [(f"{name}+cuda-graph", dtype) for name, dtype in job["modes"]]
    for name, dtype_name in predict_modes:
        policy.use_cuda_graphs(name.endswith("+cuda-graph"))
        with torch.no_grad(), autocast(device, dtype_name):
            result["modes"][name] = {"predict_s": timed(device, job["repeats"], predict)}
    policy.use_cuda_graphs(False)
    result["memory_after_predict_mb"] = peak_memory_mb(device)

    policy.train()
    optimizer = policy.config.get_optimizer_preset().build(policy.get_optim_params())

    def train_step() -> None:
        optimizer.zero_grad()
        with autocast(device, dtype_name):
            loss, _ = policy.forward(train_batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        optimizer.step()

    for name, dtype_name in job["modes"]:
        result["modes"][name]["train_step_s"] = timed(device, job["train_repeats"], train_step)
    result["memory_after_train_mb"] = peak_memory_mb(device)
    result["fused_adam"] = bool(optimizer.defaults.get("fused"))
    emit(result)


def bench_diffusion(args: argparse.Namespace, workdir: Path) -> None:
    ckpt, inputs = prepare_diffusion(workdir, args.inference_steps)
    job = {"ckpt": str(ckpt), "inputs": str(inputs), "device": args.device, "repeats": args.repeats,
           "train_repeats": args.train_repeats, "threads": args.threads, "modes": cuda_modes(args.device)}
    (workdir / "diffusion_job.json").write_text(json.dumps(job))
    steps = args.inference_steps or 100
    print(f"\n== Diffusion (default 0.4.x config, {steps} DDPM steps, 96x96 camera cropped to 84x84; "
          f"device {args.device}) ==", flush=True)
    ours_cmd = [sys.executable, __file__, "--worker", "diffusion", "--job", str(workdir / "diffusion_job.json")]
    upstream_cmd = [str(ORACLE_PYTHON), str(UPSTREAM_WORKER), str(workdir / "diffusion_job.json")]
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "upstream": []}
    sides = [("ours", ours_cmd)] + ([] if args.skip_upstream else [("upstream", upstream_cmd)])
    with tqdm(total=args.rounds * len(sides), desc="   worker processes", unit="run") as progress:
        for _ in range(args.rounds):
            for side, cmd in sides:
                runs[side].append(run_worker(cmd))
                progress.update()
    print_diffusion(merge_rounds(runs["ours"]), merge_rounds(runs["upstream"]) if runs["upstream"] else None)


def merge_rounds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several worker runs: every timing list concatenated, the highest peak memory."""
    merged = dict(results[0])
    merged["modes"] = {mode: {key: [t for r in results for t in r["modes"][mode][key]] for key in figures}
                       for mode, figures in results[0]["modes"].items()}
    for key in ("memory_after_load_mb", "memory_after_predict_mb", "memory_after_train_mb"):
        merged[key] = max(r[key] for r in results)
    return merged


def best_ms(values: list[float] | None) -> float | None:
    return min(values) * 1000 if values else None


def _cell(mine: float | None, theirs: float | None) -> str:
    """'ours ms  upstream ms  ratio' with dashes for what was not measured."""
    ratio = f"{theirs / mine:.2f}x" if mine and theirs else "-"
    mine_text = f"{mine:.1f} ms" if mine else "-"
    theirs_text = f"{theirs:.1f} ms" if theirs else "-"
    return f"{mine_text:>15} {theirs_text:>10} {ratio:>7}"


def print_diffusion(ours: dict[str, Any], upstream: dict[str, Any] | None) -> None:
    print(f"   {'mode':<20} {'chunk b=1 ours':>15} {'upstream':>10} {'ratio':>7}   {'train b=8 ours':>15} "
          f"{'upstream':>10} {'ratio':>7}")
    for mode, figures in ours["modes"].items():
        reference = (upstream or {}).get("modes", {}).get(mode.removesuffix("+cuda-graph"), {})
        predict = _cell(best_ms(figures.get("predict_s")), best_ms(reference.get("predict_s")))
        train = _cell(best_ms(figures.get("train_step_s")), best_ms(reference.get("train_step_s")))
        print(f"   {mode:<20} {predict}   {train}")
    print("   best of the timed runs; ratio = upstream time / our time (> 1: ours is faster)")
    for side, result in (("ours", ours), ("upstream", upstream)):
        if result:
            print(f"   peak memory {side:<8}: after load {result['memory_after_load_mb']:.0f} MB, after inference "
                  f"{result['memory_after_predict_mb']:.0f} MB, after training {result['memory_after_train_mb']:.0f} MB")
    if upstream:
        diff = np.abs(np.array(ours["check_chunk"]) - np.array(upstream["check_chunk"])).max()
        print(f"   same seed, same chunk: max |ours - upstream| = {diff:.2e}")
    print(f"   our optimizer: {'fused' if ours.get('fused_adam') else 'for-loop'} Adam", flush=True)


# ============================================================================================ flow_chunk
def flow_worker(job: dict[str, Any]) -> None:
    import torch

    from lerobot_train.configs.types import FeatureType, PolicyFeature
    from lerobot_train.policies.flow_chunk.configuration_flow_chunk import FlowChunkConfig
    from lerobot_train.policies.flow_chunk.modeling_flow_chunk import FlowChunkPolicy

    device = job["device"]
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    torch.manual_seed(0)
    config = FlowChunkConfig(device=device, input_features={
        "observation.state": PolicyFeature(FeatureType.STATE, (6,)),
        FLOW_CAMERA: PolicyFeature(FeatureType.VISUAL, (3, 480, 640))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))})
    policy = FlowChunkPolicy(config).to(device).eval()
    result: dict[str, Any] = {"params": sum(p.numel() for p in policy.parameters()),
                              "memory_after_load_mb": peak_memory_mb(device), "modes": {}}

    def observation(batch: int) -> dict[str, torch.Tensor]:
        return {"observation.state": torch.randn(batch, 6, device=device),
                FLOW_CAMERA: torch.rand(batch, 3, 480, 640, device=device)}

    obs = observation(1)
    prefix = torch.randn(1, 8, 6, device=device)
    for name, dtype_name in job["modes"]:
        with torch.no_grad(), autocast(device, dtype_name):
            plain = timed(device, job["repeats"], lambda: policy.predict_action_chunk(obs))
            guided = timed(device, job["repeats"], lambda: policy.predict_action_chunk(
                obs, inference_delay=2, prev_chunk_left_over=prefix, execution_horizon=8))
        result["modes"][name] = {"predict_s": plain, "predict_rtc_s": guided}
    result["memory_after_predict_mb"] = peak_memory_mb(device)

    policy.train()
    optimizer = config.get_optimizer_preset().build(policy.get_optim_params())
    for batch_size in (8, 32):
        batch = {**observation(batch_size), "action": torch.randn(batch_size, config.chunk_size, 6, device=device)}
        for name, dtype_name in job["modes"]:
            def train_step() -> None:
                optimizer.zero_grad()
                with autocast(device, dtype_name):
                    loss, _ = policy.forward(batch)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), config.optimizer_grad_clip_norm)
                optimizer.step()

            result["modes"][name][f"train_b{batch_size}_s"] = timed(device, job["train_repeats"], train_step)
    result["memory_after_train_mb"] = peak_memory_mb(device)
    emit(result)


def bench_flow(args: argparse.Namespace, workdir: Path) -> None:
    job = {"device": args.device, "repeats": max(args.repeats, 5), "train_repeats": max(args.train_repeats, 5),
           "threads": args.threads, "modes": cuda_modes(args.device)}
    (workdir / "flow_job.json").write_text(json.dumps(job))
    print(f"\n== flow_chunk (default config, 480x640 camera resized to 96x128 in the model, 10 Euler steps; "
          f"device {args.device}) ==", flush=True)
    result = run_worker([sys.executable, __file__, "--worker", "flow_chunk", "--job", str(workdir / "flow_job.json")])
    print(f"   parameters: {result['params'] / 1e6:.2f} M")
    print(f"   {'mode':<8} {'chunk b=1':>10} {'chunk b=1 + RTC':>16} {'train b=8':>10} {'train b=32':>11}")
    for mode, figures in result["modes"].items():
        print(f"   {mode:<8} {best_ms(figures['predict_s']):>7.1f} ms {best_ms(figures['predict_rtc_s']):>13.1f} ms "
              f"{best_ms(figures['train_b8_s']):>7.1f} ms {best_ms(figures['train_b32_s']):>8.1f} ms")
    print(f"   peak memory: after load {result['memory_after_load_mb']:.0f} MB, after inference "
          f"{result['memory_after_predict_mb']:.0f} MB, after training {result['memory_after_train_mb']:.0f} MB",
          flush=True)


# ============================================================================================ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--policies", nargs="+", default=["diffusion", "flow_chunk"], choices=["diffusion", "flow_chunk"])
    parser.add_argument("--rounds", type=int, default=2, help="alternating ours/upstream worker runs (Diffusion)")
    parser.add_argument("--repeats", type=int, default=2, help="timed chunk predictions per mode (after a warm-up)")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed training steps per mode (after a warm-up)")
    parser.add_argument("--inference-steps", type=int, default=None,
                        help="Diffusion num_inference_steps (default: the config's, i.e. all 100 DDPM steps)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads in every worker (default torch's)")
    parser.add_argument("--skip-upstream", action="store_true", help="measure our side only")
    parser.add_argument("--keep", type=Path, default=None, help="keep the checkpoint and inputs in this folder")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--job", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.job.read_text())
        {"diffusion": diffusion_worker, "flow_chunk": flow_worker}[args.worker](job)
        return
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("error: --device cuda but torch sees no CUDA device")
    if not args.skip_upstream and "diffusion" in args.policies and not ORACLE_PYTHON.exists():
        raise SystemExit(f"error: upstream's venv {ORACLE_PYTHON} is missing (make oracle), or pass --skip-upstream")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-policies-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if "diffusion" in args.policies:
            bench_diffusion(args, workdir)
        if "flow_chunk" in args.policies:
            bench_flow(args, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
