#!/usr/bin/env python3
"""Policy benchmark: OUR policies vs UPSTREAM lerobot 0.4.4's on the same checkpoint and inputs, in the same run.

    python benchmarks/bench_policies.py [--policy act] [--height 480 --width 640] [--cameras 1] [--small]
                                        [--iters 20] [--train-iters 6] [--device cpu|cuda] [--dtype fp32|bf16]
                                        [--compile] [--skip-upstream] [--keep DIR]

Measured per side:
- chunk: batch-1 `predict_action_chunk` on a normalized observation (the model's forward at inference), ms;
- train: one batch-8 training step = `forward` (loss) + `backward` + AdamW `step` (+ zero_grad), ms; each side
  builds its optimizer from its own AdamW preset (ours uses torch's fused kernel; same update maths);
- peak memory: the worker's peak RSS (CPU) or `torch.cuda.max_memory_allocated` (CUDA), MB;
- agreement: max |ours - upstream| of the chunk and |loss difference| of the first step, so a speed-up can never
  come from computing something else.
Each side runs in its own persistent worker process (ours in this venv, upstream under .venv-oracle) that loads the
checkpoint once and times one call per command; the parent alternates the two workers call by call, so a busy
machine slows both alike, and reports medians, p10/p90 and the speed-up (upstream time / ours) of the medians and of
the p10s (on a loaded machine the fastest decile reflects the code's own speed best).

Ours runs as users run it: channels-last images into the backbone (built into ACT), fused AdamW; `--compile`
additionally wraps the forward in `torch.compile` (on CUDA `mode="reduce-overhead"`, i.e. CUDA graphs), checked to
give the same outputs. `--dtype bf16` runs both sides under bf16 autocast (CUDA). Upstream runs eager, as shipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

WS = Path(__file__).resolve().parents[1]
ORACLE_PYTHON = WS / ".venv-oracle" / "bin" / "python"
STATE_DIM = ACTION_DIM = 6
TRAIN_BATCH = 8


# ============================================================================================ worker (either venv)
def _load_policy(side: str, policy_type: str, ckpt: str, device: str):
    if side == "upstream":
        sys.path.insert(0, str(WS / "tests" / "oracle"))
        import oracle_shims  # noqa: F401  (before lerobot)

        if policy_type == "act":
            from lerobot.optim.optimizers import AdamWConfig
            from lerobot.policies.act.modeling_act import ACTPolicy as cls
        else:
            raise SystemExit(f"no upstream {policy_type} here")
    else:
        from lerobot_train.policies.factory import get_policy_class
        from lerobot_train.policies.optim import AdamWConfig

        cls = get_policy_class(policy_type)
    policy = cls.from_pretrained(ckpt)
    policy.to(device)
    preset = policy.config.get_optimizer_preset()
    optimizer = AdamWConfig(lr=preset.lr, weight_decay=preset.weight_decay).build(policy.get_optim_params())
    return policy, optimizer


def worker(args: argparse.Namespace) -> None:
    import contextlib
    import resource

    import torch

    torch.manual_seed(0)
    device = args.device
    policy, optimizer = _load_policy(args.worker, args.policy, args.ckpt, device)
    data = np.load(args.inputs)
    obs = {k.split("|", 1)[1]: torch.from_numpy(data[k]).to(device) for k in data.files if k.startswith("obs|")}
    train = {k.split("|", 1)[1]: torch.from_numpy(data[k]).to(device) for k in data.files if k.startswith("train|")}
    autocast = (torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
                if args.dtype == "bf16" else contextlib.nullcontext())
    predict = policy.predict_action_chunk
    if args.compile and args.worker == "ours":
        model = policy.model
        compiled = torch.compile(model, mode="reduce-overhead" if device.startswith("cuda") else None)
        policy.eval()

        def predict(batch):  # the same forward as predict_action_chunk, compiled (inference: latent = 0)
            with torch.inference_mode():
                return compiled(batch)[0]

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def run_chunk() -> Any:
        policy.eval()
        with torch.inference_mode(), autocast:
            out = predict(obs)
        sync()
        return out

    def run_train() -> float:
        policy.train()
        torch.manual_seed(0)
        with autocast:
            loss, _ = policy.forward(train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()
        return loss.item()

    def agreement_loss() -> float:
        """The training loss with every dropout off (their random masks differ between code bases)."""
        saved = {}
        for module in policy.modules():
            if isinstance(module, torch.nn.Dropout):
                saved[module], module.p = module.p, 0.0
            elif isinstance(module, torch.nn.MultiheadAttention):
                saved[module], module.dropout = module.dropout, 0.0
        policy.train()
        torch.manual_seed(0)
        with torch.no_grad(), autocast:
            loss, _ = policy.forward(train)
        for module, p in saved.items():
            setattr(module, "p" if isinstance(module, torch.nn.Dropout) else "dropout", p)
        return loss.item()

    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        start = time.perf_counter()
        reply: dict[str, Any] = {}
        if command == "chunk":
            run_chunk()
        elif command == "train":
            run_train()
        elif command == "agree":  # before any training step changes the weights
            np.save(args.outputs, run_chunk().float().cpu().numpy())
            reply["loss"] = agreement_loss()
        elif command == "memory":
            if device.startswith("cuda"):
                reply["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
            else:
                reply["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        reply["ms"] = (time.perf_counter() - start) * 1000
        print(json.dumps(reply), flush=True)


# ============================================================================================ parent
def make_checkpoint(args: argparse.Namespace, folder: Path) -> None:
    import torch

    from lerobot_train.configs.types import FeatureType, PolicyFeature
    from lerobot_train.policies.factory import get_policy_class, make_policy_config

    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,))}
    for i in range(args.cameras):
        inputs[f"observation.images.cam{i}"] = PolicyFeature(FeatureType.VISUAL, (3, args.height, args.width))
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}
    kwargs: dict[str, Any] = {"input_features": inputs, "output_features": outputs, "device": "cpu",
                              "pretrained_backbone_weights": None}
    if args.small:
        kwargs.update(dim_model=256, dim_feedforward=1024, n_encoder_layers=2, n_vae_encoder_layers=2, chunk_size=50,
                      n_action_steps=50)
    torch.manual_seed(0)
    config = make_policy_config(args.policy, **kwargs)
    get_policy_class(args.policy)(config).save_pretrained(folder)


def make_inputs(args: argparse.Namespace, ckpt: Path, path: Path) -> None:
    config = json.loads((ckpt / "config.json").read_text())
    rng = np.random.default_rng(0)
    arrays = {}
    for key, ft in config["input_features"].items():
        shape = tuple(ft["shape"])
        arrays[f"obs|{key}"] = rng.standard_normal((1, *shape)).astype(np.float32)
        arrays[f"train|{key}"] = rng.standard_normal((TRAIN_BATCH, *shape)).astype(np.float32)
    chunk = config["chunk_size"]
    arrays["train|action"] = rng.standard_normal((TRAIN_BATCH, chunk, ACTION_DIM)).astype(np.float32)
    pad = np.zeros((TRAIN_BATCH, chunk), dtype=bool)
    pad[0, -chunk // 4:] = True
    arrays["train|action_is_pad"] = pad
    np.savez(path, **arrays)


class Worker:
    def __init__(self, side: str, python: Path, args: argparse.Namespace, ckpt: Path, inputs: Path, work: Path):
        self.side = side
        self.outputs = work / f"{side}_chunk.npy"
        cmd = [str(python), str(Path(__file__).resolve()), "--worker", side, "--policy", args.policy, "--ckpt", str(ckpt),
               "--inputs", str(inputs), "--outputs", str(self.outputs), "--device", args.device, "--dtype", args.dtype]
        if args.compile:
            cmd.append("--compile")
        env = dict(os.environ, TQDM_DISABLE="1")
        if side == "upstream":
            for var in ("PYTHONPATH", "VIRTUAL_ENV", "AMENT_PREFIX_PATH"):
                env.pop(var, None)
            env["HF_HUB_OFFLINE"] = "1"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def call(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.side} worker exited (code {self.proc.wait()}) during {command!r}")
            if line.startswith("{"):
                return json.loads(line)

    def close(self) -> None:
        try:
            self.call("quit")
        except (RuntimeError, BrokenPipeError):
            pass
        self.proc.wait(timeout=60)


def measure(workers: list[Worker], command: str, warmup: int, iters: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {w.side: [] for w in workers}
    for _ in range(warmup):
        for w in workers:
            w.call(command)
    try:
        from tqdm import tqdm
    except ImportError:  # progress is optional
        def tqdm(x, **_):
            return x
    for i in tqdm(range(iters), desc=command, leave=False):
        order = workers if i % 2 == 0 else workers[::-1]  # alternate who goes first
        for w in order:
            times[w.side].append(w.call(command)["ms"])
    return times


def report(name: str, times: dict[str, list[float]]) -> None:
    med = {side: statistics.median(v) for side, v in times.items()}
    line = "  ".join(f"{side} {med[side]:9.1f} ms (p10 {np.percentile(v, 10):.1f}, p90 {np.percentile(v, 90):.1f})"
                     for side, v in times.items())
    ratio = ""
    if "upstream" in med:  # p10 ratio too: on a busy machine the fastest decile shows the code's own speed best
        p10 = {side: float(np.percentile(v, 10)) for side, v in times.items()}
        ratio = f"  speed-up {med['upstream'] / med['ours']:.2f}x (p10: {p10['upstream'] / p10['ours']:.2f}x)"
    print(f"{name:<8} {line}{ratio}")


def parent(args: argparse.Namespace) -> None:
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-policies-"))
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "pretrained_model"
    make_checkpoint(args, ckpt)
    inputs = work / "inputs.npz"
    make_inputs(args, ckpt, inputs)
    sides = [("ours", Path(sys.executable))]
    if not args.skip_upstream:
        if not ORACLE_PYTHON.exists():
            raise SystemExit(f"upstream venv not found: {ORACLE_PYTHON} (run scripts/setup_oracle.sh or --skip-upstream)")
        sides.append(("upstream", ORACLE_PYTHON))
    workers = [Worker(side, python, args, ckpt, inputs, work) for side, python in sides]
    try:
        print(f"policy {args.policy}{' (small)' if args.small else ''}: {args.cameras} camera(s) {args.height}x{args.width}, "
              f"device {args.device}, {args.dtype}{', compiled' if args.compile else ''}; workers alternate call by call")
        agreement = {w.side: w.call("agree") for w in workers}
        if "upstream" in agreement:
            diff = float(np.abs(np.load(workers[0].outputs) - np.load(workers[1].outputs)).max())
            dloss = abs(agreement["ours"]["loss"] - agreement["upstream"]["loss"])
            print(f"agree    chunk max |ours - upstream| {diff:.2e}   training loss |diff| {dloss:.2e} "
                  f"(of {agreement['ours']['loss']:.4f})")
        report("chunk", measure(workers, "chunk", args.warmup, args.iters))
        report("train", measure(workers, "train", 1, args.train_iters))
        memory = {w.side: w.call("memory")["peak_mb"] for w in workers}
        print("peak MB  " + "  ".join(f"{side} {mb:.0f}" for side, mb in memory.items()))
    finally:
        for w in workers:
            w.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="act", choices=["act"])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="a smaller transformer (quick runs on a CPU)")
    parser.add_argument("--iters", type=int, default=20, help="timed chunk calls per side")
    parser.add_argument("--train-iters", type=int, default=6, help="timed training steps per side")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="torch.compile our forward (CUDA graphs on CUDA)")
    parser.add_argument("--skip-upstream", action="store_true")
    parser.add_argument("--keep", help="folder for the checkpoint and inputs (default: a temp dir)")
    # worker mode (internal)
    parser.add_argument("--worker", choices=["ours", "upstream"], help=argparse.SUPPRESS)
    parser.add_argument("--ckpt", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print(f"bench_policies: --device {args.device} but no CUDA device is available here", file=sys.stderr)
            return 2
    try:
        parent(args)
    except (RuntimeError, SystemExit, FileNotFoundError) as exc:
        print(f"bench_policies: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
